"""HubSpot's request limits: a rolling window per token, a daily budget, and their headers."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from leadsync.config import RateLimit

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
DAILY = "DAILY"
_DAY = 86_400.0
Headers = list[tuple[bytes, bytes]]


class SlidingWindow:
    """Timestamps of accepted requests, oldest first, trimmed to a window on demand."""

    __slots__ = ("_stamps",)

    def __init__(self) -> None:
        self._stamps: deque[float] = deque()

    def count(self, *, now: float, window: float) -> int:
        """Return how many requests fall inside the window ending at `now`."""
        stamps = self._stamps
        cutoff = now - window
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        return len(stamps)

    def add(self, *, now: float) -> None:
        """Record one accepted request."""
        self._stamps.append(now)

    def frees_at(self, *, window: float) -> float:
        """Return when the oldest request leaves the window."""
        return self._stamps[0] + window if self._stamps else 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The limiter's answer for one request."""

    allowed: bool
    headers: Headers
    policy: str | None = None
    retry_after: int | None = None


@dataclass(slots=True)
class RateLimiter:
    """A rolling window per key plus one daily budget; rejected requests are not counted."""

    policy: str = TEN_SECONDLY
    windows: dict[str, SlidingWindow] = field(default_factory=dict)
    day: int = -1
    daily_used: int = 0

    def reset(self) -> None:
        """Forget every recorded request."""
        self.windows.clear()
        self.day, self.daily_used = -1, 0

    def acquire(
        self, key: str, *, limit: RateLimit | None, daily_limit: int | None, now: float
    ) -> Verdict:
        """Admit or reject one request for `key` at `now`."""
        day = int(now // _DAY)
        if day != self.day:
            self.day, self.daily_used = day, 0
        window = None
        used = 0
        if limit is not None:
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = SlidingWindow()
            used = window.count(now=now, window=limit.window_seconds)
        if daily_limit is not None and self.daily_used >= daily_limit:
            wait = math.ceil((day + 1) * _DAY - now)
            headers = _headers(limit, used, daily_limit, self.daily_used)
            return Verdict(False, headers, DAILY, max(wait, 1))
        if window is not None and limit is not None:
            if used >= limit.count:
                wait = math.ceil(window.frees_at(window=limit.window_seconds) - now)
                headers = _headers(limit, used, daily_limit, self.daily_used)
                return Verdict(False, headers, self.policy, max(wait, 1))
            window.add(now=now)
        self.daily_used += 1
        return Verdict(True, _headers(limit, used + 1, daily_limit, self.daily_used))


def _headers(limit: RateLimit | None, used: int, daily: int | None, daily_used: int) -> Headers:
    headers: Headers = []
    if limit is not None:
        headers += [
            (b"x-hubspot-ratelimit-max", b"%d" % limit.count),
            (b"x-hubspot-ratelimit-remaining", b"%d" % max(limit.count - used, 0)),
            (b"x-hubspot-ratelimit-interval-milliseconds", b"%d" % (limit.window_seconds * 1000)),
        ]
    if daily is not None:
        headers += [
            (b"x-hubspot-ratelimit-daily", b"%d" % daily),
            (b"x-hubspot-ratelimit-daily-remaining", b"%d" % max(daily - daily_used, 0)),
        ]
    return headers


class PeakTracker:
    """The most accepted requests any key made inside any window of fixed length."""

    def __init__(self, *, window_seconds: float = 10.0) -> None:
        self.window_seconds = window_seconds
        self._windows: dict[str, SlidingWindow] = {}
        self.peaks: dict[str, int] = {}

    def record(self, key: str, *, now: float) -> None:
        """Count one accepted request and update the key's peak."""
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = SlidingWindow()
        window.add(now=now)
        seen = window.count(now=now, window=self.window_seconds)
        if seen > self.peaks.get(key, 0):
            self.peaks[key] = seen

    def reset(self) -> None:
        """Forget every recorded request."""
        self._windows.clear()
        self.peaks.clear()
