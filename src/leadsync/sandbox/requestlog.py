"""What each CRM request was and how it ended, and which writes of one email overlapped.

The gate opens a `LoggedRequest` when a request reaches it and closes it when the answer has
been sent, the connection dropped or the hang ended. `GET /_sandbox/requests` lists the last
`MAX_LOGGED` of them, oldest first; `GET /_sandbox/stats` reports the overlapping writes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_LOGGED = 20_000
MAX_OVERLAPPING_EMAILS = 100


@dataclass(slots=True)
class LoggedRequest:
    """One CRM request: `status` and `done_at` stay None while it is in progress."""

    at: float
    endpoint: str
    emails: Sequence[str] = ()
    done_at: float | None = None
    status: int | str | None = None
    retry_after: float | None = None
    policy: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Render for the control API."""
        return {
            "at": self.at,
            "done_at": self.done_at,
            "endpoint": self.endpoint,
            "status": self.status,
            "emails": list(self.emails),
            "retry_after": self.retry_after,
            "policy": self.policy,
        }


class RequestLog:
    """The most recent CRM requests, oldest first, at most `MAX_LOGGED`."""

    def __init__(self, *, size: int = MAX_LOGGED) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=size)
        # Appended on the event loop; a test may read it from its own thread.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def start(self, endpoint: str) -> LoggedRequest:
        """Log a request that has just reached the gate."""
        entry = LoggedRequest(time.time(), endpoint)
        with self._lock:
            self._entries.append(entry)
        return entry

    def since(self, at: float | None = None) -> list[dict[str, Any]]:
        """Return the logged requests that arrived at or after `at` (all if None)."""
        with self._lock:
            entries = list(self._entries)
        return [e.as_json() for e in entries if at is None or e.at >= at]

    def clear(self) -> None:
        """Forget every logged request."""
        with self._lock:
            self._entries.clear()


class WriteOverlaps:
    """Writes in progress per email; a write that finds one already in progress overlaps."""

    def __init__(self) -> None:
        # Emails with a write in progress, and how many more than one for those with several:
        # set operations keep the common case (no overlap) free of per-email Python loops.
        self._active: set[str] = set()
        self._extra: dict[str, int] = {}
        self.count = 0
        # Insertion-ordered set: the first MAX_OVERLAPPING_EMAILS distinct overlapping emails.
        self._emails: dict[str, None] = {}

    def enter(self, emails: Sequence[str]) -> None:
        """Mark one write of each of `emails` (distinct) as in progress; count overlaps."""
        active = self._active
        if not active.isdisjoint(emails):
            extra = self._extra
            for email in emails:
                if email not in active:
                    continue
                extra[email] = extra.get(email, 0) + 1
                self.count += 1
                if len(self._emails) < MAX_OVERLAPPING_EMAILS:
                    self._emails.setdefault(email)
        active.update(emails)

    def leave(self, emails: Sequence[str]) -> None:
        """Mark one write of each of `emails` as finished."""
        extra = self._extra
        if not extra:
            self._active.difference_update(emails)
            return
        for email in emails:
            more = extra.pop(email, 0)
            if more > 1:
                extra[email] = more - 1
            elif not more:
                self._active.discard(email)

    def in_progress(self, email: str) -> int:
        """How many writes of `email` are in progress."""
        return self._extra.get(email, 0) + (email in self._active)

    @property
    def emails(self) -> list[str]:
        """The first distinct emails that had overlapping writes, in the order seen."""
        return list(self._emails)

    def reset(self) -> None:
        """Zero the count and forget the emails; writes still in progress stay tracked."""
        self.count = 0
        self._emails.clear()
