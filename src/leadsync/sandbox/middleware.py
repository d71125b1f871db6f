"""The gate in front of the CRM routes: injections, auth, rate limits, faults, stats, and the
request log with its overlapping-writes detector."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadsync.sandbox.faults import (
    Fault,
    find_transport,
    sleep_unless_gone,
    wait_for_disconnect,
)
from leadsync.sandbox.inject import InjectedResponse
from leadsync.sandbox.peek import parse_body, read_body, replay, request_emails
from leadsync.sandbox.ratelimit import Headers
from leadsync.sandbox.replies import (
    json_response,
    rate_limited_body,
    server_error_body,
    unauthorized_body,
)
from leadsync.sandbox.requestlog import LoggedRequest, WriteOverlaps
from leadsync.sandbox.settings import CONTACTS_PATH as CONTACTS
from leadsync.sandbox.state import SandboxState
from leadsync.sandbox.stats import Stats

_SUB_ENDPOINTS = {
    ("POST", "search"): "search",
    ("POST", "batch/upsert"): "batch_upsert",
    ("POST", "batch/read"): "batch_read",
    ("POST", "gdpr-delete"): "gdpr_delete",
}
# The endpoints whose concurrent requests for one email are overlapping writes. A gdpr-delete
# is one: racing a create or upsert of the same email, which lands last decides whether the
# person stays erased (HubSpot's blocklist does not stop an API write), so a test must be
# able to see the two in flight at once.
WRITE_ENDPOINTS = frozenset({"create", "update", "batch_upsert", "gdpr_delete"})
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


class _Trace:
    """One CRM request inside the gate: its log entry and the writes it keeps in progress."""

    __slots__ = ("_overlaps", "_writes", "entry")

    def __init__(self, entry: LoggedRequest, overlaps: WriteOverlaps) -> None:
        self.entry = entry
        self._overlaps = overlaps
        self._writes: Sequence[str] = ()

    def hold_writes(self, emails: Sequence[str]) -> None:
        """Mark the request's writes of `emails` in progress until it finishes."""
        if emails and self.entry.done_at is None:
            self._overlaps.enter(emails)
            self._writes = emails

    def finish(self, status: int | str | None = None) -> None:
        """The answer is sent, the connection cut or the hang over; first call wins."""
        entry = self.entry
        if entry.done_at is not None:
            return
        entry.done_at = time.time()
        if status is not None:
            entry.status = status
        elif entry.status is None:
            entry.status = 500  # an exception escaped: the server answers a 500
        if self._writes:
            self._overlaps.leave(self._writes)
            self._writes = ()


class SandboxGate:
    """Checks the token, spends the rate limit, injects faults and logs every CRM request."""

    def __init__(self, app: ASGIApp, *, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = classify(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        state = self.state
        trace = _Trace(state.requests.start(endpoint), state.stats.overlaps)
        try:
            await self._gate(scope, receive, send, endpoint, trace)
        finally:
            trace.finish()

    async def _gate(
        self, scope: Scope, receive: Receive, send: Send, endpoint: str, trace: _Trace
    ) -> None:
        state = self.state
        stats = state.stats
        # The body is read here once (the log and the overlap detector need the emails in
        # it) and replayed to the app; `receive` itself then only reports a disconnect.
        body = await read_body(receive)
        if body is None:
            # The client gave up (its timeout) before its body was read: nothing was
            # applied and there is nobody to answer, as with HubSpot.
            stats.record(endpoint, "client_gone")
            trace.finish("client_gone")
            return
        app_receive = replay(body, receive)
        emails = request_emails(endpoint, scope, parse_body(endpoint, body, scope), state.store)
        trace.entry.emails = emails
        writes = emails if endpoint in WRITE_ENDPOINTS else ()
        injected = state.injections.take(endpoint)
        if injected is not None:
            # An injection (POST /_sandbox/inject) replaces auth, limits and faults.
            trace.hold_writes(writes)
            await self._inject(injected, scope, receive, app_receive, send, endpoint, trace)
            return
        config = state.config
        now = state.clock()
        token = bearer_token(scope)
        if token is None or token not in config.tokens:
            stats.record(endpoint, 401)
            extra = {"X-HubSpot-Auth-Failure": "401 Unauthorized"}
            await _respond(scope, _traced(send, trace), 401, unauthorized_body(), extra=extra)
            return
        trace.hold_writes(writes)
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
            trace.entry.policy = verdict.policy
            retry = {}
            if config.retry_after and verdict.retry_after is not None:
                retry = {"Retry-After": str(verdict.retry_after)}
                trace.entry.retry_after = float(verdict.retry_after)
            body_429 = rate_limited_body(verdict.policy)
            await _respond(scope, _traced(send, trace), 429, body_429, raw=headers, extra=retry)
            return
        if endpoint != "search":
            stats.peaks.record(token, now=now)
        gone = False
        if config.latency_ms:
            gone = await sleep_unless_gone(receive, config.latency_ms / 1000)
        # Drawn even for a client that left, so one seed replays one sequence of faults.
        fault = state.faults.decide(
            error=config.fault_5xx, hang=config.fault_timeout, drop=config.fault_drop
        )
        if gone:
            # The client gave up during the latency: as above, nothing applied.
            stats.record(endpoint, "client_gone")
            trace.finish("client_gone")
            return
        if fault.kind is Fault.NONE:
            await self._serve(scope, app_receive, send, endpoint, trace, headers)
            return
        stats.faults[fault.kind.value] += 1
        if fault.kind is Fault.ERROR:
            stats.record(endpoint, fault.status)
            body_5xx = server_error_body(fault.status)
            await _respond(scope, _traced(send, trace), fault.status, body_5xx, raw=headers)
        elif fault.kind is Fault.HANG:
            await self._hang(scope, receive, send, endpoint, trace, config.hang_seconds, headers)
        else:
            stats.record(endpoint, "drop")
            await self._apply_then_drop(scope, receive, app_receive, trace)

    async def _inject(
        self,
        item: InjectedResponse,
        scope: Scope,
        receive: Receive,
        app_receive: Receive,
        send: Send,
        endpoint: str,
        trace: _Trace,
    ) -> None:
        stats = self.state.stats
        stats.injected += 1
        if item.action == "respond":
            assert item.status is not None
            stats.record(endpoint, item.status)
            trace.entry.retry_after = item.retry_after
            trace.entry.policy = item.policy
            await item.response()(scope, app_receive, _traced(send, trace))
        elif item.action == "delay":
            assert item.delay_ms is not None
            # The write lands late even if the client gives up meanwhile, as a request
            # already inside HubSpot does.
            await asyncio.sleep(item.delay_ms / 1000)
            await self._serve(scope, app_receive, send, endpoint, trace, [])
        elif item.action == "hang":
            seconds = item.hang_seconds or self.state.config.hang_seconds
            await self._hang(scope, receive, send, endpoint, trace, seconds, [])
        else:
            stats.record(endpoint, "drop")
            await self._apply_then_drop(scope, receive, app_receive, trace)

    async def _serve(
        self,
        scope: Scope,
        app_receive: Receive,
        send: Send,
        endpoint: str,
        trace: _Trace,
        headers: Headers,
    ) -> None:
        """Let the routes answer, adding the rate-limit headers and counting the status."""
        stats = self.state.stats
        traced = _traced(send, trace, headers=headers, stats=stats, endpoint=endpoint)
        try:
            await self.app(scope, app_receive, traced)
        except ClientDisconnect:
            stats.record(endpoint, "client_gone")
            trace.finish("client_gone")

    async def _hang(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: str,
        trace: _Trace,
        seconds: float,
        headers: Headers,
    ) -> None:
        """Hold the request unanswered and unapplied until the client leaves or `seconds`."""
        self.state.stats.record(endpoint, "timeout")
        if await self.state.hangs.hold(receive, seconds=seconds):
            trace.finish("timeout")
            return
        # The client outlasted the hang (or the server is stopping): a gateway timeout.
        await _respond(scope, _traced(send, trace), 504, server_error_body(504), raw=headers)

    async def _apply_then_drop(
        self, scope: Scope, receive: Receive, app_receive: Receive, trace: _Trace
    ) -> None:
        """Run the route so the write lands, then cut the connection with no response."""
        transport = find_transport(receive)

        async def discard(message: Message) -> None:
            pass

        await self.app(scope, app_receive, discard)
        trace.finish("drop")
        if transport is None:
            raise ConnectionDropped("sandbox drop: no transport to abort (not under uvicorn)")
        transport.abort()
        # Waiting until uvicorn has seen the connection go keeps it from answering a 500
        # for "returned without starting a response".
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_for_disconnect(receive), _DROP_SETTLE_SECONDS)


def _traced(
    send: Send,
    trace: _Trace,
    *,
    headers: Headers | None = None,
    stats: Stats | None = None,
    endpoint: str = "",
) -> Send:
    """Wrap `send` to log the status, finish the trace once the body is sent, add headers
    and (for the routes' answers) count the status."""

    async def wrapped(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            trace.entry.status = status
            if stats is not None:
                stats.record(endpoint, status)
            if headers:
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)
        if kind == "http.response.body" and not message.get("more_body", False):
            trace.finish()

    return wrapped


async def _respond(
    scope: Scope,
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
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    # The gate's own answers never read the request (its body was read already).
    return {"type": "http.disconnect"}
