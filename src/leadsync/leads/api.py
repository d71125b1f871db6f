"""HTTP routes of leads: the public `POST /leads` and the operators' `/internal/leads`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response, status

from leadsync.auth import InternalAuth
from leadsync.context import AppContext, get_context
from leadsync.db import transaction
from leadsync.leads import service
from leadsync.leads.models import SyncStatus
from leadsync.leads.schemas import (
    IDEMPOTENCY_KEY_RE,
    ErrorResponse,
    LeadDetail,
    LeadIn,
    LeadOut,
    LeadPage,
)
from leadsync.limits import DEFAULT_PAGE_SIZE, MAX_ID, MAX_PAGE_SIZE
from leadsync.metrics import LEADS_CREATED
from leadsync.strictjson import StrictJSONRoute

public = APIRouter(tags=["leads"], route_class=StrictJSONRoute)
internal = APIRouter(
    prefix="/internal", tags=["internal"], dependencies=[InternalAuth], route_class=StrictJSONRoute
)

Ctx = Annotated[AppContext, Depends(get_context)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (409, "The Idempotency-Key was already used with a different body."),
        (413, "The body is larger than the limit (64 KiB by default)."),
        (422, "A field is missing or invalid; `errors` names each one."),
    )
}


@public.post(
    "/leads",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadOut,
    responses={
        200: {"model": LeadOut, "description": "A replay of an earlier submission."},
        **_ERRORS,
    },
    summary="Submit a lead from the website",
)
async def create_lead(
    data: LeadIn,
    response: Response,
    ctx: Ctx,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Makes a double-submitted form safe: the same key and body return "
            "the first lead (200); the same key with another body answers 409.",
        ),
    ] = None,
) -> LeadOut:
    """Store the lead in one transaction; it syncs to HubSpot after commit."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
        )
    try:
        async with transaction(ctx.sessions) as session:
            stored = await service.create_lead(session, data=data, idempotency_key=idempotency_key)
    except service.IdempotencyConflict:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "this Idempotency-Key was already used with a different body",
        ) from None
    if stored.created:
        LEADS_CREATED.inc()
        ctx.wake_worker()
    else:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/internal/leads/{stored.lead.id}"
    return LeadOut.model_validate(stored.lead)


@internal.get("/leads", response_model=LeadPage, summary="List leads, newest first")
async def list_leads(
    ctx: Ctx,
    status_: Annotated[
        SyncStatus | None, Query(alias="status", description="Only leads in this sync status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    after: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The `next_after` of the previous page.")
    ] = None,
) -> LeadPage:
    """Return one page of leads with every sync column (keyset pagination)."""
    async with ctx.sessions() as session:
        leads = await service.list_leads(session, status=status_, limit=limit, after=after)
    items = [LeadDetail.model_validate(lead) for lead in leads]
    return LeadPage(items=items, next_after=items[-1].id if len(items) == limit else None)


@internal.get("/leads/{lead_id}", response_model=LeadDetail, summary="One lead, all sync columns")
async def get_lead(ctx: Ctx, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> LeadDetail:
    """Return one lead with every sync column."""
    async with ctx.sessions() as session:
        lead = await service.get_lead(session, lead_id=lead_id)
    if lead is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead with id {lead_id}")
    return LeadDetail.model_validate(lead)
