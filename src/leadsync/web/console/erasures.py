"""Erasure requests (docs/privacy.md): the list by status, the form to request one (with a
confirmation), the retry of a FAILED one."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from leadsync.emails import MAX_EMAIL
from leadsync.logging import get_logger
from leadsync.store.tables import ErasureStatus
from leadsync.usecases import privacy
from leadsync.usecases.privacy import EmailIn, ErasureKeyMissing
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

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

# The address an operator types is sent in a POST body and shown again only in the form it is
# typed into (the confirmation re-shows that form); never in a URL, a list, a flash or a log.

ERASURE_PAGE_SIZE: Final = 50


def _erasure_status(value: str) -> ErasureStatus | None:
    value = value.strip()
    if not value:
        return None
    try:
        return ErasureStatus(value)
    except ValueError:
        raise BadInput(
            f"status must be one of {', '.join(s.value for s in ErasureStatus)}"
        ) from None


async def _erasures_page(
    request: Request,
    session: Session,
    *,
    status_code: int = 200,
    email: str = "",
    email_error: str | None = None,
) -> Response:
    values = parse_qs(request.url.query, keep_blank_values=True)
    try:
        status = _erasure_status(one(values, "status"))
        before = digits(one(values, "before"), "before")
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    ctx = ctx_of(request)
    found = await privacy.list_erasures(
        ctx.sessions, status=status, limit=ERASURE_PAGE_SIZE, after=before
    )
    counts = await privacy.erasure_counts(ctx.sessions)
    flash = None
    requested = one(values, "requested")
    retried = one(values, "retried")
    if requested.isdigit():
        flash = (
            f"Erasure {requested} is requested: the address's leads are cancelled, and a worker "
            "deletes the HubSpot contact next."
            if one(values, "new") == "1"
            else f"This address already had an open erasure ({requested}): it was reused, and "
            "any new lead of the address is cancelled too."
        )
    elif retried.isdigit():
        flash = f"Erasure {retried} is queued again: a worker retries the GDPR delete."
    return render(
        request,
        "erasures.html",
        status_code=status_code,
        session=session,
        title="Erasures",
        page="erasures",
        found=found,
        counts=counts,
        status=status.value if status else "",
        statuses=[s.value for s in ErasureStatus],
        before=before,
        has_key=ctx.settings.read_erasure_key() is not None,
        email=email,
        email_error=email_error,
        max_email=MAX_EMAIL,
        flash=flash,
    )


@router.get("/erasures")
async def erasures_page(request: Request) -> Response:
    """Erasure requests newest first (filtered by status), the form to request one."""
    session = logged_in(request)
    if isinstance(session, Response):
        return session
    return await _erasures_page(request, session)


@router.post("/erasures/request")
async def erasure_request(request: Request) -> Response:
    """Request an erasure: a confirmation stating it cannot be undone, then the request."""
    posted = await posted_form(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    typed = one(form, "email")
    try:
        email = EmailIn(email=typed).email
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = {
            "string_too_short": "is empty",
            "string_too_long": f"is longer than {MAX_EMAIL} characters",
        }.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
        return await _erasures_page(
            request,
            session,
            status_code=400,
            email=typed[: MAX_EMAIL * 2],
            email_error=f"The address {reason}.",
        )
    ctx = ctx_of(request)
    if ctx.settings.read_erasure_key() is None:
        return problem(request, 503, "Erasures disabled", str(ErasureKeyMissing()), session=session)
    if one(form, "confirm") != "yes":
        found = await privacy.lookup_subject(ctx.sessions, settings=ctx.settings, email=email)
        stored = sum(1 for lead in found.leads if lead.email is not None)
        return render(
            request,
            "confirm_erasure.html",
            session=session,
            title="Confirm the erasure",
            page="erasures",
            email=typed,
            stored=stored,
            max_email=MAX_EMAIL,
        )
    try:
        accepted = await privacy.request_erasure(
            ctx.sessions,
            fence=ctx.fence,
            settings=ctx.settings,
            email=email,
            requested_by="console",
        )
    except ErasureKeyMissing as exc:
        return problem(request, 503, "Erasures disabled", str(exc), session=session)
    ctx.wake_worker()
    log.info(
        "console.erasure_requested",
        session=session.id,
        erasure=accepted.id,
        created=accepted.created,
        cancelled=accepted.leads_cancelled,
    )
    return redirect(f"/console/erasures?requested={accepted.id}&new={1 if accepted.created else 0}")


@router.post("/erasures/{erasure_id}/retry")
async def erasure_retry(request: Request, erasure_id: str) -> Response:
    """Retry a FAILED erasure."""
    posted = await posted_for(request, erasure_id, what="erasure id", missing="No such erasure")
    if isinstance(posted, Response):
        return posted
    session, number = posted
    ctx = ctx_of(request)
    try:
        retried = await privacy.retry_erasure(ctx.sessions, erasure_id=number)
    except privacy.NotFailed as exc:
        return problem(
            request,
            409,
            "Not retried",
            f"Erasure {number} is {exc.erasure.status.value}, not FAILED: it is on its way "
            "(or done) and needs no retry.",
            session=session,
        )
    if retried is None:
        return problem(
            request, 404, "No such erasure", f"There is no erasure {number}.", session=session
        )
    ctx.wake_worker()
    log.info("console.erasure_retried", session=session.id, erasure=number)
    return redirect(f"/console/erasures?retried={number}")
