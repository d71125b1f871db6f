"""The failed queue (filter, select, resync after a confirmation with the count) and one
lead's page (every column, its sync history, a resync button)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response

from leadsync.limits import MAX_RESYNC_IDS
from leadsync.store.failed import AGES, ERROR_CLASS_CHARS, NO_STATUS
from leadsync.usecases import console
from leadsync.usecases.console import FailedFilter
from leadsync.web.console.common import (
    BadInput,
    ctx_of,
    digits,
    logged_in,
    one,
    posted_for,
    posted_form,
    problem,
    redirect,
    render,
)
from leadsync.web.console.security import Session

router = APIRouter(include_in_schema=False)


def _filter(values: Mapping[str, list[str]], *, allow_email: bool) -> FailedFilter:
    """The failed-queue filter from query parameters or form fields."""
    status_text = one(values, "http_status").strip()
    if status_text == "none":
        status: int | None = NO_STATUS
    else:
        status = digits(status_text, "HTTP status", low=100, high=599)
    error_class = one(values, "error_class").strip() or None
    if error_class is not None and len(error_class) > ERROR_CLASS_CHARS:
        raise BadInput(f"error class must be at most {ERROR_CLASS_CHARS} characters")
    age = one(values, "age").strip() or None
    if age is not None and age not in AGES:
        raise BadInput(f"age must be one of {', '.join(AGES)}")
    email = one(values, "email").strip() or None
    if email is not None and not allow_email:
        raise BadInput(
            "search by email is sent in the form's body, never in the URL (access logs and "
            "proxies keep URLs): use the search form"
        )
    if email is not None and len(email) > 254:
        raise BadInput("the email searched for must be at most 254 characters")
    upto = digits(one(values, "upto"), "upto")
    return FailedFilter(status, error_class, age, email, upto)


def _filter_fields(flt: FailedFilter) -> dict[str, str]:
    """The filter as form fields (hidden inputs that carry it to the next request)."""
    status = "" if flt.http_status is None else str(flt.http_status)
    return {
        "http_status": "none" if flt.http_status == NO_STATUS else status,
        "error_class": flt.error_class or "",
        "age": flt.age or "",
        "email": flt.email or "",
    }


def _describe(flt: FailedFilter) -> str:
    parts = []
    if flt.http_status == NO_STATUS:
        parts.append("no HTTP answer")
    elif flt.http_status is not None:
        parts.append(f"HTTP status {flt.http_status}")
    if flt.error_class:
        parts.append(f"error class {flt.error_class}")
    if flt.age:
        parts.append(f"failed {AGES[flt.age][0]}")
    if flt.email:
        parts.append(f"email containing “{flt.email}”")
    return ", ".join(parts) or "every FAILED lead"


async def _failed(request: Request, values: Mapping[str, list[str]], session: Session) -> Response:
    try:
        flt = _filter(values, allow_email=request.method == "POST")
        before = digits(one(values, "before"), "before")
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    ctx = ctx_of(request)
    found = await console.failed_page(ctx.sessions, flt=flt, before=before)
    resynced = request.query_params.get("resynced", "")
    return render(
        request,
        "failed.html",
        session=session,
        title="Failed queue",
        page="failed",
        flt=flt,
        fields=_filter_fields(flt),
        described=_describe(flt),
        found=found,
        before=before,
        flash=f"{resynced} lead(s) requeued." if resynced.isdigit() else None,
    )


@router.get("/failed")
async def failed_queue(request: Request) -> Response:
    """FAILED leads newest first, filtered by the query's status, error class and age."""
    session = logged_in(request)
    if isinstance(session, Response):
        return session
    return await _failed(request, parse_qs(request.url.query, keep_blank_values=True), session)


@router.post("/failed")
async def failed_queue_search(request: Request) -> Response:
    """The same list, with the filter (and the email searched for) in the body."""
    posted = await posted_form(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    return await _failed(request, form, session)


@router.post("/failed/resync")
async def failed_resync(request: Request) -> Response:
    """Resync the selected leads, or all matching the filter: confirm with the count first."""
    posted = await posted_form(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    scope = one(form, "scope")
    try:
        flt = _filter(form, allow_email=True)
        ids = [digits(v, "lead id") for v in form.get("lead_id", [])]
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    selected = sorted({i for i in ids if i is not None})
    if scope not in ("selected", "matching"):
        return problem(request, 400, "Bad request", "Choose what to resync.", session=session)
    if scope == "selected" and not selected:
        return problem(
            request, 400, "Nothing selected", "Tick the leads to resync first.", session=session
        )
    if len(selected) > MAX_RESYNC_IDS:
        return problem(
            request,
            400,
            "Too many",
            f"At most {MAX_RESYNC_IDS:,} leads can be selected at once.",
            session=session,
        )
    chosen = selected if scope == "selected" else []
    ctx = ctx_of(request)
    if one(form, "confirm") != "yes" or flt.upto_id is None:
        count, upto = await console.count_failed(ctx.sessions, flt=flt, lead_ids=chosen)
        return render(
            request,
            "confirm_resync.html",
            session=session,
            title="Confirm the resync",
            page="failed",
            count=count,
            upto=upto,
            scope=scope,
            selected=chosen,
            fields=_filter_fields(flt),
            described="the selected leads" if chosen else _describe(flt),
        )
    requeued = await console.resync(ctx.sessions, flt=flt, actor=session.actor, lead_ids=chosen)
    if requeued:
        ctx.wake_worker()
    return redirect(f"/console/failed?resynced={requeued}")


@router.get("/leads")
async def lead_lookup(request: Request) -> Response:
    """Go to a lead by its id (the search box in the header)."""
    session = logged_in(request)
    if isinstance(session, Response):
        return session
    try:
        lead_id = digits(request.query_params.get("id", ""), "lead id")
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    if lead_id is None:
        return problem(request, 400, "Bad request", "Give a lead id.", session=session)
    return redirect(f"/console/leads/{lead_id}")


@router.get("/leads/{lead_id}")
async def lead_page(request: Request, lead_id: str) -> Response:
    """Every column of one lead, its sync history, a HubSpot link, a resync button."""
    session = logged_in(request)
    if isinstance(session, Response):
        return session
    try:
        number = digits(lead_id, "lead id")
    except BadInput as exc:
        return problem(request, 404, "No such lead", str(exc), session=session)
    ctx = ctx_of(request)
    view = None
    if number is not None:
        view = await console.lead_view(ctx.sessions, settings=ctx.settings, lead_id=number)
    if view is None:
        return problem(
            request, 404, "No such lead", f"There is no lead {lead_id}.", session=session
        )
    resynced = request.query_params.get("resynced")
    return render(
        request,
        "lead.html",
        session=session,
        title=f"Lead {view.id}",
        page="lead",
        lead=view,
        flash={"1": "The lead is back in the queue.", "0": "The lead was not FAILED."}.get(
            resynced or ""
        ),
    )


@router.post("/leads/{lead_id}/resync")
async def lead_resync(request: Request, lead_id: str) -> Response:
    """Requeue one FAILED lead."""
    posted = await posted_for(request, lead_id, what="lead id", missing="No such lead")
    if isinstance(posted, Response):
        return posted
    session, number = posted
    ctx = ctx_of(request)
    requeued = await console.resync(
        ctx.sessions, flt=FailedFilter(), actor=session.actor, lead_ids=[number]
    )
    if requeued:
        ctx.wake_worker()
    return redirect(f"/console/leads/{number}?resynced={1 if requeued else 0}")
