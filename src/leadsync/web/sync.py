"""Operators' sync routes: manual resync of FAILED leads and the sync status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from leadsync.usecases import sync
from leadsync.usecases.schemas import (
    EVERY_FAILED_LEAD,
    ResyncRequest,
    ResyncResponse,
    SyncStatusOut,
)
from leadsync.web.auth import InternalAuth
from leadsync.web.context import Ctx
from leadsync.web.responses import responses
from leadsync.web.strictjson import StrictJSONRoute

router = APIRouter(
    prefix="/internal", tags=["sync"], dependencies=[InternalAuth], route_class=StrictJSONRoute
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
    ] = EVERY_FAILED_LEAD,
) -> ResyncResponse:
    """Put FAILED leads back in the queue; with no body, every FAILED lead."""
    requeued = await sync.resync_failed(ctx.sessions, request=request)
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
    return await sync.sync_status(ctx.sessions, settings=ctx.settings)
