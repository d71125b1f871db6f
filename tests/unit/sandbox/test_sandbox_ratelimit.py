"""RateLimiter and PeakTracker with an explicit clock: windows, daily budget, headers."""

from __future__ import annotations

from leadsync.config import RateLimit
from leadsync.sandbox.ratelimit import DAILY, SECONDLY, TEN_SECONDLY, PeakTracker, RateLimiter

LIMIT = RateLimit(count=3, window_seconds=10.0)
T0 = 1_767_225_600.0  # midnight UTC


def headers(verdict_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in verdict_headers}


def test_window_admits_count_then_rejects_with_retry_after() -> None:
    limiter = RateLimiter()
    remaining = []
    for i in range(3):
        verdict = limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + i)
        assert verdict.allowed
        remaining.append(headers(verdict.headers)["x-hubspot-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    refused = limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + 3.2)
    assert not refused.allowed
    assert refused.policy == TEN_SECONDLY
    # The first request leaves the window at T0+10: 6.8 s later, rounded up.
    assert refused.retry_after == 7


def test_rejected_requests_do_not_count_toward_the_window() -> None:
    limiter = RateLimiter()
    for i in range(3):
        limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + i)
    for _ in range(50):
        assert not limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + 5).allowed
    # Only the three admitted requests age out; the 50 refusals left no trace.
    assert limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + 10).allowed
    assert limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + 11).allowed
    assert limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + 12).allowed
    assert not limiter.acquire("t", limit=LIMIT, daily_limit=None, now=T0 + 12.5).allowed


def test_windows_are_per_token() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.acquire("a", limit=LIMIT, daily_limit=None, now=T0)
    assert not limiter.acquire("a", limit=LIMIT, daily_limit=None, now=T0).allowed
    assert limiter.acquire("b", limit=LIMIT, daily_limit=None, now=T0).allowed


def test_headers_carry_limit_interval_and_daily_budget() -> None:
    verdict = RateLimiter().acquire("t", limit=LIMIT, daily_limit=100, now=T0)
    assert headers(verdict.headers) == {
        "x-hubspot-ratelimit-max": "3",
        "x-hubspot-ratelimit-remaining": "2",
        "x-hubspot-ratelimit-interval-milliseconds": "10000",
        "x-hubspot-ratelimit-daily": "100",
        "x-hubspot-ratelimit-daily-remaining": "99",
    }


def test_unthrottled_sends_no_window_headers_and_keeps_no_history() -> None:
    limiter = RateLimiter()
    for i in range(1000):
        assert limiter.acquire("t", limit=None, daily_limit=None, now=T0 + i / 1000).allowed
    assert limiter.windows == {}
    assert limiter.acquire("t", limit=None, daily_limit=None, now=T0).headers == []


def test_daily_budget_is_shared_and_resets_at_midnight_utc() -> None:
    limiter = RateLimiter()
    assert limiter.acquire("a", limit=None, daily_limit=2, now=T0 + 100).allowed
    assert limiter.acquire("b", limit=None, daily_limit=2, now=T0 + 200).allowed
    refused = limiter.acquire("a", limit=None, daily_limit=2, now=T0 + 86_000)
    assert (refused.allowed, refused.policy, refused.retry_after) == (False, DAILY, 400)
    assert limiter.acquire("a", limit=None, daily_limit=2, now=T0 + 86_400).allowed


def test_policy_name_is_configurable_for_search() -> None:
    limiter = RateLimiter(policy=SECONDLY)
    one = RateLimit(count=1, window_seconds=1.0)
    limiter.acquire("account", limit=one, daily_limit=None, now=T0)
    assert limiter.acquire("account", limit=one, daily_limit=None, now=T0).policy == SECONDLY


def test_reset_forgets_history() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.acquire("t", limit=LIMIT, daily_limit=3, now=T0)
    limiter.reset()
    assert limiter.acquire("t", limit=LIMIT, daily_limit=3, now=T0).allowed


def test_peak_tracker_finds_the_busiest_ten_seconds() -> None:
    peaks = PeakTracker(window_seconds=10.0)
    for second in [0, 1, 2, 3, 20, 21, 22, 23, 24, 25, 40]:
        peaks.record("t", now=T0 + second)
    peaks.record("u", now=T0)
    assert peaks.peaks == {"t": 6, "u": 1}
    peaks.reset()
    assert peaks.peaks == {}
