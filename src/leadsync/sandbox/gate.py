"""The gate in front of the CRM routes: injected answers, auth, rate limits, faults and stats."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadsync.sandbox.config import CONTACTS_PATH as CONTACTS
from leadsync.sandbox.errors import (
    json_response,
    rate_limited_body,
    server_error_body,
    unauthorized_body,
)
from leadsync.sandbox.faults import Fault, find_transport, wait_for_disconnect
from leadsync.sandbox.ratelimit import Headers
from leadsync.sandbox.state import SandboxState

_SUB_ENDPOINTS = {
    ("POST", "search"): "search",
    ("POST", "batch/upsert"): "batch_upsert",
    ("POST", "batch/read"): "batch_read",
}
# How long a dropped request waits for uvicorn to notice the aborted connection.
_DROP_SETTLE_SECONDS = 5.0


class ConnectionDropped(Exception):
    """Raised when a drop was drawn but the server exposes no transport to abort."""


def classify(method: str, path: str) -> str | None:
    """Name the CRM endpoint a request targets; None for anything outside /crm/."""
    if not path.startswith("/crm/"):
        return None
    if path in (CONTACTS, CONTACTS + "/"):
        return {"POST": "create", "GET": "list"}.get(method, "other")
    if not path.startswith(CONTACTS + "/"):
        return "other"
    rest = path[len(CONTACTS) + 1 :]
    named = _SUB_ENDPOINTS.get((method, rest))
    if named is not None:
        return named
    if "/" not in rest:
        return {"GET": "read", "PATCH": "update"}.get(method, "other")
    return "other"


def bearer_token(scope: Scope) -> str | None:
    """Return the bearer token of the request, if any."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class SandboxGate:
    """Checks the token, spends the rate limit, injects faults and counts every CRM request."""

    def __init__(self, app: ASGIApp, *, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = classify(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        state = self.state
        stats = state.stats
        injected = state.injections.take()
        if injected is not None:
            # A canned answer (POST /_sandbox/inject) replaces everything, auth included.
            stats.record(endpoint, injected.status)
            stats.injected += 1
            await injected.response()(scope, receive, send)
            return
        config = state.config
        now = state.clock()
        token = bearer_token(scope)
        if token is None or token not in config.tokens:
            stats.record(endpoint, 401)
            extra = {"X-HubSpot-Auth-Failure": "401 Unauthorized"}
            await _respond(scope, receive, send, 401, unauthorized_body(), extra=extra)
            return
        if endpoint == "search":
            # Search has its own per-account limit, sends no rate-limit headers and does
            # not count toward the ten-second window.
            limit = config.search_rate_limit
            verdict = state.search_limiter.acquire(
                "account", limit=limit, daily_limit=None, now=now
            )
            headers: Headers = []
        else:
            verdict = state.limiter.acquire(
                token, limit=config.rate_limit, daily_limit=config.daily_limit, now=now
            )
            headers = verdict.headers
        if not verdict.allowed:
            assert verdict.policy is not None
            stats.record(endpoint, 429)
            stats.rate_limited[verdict.policy] += 1
            retry = {"Retry-After": str(verdict.retry_after)} if config.retry_after else {}
            body = rate_limited_body(verdict.policy)
            await _respond(scope, receive, send, 429, body, raw=headers, extra=retry)
            return
        if endpoint != "search":
            stats.peaks.record(token, now=now)
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        fault = state.faults.decide(
            error=config.fault_5xx, hang=config.fault_timeout, drop=config.fault_drop
        )
        if fault.kind is Fault.NONE:
            try:
                await self.app(scope, receive, _with_headers(send, headers, endpoint, state))
            except ClientDisconnect:
                # The client gave up (its timeout) before its body was read: nothing was
                # applied and there is nobody to answer, as with HubSpot.
                stats.record(endpoint, "client_gone")
            return
        stats.faults[fault.kind.value] += 1
        if fault.kind is Fault.ERROR:
            stats.record(endpoint, fault.status)
            body = server_error_body(fault.status)
            await _respond(scope, receive, send, fault.status, body, raw=headers)
        elif fault.kind is Fault.HANG:
            stats.record(endpoint, "timeout")
            await state.hangs.hold(receive, seconds=config.hang_seconds)
            # Reached only if the client outlasted the hang; uvicorn drops it if it left.
            await _respond(scope, receive, send, 504, server_error_body(504), raw=headers)
        else:
            stats.record(endpoint, "drop")
            await self._apply_then_drop(scope, receive)

    async def _apply_then_drop(self, scope: Scope, receive: Receive) -> None:
        """Run the route so the write lands, then cut the connection with no response."""
        transport = find_transport(receive)

        async def discard(message: Message) -> None:
            pass

        await self.app(scope, receive, discard)
        if transport is None:
            raise ConnectionDropped("sandbox drop: no transport to abort (not under uvicorn)")
        transport.abort()
        # Waiting until uvicorn has seen the connection go keeps it from answering a 500
        # for "returned without starting a response".
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_for_disconnect(receive), _DROP_SETTLE_SECONDS)


def _with_headers(send: Send, headers: Headers, endpoint: str, state: SandboxState) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            state.stats.record(endpoint, message["status"])
            if headers:
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)

    return wrapped


async def _respond(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: object,
    *,
    raw: Headers | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    response = json_response(body, status=status, headers=extra)
    if raw:
        response.raw_headers.extend(raw)
    await response(scope, receive, send)
