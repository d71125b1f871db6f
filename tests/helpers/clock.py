"""The tests' one hand-moved clock: the sandbox's `ManualClock`, read as a UTC datetime too.

The sandbox reads time as epoch seconds (`clock()`); the engine (`Gate`, the queue's `now=`)
as an aware UTC datetime: `clock.now`, or `clock.utc` where a callable is wanted.
"""

from __future__ import annotations

import datetime as dt

from leadsync.sandbox import ManualClock


class FakeClock(ManualClock):
    """A `ManualClock` with a datetime face: `now` (settable) and `utc()`."""

    def __init__(self, start: dt.datetime | float = 1_767_225_600.0) -> None:
        super().__init__(start.timestamp() if isinstance(start, dt.datetime) else start)

    @property
    def now(self) -> dt.datetime:
        """The current time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self(), dt.UTC)

    @now.setter
    def now(self, value: dt.datetime) -> None:
        self.set(value.timestamp())

    def utc(self) -> dt.datetime:
        """Return `now`: pass `clock.utc` where the engine wants a `utcnow`-like callable."""
        return self.now
