"""The console's login and request checks: signed expiring session cookies, CSRF tokens, the
Origin check, and a per-client throttle on login attempts.

Every secret derives from LEADSYNC_INTERNAL_TOKEN: the signing key is an HMAC of it, so every
`leadsync serve` process accepts the same sessions without more configuration, and changing
the token ends every session. The token itself is compared in constant time and never stored
in a cookie, a page, a log line or a URL.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request

SESSION_COOKIE: Final = "leadsync_console"
LOGIN_COOKIE: Final = "leadsync_console_login"
COOKIE_PATH: Final = "/console"
# A login form is good for this long after it was shown.
LOGIN_FORM_SECONDS: Final = 3600
# Failed logins allowed per client within the window; then 429 until the window has passed.
LOGIN_FAILURES: Final = 5
LOGIN_WINDOW_SECONDS: Final = 300.0
# Clients remembered by the throttle at most (the oldest are forgotten first).
THROTTLE_CLIENTS: Final = 10_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in console session: its id (logged as the operator) and its expiry."""

    id: str
    expires_at: int

    @property
    def actor(self) -> str:
        """How the session appears in logs: never the token, only the session's own id."""
        return f"console:{self.id}"


class Signer:
    """Signs and checks the console's cookies and CSRF tokens with a key derived from the
    internal token."""

    def __init__(self, internal_token: str, *, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(
            internal_token.encode(), b"leadsync console v1", hashlib.sha256
        ).digest()
        self._expected = hashlib.sha256(internal_token.encode()).digest()
        self._clock = clock

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest())

    def token_matches(self, given: str) -> bool:
        """Whether `given` is the internal token (constant time, whatever its length)."""
        digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(digest, self._expected)

    # --- sessions -------------------------------------------------------------------------

    def new_session(self, *, lifetime_seconds: int) -> tuple[Session, str]:
        """Start a session; return it and its cookie value (`id.expiry.signature`)."""
        session = Session(secrets.token_urlsafe(12), int(self._clock()) + lifetime_seconds)
        payload = f"{session.id}.{session.expires_at}"
        return session, f"{payload}.{self._mac('session', payload)}"

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when missing, forged or expired."""
        if not cookie or len(cookie) > 200:
            return None
        payload, _, signature = cookie.rpartition(".")
        session_id, _, expiry = payload.partition(".")
        if not (session_id and expiry.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._mac("session", payload)):
            return None
        if int(expiry) <= self._clock():
            return None
        return Session(session_id, int(expiry))

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of a session's forms (the session's id, signed for this purpose)."""
        return self._mac("csrf", session.id)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        """Whether a submitted form carries its session's CSRF token."""
        return bool(given) and hmac.compare_digest(given or "", self.csrf_token(session))

    # --- the login form (no session yet: a signed nonce cookie and its form token) ----------

    def new_login_form(self) -> tuple[str, str]:
        """Return (cookie value, form token) for one login form."""
        nonce = f"{secrets.token_urlsafe(12)}.{int(self._clock()) + LOGIN_FORM_SECONDS}"
        return f"{nonce}.{self._mac('login-cookie', nonce)}", self._mac("login-form", nonce)

    def login_form_ok(self, cookie: str | None, given: str | None) -> bool:
        """Whether a login form's token matches the nonce cookie it was shown with."""
        if not cookie or not given or len(cookie) > 200:
            return False
        nonce, _, signature = cookie.rpartition(".")
        _, _, expiry = nonce.partition(".")
        if not expiry.isdigit() or int(expiry) <= self._clock():
            return False
        return hmac.compare_digest(signature, self._mac("login-cookie", nonce)) and (
            hmac.compare_digest(given, self._mac("login-form", nonce))
        )


def own_origin(request: Request) -> str:
    """The origin this request was addressed to (scheme, host and port as the client saw)."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def same_origin(request: Request) -> bool:
    """Whether a POST comes from one of our own pages, by its Origin (else Referer) header.

    Browsers send Origin with every form POST; a request with neither header is not from a
    browser page, and must still carry a valid CSRF token.
    """
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.lower() == own_origin(request).lower()


def is_https(request: Request) -> bool:
    """Whether the client reached us over HTTPS (directly or through a trusted proxy)."""
    return request.url.scheme == "https"


class LoginThrottle:
    """At most LOGIN_FAILURES failed logins per client in LOGIN_WINDOW_SECONDS, per process."""

    def __init__(
        self,
        *,
        failures: int = LOGIN_FAILURES,
        window_seconds: float = LOGIN_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = failures
        self._window = window_seconds
        self._clock = clock
        self._seen: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def _recent(self, client: str) -> collections.deque[float]:
        times = self._seen.get(client) or collections.deque()
        horizon = self._clock() - self._window
        while times and times[0] <= horizon:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float | None:
        """Seconds until this client may try again, or None when it may now."""
        times = self._recent(client)
        if len(times) < self._failures:
            return None
        return max(1.0, times[0] + self._window - self._clock())

    def failed(self, client: str) -> None:
        """Count one failed login of this client."""
        times = self._recent(client)
        times.append(self._clock())
        self._seen[client] = times
        self._seen.move_to_end(client)
        while len(self._seen) > THROTTLE_CLIENTS:
            self._seen.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget a client's failures after it logged in."""
        self._seen.pop(client, None)
