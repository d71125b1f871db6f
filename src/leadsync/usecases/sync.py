"""The operators' sync use cases: requeue FAILED leads, report the queue, gate and budget."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.gate import Gate
from leadsync.store import queue
from leadsync.store.db import transaction, utcnow
from leadsync.usecases.schemas import (
    BudgetOut,
    GateOut,
    ResyncRequest,
    SyncStatusOut,
)


async def resync_failed(
    sessions: async_sessionmaker[AsyncSession], *, request: ResyncRequest
) -> int:
    """Requeue matching FAILED leads (attempts reset, last error kept until the next outcome)."""
    async with transaction(sessions) as session:
        return await queue.requeue_failed(
            session,
            now=utcnow(),
            lead_ids=request.lead_ids,
            older_than_seconds=request.older_than_seconds,
            limit=request.limit,
        )


async def sync_status(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings
) -> SyncStatusOut:
    """Collect counts per status, the oldest due lead's age, the gate and the budget."""
    now = utcnow()
    async with sessions() as session:
        stats = await queue.stats(session, now=now)
    gate = Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)
    state = await gate.state()
    return SyncStatusOut(
        counts=stats.counts,
        oldest_due_seconds=stats.oldest_due_seconds,
        gate=GateOut(
            paused=state.paused(now),
            reason=state.pause_reason,
            detail=state.pause_detail,
            paused_until=state.paused_until,
            auth_failures=state.auth_failures,
        ),
        budget=BudgetOut(
            limit=str(settings.rate_limit),
            seconds_between_requests=round(gate.spacing(state.reported_max), 4),
            next_slot_at=state.next_slot_at,
            reported_max=state.reported_max,
            reported_remaining=state.reported_remaining,
            daily_remaining=state.daily_remaining,
        ),
    )
