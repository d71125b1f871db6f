"""The console's login and logout: the internal token typed into a password field, a signed
session cookie, failed attempts throttled per client."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import Response

from leadsync.logging import get_logger
from leadsync.web.console.common import (
    ctx_of,
    form_of,
    one,
    posted_form,
    problem,
    redirect,
    render,
    safe_next,
    signer_of,
    unavailable,
)
from leadsync.web.console.security import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    LoginThrottle,
    Signer,
    is_https,
    same_origin,
)

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "console_throttle", None)
    if throttle is None:
        throttle = request.app.state.console_throttle = LoginThrottle()
    return throttle


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
        next=safe_next(request.query_params.get("next")),
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
    signer = signer_of(request)
    if signer is None:
        return unavailable(request)
    if signer.session(request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return _login_page(request, signer)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token (throttled per client); start a session on success."""
    signer = signer_of(request)
    if signer is None:
        return unavailable(request)
    if not same_origin(request):
        return problem(request, 403, "Refused", "This form was sent from another site.")
    form = await form_of(request)
    if form is None or not signer.login_form_ok(
        request.cookies.get(LOGIN_COOKIE), one(form, "form_token")
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
    if not signer.token_matches(one(form, "token")):
        throttle.failed(client)
        log.warning("console.login.failed", client=client)
        return _login_page(request, signer, status_code=401, error="That is not the token.")
    throttle.succeeded(client)
    settings = ctx_of(request).settings
    session, cookie = signer.new_session(lifetime_seconds=settings.console_session_seconds)
    log.info("console.login", session=session.id, client=client)
    response = redirect(safe_next(one(form, "next")))
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
    posted = await posted_form(request)
    if isinstance(posted, Response):
        return posted
    session, _form_values = posted
    log.info("console.logout", session=session.id)
    response = redirect("/console/login?logged_out=1")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
