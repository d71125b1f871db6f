"""Clocks: the sandbox reads time through one callable so tests can move it by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

Clock = Callable[[], float]
"""Seconds since the epoch, like `time.time`."""


# A batch stamps all its contacts with one instant; caching spares 99 of 100 formattings.
@lru_cache(maxsize=256)
def iso(timestamp: float) -> str:
    """Format epoch seconds as HubSpot does: ISO-8601, milliseconds, `Z`."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ManualClock:
    """A clock that only moves when told; share it between a test and a running sandbox."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        # Default start: 2026-01-01T00:00:00Z, a fixed and readable instant.
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        with self._lock:
            self._now += seconds

    def set(self, timestamp: float) -> None:
        """Jump to `timestamp`."""
        with self._lock:
            self._now = timestamp
