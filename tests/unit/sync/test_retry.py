"""The retry policy: full-jitter exponential backoff, Retry-After floor, FAIL at max_attempts."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadsync.engine.retry import Decision, RetryPolicy, Verdict, decide

POLICY = RetryPolicy(base_seconds=2.0, cap_seconds=900.0, max_attempts=10)
SAMPLES = 200


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [
        (1, 4.0),
        (2, 8.0),
        (3, 16.0),
        (5, 64.0),
        (8, 512.0),
        (9, 900.0),  # 2 * 2**9 = 1024 > cap
    ],
)
def test_delay_is_uniform_under_the_exponential_ceiling(attempts: int, ceiling: float) -> None:
    rng = random.Random(attempts)
    delays = []
    for _ in range(SAMPLES):
        decision = decide(policy=POLICY, attempts=attempts, rng=rng)
        assert decision.verdict is Verdict.RETRY
        assert 0.0 <= decision.delay_seconds <= ceiling
        delays.append(decision.delay_seconds)
    # Full jitter spreads over the whole range, not a narrow band near the ceiling.
    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_same_seed_same_delays() -> None:
    first = [decide(policy=POLICY, attempts=3, rng=random.Random(42)) for _ in range(3)]
    again = [decide(policy=POLICY, attempts=3, rng=random.Random(42)) for _ in range(3)]
    assert first == again


@pytest.mark.parametrize(
    ("attempts", "retry_after"),
    [(1, 30.0), (1, 0.5), (3, 10.0), (9, 5000.0), (2, 0.0)],
)
def test_never_below_retry_after_up_to_the_cap(attempts: int, retry_after: float) -> None:
    rng = random.Random(7)
    ceiling = min(POLICY.cap_seconds, POLICY.base_seconds * 2**attempts)
    floor = min(retry_after, POLICY.cap_seconds)
    for _ in range(SAMPLES):
        decision = decide(
            policy=POLICY, attempts=attempts, rng=rng, retry_after_seconds=retry_after
        )
        assert decision.verdict is Verdict.RETRY
        assert decision.delay_seconds >= floor
        # Retry-After only raises the floor; it never stretches past the cap.
        assert decision.delay_seconds <= max(ceiling, floor) <= POLICY.cap_seconds


def test_retry_after_above_cap_is_cut_to_the_cap_and_says_so() -> None:
    decision = decide(
        policy=RetryPolicy(base_seconds=1.0, cap_seconds=10.0, max_attempts=5),
        attempts=1,
        rng=random.Random(0),
        retry_after_seconds=31_536_000.0,  # a year: the review's 503
    )
    assert decision == Decision(Verdict.RETRY, 10.0, capped_retry_after=31_536_000.0)


@given(
    attempts=st.integers(min_value=0, max_value=200),
    retry_after=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    cap=st.floats(min_value=0.001, max_value=1e6),
    base=st.floats(min_value=0.001, max_value=1e3),
)
def test_every_delay_is_bounded_by_the_cap(
    attempts: int, retry_after: float | None, cap: float, base: float
) -> None:
    policy = RetryPolicy(base_seconds=base, cap_seconds=cap, max_attempts=1_000)
    decision = decide(
        policy=policy,
        attempts=attempts,
        rng=random.Random(attempts),
        retry_after_seconds=retry_after,
    )
    assert decision.verdict is Verdict.RETRY
    assert 0.0 <= decision.delay_seconds <= cap
    # Whatever the delay, it fits a timestamp: no OverflowError when the outcome is written.
    assert dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=decision.delay_seconds)


@pytest.mark.parametrize(
    ("max_attempts", "attempts", "verdict"),
    [
        (10, 9, Verdict.RETRY),
        (10, 10, Verdict.FAIL),
        (10, 11, Verdict.FAIL),
        (1, 1, Verdict.FAIL),
        (3, 2, Verdict.RETRY),
        (3, 3, Verdict.FAIL),
    ],
)
def test_fail_once_max_attempts_are_used(
    max_attempts: int, attempts: int, verdict: Verdict
) -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=60.0, max_attempts=max_attempts)
    decision = decide(policy=policy, attempts=attempts, rng=random.Random(1))
    assert decision.verdict is verdict
    if verdict is Verdict.FAIL:
        assert decision.delay_seconds == 0.0


def test_fail_even_with_retry_after() -> None:
    decision = decide(
        policy=RetryPolicy(max_attempts=2), attempts=2, rng=random.Random(1), retry_after_seconds=5
    )
    assert decision.verdict is Verdict.FAIL


@pytest.mark.parametrize("attempts", [60, 63, 64, 1_000, 10**9])
def test_cap_holds_for_huge_attempt_numbers(attempts: int) -> None:
    policy = RetryPolicy(base_seconds=2.0, cap_seconds=900.0, max_attempts=10**12)
    rng = random.Random(attempts)
    delays = [decide(policy=policy, attempts=attempts, rng=rng).delay_seconds for _ in range(50)]
    assert all(0.0 <= d <= 900.0 for d in delays)
    assert max(delays) > 450.0  # still jittered over the capped range, not collapsed to 0
