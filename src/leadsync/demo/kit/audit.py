"""The audit: the stored leads against the sandbox's contacts, and every way they fall short.

A scenario reads its leads as the internal API shows them (`LeadDetail`, from the API of a
running service or straight from the database) and every contact of the sandbox; `audit()`
then counts, check by check (`CHECKS`), what would break the promise: exactly one contact per
email, holding the newest values of its leads; every lead that HubSpot accepts SYNCED with
that contact's id; every refused one FAILED with HubSpot's reason; no accepted lead lost;
nothing left under a lease.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.engine.contact import lead_properties
from leadsync.limits import MAX_PAGE_SIZE
from leadsync.store import queue
from leadsync.store.db import utcnow
from leadsync.store.tables import LEAD_FIELDS, UNFINISHED, SyncStatus
from leadsync.usecases.leads import list_leads
from leadsync.usecases.schemas import LeadDetail, LeadPage

STATUSES: Final = tuple(status.value for status in SyncStatus)

# Every check of the audit, in the order it reports them: name -> what one offender is.
CHECKS: Final[Mapping[str, str]] = {
    "lost_leads": "accepted lead(s) not stored (lost)",
    "unknown_leads": "stored lead(s) with an email the scenario never sent",
    "not_synced": "lead(s) not SYNCED at the end",
    "rejected_not_failed": "refused lead(s) not FAILED with HubSpot's error",
    "leased": "lead(s) left IN_PROGRESS or holding a lease",
    "incomplete_synced": "SYNCED lead(s) with an error or without hubspot_synced_at",
    "missing_contacts": "SYNCED lead(s) without a contact in the sandbox (lost)",
    "mismatched_ids": "lead(s) whose hubspot_id is not their email's contact",
    "duplicate_contacts": "duplicate contact(s): several contacts for one email",
    "stray_contacts": "contact(s) for an email no lead has, or one HubSpot refuses",
    "uncovered_emails": "email(s) HubSpot accepts without a contact",
    "stale_contacts": "contact(s) not holding the newest values of their email's leads",
}
EXAMPLES = 3  # offenders named in a problem line


def unfinished(counts: Mapping[str, int]) -> int:
    """Return how many leads of these counts by status are still to sync."""
    return sum(counts.get(status, 0) for status in UNFINISHED)


def settled(counts: Mapping[str, int], *, total: int | None = None) -> bool:
    """Whether the queue holds leads (`total` of them, when given) and none is still to sync."""
    stored = sum(counts.values())
    return stored > 0 and (total is None or stored == total) and not unfinished(counts)


def leased(lead: LeadDetail) -> bool:
    """Whether a worker holds (or held, and died) a lease on the lead.

    The lease's expiry is set and cleared with its token, which the API does not show.
    """
    return lead.hubspot_lease_expires_at is not None


def describe(lead: LeadDetail) -> str:
    """Name a lead in a problem line."""
    return f"lead {lead.id} <{lead.email}> {lead.hubspot_sync_status.value}"


async def read_leads(api: httpx.AsyncClient, *, token: str) -> list[LeadDetail]:
    """Return every lead through `GET /internal/leads` of a running service, in id order."""
    leads: list[LeadDetail] = []
    after: int | None = None
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        params = {"limit": str(MAX_PAGE_SIZE)} | ({"after": str(after)} if after else {})
        response = await api.get("/internal/leads", params=params, headers=headers)
        response.raise_for_status()
        page = LeadPage.model_validate(response.json())
        leads += page.items
        if (after := page.next_after) is None:
            return sorted(leads, key=lambda lead: lead.id)


async def read_leads_from_db(sessions: async_sessionmaker[AsyncSession]) -> list[LeadDetail]:
    """Return every lead straight from the database, as the API would show it, in id order."""
    leads: list[LeadDetail] = []
    after: int | None = None
    while True:
        page = await list_leads(sessions, status=None, limit=MAX_PAGE_SIZE, after=after)
        leads += [LeadDetail.model_validate(row) for row in page]
        if len(page) < MAX_PAGE_SIZE:
            return sorted(leads, key=lambda lead: lead.id)
        after = page[-1].id


async def count_by_status(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    """Return how many leads the database holds in each sync status (0 included)."""
    async with sessions() as session:
        return Counter((await queue.stats(session, now=utcnow())).counts)


async def read_contacts(sandbox_url: str) -> list[dict[str, Any]]:
    """Return every contact the sandbox holds, through its control API."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=60) as http:
        response = await http.get("/_sandbox/contacts")
    response.raise_for_status()
    contacts: list[dict[str, Any]] = response.json()["results"]
    return contacts


@dataclass(frozen=True, slots=True)
class Audit:
    """The leads against the sandbox's contacts: the figures, and the offenders of each check."""

    counts: dict[str, int]  # every status, 0 included
    stored: int
    distinct_emails: int  # among the stored leads
    contacts: int
    median_latency: float | None  # seconds from created_at to hubspot_synced_at
    p95_latency: float | None
    offenders: dict[str, list[str]]  # CHECKS name -> one description per offender

    def violations(self) -> dict[str, int]:
        """Return every check's number of offenders (0 where it holds), in CHECKS order."""
        return {name: len(self.offenders[name]) for name in CHECKS}

    @property
    def problems(self) -> list[str]:
        """Return a line per failed check: how many, what, and the first offenders."""
        return [
            f"{len(found)} {CHECKS[name]}: "
            + "; ".join(found[:EXAMPLES])
            + ("; ..." if len(found) > EXAMPLES else "")
            for name, found in self.offenders.items()
            if found
        ]

    @property
    def ok(self) -> bool:
        """Whether every check holds."""
        return not any(self.offenders.values())

    @property
    def duplicate_contacts(self) -> int:
        """Contacts beyond the first one of an email."""
        return len(self.offenders["duplicate_contacts"])

    @property
    def mismatched_ids(self) -> int:
        """SYNCED leads whose hubspot_id is none of their email's contacts."""
        return len(self.offenders["mismatched_ids"])

    @property
    def missing_contacts(self) -> int:
        """SYNCED leads whose email has no contact at all."""
        return len(self.offenders["missing_contacts"])

    @property
    def stray_contacts(self) -> int:
        """Contacts whose email no lead has, or HubSpot refuses."""
        return len(self.offenders["stray_contacts"])

    @property
    def duplicates(self) -> int:
        """Everything that would mean two contacts, or a lead pointing at the wrong one."""
        return self.duplicate_contacts + self.mismatched_ids


def audit(
    leads: Sequence[LeadDetail],
    contacts: Sequence[Mapping[str, Any]],
    *,
    emails: Collection[str] | None = None,
    rejected: Collection[str] = frozenset(),
    accepted_ids: Collection[int] | None = None,
    extra_properties: Mapping[str, str] | None = None,
) -> Audit:
    """Compare the stored leads with the sandbox's contacts, check by check (CHECKS).

    `emails`: every email the scenario sent, lowercased (default: those of the stored leads);
    `rejected`: those HubSpot refuses (their leads must end FAILED, and have no contact);
    every other one must have exactly one contact, and its leads must end SYNCED.
    `accepted_ids`: the ids POST /leads answered 201 with (each must be stored).
    `extra_properties`: the HUBSPOT_EXTRA_PROPERTIES the service ran with.
    """
    found: dict[str, list[str]] = {name: [] for name in CHECKS}
    # A lead erased on request keeps no address: nothing of it must be at HubSpot, which
    # the erasure's own checks prove (tests/e2e/test_privacy.py), not this audit.
    leads = [lead for lead in leads if lead.email is not None]
    rejected = frozenset(email.lower() for email in rejected)
    lead_emails = {(lead.email or "").lower() for lead in leads}
    sent = lead_emails if emails is None else {email.lower() for email in emails}
    by_email: dict[str, list[Mapping[str, Any]]] = {}
    for contact in contacts:
        email = str((contact.get("properties") or {}).get("email") or "").lower()
        by_email.setdefault(email, []).append(contact)
    contact_ids = {email: [str(c["id"]) for c in group] for email, group in by_email.items()}
    stored_ids = {lead.id for lead in leads}

    found["lost_leads"] = [f"lead {i}" for i in sorted(set(accepted_ids or ()) - stored_ids)]
    for lead in leads:
        _check_lead(lead, found, sent=sent, rejected=rejected, contact_ids=contact_ids)
    for email, ids in contact_ids.items():
        found["duplicate_contacts"] += [f"contact {i} <{email}>" for i in ids[1:]]
        if email not in lead_emails or email in rejected:
            found["stray_contacts"] += [f"contact {i} <{email}>" for i in ids]
    found["uncovered_emails"] = sorted(sent - rejected - set(by_email))
    found["stale_contacts"] = _stale_contacts(leads, by_email, extra=extra_properties or {})

    statuses = [lead.hubspot_sync_status for lead in leads]
    latencies = sorted(
        (lead.hubspot_synced_at - lead.created_at).total_seconds()
        for lead in leads
        if lead.hubspot_sync_status == SyncStatus.SYNCED and lead.hubspot_synced_at is not None
    )
    return Audit(
        counts=dict.fromkeys(STATUSES, 0) | Counter(status.value for status in statuses),
        stored=len(leads),
        distinct_emails=len(lead_emails),
        contacts=len(contacts),
        median_latency=statistics.median(latencies) if latencies else None,
        p95_latency=latencies[int((len(latencies) - 1) * 0.95)] if latencies else None,
        offenders=found,
    )


def _check_lead(
    lead: LeadDetail,
    found: dict[str, list[str]],
    *,
    sent: Collection[str],
    rejected: Collection[str],
    contact_ids: Mapping[str, list[str]],
) -> None:
    email, status, error = (lead.email or "").lower(), lead.hubspot_sync_status, lead.hubspot_error
    if email not in sent:
        found["unknown_leads"].append(describe(lead))
    if leased(lead) or status == SyncStatus.IN_PROGRESS:
        found["leased"].append(describe(lead))
    if email in rejected:
        if status != SyncStatus.FAILED or not error:
            found["rejected_not_failed"].append(f"{describe(lead)} (error {error!r})")
        return
    if status != SyncStatus.SYNCED:
        found["not_synced"].append(f"{describe(lead)} (error {error!r})")
        return
    if error is not None or lead.hubspot_synced_at is None:
        found["incomplete_synced"].append(describe(lead))
    ids = contact_ids.get(email)
    if ids is None:
        found["missing_contacts"].append(describe(lead))
    elif lead.hubspot_id not in ids:
        found["mismatched_ids"].append(
            f"{describe(lead)}: hubspot_id {lead.hubspot_id}, contact {ids[0]}"
        )


def _stale_contacts(
    leads: Sequence[LeadDetail],
    by_email: Mapping[str, list[Mapping[str, Any]]],
    *,
    extra: Mapping[str, str],
) -> list[str]:
    """Contacts that do not hold, property by property, the newest non-empty value of their
    email's leads (in lead-id order); checked where every lead of the email is SYNCED."""
    leads_of: dict[str, list[LeadDetail]] = {}
    for lead in sorted(leads, key=lambda lead: lead.id):
        leads_of.setdefault((lead.email or "").lower(), []).append(lead)
    stale: list[str] = []
    for email, group in leads_of.items():
        if email not in by_email or any(
            lead.hubspot_sync_status != SyncStatus.SYNCED for lead in group
        ):
            continue
        newest: dict[str, str] = {}
        for lead in group:
            newest.update(lead_properties(lead.model_dump(include=set(LEAD_FIELDS)), extra=extra))
        newest.pop("email", None)  # grouped by it already
        for contact in by_email[email]:
            held = contact.get("properties") or {}
            wrong = sorted(name for name, value in newest.items() if held.get(name) != value)
            if wrong:
                stale.append(f"contact {contact['id']} <{email}>: {', '.join(wrong)}")
    return stale
