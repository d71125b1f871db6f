"""The worker loop: wait for work, claim a batch, sync it, record outcomes; drain on stop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.eraser import Eraser, ErasureOutcome
from leadsync.engine.gate import Gate, Paused, ProbeDue
from leadsync.engine.lease import BatchLease
from leadsync.engine.outcomes import to_completion
from leadsync.engine.retry import RetryPolicy
from leadsync.engine.writer import ContactWriter, LeadResult, ResultKind
from leadsync.hubspot.client import HubSpotClient
from leadsync.hubspot.errors import TRANSIENT_4XX_STATUSES, AuthError, HubSpotError
from leadsync.logging import get_logger
from leadsync.redact import mask_values
from leadsync.store import history, privacy, queue, workers
from leadsync.store.db import transaction, utcnow
from leadsync.store.fence import SendFence, open_fence
from leadsync.store.queue import Claim, Completion, LeadSnapshot
from leadsync.store.tables import SyncStatus

log = get_logger(__name__)
_STDLIB_LOG = logging.getLogger(__name__)
# Single mode costs one or two calls per lead at ~19 calls/s: small claims keep leases short.
SINGLE_MODE_CLAIM = 10
# Outcomes whose next attempt waits for the gate's pause to end.
_WAITS_FOR_GATE = frozenset({ResultKind.RATE_LIMITED, ResultKind.AUTH_PAUSED, ResultKind.RELEASED})
# History older than LEADSYNC_HISTORY_DAYS is deleted by reconciliation, in transactions of
# this many rows, at most PRUNE_BATCHES of them per pass (the rest waits for the next pass).
PRUNE_BATCH_ROWS = 5000
PRUNE_BATCHES = 10
# A worker's heartbeat row is deleted once it has not been seen for this long.
FORGET_WORKERS_AFTER = dt.timedelta(days=1)
# LEADSYNC_RETENTION_DAYS is applied in transactions of this many leads, at most
# RETENTION_BATCHES of them per reconciliation pass, beside the sync and paced so as not to
# be in its way: after each transaction the pass rests for (1 / RETENTION_DUTY - 1) times
# what the transaction took, so it uses at most a tenth of one connection's time
# (bench/retention.py measures the drain with and without it).
RETENTION_BATCH_ROWS = 1000
RETENTION_BATCHES = 50
RETENTION_DUTY = 0.1


def new_worker_id(host: str, pid: int) -> str:
    """Return an id naming this worker in history rows and heartbeats: host, pid, a nonce."""
    return f"{host[:40]}:{pid}:{secrets.token_hex(3)}"


class Worker:
    """Drains due leads to HubSpot; any number of them may share one database."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        client: HubSpotClient,
        rng: random.Random | None = None,
        on_results: Callable[[list[LeadResult], list[LeadSnapshot], float], None] | None = None,
        on_erasure: Callable[[ErasureOutcome], None] | None = None,
        on_retention: Callable[[int], None] | None = None,
        fence: SendFence | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client
        self._rng = rng or random.Random()
        self._on_results = on_results
        self._on_retention = on_retention
        self._fence = fence or open_fence(sessions.kw["bind"], sessions)
        self.gate = Gate(
            sessions=sessions,
            limit=settings.rate_limit,
            zone=settings.account_zone,
            pause_cap_seconds=settings.pause_cap_seconds,
        )
        self._service = ContactWriter(
            client=client,
            budget=self.gate,
            mode=settings.hubspot_write_mode,
            extra_properties=settings.hubspot_extra_properties,
        )
        self._policy = RetryPolicy(
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_cap_seconds,
            max_attempts=settings.max_attempts,
        )
        self.eraser = Eraser(
            sessions=sessions,
            client=client,
            gate=self.gate,
            policy=self._policy,
            lease_seconds=settings.lease_seconds,
            rng=self._rng,
            on_outcome=on_erasure,
        )
        self._claim_size = (
            settings.batch_size
            if settings.hubspot_write_mode == "batch"
            else min(settings.batch_size, SINGLE_MODE_CLAIM)
        )
        self._woken = asyncio.Event()
        self._privacy_woken = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._next_reconcile = 0.0
        self._backlog = False
        self._abandoned = False
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.worker_id = new_worker_id(self.host, self.pid)
        self.started_at = utcnow()

    def wake(self) -> None:
        """Ask the loops to look for due leads and erasures now (called after a commit)."""
        if self._settings.wakeups_enabled:
            self._woken.set()
            self._privacy_woken.set()

    async def run(self) -> None:
        """Loop until stop(): claim due leads while the budget allows, record every outcome."""
        log.info("sync.worker.started", mode=self._settings.hubspot_write_mode)
        privacy_loop = asyncio.create_task(self._privacy_loop(), name="leadsync-privacy")
        try:
            while not self._stopping.is_set():
                try:
                    await self._step()
                except Exception as exc:  # a lost database must not end the loop for good
                    log.warning("sync.worker.step_failed", error_type=type(exc).__name__)
                    await self._idle(self._settings.poll_interval_seconds, wakeable=False)
        finally:
            self._privacy_woken.set()
            if self._abandoned:
                privacy_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await privacy_loop
            await self._drain()
            log.info("sync.worker.stopped")

    async def _privacy_loop(self) -> None:
        """Execute due erasures and apply the retention period, beside the sync loop."""
        next_retention = 0.0
        while not self._stopping.is_set():
            self._privacy_woken.clear()
            calls = 0
            try:
                calls = await self.eraser.run_due()
                if time.monotonic() >= next_retention:
                    await self.apply_retention(now=utcnow())
                    next_retention = time.monotonic() + self._settings.reconcile_interval_seconds
            except Exception as exc:  # as in the sync loop: log, wait, try again
                log.warning("privacy.step_failed", error_type=type(exc).__name__)
            if calls:
                continue  # more may be due: a claim takes at most ERASURE_CLAIM
            wait = self._settings.poll_interval_seconds
            if self._settings.retention_days is not None:
                wait = min(wait, max(0.0, next_retention - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._privacy_woken.wait(), timeout=wait)

    async def apply_retention(self, *, now: dt.datetime) -> int:
        """Scrub the personal fields of finished leads older than LEADSYNC_RETENTION_DAYS,
        a bounded batch per transaction; return how many leads were scrubbed."""
        days = self._settings.retention_days
        if days is None:
            return 0
        cutoff = now - dt.timedelta(days=days)
        scrubbed = 0
        for _ in range(RETENTION_BATCHES):
            if self._stopping.is_set():
                break
            started = time.monotonic()
            async with transaction(self._sessions) as session:
                done = await privacy.scrub_expired(
                    session, created_before=cutoff, limit=RETENTION_BATCH_ROWS, now=now
                )
            scrubbed += done
            if done < RETENTION_BATCH_ROWS:
                break
            # Pacing, not a race workaround: the sync gets the database's time first.
            rest = (time.monotonic() - started) * (1 / RETENTION_DUTY - 1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=rest)
        if scrubbed:
            log.info("privacy.retention.scrubbed", leads=scrubbed, retention_days=days)
            if self._on_retention is not None:
                self._on_retention(scrubbed)
        return scrubbed

    async def stop(self) -> None:
        """Stop claiming; in-flight batches finish or release their leases."""
        self._stopping.set()
        self._woken.set()

    async def abandon(self) -> None:
        """Stop at once, as a killed process would: leases stay taken, no outcome is recorded.

        For tests and fault drills; production code stops with `stop()`, which drains.
        """
        self._abandoned = True
        self._stopping.set()
        self._woken.set()
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _step(self) -> None:
        if time.monotonic() >= self._next_reconcile:
            await self.reconcile()
            self._next_reconcile = time.monotonic() + self._settings.reconcile_interval_seconds
        if len(self._inflight) >= self._settings.max_inflight_batches:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            return
        self._woken.clear()
        if not self._backlog and not await self.has_due():
            await self._idle(await self._seconds_until_due())
            return
        try:
            slot = await self.gate.reserve()
        except ProbeDue:  # a credential pause ran out: this worker probes, the others wait
            await self._probe()
            return
        except Paused as paused:
            await self._idle((paused.until - utcnow()).total_seconds(), wakeable=False)
            return
        # Claim at the slot, not before: whatever arrived while waiting joins this batch.
        claimed = asyncio.Event()
        task = asyncio.create_task(self._claim_and_process(slot, claimed))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        # While the last claim came back full there is a backlog: book the next slots at once
        # so batches overlap. Otherwise one claim at a time, so that a quiet queue does not
        # book slots that nobody will use.
        if not self._backlog:
            await _first_of(claimed.wait(), task)

    async def has_due(self) -> bool:
        """Return whether any lead is due now (one indexed probe, no lock)."""
        async with self._sessions() as session:
            return await queue.has_due(session, now=utcnow())

    async def _seconds_until_due(self) -> float:
        # A retry due in 0.5 s must not wait for the next poll 5 s away.
        async with self._sessions() as session:
            due_at = await queue.next_due_at(session)
        if due_at is None:
            return self._settings.poll_interval_seconds
        return max(0.01, (due_at - utcnow()).total_seconds())

    async def _claim_and_process(self, slot: dt.datetime, claimed: asyncio.Event) -> None:
        try:
            wait = (slot - utcnow()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)  # pacing to the shared schedule
            try:
                # The slot was booked before the wait: a pause that began meanwhile wins.
                batch = await self.claim(check_gate=True)
            except Paused:
                self._backlog = False
                return
            self._backlog = len(batch) >= self._claim_size
        finally:
            claimed.set()
        if batch.exhausted:
            self._report_exhausted(batch)
        if batch:
            await self.process(batch, prepaid=True)

    async def _probe(self) -> None:
        try:
            await self._client.probe()
        except AuthError as exc:
            log.warning("sync.auth.probe_failed", http_status=exc.http_status, error=str(exc))
            return
        except HubSpotError as exc:
            log.warning("sync.auth.probe_inconclusive", http_status=exc.http_status)
            return
        await self.gate.resume()
        log.info("sync.auth.resumed")
        self._woken.set()

    async def _idle(self, seconds: float, *, wakeable: bool = True) -> None:
        seconds = max(0.0, min(seconds, self._settings.poll_interval_seconds))
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._stopping.wait())}
        if wakeable:
            waiters.add(asyncio.ensure_future(self._woken.wait()))
        if self._inflight:
            # A finished batch frees a slot: look for more work at once.
            waiters.add(asyncio.ensure_future(_first_done(self._inflight)))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def claim(self, *, check_gate: bool = False) -> Claim:
        """Lease the next due leads to this worker.

        `check_gate`: first raise Paused if the sync is paused (in the claim's transaction:
        one connection and one transaction fewer than a separate check).
        """
        async with transaction(self._sessions) as session:
            if check_gate:
                await self.gate.check(await session.connection())
            return await queue.claim(
                session,
                limit=self._claim_size,
                lease_seconds=self._settings.lease_seconds,
                now=utcnow(),
                max_attempts=self._settings.max_attempts,
                worker_id=self.worker_id,
            )

    async def process(self, batch: Claim, *, prepaid: bool = False) -> None:
        """Sync one claimed batch and record each lead's outcome under its lease."""
        started = time.monotonic()
        lease = BatchLease(
            sessions=self._sessions,
            token=batch.token,
            lead_ids=[lead.id for lead in batch.leads],
            expires_at=batch.expires_at,
            lease_seconds=self._settings.lease_seconds,
            call_seconds=self._settings.hubspot_total_timeout_seconds,
            fence=self._fence,
        )
        leads = batch.leads
        try:
            results = await self._service.sync(
                leads, prepaid=prepaid, history=batch.history, lease=lease
            )
        except asyncio.CancelledError:
            if not self._abandoned:
                await asyncio.shield(self._release(leads, lease))
            raise
        except Exception as exc:  # a bug must not strand leads: they retry with backoff
            log.exception("sync.batch.crashed", lead_ids=[lead.id for lead in leads])
            error = f"internal error: {type(exc).__name__}"
            results = [LeadResult(lead.id, ResultKind.RETRY, error=error) for lead in leads]
        try:
            await asyncio.shield(
                self._record(leads, results, time.monotonic() - started, lease.expires_at)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The leads stay IN_PROGRESS under a lease that runs out by itself; the next claim
            # counts the lost attempt (docs/architecture.md, state machine).
            log.error(
                "sync.batch.record_failed",
                lead_ids=[lead.id for lead in leads],
                error_type=type(exc).__name__,
            )

    def _completion(
        self,
        result: LeadResult,
        lead: LeadSnapshot,
        now: dt.datetime,
        resume_at: dt.datetime | None,
    ) -> Completion:
        retry_after = result.retry_after_seconds
        if (
            result.kind is ResultKind.RETRY
            and retry_after is not None
            and retry_after > self._settings.retry_cap_seconds
        ):
            log.warning(
                "sync.retry_after.capped",
                lead_id=lead.id,
                asked_seconds=retry_after,
                capped_seconds=self._settings.retry_cap_seconds,
            )
        try:
            return to_completion(
                result=result,
                lead=lead,
                policy=self._policy,
                rng=self._rng,
                now=now,
                resume_at=resume_at,
            )
        except Exception as exc:
            # Whatever HubSpot sent, the lead must end in a defined state: retry with backoff.
            log.exception("sync.outcome.unrecordable", lead_id=lead.id)
            error = f"internal error recording the outcome: {type(exc).__name__}"
            fallback = LeadResult(lead.id, ResultKind.RETRY, http_status=result.http_status)
            return to_completion(
                result=replace(fallback, error=error),
                lead=lead,
                policy=self._policy,
                rng=self._rng,
                now=now,
            )

    async def _record(
        self,
        leads: list[LeadSnapshot],
        results: list[LeadResult],
        seconds: float,
        wake_until: dt.datetime | None = None,
    ) -> None:
        now = utcnow()
        resume_at = None
        if any(result.kind in _WAITS_FOR_GATE for result in results):
            state = await self.gate.state()
            resume_at = state.paused_until if state.paused(now) else None
        by_id = {lead.id: lead for lead in leads}
        completions = [
            self._completion(result, by_id[result.lead_id], now, resume_at) for result in results
        ]
        async with transaction(self._sessions) as session:
            written = await queue.complete(
                session,
                completions=completions,
                now=now,
                wake_until=wake_until,
                worker_id=self.worker_id,
                duration_ms=round(seconds * 1000),
            )
        if len(written) < len(completions):
            # Fenced out: the lease expired and another worker owns these leads now; its
            # outcome counts, not ours (the write was idempotent at HubSpot either way).
            fenced = [c.lead_id for c in completions if c.lead_id not in written]
            log.info("sync.batch.fenced", lead_ids=fenced)
            pairs = [
                (r, c) for r, c in zip(results, completions, strict=True) if c.lead_id in written
            ]
            results = [r for r, _ in pairs]
            completions = [c for _, c in pairs]
        # A transient failure that used up the last attempt is a failure, in logs and metrics.
        results = [
            replace(result, kind=ResultKind.FAILED)
            if result.kind is ResultKind.RETRY and completion.status is SyncStatus.FAILED
            else result
            for result, completion in zip(results, completions, strict=True)
        ]
        self._log_outcomes(results, completions, seconds, by_id)
        if self._on_results is not None:
            self._on_results(results, leads, seconds)

    def _report_exhausted(self, batch: Claim) -> None:
        results = [
            LeadResult(lead.id, ResultKind.FAILED, error=queue.LEASE_EXPIRED_ERROR)
            for lead in batch.exhausted
        ]
        for lead in batch.exhausted:
            log.warning(
                ResultKind.FAILED.event,
                lead_id=lead.id,
                attempt=lead.attempts + 1,
                status=SyncStatus.FAILED.value,
                error=queue.LEASE_EXPIRED_ERROR,
            )
        if self._on_results is not None:
            self._on_results(results, batch.exhausted, 0.0)

    def _log_outcomes(
        self,
        results: list[LeadResult],
        completions: list[Completion],
        seconds: float,
        leads: dict[int, LeadSnapshot],
    ) -> None:
        # One line per lead; skipped wholesale when INFO is off (100 dropped calls a batch).
        if not _STDLIB_LOG.isEnabledFor(logging.INFO) and all(
            result.kind is ResultKind.SYNCED for result in results
        ):
            return
        duration_ms = round(seconds * 1000, 1)
        for result, completion in zip(results, completions, strict=True):
            log_event = log.info if result.kind is ResultKind.SYNCED else log.warning
            if result.kind is ResultKind.RELEASED:
                log_event = log.debug
            log_event(
                result.kind.event,
                lead_id=result.lead_id,
                hubspot_id=result.hubspot_id,
                http_status=result.http_status,
                attempt=completion.attempts,
                status=completion.status.value,
                duration_ms=duration_ms,
                # HubSpot quotes the values it refuses: the lead's own fields never reach a log.
                error=_masked(result.error, leads.get(result.lead_id)),
            )

    async def _release(self, leads: list[LeadSnapshot], lease: BatchLease) -> None:
        results = [LeadResult(lead.id, ResultKind.RELEASED) for lead in leads]
        await self._record(leads, results, 0.0, lease.expires_at)

    async def _drain(self) -> None:
        if not self._inflight or self._abandoned:
            return
        grace = self._settings.lease_seconds / 2
        log.info("sync.worker.draining", batches=len(self._inflight), grace_seconds=grace)
        _done, pending = await asyncio.wait(self._inflight, timeout=grace)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)

    async def reconcile(self) -> None:
        """Requeue leads FAILED by transient errors long enough ago; free dead leases; write
        this worker's heartbeat; prune history older than LEADSYNC_HISTORY_DAYS."""
        now = utcnow()
        async with transaction(self._sessions) as session:
            requeued = await queue.requeue_failed(
                session,
                now=now,
                older_than_seconds=self._settings.reconcile_after_seconds,
                transient_4xx=TRANSIENT_4XX_STATUSES,
            )
            released = await queue.release_expired_leases(
                session, now=now, max_attempts=self._settings.max_attempts, worker_id=self.worker_id
            )
            await workers.heartbeat(
                session,
                worker_id=self.worker_id,
                host=self.host,
                pid=self.pid,
                started_at=self.started_at,
                now=now,
            )
            await workers.forget_before(session, before=now - FORGET_WORKERS_AFTER)
        pruned = await self.prune_history(now=now)
        if requeued or released or pruned:
            log.info(
                "sync.reconciled", requeued=requeued, expired_leases=released, history_pruned=pruned
            )

    async def prune_history(self, *, now: dt.datetime) -> int:
        """Delete history rows older than LEADSYNC_HISTORY_DAYS, a bounded batch at a time."""
        before = now - dt.timedelta(days=self._settings.history_days)
        pruned = 0
        for _ in range(PRUNE_BATCHES):
            async with transaction(self._sessions) as session:
                deleted = await history.prune(session, before=before, limit=PRUNE_BATCH_ROWS)
            pruned += deleted
            if deleted < PRUNE_BATCH_ROWS:
                break
        return pruned


def _masked(error: str | None, lead: LeadSnapshot | None) -> str | None:
    if error is None or lead is None:
        return error
    return mask_values(error, lead.values.values())


async def _first_of(event_wait: Coroutine[Any, Any, object], task: asyncio.Task[None]) -> None:
    waiter = asyncio.ensure_future(event_wait)
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


async def _first_done(tasks: set[asyncio.Task[None]]) -> object:
    return await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
