"""The operators' sync use cases: requeue FAILED leads, report the queue, gate and budget,
pause and resume the sync by hand."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.gate import Gate, PauseReason
from leadsync.logging import get_logger
from leadsync.store import queue
from leadsync.store.db import transaction, utcnow
from leadsync.usecases.schemas import (
    BudgetOut,
    GateOut,
    PauseResult,
    ResumeResult,
    ResyncRequest,
    SyncStatusOut,
)

log = get_logger(__name__)
# The longest note an operator may leave with a pause by hand.
MAX_PAUSE_NOTE = 200


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
    gate, budget = await gate_report(sessions, settings=settings, now=now)
    return SyncStatusOut(
        counts=stats.counts, oldest_due_seconds=stats.oldest_due_seconds, gate=gate, budget=budget
    )


async def gate_report(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, now: dt.datetime
) -> tuple[GateOut, BudgetOut]:
    """The pause switch and the request budget as they stand (one row read)."""
    gate = Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)
    state = await gate.state()
    return (
        GateOut(
            paused=state.paused(now),
            reason=state.pause_reason,
            detail=state.pause_detail,
            paused_until=state.paused_until,
            auth_failures=state.auth_failures,
        ),
        BudgetOut(
            limit=str(settings.rate_limit),
            seconds_between_requests=round(gate.spacing(state.reported_max), 4),
            next_slot_at=state.next_slot_at,
            reported_max=state.reported_max,
            reported_remaining=state.reported_remaining,
            daily_remaining=state.daily_remaining,
        ),
    )


def _gate(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Gate:
    return Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)


async def pause_sync(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, actor: str, note: str = ""
) -> PauseResult:
    """Hold every worker until someone resumes (maintenance); logged with who did it.

    `actor`: who asks, for the log (`cli`, or the console's session id; never a token).
    """
    note = " ".join(note.split())[:MAX_PAUSE_NOTE]
    detail = f"paused by hand ({actor})" + (f": {note}" if note else "")
    replaced = await _gate(sessions, settings).pause_by_hand(detail=detail)
    log.warning("sync.gate.paused_by_hand", actor=actor, note=note or None, replaced=replaced)
    return PauseResult(paused=True, replaced=replaced, detail=detail)


async def resume_sync(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, actor: str
) -> ResumeResult:
    """Lift a pause by hand, or a credential pause once the token is fixed; logged with who.

    A credential pause lifted by hand leaves the token on trial: the next write tests it, and a
    token still refused pauses everything again (with its backoff kept). A 429 or daily-limit
    pause is HubSpot's and is not lifted: the result says which pause stays and until when.
    """
    gate = _gate(sessions, settings)
    lifted = await gate.resume_by_hand()
    state = await gate.state()
    still = state.pause_reason if state.paused(utcnow()) else None
    if lifted is not None:
        log.warning("sync.gate.resumed_by_hand", actor=actor, lifted=lifted)
    else:
        log.info("sync.gate.resume_refused", actor=actor, paused=still)
    return ResumeResult(
        lifted=PauseReason(lifted) if lifted else None,
        still_paused=PauseReason(still) if still else None,
        paused_until=state.paused_until if still else None,
    )
