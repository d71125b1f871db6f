"""The wiring the entry points share: a worker with its HubSpot client and metrics hooks, the
PostgreSQL listener, and the gauge sampler. `app.py`, `cli.py` and the demo build with these;
nothing below them knows about metrics or entry points.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync import metrics
from leadsync.config import Settings
from leadsync.engine.eraser import ErasureOutcome
from leadsync.engine.gate import PauseReason
from leadsync.engine.listener import PostgresListener
from leadsync.engine.worker import Worker
from leadsync.engine.writer import LeadResult, ResultKind
from leadsync.hubspot.client import HubSpotClient
from leadsync.logging import get_logger
from leadsync.store.db import utcnow
from leadsync.store.queue import LeadSnapshot
from leadsync.usecases.privacy import erasure_counts
from leadsync.usecases.sync import sync_status
from leadsync.web.context import AppContext

log = get_logger(__name__)

DEFAULT_SAMPLE_SECONDS = 15.0


def observe_hubspot_request(operation: str, http_status: int | None, seconds: float) -> None:
    """Count one HubSpot request and its latency (the client's observer hook)."""
    if operation not in metrics.HUBSPOT_OPERATIONS:
        operation = "other"
    status_class = metrics.status_class(http_status)
    metrics.HUBSPOT_REQUESTS.labels(operation=operation, status_class=status_class).inc()
    metrics.HUBSPOT_LATENCY.labels(operation=operation).observe(seconds)


def observe_sync_results(
    results: Sequence[LeadResult], leads: Sequence[LeadSnapshot], _seconds: float
) -> None:
    """Count each lead's outcome and the creation-to-sync latency of the synced ones."""
    created = {lead.id: lead.created_at for lead in leads}
    now = utcnow()
    outcomes = collections.Counter(result.kind for result in results)
    outcomes.pop(ResultKind.RELEASED, None)
    for kind, count in outcomes.items():  # one increment per outcome, not per lead
        metrics.SYNC_ATTEMPTS.labels(outcome=kind.value).inc(count)
    metrics.RETRIES.inc(outcomes.get(ResultKind.RETRY, 0))
    for result in results:
        if result.kind is ResultKind.SYNCED and result.lead_id in created:
            age = (now - created[result.lead_id]).total_seconds()
            metrics.SYNC_LATENCY.observe(max(0.0, age))


def observe_erasure(outcome: ErasureOutcome) -> None:
    """Count one GDPR delete call of an erasure by its outcome."""
    metrics.ERASURES.labels(outcome=outcome.value).inc()


def observe_retention(scrubbed: int) -> None:
    """Count the leads a retention pass scrubbed."""
    metrics.RETENTION_SCRUBBED.inc(scrubbed)


async def sample_gauges(sessions: async_sessionmaker[AsyncSession], *, settings: Settings) -> None:
    """Refresh the gauges from the status report: one grouped count, one indexed min, the gate."""
    report = await sync_status(sessions, settings=settings)
    for status, count in report.counts.items():
        metrics.LEADS_BY_STATUS.labels(status=status).set(count)
    metrics.OLDEST_DUE.set(report.oldest_due_seconds or 0.0)
    gate = report.gate
    for reason in PauseReason:
        paused = gate.paused and gate.reason == reason
        metrics.GATE_PAUSED.labels(reason=reason.value).set(1 if paused else 0)
    remaining = report.budget.reported_remaining
    daily = report.budget.daily_remaining
    metrics.BUDGET_REMAINING.set(-1 if remaining is None else remaining)
    metrics.DAILY_REMAINING.set(-1 if daily is None else daily)
    erasures = await erasure_counts(sessions)
    for status, count in erasures.by_status.items():
        metrics.ERASURES_BY_STATUS.labels(status=status).set(count)
    oldest = erasures.oldest_open_at
    metrics.OLDEST_OPEN_ERASURE.set(
        0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    )
    metrics.GAUGES_SAMPLED.set(utcnow().timestamp())


async def run_sampler(
    sessions: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    interval_seconds: float = DEFAULT_SAMPLE_SECONDS,
) -> None:
    """Sample the gauges every interval until cancelled; a failed sample is logged, not fatal."""
    # First sample after one interval: a process that only lives for a moment (a test, a
    # one-off command) should not query for metrics nobody will scrape.
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await sample_gauges(sessions, settings=settings)
        except Exception as exc:  # the database may be briefly away; metrics must not crash
            log.warning("metrics.sample_failed", error_type=type(exc).__name__)


async def start_sampler(
    sessions: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    stack: AsyncExitStack,
    interval_seconds: float = DEFAULT_SAMPLE_SECONDS,
) -> None:
    """Run the gauge sampler as a task that the exit stack cancels."""
    task = asyncio.create_task(
        run_sampler(sessions, settings=settings, interval_seconds=interval_seconds),
        name="leadsync-metrics-sampler",
    )

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


async def build_worker(
    settings: Settings, *, sessions: async_sessionmaker[AsyncSession], stack: AsyncExitStack
) -> Worker:
    """Build a worker with its HubSpot client and metrics hooks; the stack closes the client."""
    client = await stack.enter_async_context(
        HubSpotClient.from_settings(settings, observer=observe_hubspot_request)
    )
    return Worker(
        settings=settings,
        sessions=sessions,
        client=client,
        on_results=observe_sync_results,
        on_erasure=observe_erasure,
        on_retention=observe_retention,
    )


async def start_worker(worker: Worker, *, settings: Settings, stack: AsyncExitStack) -> None:
    """Start the loop (and the PostgreSQL listener) as tasks that the stack stops and drains."""
    task = asyncio.create_task(worker.run(), name="leadsync-worker")

    async def stop() -> None:
        await worker.stop()
        await task

    stack.push_async_callback(stop)
    if settings.is_postgres and settings.wakeups_enabled:
        listener = PostgresListener(url=settings.async_database_url, on_notify=worker.wake)
        await listener.start()
        stack.push_async_callback(listener.stop)


async def start_in_app(ctx: AppContext, stack: AsyncExitStack) -> Callable[[], None]:
    """Run a worker beside the API for the app's lifetime; return its wake-up hook."""
    worker = await build_worker(ctx.settings, sessions=ctx.sessions, stack=stack)
    await start_worker(worker, settings=ctx.settings, stack=stack)
    return worker.wake
