"""The audit: stored leads against the sandbox's contacts, and the verdict on losses and doubles."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadsync.demo.traffic import Traffic
from leadsync.store.tables import SyncStatus

STATUSES = tuple(status.value for status in SyncStatus)


@dataclass(frozen=True, slots=True)
class LeadRow:
    """One stored lead as the internal API returns it (only what the audit needs)."""

    id: int
    email: str
    status: str
    hubspot_id: str | None
    attempts: int
    created_at: dt.datetime
    synced_at: dt.datetime | None

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> LeadRow:
        """Read one item of `GET /internal/leads`."""
        synced = item.get("hubspot_synced_at")
        return cls(
            id=int(item["id"]),
            email=str(item["email"]).lower(),
            status=str(item["hubspot_sync_status"]),
            hubspot_id=item.get("hubspot_id"),
            attempts=int(item.get("hubspot_sync_attempts") or 0),
            created_at=dt.datetime.fromisoformat(item["created_at"]),
            synced_at=dt.datetime.fromisoformat(synced) if synced else None,
        )


@dataclass(frozen=True, slots=True)
class Audit:
    """The leads against the sandbox's contacts: what was lost, what was duplicated."""

    counts: dict[str, int]
    stored: int
    distinct_emails: int
    contacts: int
    duplicate_contacts: int  # contacts beyond the first one of an email
    mismatched_ids: int  # SYNCED leads whose hubspot_id is not their email's contact
    missing_contacts: int  # SYNCED leads whose email has no contact at all
    stray_contacts: int  # contacts whose email no lead has
    median_latency: float | None  # seconds from created_at to hubspot_synced_at
    p95_latency: float | None

    @property
    def duplicates(self) -> int:
        """Everything that would mean two contacts, or a lead pointing at the wrong one."""
        return self.duplicate_contacts + self.mismatched_ids


def audit(leads: Sequence[LeadRow], contacts: Sequence[Mapping[str, Any]]) -> Audit:
    """Compare the stored leads with the sandbox's contacts."""
    by_email: dict[str, list[str]] = {}
    for contact in contacts:
        email = str((contact.get("properties") or {}).get("email") or "").lower()
        by_email.setdefault(email, []).append(str(contact["id"]))
    counts = dict.fromkeys(STATUSES, 0) | Counter(lead.status for lead in leads)
    synced = [lead for lead in leads if lead.status == "SYNCED"]
    lead_emails = {lead.email for lead in leads}
    latencies = sorted(
        (lead.synced_at - lead.created_at).total_seconds()
        for lead in synced
        if lead.synced_at is not None
    )
    return Audit(
        counts=counts,
        stored=len(leads),
        distinct_emails=len(lead_emails),
        contacts=len(contacts),
        duplicate_contacts=sum(len(ids) - 1 for ids in by_email.values()),
        mismatched_ids=sum(
            1
            for lead in synced
            if lead.email in by_email and lead.hubspot_id not in by_email[lead.email]
        ),
        missing_contacts=sum(1 for lead in synced if lead.email not in by_email),
        stray_contacts=sum(len(ids) for email, ids in by_email.items() if email not in lead_emails),
        median_latency=statistics.median(latencies) if latencies else None,
        p95_latency=latencies[int((len(latencies) - 1) * 0.95)] if latencies else None,
    )


@dataclass
class DemoReport:
    """What the demo saw; `ok` when no lead was lost or duplicated."""

    seed: int
    submitted: int = 0
    accepted: int = 0
    first: Audit | None = None
    final: Audit | None = None
    first_traffic: Traffic = field(default_factory=Traffic)
    traffic: Traffic = field(default_factory=Traffic)
    faults: dict[str, int] = field(default_factory=dict)
    neighbour_requests: int = 0
    requeued: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every lead ended SYNCED with exactly one contact per email."""
        return not self.problems and self.final is not None


def judge(report: DemoReport, *, expected_emails: frozenset[str]) -> list[str]:
    """Return every way the final state falls short: a lost, unsynced or duplicated lead."""
    final = report.final
    if final is None:
        return ["the demo did not finish"]
    problems: list[str] = []
    if final.stored != report.accepted:
        problems.append(f"{report.accepted} leads accepted by POST /leads, {final.stored} stored")
    if (unsynced := final.stored - final.counts.get("SYNCED", 0)) > 0:
        left = {s: n for s, n in final.counts.items() if n and s != "SYNCED"}
        problems.append(f"{unsynced} lead(s) not SYNCED at the end: {left}")
    for count, text in (
        (final.missing_contacts, "SYNCED lead(s) without a contact in the sandbox (lost)"),
        (final.duplicate_contacts, "duplicate contact(s): several contacts for one email"),
        (final.mismatched_ids, "lead(s) whose hubspot_id is not their email's contact"),
        (final.stray_contacts, "contact(s) for an email no lead has"),
    ):
        if count:
            problems.append(f"{count} {text}")
    if final.contacts != len(expected_emails):
        problems.append(f"{final.contacts} contacts for {len(expected_emails)} distinct emails")
    return problems
