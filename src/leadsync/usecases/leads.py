"""Submit a lead from the website; read leads for operators."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.limits import HISTORY_SHOWN
from leadsync.store import history, leads
from leadsync.store.leads import IdempotencyConflict, LeadIntake, Stored
from leadsync.store.tables import Lead, SyncOutcome, SyncStatus
from leadsync.usecases.schemas import HistoryOut, LeadDetail, LeadIn, LeadWithHistory

__all__ = [
    "IdempotencyConflict",
    "Stored",
    "get_lead",
    "get_lead_with_history",
    "list_leads",
    "submit_lead",
]


async def submit_lead(intake: LeadIntake, *, data: LeadIn, idempotency_key: str | None) -> Stored:
    """Store the lead in one transaction (PENDING, announced to the workers on commit).

    With an idempotency key, the same key and body return the first lead (`created` False);
    the same key with another body raises IdempotencyConflict.
    """
    return await intake.insert(
        fields=data.model_dump(),
        idempotency_key=idempotency_key,
        fingerprint=data.fingerprint() if idempotency_key else None,
    )


async def get_lead(sessions: async_sessionmaker[AsyncSession], *, lead_id: int) -> Lead | None:
    """Return one lead with every column, or None."""
    async with sessions() as session:
        return await leads.get_lead(session, lead_id=lead_id)


async def get_lead_with_history(
    sessions: async_sessionmaker[AsyncSession], *, lead_id: int, limit: int = HISTORY_SHOWN
) -> LeadWithHistory | None:
    """Return one lead with every column and its newest `limit` history rows, or None."""
    async with sessions() as session:
        lead = await leads.get_lead(session, lead_id=lead_id)
        if lead is None:
            return None
        rows = await history.for_lead(session, lead_id=lead_id, limit=limit)
    return with_history(lead, rows)


def with_history(lead: Lead, rows: Sequence[history.HistoryRow]) -> LeadWithHistory:
    """Return a lead with every column and the given history rows."""
    return LeadWithHistory(
        **LeadDetail.model_validate(lead).model_dump(),
        history=[
            HistoryOut(
                attempted_at=row.attempted_at,
                attempt=row.attempt,
                outcome=SyncOutcome(row.outcome),
                http_status=row.http_status,
                error=row.error,
                duration_ms=row.duration_ms,
                worker_id=row.worker_id,
                hubspot_id=row.hubspot_id,
            )
            for row in rows
        ],
    )


async def list_leads(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: SyncStatus | None,
    limit: int,
    after: int | None,
) -> list[Lead]:
    """Return one page of leads, newest first, older than id `after`."""
    async with sessions() as session:
        return await leads.list_leads(session, status=status, limit=limit, after=after)
