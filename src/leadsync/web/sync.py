"""Operators' sync routes: manual resync of FAILED leads and the sync status."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.gate import Gate
from leadsync.limits import MAX_ID, MAX_OLDER_THAN_SECONDS, MAX_RESYNC_IDS, MAX_RESYNC_LIMIT
from leadsync.store import queue
from leadsync.store.db import transaction, utcnow
from leadsync.web.auth import InternalAuth
from leadsync.web.context import AppContext, get_context
from leadsync.web.responses import responses
from leadsync.web.strictjson import StrictJSONRoute

router = APIRouter(
    prefix="/internal", tags=["sync"], dependencies=[InternalAuth], route_class=StrictJSONRoute
)
Ctx = Annotated[AppContext, Depends(get_context)]


class ResyncRequest(BaseModel):
    """Which FAILED leads to requeue; every filter is optional and they combine with AND.

    Strict: an operator's typo must not act on real rows, so `true` is not lead 1 and `"2"` is
    not lead 2; numbers outside their range are refused rather than clamped.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    lead_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
        Field(
            max_length=MAX_RESYNC_IDS,
            description=f"Only these leads (at most {MAX_RESYNC_IDS:,} ids, each 1 to 2^63-1).",
        ),
    ] = None
    older_than_seconds: Annotated[
        float | None,
        Field(
            ge=0,
            le=MAX_OLDER_THAN_SECONDS,
            allow_inf_nan=False,
            description="Only leads whose last attempt is at least this many seconds old "
            f"(0 to {MAX_OLDER_THAN_SECONDS:,}, i.e. 100 years).",
        ),
    ] = None
    limit: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_RESYNC_LIMIT,
            description=f"Requeue at most this many, lowest ids first (1 to {MAX_RESYNC_LIMIT:,}).",
        ),
    ] = None


_EVERY_FAILED_LEAD = ResyncRequest()


class ResyncResponse(BaseModel):
    """How many FAILED leads went back to PENDING."""

    requeued: int


class GateOut(BaseModel):
    """The shared pause switch."""

    paused: bool
    reason: str | None
    detail: str | None
    paused_until: dt.datetime | None
    auth_failures: int


class BudgetOut(BaseModel):
    """The shared HubSpot request budget and what HubSpot last reported."""

    limit: str
    seconds_between_requests: float
    next_slot_at: dt.datetime
    reported_max: int | None
    reported_remaining: int | None
    daily_remaining: int | None


class SyncStatusOut(BaseModel):
    """The queue at a glance."""

    counts: dict[str, int]
    oldest_due_seconds: float | None
    gate: GateOut
    budget: BudgetOut


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


@router.post(
    "/leads/resync-failed",
    operation_id="resyncFailed",
    response_model=ResyncResponse,
    responses=responses(401, 413, 422, 431, 503),
    summary="Requeue FAILED leads",
)
async def resync_failed_route(
    ctx: Ctx,
    # Not `ResyncRequest | None`: a nullable optional body makes generated clients (e.g.
    # openapi-python-client) send their "unset" marker as JSON. No body is `{}`.
    request: Annotated[
        ResyncRequest,
        Body(description="Filters; no body (or `{}`) requeues every FAILED lead."),
    ] = _EVERY_FAILED_LEAD,
) -> ResyncResponse:
    """Put FAILED leads back in the queue; with no body, every FAILED lead."""
    requeued = await resync_failed(ctx.sessions, request=request)
    if requeued:
        ctx.wake_worker()
    return ResyncResponse(requeued=requeued)


@router.get(
    "/sync/status",
    operation_id="getSyncStatus",
    response_model=SyncStatusOut,
    responses=responses(401, 431, 503),
    summary="Queue, gate and budget",
)
async def sync_status_route(ctx: Ctx) -> SyncStatusOut:
    """Return counts per status, the oldest due lead's age, the gate and the budget."""
    return await sync_status(ctx.sessions, settings=ctx.settings)
