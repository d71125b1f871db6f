"""HTTP routes of leads: the public `POST /leads` and the operators' `/internal/leads`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BeforeValidator

from leadsync.limits import DEFAULT_PAGE_SIZE, MAX_ID, MAX_PAGE_SIZE
from leadsync.metrics import LEADS_CREATED
from leadsync.store.tables import SyncStatus
from leadsync.usecases import leads
from leadsync.usecases.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    IDEMPOTENCY_KEY_RE,
    LeadDetail,
    LeadIn,
    LeadOut,
    LeadPage,
    LeadWithHistory,
)
from leadsync.web.auth import InternalAuth
from leadsync.web.context import AppContext, Ctx
from leadsync.web.responses import responses
from leadsync.web.strictjson import StrictJSONRoute

public = APIRouter(tags=["leads"], route_class=StrictJSONRoute)
internal = APIRouter(
    prefix="/internal", tags=["internal"], dependencies=[InternalAuth], route_class=StrictJSONRoute
)


IDEMPOTENCY_KEY = "Idempotency-Key"
_LOCATION = {
    "Location": {
        "description": "`/internal/leads/{id}`: where operators read the lead.",
        "schema": {"type": "string"},
    }
}
_IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "description": "Makes a double-submitted form safe: the same key and body return the first "
    "lead (200); the same key with another body answers 409. 1 to 255 printable ASCII "
    "characters without spaces, sent at most once; otherwise 400.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}


def _digits_only(value: object) -> object:
    # Query and path values arrive as text; int() would also take "+1", " 1", "1_000" or "1.0".
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


Digits = BeforeValidator(_digits_only)


def idempotency_key(request: Request) -> str | None:
    """Return the request's Idempotency-Key, or None; 400 when invalid or repeated."""
    keys = request.headers.getlist(IDEMPOTENCY_KEY)
    if not keys:
        return None
    if len(keys) > 1:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Idempotency-Key was sent {len(keys)} times; send it once",
        )
    if not IDEMPOTENCY_KEY_RE.match(keys[0]):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
        )
    return keys[0]


@public.post(
    "/leads",
    operation_id="createLead",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadOut,
    responses={
        201: {"description": "The lead is stored.", "headers": _LOCATION},
        200: {
            "model": LeadOut,
            "description": "A replay: this Idempotency-Key and body were submitted before; "
            "the first lead is returned.",
            "headers": _LOCATION,
        },
        **responses(400, 409, 413, 422, 431, 503),
    },
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY_PARAMETER]},
    summary="Submit a lead from the website",
)
async def create_lead(data: LeadIn, request: Request) -> Response:
    """Store the lead in one transaction; it syncs to HubSpot after commit."""
    # The hot path: the context is read directly rather than through a dependency, and the
    # answer is serialised once here rather than validated again against response_model.
    ctx: AppContext = request.app.state.ctx
    key = idempotency_key(request)
    try:
        stored = await leads.submit_lead(ctx.intake, data=data, idempotency_key=key)
    except leads.IdempotencyConflict as conflict:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "this Idempotency-Key belongs to a lead whose personal data was erased; "
            "submit again with a new key"
            if conflict.erased
            else "this Idempotency-Key was already used with a different body",
        ) from None
    if stored.created:
        LEADS_CREATED.inc()
        ctx.wake_worker()
    return Response(
        LeadOut.model_validate(stored.row).model_dump_json(),
        status_code=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK,
        headers={"Location": f"/internal/leads/{stored.id}"},
        media_type="application/json",
    )


@internal.get(
    "/leads",
    operation_id="listLeads",
    response_model=LeadPage,
    responses=responses(401, 422, 431, 503),
    summary="List leads, newest first",
)
async def list_leads(
    ctx: Ctx,
    status_: Annotated[
        SyncStatus | None, Query(alias="status", description="Only leads in this sync status.")
    ] = None,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1 to {MAX_PAGE_SIZE}."),
        Digits,
    ] = DEFAULT_PAGE_SIZE,
    after: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="The `next_after` of the previous page (1 to 2^63-1).",
        ),
        Digits,
    ] = None,
) -> LeadPage:
    """Return one page of leads with every sync column (keyset pagination)."""
    page = await leads.list_leads(ctx.sessions, status=status_, limit=limit, after=after)
    items = [LeadDetail.model_validate(lead) for lead in page]
    return LeadPage(items=items, next_after=items[-1].id if len(items) == limit else None)


# `:int` makes the route match digits only, so `/internal/leads/resync-failed` is never taken
# for a lead id: a GET there is a 405 (Allow: POST), not a 422 about `lead_id`.
@internal.get(
    "/leads/{lead_id:int}",
    operation_id="getLead",
    response_model=LeadWithHistory,
    responses=responses(401, 404, 422, 431, 503),
    summary="One lead, all sync columns and its sync history",
)
async def get_lead(
    ctx: Ctx,
    lead_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The lead's id, 1 to 2^63-1.")],
) -> LeadWithHistory:
    """Return one lead with every sync column and its newest HubSpot outcomes."""
    lead = await leads.get_lead_with_history(ctx.sessions, lead_id=lead_id)
    if lead is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead with id {lead_id}")
    return lead
