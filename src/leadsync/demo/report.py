"""What the demo saw, and its verdict: the final audit must find no lead lost or doubled."""

from __future__ import annotations

from dataclasses import dataclass, field

from leadsync.demo.kit import Audit
from leadsync.demo.traffic import Traffic


@dataclass
class Forgotten:
    """What the erasure did, as the demo checked it."""

    erasure_id: int = 0
    masked_email: str = ""
    lead_ids: list[int] = field(default_factory=list)
    contact_deleted: bool = False
    rows_scrubbed: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class DemoReport:
    """What the demo saw; `ok` when no lead was lost or duplicated."""

    seed: int
    submitted: int = 0
    accepted_ids: set[int] = field(default_factory=set)  # POST /leads answered 201
    first: Audit | None = None
    final: Audit | None = None
    first_traffic: Traffic = field(default_factory=Traffic)
    traffic: Traffic = field(default_factory=Traffic)
    faults: dict[str, int] = field(default_factory=dict)
    neighbour_requests: int = 0
    requeued: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    forgotten: Forgotten | None = None  # the erasure at the end (demo/forget.py)

    @property
    def accepted(self) -> int:
        """How many leads POST /leads accepted."""
        return len(self.accepted_ids)

    @property
    def ok(self) -> bool:
        """Whether every lead ended SYNCED with exactly one contact per email."""
        return not self.problems and self.final is not None


def judge(report: DemoReport) -> list[str]:
    """Return every way the final state falls short: a lost, unsynced or duplicated lead."""
    if report.final is None:
        return ["the demo did not finish"]
    return report.final.problems
