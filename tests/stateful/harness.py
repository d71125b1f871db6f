"""The system under test for the state machine: the real engine, the API and the sandbox.

One `SyncSystem` per pytest case (one database, one write mode). Everything async runs on the
test's event loop; the Hypothesis state machine runs in a worker thread and hands each step
to that loop (`call`), so the workers keep running between steps as a real deployment does.
Each example starts from nothing: leads and the gate row deleted, the sandbox reset.

Requests are recorded twice: by the sandbox (`GET /_sandbox/requests`: when they *reached*
HubSpot) and by a recording transport under each worker's HubSpotClient (when the engine
sent them and when it stopped waiting). The pause and request-count invariants use the
sandbox's log when the sandbox has one, the overlap invariant uses the engine's own view: a
write is in flight from when the engine sends it until it has an answer or gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings, env_name
from leadsync.emails import canonical_email
from leadsync.engine.gate import PauseReason
from leadsync.engine.worker import Worker
from leadsync.hubspot.client import HubSpotClient
from leadsync.runtime import start_worker
from leadsync.sandbox import RunningSandbox
from leadsync.sandbox.middleware import classify
from leadsync.store import queue
from leadsync.store.db import create_engine, create_sessionmaker, transaction, utcnow
from leadsync.store.fence import open_fence
from leadsync.store.privacy import email_hash
from leadsync.store.tables import (
    GATE_NAME,
    Erasure,
    HubSpotGate,
    Lead,
    LeadSyncAttempt,
    SyncOutcome,
)
from leadsync.usecases.privacy import request_erasure
from leadsync.web.context import AppContext
from tests.helpers import INTERNAL_HEADERS, WaitTimeout, wait_for
from tests.stateful import checks
from tests.stateful.checks import (
    Call,
    ErasureAsked,
    ErasureRow,
    LeadRow,
    RequestBudget,
    Violation,
)
from tests.stateful.specs import (
    POOL,
    REFUSED,
    REFUSED_PATTERN,
    Casing,
    FaultSpec,
    InputErrorSpec,
    LeadSpec,
    Plan,
    recase,
)

T = TypeVar("T")
PAUSE_CAP_ENV = "LEADSYNC_PAUSE_CAP_SECONDS"
# Sandbox features this test drives that the sandbox may not have yet (branch sandbox-faults).
FEATURES = ("request-log", "inject-actions", "input-errors", "write-overlaps")
# LEADSYNC_ERASURE_KEY of the engine and the API (an erasure keeps the email's keyed hash).
ERASURE_KEY = "stateful-test-erasure-key-0123456789"


@dataclass(frozen=True)
class Knobs:
    """The engine's fast settings for the test, and the tolerances derived from them."""

    total_timeout: float = 1.0
    # At least total_timeout + 2 (Settings refuse less): a call can always finish in a lease.
    lease: float = 3.2
    poll: float = 0.1
    retry_base: float = 0.05
    retry_cap: float = 1.0
    pause_cap: float = 1.5
    max_attempts: int = 4
    # 40 requests per 1 s window: the gate spaces requests ~32 ms apart; the sandbox allows
    # far more, so every 429 the engine sees is one the test injected.
    engine_rate: str = "40/1s"
    window: float = 1.0
    sandbox_rate: str = "1000/1s"
    max_inflight: int = 4
    grace: float = 0.25
    # LEADSYNC_ERASURE_CONFIRM_SECONDS: past the latest a write the client gave up on can land
    # (the longest injected delay, 2.5 s, from a write sent before the request).
    erasure_confirm: float = 4.0

    @property
    def settle_bound(self) -> float:
        """How long a correct engine may take to sync everything once faults stop.

        An orphaned lease runs out (lease + poll), an account pause ends (pause cap), a lead's
        backoff ends (retry cap), a request already hanging times out (total timeout), twice
        over for the last fault's retry, an erasure's confirming delete, plus 3 s for the
        database and the event loop.
        """
        return (
            self.lease
            + self.poll
            + self.pause_cap
            + 2 * self.retry_cap
            + 2 * self.total_timeout
            + self.erasure_confirm
            + 3.0
        )

    @property
    def stale_lease_limit(self) -> float:
        """An IN_PROGRESS lead must not stay past its lease expiry for longer than this."""
        return self.lease + self.poll


def _pause_cap_field() -> str | None:
    """The Settings field read from LEADSYNC_PAUSE_CAP_SECONDS, if this engine has one."""
    return next((name for name in Settings.model_fields if env_name(name) == PAUSE_CAP_ENV), None)


class RecordingTransport(httpx.AsyncBaseTransport):
    """An HTTP transport that records every request the engine sends, as the engine saw it."""

    def __init__(self, calls: list[Call], origin: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._calls = calls
        self._origin = origin

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = classify(request.method, request.url.path) or "other"
        call = Call(time.time(), endpoint, _request_emails(request), origin=self._origin)
        self._calls.append(call)
        try:
            response = await self._inner.handle_async_request(request)
            if response.status_code == 429:
                await response.aread()  # cached: the client reads the same bytes again
                call.policy = _policy(response.content)
            call.status = str(response.status_code)
            call.retry_after = response.headers.get("retry-after")
            return response
        except BaseException as exc:  # cancelled (timeout, crash) or a broken connection
            call.status = (
                "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
            )
            raise
        finally:
            call.done_at = time.time()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _request_emails(request: httpx.Request) -> tuple[str, ...]:
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return ()
    if not isinstance(body, dict):
        return ()
    if isinstance(body.get("inputs"), list):
        return tuple(
            str(item.get("id", "")).lower() for item in body["inputs"] if isinstance(item, dict)
        )
    email = (body.get("properties") or {}).get("email")
    return (str(email).lower(),) if email else ()


def _policy(content: bytes) -> str | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body.get("policyName") if isinstance(body, dict) else None


@dataclass
class RunningWorker:
    """One in-process worker, as a process would have it: its own database engine, HubSpot
    client and (on PostgreSQL) LISTEN connection."""

    name: str
    worker: Worker
    stack: AsyncExitStack
    engine: AsyncEngine
    connections: list[Any]
    dead: bool = False
    # When kill() began (wall clock), and when each of its account pauses after a 429 was
    # recorded in the shared gate: a 429 its worker died before recording paused nobody.
    killed_at: float | None = None
    paused_at: list[float] = field(default_factory=list)

    async def kill(self) -> None:
        """Die as a killed process does: nothing more is sent or recorded, and its database
        connections close, ending their open transactions.

        In-process, a task cancelled in the middle of an aiosqlite transaction can leave its
        pooled connection holding SQLite's write lock (SQLAlchemy's rollback on return is
        cancelled too); a dead process's connections would close, so these do.
        """
        self.killed_at = time.time()
        self.dead = True  # from here on no task of this worker gets a connection (below)
        await self.worker.abandon()
        await self.stack.aclose()  # the loop ends after its current step; client and LISTEN close
        await self.engine.dispose()
        await asyncio.gather(*(_sever(conn) for conn in self.connections))

    def refuse_checkouts_when_dead(self) -> None:
        """A dead process reaches its database no more: a shielded task that outlives kill()
        (a batch's outcome being recorded, the send fence's check) fails at its next
        checkout instead of opening a new connection that nobody would sever."""

        def checkout(_dbapi: Any, _record: Any, _proxy: Any) -> None:
            if self.dead:
                raise ConnectionRefusedError(f"worker {self.name} was killed")

        event.listen(self.engine.sync_engine, "checkout", checkout)

    def record_pauses(self) -> None:
        """Note when each account pause this worker asks for after a 429 is recorded."""
        gate = self.worker.gate
        pause = gate.pause_for_rate_limit

        async def recorded(**kwargs: Any) -> dt.datetime:
            until = await pause(**kwargs)
            self.paused_at.append(time.time())
            return until

        gate.pause_for_rate_limit = recorded  # type: ignore[method-assign]

    def lost_pause(self, call: Call) -> bool:
        """Whether this worker got the 429 `call` and was killed before recording its pause
        (a process killed right after the answer: nobody else saw that 429)."""
        if self.killed_at is None:
            return False
        answered = call.done_at if call.done_at is not None else call.at
        return not any(answered <= at <= self.killed_at for at in self.paused_at)


def _epoch(when: dt.datetime) -> float:
    """A database time as wall-clock seconds (naive times are UTC)."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).timestamp()


async def _sever(connection: Any) -> None:
    driver = getattr(connection, "_connection", None)
    if driver is None:
        return
    terminate = getattr(driver, "terminate", None)
    if callable(terminate):  # asyncpg: the server ends the session and its transaction
        terminate()
        return
    with contextlib.suppress(Exception):  # aiosqlite: closing rolls back what is open
        await asyncio.wait_for(driver.close(), timeout=2.0)


@dataclass
class Example:
    """What one example did, for the invariants and the report."""

    number: int
    plan: Plan
    t0: float
    calls: list[Call] = field(default_factory=list)
    posted: list[int] = field(default_factory=list)
    # Lead id -> its email and the monotonic time its POST returned (erasures split on it).
    emails: dict[int, str] = field(default_factory=dict)
    posted_at: dict[int, float] = field(default_factory=dict)
    erasures: list[ErasureAsked] = field(default_factory=list)
    # erase_during_write steps whose write was seen in flight at HubSpot when erasing.
    mid_write_erasures: int = 0
    log: list[tuple[float, str]] = field(default_factory=list)  # (time, step) for the report
    faults: int = 0
    crashes: int = 0
    requeued: int = 0
    refused_sends: int = 0
    lifts: list[float] = field(default_factory=list)
    midnights: set[dt.datetime] = field(default_factory=set)
    permanent: Counter[str] = field(default_factory=Counter)
    stale: dict[int, Violation] = field(default_factory=dict)
    failed_early: dict[tuple[int, int], Violation] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    settle_seconds: float | None = None
    # Excused, and counted for the summary: overlaps behind a write the engine had given up
    # on, and emails whose last write landed after the engine gave up on it.
    excused_overlaps: int = 0
    # 429s whose worker was killed before it recorded the pause (checks skip those pauses).
    lost_pauses: int = 0
    killed: list[RunningWorker] = field(default_factory=list)
    late: frozenset[str] = frozenset()
    # Erased emails whose contact a write the engine had given up on re-created after the
    # first GDPR delete (checks.recreated_late): the confirming delete must remove it again.
    recreated: frozenset[str] = frozenset()
    # Scrubbed leads left with a `fenced` history row (erased-rows fails on any).
    fenced_left: int = 0
    requests: int = 0
    bound: int = 0

    def note(self, step: str) -> None:
        """Remember a step with its time, for the report."""
        self.log.append((time.time(), step))


class SyncSystem:
    """The engine, the API and the sandbox of one pytest case, reset for every example."""

    def __init__(
        self,
        *,
        mode: str,
        db: str,
        sessions: async_sessionmaker[AsyncSession],
        settings_factory: Callable[..., Settings],
        sandbox: RunningSandbox,
        knobs: Knobs,
    ) -> None:
        self.mode = mode
        self.db = db
        self.sessions = sessions
        self.sandbox = sandbox
        self.knobs = knobs
        self._settings_factory = settings_factory
        self.loop = asyncio.get_running_loop()
        self.control = httpx.AsyncClient(base_url=sandbox.url + "/_sandbox", timeout=10)
        self.api: httpx.AsyncClient | None = None
        self.workers: list[RunningWorker] = []
        self.features: set[str] = set()
        self.pause_cap_field = _pause_cap_field()
        self.example: Example | None = None
        self.examples: list[tuple[Example, list[Violation]]] = []
        self._serial = 0
        self._sampler: asyncio.Task[None] | None = None
        self._sampler_stop = asyncio.Event()
        # The erasure's side of the send fence every worker's writes hold.
        self.fence = open_fence(sessions.kw["bind"], sessions)

    # --- plumbing ------------------------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T], *, timeout: float = 120.0) -> T:
        """Run a coroutine on the system's loop from the state machine's thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def settings(self, plan: Plan | None = None) -> Settings:
        """The engine's settings: fast knobs, the sandbox, this case's write mode."""
        knobs = self.knobs
        values: dict[str, Any] = {
            "hubspot_base_url": self.sandbox.url,
            "hubspot_token": self.sandbox.token,
            "hubspot_write_mode": self.mode,
            "hubspot_rate_limit": knobs.engine_rate,
            "hubspot_total_timeout_seconds": knobs.total_timeout,
            "hubspot_read_timeout_seconds": knobs.total_timeout,
            "hubspot_connect_timeout_seconds": knobs.total_timeout,
            "lease_seconds": knobs.lease,
            "poll_interval_seconds": knobs.poll,
            "retry_base_seconds": knobs.retry_base,
            "retry_cap_seconds": knobs.retry_cap,
            "max_attempts": knobs.max_attempts,
            "max_inflight_batches": knobs.max_inflight,
            "reconcile_interval_seconds": 0.2,
            "reconcile_after_seconds": 3600.0,  # reconciliation must not hide FAILED leads
            "batch_size": plan.batch_size if plan is not None else 100,
            "erasure_key": ERASURE_KEY,
            "erasure_confirm_seconds": knobs.erasure_confirm,
        }
        # Unknown keys are ignored by Settings (extra="ignore"): on an engine without the
        # pause cap this is a no-op, and the test reports the missing knob by name.
        values[self.pause_cap_field or PAUSE_CAP_ENV] = knobs.pause_cap
        return self._settings_factory(**values)

    async def background(self, ctx: AppContext, stack: AsyncExitStack) -> Callable[[], None]:
        """The app's background hook: POST /leads wakes every worker of the example."""

        def wake() -> None:
            for running in self.workers:
                running.worker.wake()

        return wake

    async def probe_features(self) -> None:
        """Find which of the sandbox's fault-injection features this sandbox has."""
        found = await self.control.get("/requests", params={"since": time.time()})
        if found.status_code == 200 and "requests" in found.json():
            self.features.add("request-log")
        probe = {"action": "delay", "delay_ms": 1, "times": 1, "endpoints": ["batch_read"]}
        if (await self.control.post("/inject", json=probe)).status_code < 300:
            self.features.add("inject-actions")
        await self.control.delete("/inject")
        spec = InputErrorSpec(0).request()
        if (await self.control.post("/input-errors", json=spec)).status_code < 300:
            self.features.add("input-errors")
        if "write_overlaps" in (await self.control.get("/stats")).json():
            self.features.add("write-overlaps")
        await self.control.post("/reset")

    def missing(self) -> list[str]:
        """What this run could not check: sandbox features and engine knobs it lacks."""
        gaps = [f"sandbox feature {name!r}" for name in FEATURES if name not in self.features]
        if self.pause_cap_field is None:
            gaps.append(f"Settings field for {PAUSE_CAP_ENV} (the account-wide pause cap)")
        return gaps

    async def close(self) -> None:
        """Stop everything this case started."""
        await self._stop_all()
        await self.control.aclose()

    # --- one example ---------------------------------------------------------------------

    @property
    def ex(self) -> Example:
        """The running example."""
        assert self.example is not None, "no example running"
        return self.example

    async def begin(self, plan: Plan) -> None:
        """Start an example from nothing: no leads, a fresh gate, a reset sandbox."""
        await self._stop_all()
        async with transaction(self.sessions) as session:
            await session.execute(text("DELETE FROM lead_sync_attempts"))
            await session.execute(text("DELETE FROM leads"))
            await session.execute(text("DELETE FROM erasures"))
            await session.execute(text("DELETE FROM hubspot_gate"))
            session.add(HubSpotGate(name=GATE_NAME, next_slot_at=utcnow()))
        config = {
            "rate_limit": self.knobs.sandbox_rate,
            "latency_ms": plan.latency_ms,
            "invalid_batch": plan.invalid_batch,
            "reject_emails": REFUSED_PATTERN,
        }
        (await self.control.patch("/config", json=config)).raise_for_status()
        if "request-log" in self.features:
            # A delayed write of the last example lands even after its worker died: let it
            # land before the reset, or it would make a contact in this example.
            idle = self._sandbox_idle
            await wait_for(idle, timeout=15, message="sandbox idle")  # type: ignore[arg-type]
        (await self.control.post("/reset")).raise_for_status()
        self.example = Example(number=len(self.examples) + 1, plan=plan, t0=time.time())
        self.ex.note(f"begin {plan}")
        self._sampler_stop = asyncio.Event()
        self._sampler = asyncio.create_task(self._sample_leases(self.ex, self._sampler_stop))
        for _ in range(plan.workers):
            await self._start_worker()

    async def submit(self, specs: Sequence[LeadSpec]) -> None:
        """POST the leads through the real API, concurrently when there are several."""
        assert self.api is not None
        answers = await asyncio.gather(*(self.api.post("/leads", json=s.body()) for s in specs))
        returned = time.monotonic()
        for spec, answer in zip(specs, answers, strict=True):
            assert answer.status_code == 201, (
                f"POST /leads {spec!r}: {answer.status_code} {answer.text}"
            )
            lead_id = int(answer.json()["id"])
            self.ex.posted.append(lead_id)
            self.ex.emails[lead_id] = spec.email
            self.ex.posted_at[lead_id] = returned
            self.ex.refused_sends += spec.email in REFUSED
        self.ex.note(f"submit {list(specs)} -> ids {self.ex.posted[-len(specs) :]}")

    async def erase(self, person: int, casing: Casing = "lower") -> ErasureAsked:
        """Ask for the erasure of one person of the pool, through the use case the route, the
        CLI and the console call (it waits for the writes in flight: the send fence)."""
        email = canonical_email(recase(POOL[person], casing))
        started = time.time()
        accepted = await request_erasure(
            self.sessions,
            fence=self.fence,
            settings=self.settings(self.ex.plan),
            email=email,
            requested_by="api",
        )
        asked = ErasureAsked(
            email=email,
            erasure_id=accepted.id,
            created=accepted.created,
            started=started,
            returned=time.time(),
            mono=time.monotonic(),
        )
        self.ex.erasures.append(asked)
        for running in self.workers:
            running.worker.wake()
        self.ex.note(
            f"erase {email} -> erasure {accepted.id} ({'new' if accepted.created else 'reused'}"
            f", {accepted.leads_cancelled} leads cancelled) in {asked.returned - started:.3f}s"
        )
        return asked

    async def erase_during_write(self, spec: LeadSpec, stall: FaultSpec) -> None:
        """Stall the next write, post a lead, and erase its email while its write is in
        flight at HubSpot (or after 2 s: the email may be busy, held or paused)."""
        await self.inject(stall)
        await self.submit([spec])
        seen = False
        if "request-log" in self.features:

            async def in_flight() -> bool:
                answer = await self.control.get("/requests", params={"since": self.ex.t0})
                return any(
                    item.get("done_at") is None
                    and item.get("endpoint") in checks.WRITES
                    and spec.email in [str(e).lower() for e in item.get("emails") or ()]
                    for item in answer.json()["requests"]
                )

            with contextlib.suppress(WaitTimeout):
                await wait_for(in_flight, timeout=2.0, interval=0.02)  # type: ignore[arg-type]
                seen = True
        self.ex.mid_write_erasures += seen
        self.ex.note(f"write of {spec.email} {'in flight' if seen else 'not seen in flight'}")
        await self.erase(spec.person)

    async def inject(self, fault: FaultSpec) -> None:
        """Queue a fault at the sandbox for the next matching requests."""
        body = fault.request()
        if "inject-actions" not in self.features:
            if fault.action != "respond":
                self.ex.skipped[fault.kind] += 1
                self.ex.note(f"inject {fault!r}: skipped, the sandbox has no inject actions")
                return
            body.pop("endpoints", None)
        answer = await self.control.post("/inject", json=body)
        assert answer.status_code < 300, f"inject {fault!r}: {answer.status_code} {answer.text}"
        self.ex.faults += fault.times
        self.ex.note(f"inject {fault!r}")

    async def fail_inputs(self, spec: InputErrorSpec) -> None:
        """Make the next batch inputs of one email fail inside a 207."""
        if "input-errors" not in self.features:
            self.ex.skipped["input-error"] += 1
            self.ex.note(f"{spec!r}: skipped, the sandbox has no input errors")
            return
        answer = await self.control.post("/input-errors", json=spec.request())
        assert answer.status_code < 300, f"{spec!r}: {answer.status_code} {answer.text}"
        self.ex.faults += spec.times
        if not spec.temporary:
            self.ex.permanent[spec.email] += spec.times
        self.ex.note(repr(spec))

    async def crash_worker(self, which: int) -> None:
        """Kill a worker as a process dies (leases stay taken) and start a new one."""
        running = self.workers.pop(which % len(self.workers))
        await running.kill()
        self.ex.killed.append(running)
        self.ex.crashes += 1
        started = await self._start_worker()
        self.ex.note(f"crash {running.name}, start {started}")

    async def add_worker(self) -> None:
        """Start one more worker."""
        self.ex.note(f"start {await self._start_worker()}")

    async def resync_failed(self, *, via_api: bool) -> None:
        """Requeue every FAILED lead, through the operators' route or the queue function."""
        failed = await self._leads(status="FAILED")
        if via_api:
            assert self.api is not None
            answer = await self.api.post("/internal/leads/resync-failed", headers=INTERNAL_HEADERS)
            assert answer.status_code == 200, answer.text
            count = int(answer.json()["requeued"])
        else:
            async with transaction(self.sessions) as session:
                count = await queue.requeue_failed(session, now=utcnow())
            for running in self.workers:
                running.worker.wake()
        self._account_requeued(failed, count)
        self.ex.note(f"resync-failed via {'API' if via_api else 'queue'}: {count} requeued")

    async def lift_daily_pause(self) -> bool:
        """Midnight in the account's zone: lift a DAILY pause and free what waits for it.

        A DAILY 429 pauses until the account's midnight, hours away; the test plays
        midnight instead: the gate's pause is cleared and the leads and erasures scheduled
        for that midnight (and only those: a lead waiting out a huge Retry-After stays) fall
        due now. They are freed at every call: an outcome computed before the lift may still
        be written after it, scheduled for the midnight that has already "passed".
        """
        now = utcnow()
        lifted = None
        async with transaction(self.sessions) as session:
            row = (
                await session.execute(select(HubSpotGate).with_for_update())
            ).scalar_one_or_none()
            if row is not None and row.pause_reason == PauseReason.DAILY_LIMIT.value:
                lifted = row.paused_until or now
                self.ex.midnights.add(lifted)
                row.paused_until = row.pause_reason = row.pause_detail = None
                row.next_slot_at = now
            window = dt.timedelta(seconds=2)
            for midnight in self.ex.midnights:
                await session.execute(
                    update(Lead)
                    .where(
                        Lead.hubspot_sync_status.in_(["PENDING", "RETRYING"]),
                        Lead.hubspot_next_attempt_at.between(midnight - window, midnight + window),
                    )
                    .values(hubspot_next_attempt_at=now)
                )
                # An erasure the pause sent back (its GDPR delete not sent) waits for it too.
                await session.execute(
                    update(Erasure)
                    .where(
                        Erasure.lease_token.is_(None),
                        Erasure.next_attempt_at.between(midnight - window, midnight + window),
                    )
                    .values(next_attempt_at=now)
                )
        if lifted is None:
            return False
        self.ex.lifts.append(time.time())
        self.ex.note(f"midnight: DAILY pause until {lifted:%H:%M} lifted")
        for running in self.workers:
            running.worker.wake()
        return True

    # --- the end of an example -------------------------------------------------------------

    async def finish(self) -> tuple[list[Violation], str]:
        """Stop injecting, let the system settle, check every invariant, stop the workers.

        Returns the violations and, when there are any, the report to debug them.
        """
        ex = self.ex
        try:
            settled = await self._settle()
            violations, report = await self._check(settled)
        finally:
            await self._stop_all()
        self.examples.append((ex, violations))
        return violations, report

    async def abort(self) -> None:
        """Stop the example's workers without checking anything (the example already failed)."""
        await self._stop_all()

    async def _settle(self) -> bool:
        ex = self.ex
        await self.control.delete("/inject")
        if "input-errors" in self.features:
            await self.control.delete("/input-errors")
        ex.note("settle: injections and input errors cleared")
        started = time.monotonic()
        nudged_at = -math.inf

        async def settled() -> bool:
            # Every half second, do what an operator would; in between, only look.
            nonlocal nudged_at
            if time.monotonic() - nudged_at >= 0.5:
                nudged_at = time.monotonic()
                await self._nudge()
            return await self._settled()

        try:
            await wait_for(settled, timeout=self.knobs.settle_bound, interval=0.05)  # type: ignore[arg-type]
        except WaitTimeout:
            ex.settle_seconds = time.monotonic() - started
            return False
        ex.settle_seconds = time.monotonic() - started
        ex.note(f"settled in {ex.settle_seconds:.2f}s")
        return True

    async def _nudge(self) -> None:
        """Play midnight for a DAILY pause, and resync the valid leads that failed for good."""
        await self.lift_daily_pause()
        failed = await self._leads(status="FAILED")
        self._classify_failed(failed)
        # A valid lead may fail for good in the meantime (its last attempt, a permanent
        # input error still pending): an operator resyncs it, and so does the test.
        retry = [lead for lead in failed if lead.email not in REFUSED]
        if retry:
            async with transaction(self.sessions) as session:
                count = await queue.requeue_failed(
                    session, now=utcnow(), lead_ids=[lead.id for lead in retry]
                )
            self._account_requeued(retry, count)
            for running in self.workers:
                running.worker.wake()

    async def _settled(self) -> bool:
        leads = await self._leads()
        erased, live = checks.split_erased(leads, self.ex.posted_at, self.ex.erasures)
        if not all(lead.status == "ERASED" for lead in erased):
            return False
        if not all(
            lead.status == "SYNCED" if lead.email not in REFUSED else lead.status == "FAILED"
            for lead in live
        ):
            return False
        rows = await self._erasure_rows()
        return all(
            (row := rows.get(asked.erasure_id)) is not None and row.status == "COMPLETED"
            for asked in self.ex.erasures
        )

    def _classify_failed(self, failed: Sequence[LeadRow]) -> None:
        for lead in failed:
            for violation in checks.check_failed(
                [lead],
                max_attempts=self.knobs.max_attempts,
                refused=REFUSED,
                permanent=self.ex.permanent,
            ):
                self.ex.failed_early.setdefault((lead.id, lead.attempts), violation)

    def _account_requeued(self, leads: Sequence[LeadRow], count: int) -> None:
        self.ex.requeued += count
        self.ex.refused_sends += sum(lead.email in REFUSED for lead in leads)

    async def _check(self, settled: bool) -> tuple[list[Violation], str]:
        ex, knobs = self.ex, self.knobs
        all_leads = await self._leads()
        all_contacts = (await self.control.get("/contacts")).json()["results"]
        stats = (await self.control.get("/stats")).json()
        server_log = await self._server_log()
        engine_log = list(ex.calls)
        log = server_log if server_log is not None else engine_log
        rows = await self._erasure_rows()
        deletions = (await self.control.get("/gdpr-deletions")).json()
        # The sync invariants see the live leads: those posted after their email's last
        # erasure (and every lead of an email never erased); a contact of an erased email
        # without any is the erasure invariants' business (erased-contact).
        erased, leads = checks.split_erased(all_leads, ex.posted_at, ex.erasures)
        gone = set(checks.last_erasures(ex.erasures)) - {lead.email for lead in leads}
        contacts = [
            c
            for c in all_contacts
            if str(c.get("properties", {}).get("email") or "").lower() not in gone
        ]
        violations: list[Violation] = []
        if not settled:
            stuck = [
                lead
                for lead in leads
                if (lead.status != "SYNCED" and lead.email not in REFUSED)
                or lead.status in ("PENDING", "RETRYING", "IN_PROGRESS")
            ] + [lead for lead in erased if lead.status != "ERASED"]
            violations.append(
                Violation(
                    "settle",
                    f"{len(stuck)} lead(s) not SYNCED (or refused and FAILED, or ERASED) "
                    f"{knobs.settle_bound:.1f}s after faults stopped: "
                    + ", ".join(f"{lead.id}:{lead.status}" for lead in stuck[:12]),
                    tuple(sorted({lead.email for lead in stuck})),
                )
            )
        late = (
            frozenset()
            if server_log is None
            else checks.late_writes(
                server_log, engine_log, since=checks.erased_since(ex.erasures, rows)
            )
        )
        ex.late = late
        recreated = (
            {}
            if server_log is None
            else checks.recreated_late(server_log, engine_log, ex.erasures, deletions)
        )
        ex.recreated = frozenset(recreated)
        for email, entry in recreated.items():
            ex.note(f"{email}: contact re-created by a late {entry.endpoint} {entry.line(ex.t0)}")
        violations += checks.check_contacts(leads, contacts, refused=REFUSED, late=late)
        violations += checks.check_attempts(all_leads, max_attempts=knobs.max_attempts)
        hashes = {email: email_hash(ERASURE_KEY.encode(), email) for email in POOL}
        violations += checks.check_erasures_complete(ex.erasures, rows, deletions)
        violations += checks.check_erased_rows(
            erased, ex.erasures, rows, hashes, excuse_fenced=False
        )
        ex.fenced_left = sum(1 for lead in erased if lead.scrubbed and lead.fenced_history)
        violations += checks.check_no_write_after_erasure(log, ex.erasures, rows, t0=ex.t0)
        violations += checks.check_erased_contacts(
            leads, all_contacts, ex.erasures, refused=REFUSED, excused=frozenset()
        )
        violations += list(ex.failed_early.values())
        violations += list(ex.stale.values())
        reported = int(stats.get("write_overlaps") or 0)
        if server_log is not None:
            found, ex.excused_overlaps = checks.check_server_overlaps(
                server_log, engine_log, reported=reported, t0=ex.t0
            )
            violations += found
        elif reported:
            violations.append(
                Violation(
                    "write-overlaps",
                    f"the sandbox saw {reported} write(s) arrive while another write of the "
                    f"same email was in progress: {stats.get('overlapping_emails')}",
                    tuple(stats.get("overlapping_emails") or ()),
                )
            )
        violations += checks.check_overlaps(engine_log, t0=ex.t0)
        killed = {running.name: running for running in ex.killed}
        lost = {
            id(call)
            for call in engine_log
            if call.status == "429"
            and call.origin in killed
            and killed[call.origin].lost_pause(call)
        }
        ex.lost_pauses = len(lost)
        violations += checks.check_pauses(
            [call for call in engine_log if id(call) not in lost],
            log,
            window=knobs.window,
            cap=knobs.pause_cap,
            grace=knobs.grace,
            lifts=ex.lifts,
            t0=ex.t0,
        )
        budget = RequestBudget(
            leads=len(ex.posted),
            requeued=ex.requeued,
            faults=ex.faults,
            crashes=ex.crashes,
            refused_sends=ex.refused_sends,
            emails=len(POOL),
            inflight=knobs.max_inflight,
            calls_per_input=1 if self.mode == "batch" else 3,
            erasures=len(ex.erasures),
        )
        ex.requests, ex.bound = len(log), budget.bound()
        violations += checks.check_request_bound(log, budget)
        if not violations:
            return [], ""
        return violations, self.report(
            await self._gate_text(), violations, all_leads, all_contacts, log, engine_log, rows
        )

    def report(
        self,
        gate: str,
        violations: Sequence[Violation],
        leads: Sequence[LeadRow],
        contacts: Sequence[dict[str, Any]],
        log: Sequence[Call],
        engine_log: Sequence[Call],
        rows: Mapping[int, ErasureRow] | None = None,
    ) -> str:
        """Everything needed to debug a failed example, bounded in size."""
        ex = self.ex
        lines = [
            f"sync invariants violated: example {ex.number}, db={self.db}, mode={self.mode}, "
            f"{ex.plan}, settle {ex.settle_seconds}s",
            f"gate at the end: {gate}",
            *(f"  {v}" for v in violations[:20]),
            "steps:",
            *(f"  {t - ex.t0:+.3f} {step}" for t, step in ex.log[-40:]),
        ]
        emails = sorted({e for v in violations for e in v.emails})[:4]
        for email in emails:
            lines.append(f"--- {email}: leads")
            lines += [f"  {lead.line()}" for lead in leads if lead.email == email]
            for contact in contacts:
                props = contact.get("properties", {})
                if str(props.get("email", "")).lower() == email:
                    shown = {k: props.get(k) for k in checks.MAPPED_PROPERTIES if k in props}
                    lines.append(f"  contact {contact.get('id')}: {shown}")
            for asked in ex.erasures:
                if asked.email == email:
                    row = (rows or {}).get(asked.erasure_id)
                    lines.append(
                        f"  asked erasure {asked.erasure_id} at {asked.started - ex.t0:+.3f}s, "
                        f"returned {asked.returned - ex.t0:+.3f}s: "
                        + ("no row" if row is None else row.line())
                    )
            lines.append(f"--- {email}: requests (engine's view)")
            mine = [c for c in engine_log if email in c.emails]
            lines += [f"  {c.line(ex.t0)}" for c in mine[-25:]]
            if log is not engine_log:
                lines.append(f"--- {email}: requests (sandbox's view)")
                lines += [f"  {c.line(ex.t0)}" for c in log if email in c.emails][-25:]
        for violation in violations:
            if violation.at is not None and violation.tag in ("pause", "no-write-after-erasure"):
                lines.append(f"--- requests around {violation.at - ex.t0:+.3f}s (sandbox's log)")
                near = [c for c in log if violation.at - 1 <= c.at <= violation.at + 3]
                lines += [f"  {c.line(ex.t0)}" for c in near[:30]]
                break
        lines.append(f"({len(log)} requests in all; {len(engine_log)} sent by the engine)")
        return "\n".join(lines)

    # --- helpers ---------------------------------------------------------------------------

    async def _start_worker(self) -> str:
        self._serial += 1
        name = f"w{self._serial}"
        settings = self.settings(self.ex.plan)
        engine = create_engine(settings.async_database_url)
        connections: list[Any] = []
        event.listen(engine.sync_engine, "connect", lambda conn, _record: connections.append(conn))
        stack = AsyncExitStack()
        transport = RecordingTransport(self.ex.calls, name)
        client = await stack.enter_async_context(
            HubSpotClient.from_settings(settings, transport=transport)
        )
        worker = Worker(
            settings=settings,
            sessions=create_sessionmaker(engine),
            client=client,
            rng=random.Random(self._serial),
        )
        running = RunningWorker(name, worker, stack, engine, connections)
        running.refuse_checkouts_when_dead()
        running.record_pauses()
        await start_worker(worker, settings=settings, stack=stack)
        self.workers.append(running)
        return name

    async def _stop_all(self) -> None:
        # Killed, not stopped: nothing is waited for, and nothing of this example is recorded
        # after its checks ran.
        workers, self.workers = self.workers, []
        for running in workers:
            await running.kill()
        if self._sampler is not None:
            # Asked to stop, not cancelled: a task cancelled inside a SQLite transaction can
            # leave its connection holding the write lock.
            self._sampler_stop.set()
            await self._sampler
            self._sampler = None

    async def _sample_leases(self, ex: Example, stop: asyncio.Event) -> None:
        """Watch for IN_PROGRESS leads whose lease ran out long ago (nobody picks them up)."""
        limit = self.knobs.stale_lease_limit
        while not stop.is_set():
            now = utcnow()
            async with self.sessions() as session:
                rows = (
                    await session.execute(
                        select(Lead.id, Lead.email, Lead.hubspot_lease_expires_at).where(
                            Lead.hubspot_sync_status == "IN_PROGRESS"
                        )
                    )
                ).all()
            for lead_id, email, expires in rows:
                late = None if expires is None else (now - expires).total_seconds()
                if late is not None and late > limit and lead_id not in ex.stale:
                    ex.stale[lead_id] = Violation(
                        "stale-lease",
                        f"lead {lead_id} ({email}) IN_PROGRESS {late:.2f}s after its lease "
                        f"expired (limit lease+poll = {limit:.2f}s)",
                        (email or "",),
                    )
            with contextlib.suppress(TimeoutError):  # the sampling period
                await asyncio.wait_for(stop.wait(), timeout=0.2)

    async def _leads(self, *, status: str | None = None) -> list[LeadRow]:
        stmt = select(Lead).order_by(Lead.id)
        if status is not None:
            stmt = stmt.where(Lead.hubspot_sync_status == status)
        async with self.sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
            history: Counter[tuple[int, bool]] = Counter()
            counted = await session.execute(
                select(LeadSyncAttempt.lead_id, LeadSyncAttempt.outcome, func.count()).group_by(
                    LeadSyncAttempt.lead_id, LeadSyncAttempt.outcome
                )
            )
            for lead_id, outcome, count in counted.all():
                history[(int(lead_id), outcome == SyncOutcome.FENCED.value)] += int(count)
        return [
            LeadRow(
                # A scrubbed lead has no email any more: the one it was posted with.
                id=lead.id,
                email=lead.email or self.ex.emails.get(lead.id, ""),
                fields={name: getattr(lead, name) for name in checks.LEAD_FIELDS},
                status=lead.hubspot_sync_status,
                attempts=lead.hubspot_sync_attempts,
                hubspot_id=lead.hubspot_id,
                http_status=lead.hubspot_last_http_status,
                error=lead.hubspot_error,
                lease_expires_at=lead.hubspot_lease_expires_at,
                next_attempt_at=lead.hubspot_next_attempt_at,
                email_hash=lead.email_hash,
                scrubbed=lead.scrubbed_at is not None,
                history=history[(lead.id, False)],
                fenced_history=history[(lead.id, True)],
            )
            for lead in rows
        ]

    async def _erasure_rows(self) -> dict[int, ErasureRow]:
        async with self.sessions() as session:
            found = (await session.execute(select(Erasure))).scalars().all()
        return {
            row.id: ErasureRow(
                id=row.id,
                status=row.status,
                email=row.email,
                email_hash=row.email_hash,
                completed_at=None if row.completed_at is None else _epoch(row.completed_at),
                attempts=row.attempts,
                error=row.error,
            )
            for row in found
        }

    async def _sandbox_idle(self) -> bool:
        answer = await self.control.get("/requests", params={"since": time.time() - 600})
        return all(item.get("done_at") is not None for item in answer.json()["requests"])

    async def _gate_text(self) -> str:
        async with self.sessions() as session:
            row = await session.get(HubSpotGate, GATE_NAME)
        if row is None:
            return "no row"
        return (
            f"paused_until={row.paused_until} reason={row.pause_reason} "
            f"next_slot_at={row.next_slot_at} detail={(row.pause_detail or '')[:80]!r}"
        )

    async def _server_log(self) -> list[Call] | None:
        if "request-log" not in self.features:
            return None
        answer = await self.control.get("/requests", params={"since": self.ex.t0})
        answer.raise_for_status()
        return [
            Call(
                at=float(item["at"]),
                endpoint=str(item.get("endpoint")),
                emails=tuple(str(e).lower() for e in item.get("emails") or ()),
                done_at=None if item.get("done_at") is None else float(item["done_at"]),
                status=str(item.get("status")),
                retry_after=None if item.get("retry_after") is None else str(item["retry_after"]),
                policy=item.get("policy"),
                origin="sandbox",
            )
            for item in answer.json()["requests"]
        ]
