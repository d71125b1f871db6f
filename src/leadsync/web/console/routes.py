"""The console's pages: server-rendered HTML and plain forms (docs/runbook.md, "The console").

Reads are GETs; every change is a POST carrying the session's CSRF token from a page of our own
origin, and a bulk change is confirmed first on a page stating how many leads it takes. A bad
input is a 4xx page saying what is wrong, never a 500.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from leadsync.emails import MAX_EMAIL
from leadsync.limits import MAX_ID, MAX_RESYNC_IDS
from leadsync.logging import get_logger
from leadsync.store.db import utcnow
from leadsync.store.failed import AGES, ERROR_CLASS_CHARS, NO_STATUS
from leadsync.store.tables import ErasureStatus
from leadsync.usecases import console, privacy
from leadsync.usecases.console import FailedFilter
from leadsync.usecases.privacy import EmailIn, ErasureKeyMissing
from leadsync.usecases.sync import MAX_PAUSE_NOTE, gate_report, pause_sync, resume_sync
from leadsync.web.console.security import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    LoginThrottle,
    Session,
    Signer,
    is_https,
    same_origin,
)
from leadsync.web.context import AppContext

log = get_logger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

STATIC: Final = {"console.css": "text/css", "console.js": "text/javascript"}
# Served with every console answer: no framing, no inline script, no caching of pages that
# show leads, and an Origin on every form POST (no-referrer would send `Origin: null`).
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FORM_TYPE: Final = "application/x-www-form-urlencoded"


# --- formatting for the templates -------------------------------------------------------------


def _number(value: int) -> str:
    return f"{value:,}"


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _since(value: dt.datetime | None, now: dt.datetime) -> str:
    return "-" if value is None else _age((now - value).total_seconds())


templates.env.filters.update(number=_number, when=_when, age=_age)
templates.env.globals.update(since=_since, ages=AGES, no_status=NO_STATUS)


def chart(values: list[int], *, width: int = 600, height: int = 120) -> dict[str, Any]:
    """Bars of the synced-per-minute chart as SVG coordinates (drawn by the template)."""
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bars = []
    for index, value in enumerate(values):
        bar_height = 0.0 if value == 0 else max(1.0, value / top * (height - 14))
        bars.append(
            {
                "x": round(index * step + 1, 1),
                "y": round(height - bar_height, 1),
                "w": round(max(step - 2, 1), 1),
                "h": round(bar_height, 1),
                "value": value,
                "minutes_ago": len(values) - 1 - index,
            }
        )
    return {"bars": bars, "width": width, "height": height, "top": top, "total": sum(values)}


# --- plumbing -----------------------------------------------------------------------------------


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _signer(request: Request) -> Signer | None:
    token = _ctx(request).settings.internal_token
    if token is None:
        return None
    state = request.app.state
    cached = getattr(state, "console_signer", None)
    if cached is None or cached[0] != token:
        cached = (token, Signer(token.get_secret_value()))
        state.console_signer = cached
    signer: Signer = cached[1]
    return signer


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "console_throttle", None)
    if throttle is None:
        throttle = request.app.state.console_throttle = LoginThrottle()
    return throttle


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    session: Session | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    """Render a page with the security headers, the session and its CSRF token."""
    signer = _signer(request)
    csrf = signer.csrf_token(session) if signer is not None and session is not None else ""
    response = templates.TemplateResponse(
        request,
        template,
        {"session": session, "csrf": csrf, **context},
        status_code=status_code,
        headers=dict(headers or {}),
    )
    return _secure(response)


def problem(
    request: Request,
    status_code: int,
    title: str,
    message: str,
    *,
    session: Session | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page explaining why a request was refused."""
    return render(
        request,
        "message.html",
        status_code=status_code,
        session=session,
        headers=headers,
        title=title,
        message=message,
    )


def _unavailable(request: Request) -> Response:
    return problem(
        request,
        503,
        "Console disabled",
        "The console logs in with the internal token, and none is configured. Set "
        "LEADSYNC_INTERNAL_TOKEN (16 characters or more) and restart leadsync serve.",
    )


def _redirect(url: str) -> Response:
    return _secure(RedirectResponse(url, status_code=303))


def _safe_next(target: str | None) -> str:
    # Only a path of the console itself: never another site, never a protocol-relative URL.
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


def _logged_in(request: Request) -> Session | Response:
    """The GET guard: the session, or a redirect to the login page (503 without a token)."""
    signer = _signer(request)
    if signer is None:
        return _unavailable(request)
    session = signer.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _redirect(f"/console/login?next={quote(target, safe='')}")
    return session


async def _form(request: Request) -> dict[str, list[str]] | None:
    """The urlencoded body of a form POST, or None when it is not one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return None
    try:
        text = (await request.body()).decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_RESYNC_IDS + 50)
    except (UnicodeDecodeError, ValueError):
        return None


def _one(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


async def _posted(request: Request) -> tuple[Session, dict[str, list[str]]] | Response:
    """The POST guard: same origin, a session and its CSRF token; otherwise 403, no change."""
    signer = _signer(request)
    if signer is None:
        return _unavailable(request)
    if not same_origin(request):
        log.warning("console.post_refused", reason="foreign origin", path=request.url.path)
        return problem(request, 403, "Refused", "This form was sent from another site.")
    session = signer.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return problem(request, 403, "Refused", "Your session has ended: log in again, then retry.")
    form = await _form(request)
    if form is None:
        return problem(request, 400, "Bad request", "Expected a form (urlencoded, UTF-8).")
    if not signer.csrf_ok(session, _one(form, "csrf_token")):
        log.warning("console.post_refused", reason="csrf token", path=request.url.path)
        return problem(
            request,
            403,
            "Refused",
            "This form is missing its security token, or it belongs to another session. "
            "Reload the page and try again.",
            session=session,
        )
    return session, form


async def _posted_for(
    request: Request, raw_id: str, *, what: str, missing: str
) -> tuple[Session, int] | Response:
    """The POST guard of a button on one row (`/<things>/{id}/<action>`): the session and the
    row's id; an id that is not one is a 404 titled `missing`."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    session, _form_values = posted
    try:
        number = _digits(raw_id, what)
    except BadInput as exc:
        return problem(request, 404, missing, str(exc), session=session)
    assert number is not None
    return session, number


class BadInput(ValueError):
    """A parameter the console cannot use; its message is shown on a 400 page."""


def _digits(value: str, name: str, *, low: int = 1, high: int = MAX_ID) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadInput(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _filter(values: Mapping[str, list[str]], *, allow_email: bool) -> FailedFilter:
    """The failed-queue filter from query parameters or form fields."""
    status_text = _one(values, "http_status").strip()
    if status_text == "none":
        status: int | None = NO_STATUS
    else:
        status = _digits(status_text, "HTTP status", low=100, high=599)
    error_class = _one(values, "error_class").strip() or None
    if error_class is not None and len(error_class) > ERROR_CLASS_CHARS:
        raise BadInput(f"error class must be at most {ERROR_CLASS_CHARS} characters")
    age = _one(values, "age").strip() or None
    if age is not None and age not in AGES:
        raise BadInput(f"age must be one of {', '.join(AGES)}")
    email = _one(values, "email").strip() or None
    if email is not None and not allow_email:
        raise BadInput(
            "search by email is sent in the form's body, never in the URL (access logs and "
            "proxies keep URLs): use the search form"
        )
    if email is not None and len(email) > 254:
        raise BadInput("the email searched for must be at most 254 characters")
    upto = _digits(_one(values, "upto"), "upto")
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


# --- login and logout -----------------------------------------------------------------------


def _login_page(
    request: Request, signer: Signer, *, status_code: int = 200, error: str | None = None
) -> Response:
    cookie, form_token = signer.new_login_form()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        title="Log in",
        form_token=form_token,
        next=_safe_next(request.query_params.get("next")),
        error=error,
        logged_out=request.query_params.get("logged_out") == "1",
    )
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        max_age=LOGIN_FORM_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The login form: the internal token, typed into a password field."""
    signer = _signer(request)
    if signer is None:
        return _unavailable(request)
    if signer.session(request.cookies.get(SESSION_COOKIE)) is not None:
        return _redirect(_safe_next(request.query_params.get("next")))
    return _login_page(request, signer)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token (throttled per client); start a session on success."""
    signer = _signer(request)
    if signer is None:
        return _unavailable(request)
    if not same_origin(request):
        return problem(request, 403, "Refused", "This form was sent from another site.")
    form = await _form(request)
    if form is None or not signer.login_form_ok(
        request.cookies.get(LOGIN_COOKIE), _one(form, "form_token")
    ):
        return problem(
            request,
            403,
            "Refused",
            "The login form has expired or was not sent by this console: reload it.",
        )
    client = _client(request)
    throttle = _throttle(request)
    wait = throttle.retry_after(client)
    if wait is not None:
        log.warning("console.login.throttled", client=client)
        return problem(
            request,
            429,
            "Too many attempts",
            f"Too many wrong tokens from this address: try again in {math.ceil(wait)} s.",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    if not signer.token_matches(_one(form, "token")):
        throttle.failed(client)
        log.warning("console.login.failed", client=client)
        return _login_page(request, signer, status_code=401, error="That is not the token.")
    throttle.succeeded(client)
    settings = _ctx(request).settings
    session, cookie = signer.new_session(lifetime_seconds=settings.console_session_seconds)
    log.info("console.login", session=session.id, client=client)
    response = _redirect(_safe_next(_one(form, "next")))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.console_session_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session: the cookie is deleted."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    session, _form_values = posted
    log.info("console.logout", session=session.id)
    response = _redirect("/console/login?logged_out=1")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


# --- pages --------------------------------------------------------------------------------------


@router.get("")
async def overview_page(request: Request) -> Response:
    """Leads by status, the backlog, synced per minute, the gate, the workers."""
    session = _logged_in(request)
    if isinstance(session, Response):
        return session
    ctx = _ctx(request)
    view = await console.overview_of(ctx.sessions, settings=ctx.settings)
    erasures = await privacy.erasure_counts(ctx.sessions)
    return render(
        request,
        "overview.html",
        session=session,
        title="Overview",
        page="overview",
        view=view,
        erasures=erasures,
        chart=chart(view.synced_per_minute),
    )


async def _failed(request: Request, values: Mapping[str, list[str]], session: Session) -> Response:
    try:
        flt = _filter(values, allow_email=request.method == "POST")
        before = _digits(_one(values, "before"), "before")
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    ctx = _ctx(request)
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
    session = _logged_in(request)
    if isinstance(session, Response):
        return session
    return await _failed(request, parse_qs(request.url.query, keep_blank_values=True), session)


@router.post("/failed")
async def failed_queue_search(request: Request) -> Response:
    """The same list, with the filter (and the email searched for) in the body."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    return await _failed(request, form, session)


@router.post("/failed/resync")
async def failed_resync(request: Request) -> Response:
    """Resync the selected leads, or all matching the filter: confirm with the count first."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    scope = _one(form, "scope")
    try:
        flt = _filter(form, allow_email=True)
        ids = [_digits(v, "lead id") for v in form.get("lead_id", [])]
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
    ctx = _ctx(request)
    if _one(form, "confirm") != "yes" or flt.upto_id is None:
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
    return _redirect(f"/console/failed?resynced={requeued}")


@router.get("/leads")
async def lead_lookup(request: Request) -> Response:
    """Go to a lead by its id (the search box in the header)."""
    session = _logged_in(request)
    if isinstance(session, Response):
        return session
    try:
        lead_id = _digits(request.query_params.get("id", ""), "lead id")
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    if lead_id is None:
        return problem(request, 400, "Bad request", "Give a lead id.", session=session)
    return _redirect(f"/console/leads/{lead_id}")


@router.get("/leads/{lead_id}")
async def lead_page(request: Request, lead_id: str) -> Response:
    """Every column of one lead, its sync history, a HubSpot link, a resync button."""
    session = _logged_in(request)
    if isinstance(session, Response):
        return session
    try:
        number = _digits(lead_id, "lead id")
    except BadInput as exc:
        return problem(request, 404, "No such lead", str(exc), session=session)
    ctx = _ctx(request)
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
    posted = await _posted_for(request, lead_id, what="lead id", missing="No such lead")
    if isinstance(posted, Response):
        return posted
    session, number = posted
    ctx = _ctx(request)
    requeued = await console.resync(
        ctx.sessions, flt=FailedFilter(), actor=session.actor, lead_ids=[number]
    )
    if requeued:
        ctx.wake_worker()
    return _redirect(f"/console/leads/{number}?resynced={1 if requeued else 0}")


@router.get("/pause")
async def pause_page(request: Request) -> Response:
    """The pause switch: its state, and the forms to pause or resume."""
    session = _logged_in(request)
    if isinstance(session, Response):
        return session
    ctx = _ctx(request)
    gate, budget = await gate_report(ctx.sessions, settings=ctx.settings, now=utcnow())
    done = {
        "paused": "The sync is paused: no worker calls HubSpot until it is resumed.",
        "resumed": "The sync is running again.",
        "not-paused": "The sync was not paused.",
        "hubspot": "This pause is HubSpot's (a rate limit): it ends by itself.",
    }.get(request.query_params.get("done", ""))
    return render(
        request,
        "pause.html",
        session=session,
        title="Pause controls",
        page="pause",
        gate=gate,
        budget=budget,
        flash=done,
        max_note=MAX_PAUSE_NOTE,
    )


@router.post("/pause")
async def pause_action(request: Request) -> Response:
    """Pause or resume the sync for every worker, after a confirmation."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    action = _one(form, "action")
    note = _one(form, "note")
    if action not in ("pause", "resume"):
        return problem(request, 400, "Bad request", "Choose pause or resume.", session=session)
    if len(note) > MAX_PAUSE_NOTE:
        return problem(
            request,
            400,
            "Bad request",
            f"The note must be at most {MAX_PAUSE_NOTE} characters.",
            session=session,
        )
    if _one(form, "confirm") != "yes":
        return render(
            request,
            "confirm_pause.html",
            session=session,
            title="Confirm",
            page="pause",
            action=action,
            note=note,
        )
    ctx = _ctx(request)
    if action == "pause":
        await pause_sync(ctx.sessions, settings=ctx.settings, actor=session.actor, note=note)
        return _redirect("/console/pause?done=paused")
    result = await resume_sync(ctx.sessions, settings=ctx.settings, actor=session.actor)
    if result.lifted is not None:
        ctx.wake_worker()
        return _redirect("/console/pause?done=resumed")
    return _redirect("/console/pause?done=" + ("hubspot" if result.still_paused else "not-paused"))


# --- erasures (docs/privacy.md) -----------------------------------------------------------------
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
        status = _erasure_status(_one(values, "status"))
        before = _digits(_one(values, "before"), "before")
    except BadInput as exc:
        return problem(request, 400, "Bad request", str(exc), session=session)
    ctx = _ctx(request)
    found = await privacy.list_erasures(
        ctx.sessions, status=status, limit=ERASURE_PAGE_SIZE, after=before
    )
    counts = await privacy.erasure_counts(ctx.sessions)
    flash = None
    requested = _one(values, "requested")
    retried = _one(values, "retried")
    if requested.isdigit():
        flash = (
            f"Erasure {requested} is requested: the address's leads are cancelled, and a worker "
            "deletes the HubSpot contact next."
            if _one(values, "new") == "1"
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
    session = _logged_in(request)
    if isinstance(session, Response):
        return session
    return await _erasures_page(request, session)


@router.post("/erasures/request")
async def erasure_request(request: Request) -> Response:
    """Request an erasure: a confirmation stating it cannot be undone, then the request."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    typed = _one(form, "email")
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
    ctx = _ctx(request)
    if ctx.settings.read_erasure_key() is None:
        return problem(request, 503, "Erasures disabled", str(ErasureKeyMissing()), session=session)
    if _one(form, "confirm") != "yes":
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
    return _redirect(
        f"/console/erasures?requested={accepted.id}&new={1 if accepted.created else 0}"
    )


@router.post("/erasures/{erasure_id}/retry")
async def erasure_retry(request: Request, erasure_id: str) -> Response:
    """Retry a FAILED erasure."""
    posted = await _posted_for(request, erasure_id, what="erasure id", missing="No such erasure")
    if isinstance(posted, Response):
        return posted
    session, number = posted
    ctx = _ctx(request)
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
    return _redirect(f"/console/erasures?retried={number}")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet and the small live-refresh script, from the package."""
    if name not in STATIC:
        return Response(status_code=404)
    body = resources.files("leadsync.web.console").joinpath("static", name).read_bytes()
    response = Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def query(**values: str) -> str:
    """A query string for links (never with an email)."""
    return urlencode({k: v for k, v in values.items() if v})


templates.env.globals.update(query=query)
