"""What the sandbox saw: requests by endpoint and status, 429s, faults, peak window use,
overlapping writes."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from leadsync.sandbox.ratelimit import PeakTracker
from leadsync.sandbox.requestlog import WriteOverlaps


class Stats:
    """Counters for the control API; reset together with the contacts."""

    def __init__(self) -> None:
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.injected = 0  # answers taken from POST /_sandbox/inject
        # Fixed at HubSpot's 10 s so the figure means the same whatever limit is configured.
        self.peaks = PeakTracker(window_seconds=10.0)
        # Writes of one email in progress at once (create, update, batch upsert).
        self.overlaps = WriteOverlaps()

    def record(self, endpoint: str, status: int | str) -> None:
        """Count one request to `endpoint` that ended with `status` (or 'drop'/'timeout')."""
        self.requests[endpoint][str(status)] += 1

    def reset(self) -> None:
        """Zero every counter."""
        self.requests.clear()
        self.rate_limited.clear()
        self.faults.clear()
        self.injected = 0
        self.peaks.reset()
        self.overlaps.reset()

    def snapshot(self) -> dict[str, Any]:
        """Return every counter as plain JSON-ready data."""
        return {
            "requests": {name: dict(counts) for name, counts in sorted(self.requests.items())},
            "total_requests": sum(sum(c.values()) for c in self.requests.values()),
            "rate_limited": sum(self.rate_limited.values()),
            "rate_limited_by_policy": dict(self.rate_limited),
            "faults": {kind: self.faults.get(kind, 0) for kind in ("5xx", "timeout", "drop")},
            "drops": self.faults.get("drop", 0),
            "injected": self.injected,
            "max_requests_in_10s": dict(self.peaks.peaks),
            "write_overlaps": self.overlaps.count,
            "overlapping_emails": self.overlaps.emails,
        }
