"""Operators' privacy routes: erasure requests (art. 17 GDPR) and access lookups (art. 15).

An address travels only in a request body, never in a URL (access logs and proxies keep URLs):
the lookup is a POST, and erasures are named by their id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from leadsync.limits import MAX_ID, MAX_PAGE_SIZE
from leadsync.store.tables import ErasureStatus
from leadsync.usecases import privacy
from leadsync.usecases.privacy import (
    EmailIn,
    ErasureAccepted,
    ErasureOut,
    ErasurePage,
    SubjectOut,
)
from leadsync.web.auth import InternalAuth
from leadsync.web.context import Ctx
from leadsync.web.leads import Digits
from leadsync.web.responses import ErrorResponse, responses
from leadsync.web.strictjson import StrictJSONRoute

router = APIRouter(
    prefix="/internal", tags=["privacy"], dependencies=[InternalAuth], route_class=StrictJSONRoute
)

DEFAULT_ERASURE_PAGE = 50

_LOCATION = {
    "Location": {
        "description": "`/internal/erasures/{id}`: where the erasure's progress is read.",
        "schema": {"type": "string"},
    }
}
_NOT_FOUND = "No erasure with this id (also any path that is not a route)."
_UNAVAILABLE = (
    "The database is unavailable (retry later), or internal routes are disabled until "
    "LEADSYNC_INTERNAL_TOKEN is set."
)


def _declared(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses(*codes)`, with this router's own wording for some (`_404="..."`)."""
    declared = responses(*codes)
    for key, description in descriptions.items():
        code = int(key.removeprefix("_"))
        declared[code] = {"model": ErrorResponse, "description": description}
    return declared


@router.post(
    "/erasures",
    operation_id="requestErasure",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAccepted,
    responses={
        202: {
            "description": "The address's leads are cancelled (never sent again) and the "
            "erasure is queued for HubSpot's GDPR delete; `created` is false when an open "
            "erasure of the address was reused.",
            "headers": _LOCATION,
        },
        **_declared(
            401,
            413,
            422,
            431,
            503,
            _503=f"{_UNAVAILABLE} Also: no LEADSYNC_ERASURE_KEY is configured, so an erasure "
            "cannot keep the keyed hash that stands for the address.",
        ),
    },
    summary="Erase one person's data (art. 17 GDPR)",
)
async def request_erasure_route(ctx: Ctx, data: EmailIn, response: Response) -> ErasureAccepted:
    """Cancel every lead of the address at once, then delete the HubSpot contact and scrub
    the rows in the background. Irreversible. The address goes in the body, never the URL."""
    try:
        accepted = await privacy.request_erasure(
            ctx.sessions,
            fence=ctx.fence,
            settings=ctx.settings,
            email=data.email,
            requested_by="api",
        )
    except privacy.ErasureKeyMissing as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    ctx.wake_worker()
    response.headers["Location"] = f"/internal/erasures/{accepted.id}"
    return accepted


@router.get(
    "/erasures",
    operation_id="listErasures",
    response_model=ErasurePage,
    responses=_declared(401, 422, 431, 503),
    summary="List erasures, newest first",
)
async def list_erasures_route(
    ctx: Ctx,
    status_: Annotated[
        ErasureStatus | None,
        Query(alias="status", description="Only erasures in this status."),
    ] = None,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1 to {MAX_PAGE_SIZE}."),
        Digits,
    ] = DEFAULT_ERASURE_PAGE,
    after: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="The `next_after` of the previous page (1 to 2^63-1)."),
        Digits,
    ] = None,
) -> ErasurePage:
    """Return one page of erasures (keyset pagination); addresses are never shown."""
    return await privacy.list_erasures(ctx.sessions, status=status_, limit=limit, after=after)


# Two routes share /internal/erasures (GET and POST). Starlette answers another method there
# from the first route alone (`Allow: POST`); this one names both, like every other 405.
_ERASURES_METHODS = "GET, POST"
methods = APIRouter(prefix="/internal", include_in_schema=False)


@methods.api_route("/erasures", methods=["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
async def erasures_other_methods() -> None:
    """405 with the methods /internal/erasures has."""
    raise HTTPException(
        status.HTTP_405_METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        headers={"Allow": _ERASURES_METHODS},
    )


ErasureId = Annotated[int, Path(ge=1, le=MAX_ID, description="The erasure's id, 1 to 2^63-1.")]


# `:int`, as for leads: digits only, so no other word after /erasures/ is read as an id.
@router.get(
    "/erasures/{erasure_id:int}",
    operation_id="getErasure",
    response_model=ErasureOut,
    responses=_declared(401, 404, 422, 431, 503, _404=_NOT_FOUND),
    summary="One erasure and how far it got",
)
async def get_erasure_route(ctx: Ctx, erasure_id: ErasureId) -> ErasureOut:
    """Return one erasure: its status, HubSpot's last answer, the leads it cancelled."""
    erasure = await privacy.get_erasure(ctx.sessions, erasure_id=erasure_id)
    if erasure is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no erasure with id {erasure_id}")
    return erasure


@router.post(
    "/erasures/{erasure_id:int}/retry",
    operation_id="retryErasure",
    response_model=ErasureOut,
    responses=_declared(
        401,
        404,
        409,
        422,
        431,
        503,
        _404=_NOT_FOUND,
        _409="The erasure is not FAILED: it is on its way (or done) and needs no retry.",
    ),
    summary="Retry a FAILED erasure",
)
async def retry_erasure_route(ctx: Ctx, erasure_id: ErasureId) -> ErasureOut:
    """Arm a FAILED erasure again (attempts reset): a worker sends the GDPR delete anew."""
    try:
        erasure = await privacy.retry_erasure(ctx.sessions, erasure_id=erasure_id)
    except privacy.NotFailed as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"{exc}: only a FAILED erasure can be retried"
        ) from None
    if erasure is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no erasure with id {erasure_id}")
    ctx.wake_worker()
    return erasure


@router.post(
    "/subjects/lookup",
    operation_id="lookupSubject",
    response_model=SubjectOut,
    responses=_declared(401, 413, 422, 431, 503),
    summary="Everything stored about one address (art. 15 GDPR)",
)
async def lookup_subject_route(ctx: Ctx, data: EmailIn) -> SubjectOut:
    """Return every lead of the address (any casing) with its sync history, and its erasures.

    A POST so that the address stays out of the URL; it reads and changes nothing.
    """
    return await privacy.lookup_subject(ctx.sessions, settings=ctx.settings, email=data.email)
