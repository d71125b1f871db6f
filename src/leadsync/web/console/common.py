"""The console's plumbing: templates and their filters, security headers, the GET and POST
guards every page uses, and the parsing of ids (docs/runbook.md, "The console").

Reads are GETs; every change is a POST carrying the session's CSRF token from a page of our own
origin (`posted_form`). A bad input is a 4xx page saying what is wrong, never a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from leadsync.limits import MAX_ID, MAX_RESYNC_IDS
from leadsync.logging import get_logger
from leadsync.store.failed import AGES, NO_STATUS
from leadsync.web.console.security import SESSION_COOKIE, Session, Signer, same_origin
from leadsync.web.context import AppContext

log = get_logger(__name__)

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

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


# --- plumbing -----------------------------------------------------------------------------------


def ctx_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def signer_of(request: Request) -> Signer | None:
    token = ctx_of(request).settings.internal_token
    if token is None:
        return None
    state = request.app.state
    cached = getattr(state, "console_signer", None)
    if cached is None or cached[0] != token:
        cached = (token, Signer(token.get_secret_value()))
        state.console_signer = cached
    signer: Signer = cached[1]
    return signer


def secure(response: Response) -> Response:
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
    signer = signer_of(request)
    csrf = signer.csrf_token(session) if signer is not None and session is not None else ""
    response = templates.TemplateResponse(
        request,
        template,
        {"session": session, "csrf": csrf, **context},
        status_code=status_code,
        headers=dict(headers or {}),
    )
    return secure(response)


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


def unavailable(request: Request) -> Response:
    return problem(
        request,
        503,
        "Console disabled",
        "The console logs in with the internal token, and none is configured. Set "
        "LEADSYNC_INTERNAL_TOKEN (16 characters or more) and restart leadsync serve.",
    )


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


def safe_next(target: str | None) -> str:
    # Only a path of the console itself: never another site, never a protocol-relative URL.
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


def logged_in(request: Request) -> Session | Response:
    """The GET guard: the session, or a redirect to the login page (503 without a token)."""
    signer = signer_of(request)
    if signer is None:
        return unavailable(request)
    session = signer.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/console/login?next={quote(target, safe='')}")
    return session


async def form_of(request: Request) -> dict[str, list[str]] | None:
    """The urlencoded body of a form POST, or None when it is not one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return None
    try:
        text = (await request.body()).decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_RESYNC_IDS + 50)
    except (UnicodeDecodeError, ValueError):
        return None


def one(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


async def posted_form(request: Request) -> tuple[Session, dict[str, list[str]]] | Response:
    """The POST guard: same origin, a session and its CSRF token; otherwise 403, no change."""
    signer = signer_of(request)
    if signer is None:
        return unavailable(request)
    if not same_origin(request):
        log.warning("console.post_refused", reason="foreign origin", path=request.url.path)
        return problem(request, 403, "Refused", "This form was sent from another site.")
    session = signer.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return problem(request, 403, "Refused", "Your session has ended: log in again, then retry.")
    form = await form_of(request)
    if form is None:
        return problem(request, 400, "Bad request", "Expected a form (urlencoded, UTF-8).")
    if not signer.csrf_ok(session, one(form, "csrf_token")):
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


async def posted_for(
    request: Request, raw_id: str, *, what: str, missing: str
) -> tuple[Session, int] | Response:
    """The POST guard of a button on one row (`/<things>/{id}/<action>`): the session and the
    row's id; an id that is not one is a 404 titled `missing`."""
    posted = await posted_form(request)
    if isinstance(posted, Response):
        return posted
    session, _form_values = posted
    try:
        number = digits(raw_id, what)
    except BadInput as exc:
        return problem(request, 404, missing, str(exc), session=session)
    assert number is not None
    return session, number


class BadInput(ValueError):
    """A parameter the console cannot use; its message is shown on a 400 page."""


def digits(value: str, name: str, *, low: int = 1, high: int = MAX_ID) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadInput(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def query(**values: str) -> str:
    """A query string for links (never with an email)."""
    return urlencode({k: v for k, v in values.items() if v})


templates.env.globals.update(query=query)
