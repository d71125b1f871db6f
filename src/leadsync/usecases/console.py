"""What the operator console shows and does, as plain functions over the database handles: the
overview, the failed queue (pages, counts, resync by selection or by filter) and a lead.

The console's routes (web/console/) only parse requests and render these shapes; the same
functions could back any other front end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.limits import HISTORY_SHOWN, MAX_RESYNC_IDS
from leadsync.logging import get_logger
from leadsync.store import failed, history, leads, overview, workers
from leadsync.store.db import transaction, utcnow
from leadsync.store.failed import FailedFilter
from leadsync.store.history import HistoryRow
from leadsync.store.overview import Count
from leadsync.store.tables import Lead, SyncOutcome, SyncStatus
from leadsync.store.workers import WorkerSeen
from leadsync.usecases.schemas import BudgetOut, GateOut
from leadsync.usecases.sync import gate_report

__all__ = ["Count", "FailedFilter", "HistoryRow", "WorkerSeen"]

log = get_logger(__name__)

CHART_MINUTES = 60
# A worker counts as seen recently when its last heartbeat (one per reconciliation pass) is
# at most this many passes old, and never less than this many seconds.
SEEN_PASSES = 3
SEEN_AT_LEAST_SECONDS = 300.0
FAILED_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything on the console's first page."""

    now: dt.datetime
    counts: dict[str, Count]
    due_now: Count
    oldest_due_at: dt.datetime | None
    oldest_unsynced: tuple[int, dt.datetime] | None
    synced_per_minute: list[int]  # CHART_MINUTES values, oldest minute first, current last
    gate: GateOut
    budget: BudgetOut
    last_error: HistoryRow | None
    workers: list[WorkerSeen]
    workers_since: dt.datetime

    @property
    def total(self) -> Count:
        """All leads (an estimate when any status count is one)."""
        values = self.counts.values()
        return Count(sum(c.value for c in values), all(c.exact for c in values))


async def overview_of(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings
) -> Overview:
    """Collect the overview: a few index probes and one gate read (bench/console.py)."""
    now = utcnow()
    this_minute = int(now.timestamp()) // 60
    since_minute = this_minute - CHART_MINUTES + 1
    seen_seconds = max(SEEN_AT_LEAST_SECONDS, SEEN_PASSES * settings.reconcile_interval_seconds)
    workers_since = now - dt.timedelta(seconds=seen_seconds)
    async with sessions() as session:
        counts = await overview.status_counts(session)
        due = await overview.due_now(session, now=now)
        oldest_due = await overview.oldest_due(session, now=now)
        oldest_unsynced = await overview.oldest_unsynced(session)
        minutes = await history.per_minute(
            session,
            outcome=SyncOutcome.SYNCED,
            since=dt.datetime.fromtimestamp(since_minute * 60, dt.UTC),
        )
        last_error = await history.last_error(session)
        seen = await workers.seen_since(session, since=workers_since)
    gate, budget = await gate_report(sessions, settings=settings, now=now)
    return Overview(
        now=now,
        counts=counts,
        due_now=due,
        oldest_due_at=oldest_due,
        oldest_unsynced=oldest_unsynced,
        synced_per_minute=[minutes.get(m, 0) for m in range(since_minute, this_minute + 1)],
        gate=gate,
        budget=budget,
        last_error=last_error,
        workers=seen,
        workers_since=workers_since,
    )


@dataclass(frozen=True, slots=True)
class FailedPage:
    """One page of the failed queue and the filter's choices."""

    leads: list[Lead]
    next_before: int | None
    statuses: list[tuple[int, int]]
    classes: list[tuple[str, int]]


async def failed_page(
    sessions: async_sessionmaker[AsyncSession],
    *,
    flt: FailedFilter,
    before: int | None,
    limit: int = FAILED_PAGE_SIZE,
) -> FailedPage:
    """FAILED leads matching the filter, newest first, below id `before` (keyset pages)."""
    async with sessions() as session:
        leads, next_before = await failed.page(
            session, flt=flt, now=utcnow(), before=before, limit=limit
        )
        statuses, classes = await failed.facets(session)
    return FailedPage(leads, next_before, statuses, classes)


async def count_failed(
    sessions: async_sessionmaker[AsyncSession],
    *,
    flt: FailedFilter,
    lead_ids: Sequence[int] = (),
) -> tuple[int, int]:
    """How many FAILED leads a resync would take (only `lead_ids` among them, when given),
    and the highest such id, to hold the resync to what was counted."""
    ids = list(lead_ids)[:MAX_RESYNC_IDS]
    if ids:  # a selection is taken as it is, whatever filter the page showed
        flt = FailedFilter(upto_id=flt.upto_id)
    async with sessions() as session:
        return await failed.count(session, flt=flt, now=utcnow(), lead_ids=ids)


async def resync(
    sessions: async_sessionmaker[AsyncSession],
    *,
    flt: FailedFilter,
    actor: str,
    lead_ids: Sequence[int] = (),
) -> int:
    """Requeue the FAILED leads matching the filter (or the selected ones); logged with who."""
    ids = list(lead_ids)[:MAX_RESYNC_IDS]
    if ids:
        flt = FailedFilter(upto_id=flt.upto_id)
    async with transaction(sessions) as session:
        requeued = await failed.requeue(session, flt=flt, now=utcnow(), lead_ids=ids)
    log.info(
        "console.resync",
        actor=actor,
        requeued=requeued,
        selected=len(ids) or None,
        filter=None if ids else _describe(flt),
    )
    return requeued


def _describe(flt: FailedFilter) -> dict[str, object]:
    # For the log: the filter without the email searched for (a person's address).
    return {
        "http_status": flt.http_status,
        "error_class": flt.error_class,
        "age": flt.age,
        "email": "(given)" if flt.email else None,
        "upto_id": flt.upto_id,
    }


def is_failed(lead: Lead) -> bool:
    """Whether the lead can be resynced."""
    return lead.hubspot_sync_status == SyncStatus.FAILED.value


@dataclass(frozen=True, slots=True)
class LeadView:
    """A lead as its console page shows it: every column, its history, a HubSpot link."""

    id: int
    status: str
    columns: list[tuple[str, object]]
    history: list[HistoryRow]
    hubspot_url: str | None

    @property
    def can_resync(self) -> bool:
        """Whether the lead is FAILED (the only status a resync takes)."""
        return self.status == SyncStatus.FAILED.value


def hubspot_contact_url(portal_id: int | None, hubspot_id: str | None) -> str | None:
    """The contact's page in HubSpot, when the portal id is configured and the lead synced."""
    if portal_id is None or not hubspot_id or not hubspot_id.isdigit():
        return None
    return f"https://app.hubspot.com/contacts/{portal_id}/record/0-1/{hubspot_id}"


async def lead_view(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, lead_id: int
) -> LeadView | None:
    """Every column of one lead and its newest history rows (oldest first), or None."""
    async with sessions() as session:
        lead = await leads.get_lead(session, lead_id=lead_id)
        if lead is None:
            return None
        rows = await history.for_lead(session, lead_id=lead_id, limit=HISTORY_SHOWN)
    columns = [(c.name, getattr(lead, c.key)) for c in Lead.__mapper__.columns]
    return LeadView(
        id=lead.id,
        status=lead.hubspot_sync_status,
        columns=columns,
        history=rows,
        hubspot_url=hubspot_contact_url(settings.hubspot_portal_id, lead.hubspot_id),
    )
