"""Retry policy, a pure function: exponential backoff, full jitter, Retry-After up to the cap."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """What to do with a lead after a transient failure."""

    RETRY = "RETRY"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The knobs: LEADSYNC_RETRY_BASE_SECONDS, _RETRY_CAP_SECONDS and _MAX_ATTEMPTS."""

    base_seconds: float = 2.0
    cap_seconds: float = 900.0
    max_attempts: int = 10


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict, and for RETRY how long to wait before the next attempt."""

    verdict: Verdict
    delay_seconds: float = 0.0
    # The Retry-After HubSpot asked for, when it was longer than the cap and so cut to it.
    capped_retry_after: float | None = None


def decide(
    *,
    policy: RetryPolicy,
    attempts: int,
    rng: random.Random,
    retry_after_seconds: float | None = None,
) -> Decision:
    """Decide after a transient failure, `attempts` counting the one that just failed.

    A Retry-After is honoured up to `cap_seconds` (LEADSYNC_RETRY_CAP_SECONDS): HubSpot, or a
    proxy in front of it, must not be able to park a lead for a year.
    """
    if attempts >= policy.max_attempts:
        return Decision(Verdict.FAIL)
    # Full jitter (AWS architecture blog): uniform over [0, min(cap, base * 2**attempt)]
    # spreads a burst of failures out instead of retrying them in lock-step.
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2.0 ** min(attempts, 62))
    delay = rng.uniform(0.0, ceiling)
    capped = None
    if retry_after_seconds is not None and math.isfinite(retry_after_seconds):
        if retry_after_seconds > policy.cap_seconds:
            capped = retry_after_seconds
        delay = max(delay, min(retry_after_seconds, policy.cap_seconds))
    return Decision(Verdict.RETRY, delay, capped)
