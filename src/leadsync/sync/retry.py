"""Retry policy, a pure function: exponential backoff, full jitter, never before Retry-After."""

from __future__ import annotations

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


def decide(
    *,
    policy: RetryPolicy,
    attempts: int,
    rng: random.Random,
    retry_after_seconds: float | None = None,
) -> Decision:
    """Decide after a transient failure, `attempts` counting the one that just failed."""
    if attempts >= policy.max_attempts:
        return Decision(Verdict.FAIL)
    # Full jitter (AWS architecture blog): uniform over [0, min(cap, base * 2**attempt)]
    # spreads a burst of failures out instead of retrying them in lock-step.
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2.0 ** min(attempts, 62))
    delay = rng.uniform(0.0, ceiling)
    if retry_after_seconds is not None:
        delay = max(delay, retry_after_seconds)
    return Decision(Verdict.RETRY, delay)
