"""Every Prometheus metric of leadsync, with bounded labels (no lead id, email or error text)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.gate import Gate, PauseReason
from leadsync.engine.writer import LeadResult, ResultKind
from leadsync.logging import get_logger
from leadsync.store.db import utcnow
from leadsync.store.queue import LeadSnapshot, stats
from leadsync.store.tables import SyncStatus

log = get_logger(__name__)

# `*_created` samples double the series count and no dashboard or alert of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

SYNC_OUTCOMES = ("synced", "retry", "failed", "rate_limited", "auth_paused")
HUBSPOT_OPERATIONS = ("create", "update", "update_by_email", "search", "batch_upsert", "probe")
# 3xx: the client never follows redirects, so one means a wrong HUBSPOT_BASE_URL or proxy.
STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "network")
DEFAULT_SAMPLE_SECONDS = 15.0

SYNC_ATTEMPTS = Counter(
    "leadsync_sync_attempts_total",
    "Lead sync attempts by outcome (one per lead per attempt).",
    ["outcome"],
)
HUBSPOT_REQUESTS = Counter(
    "leadsync_hubspot_requests_total",
    "HTTP requests sent to HubSpot by operation and status class.",
    ["operation", "status_class"],
)
RETRIES = Counter(
    "leadsync_sync_retries_total", "Leads rescheduled for another attempt after a failure."
)
LEADS_CREATED = Counter("leadsync_leads_created_total", "Leads accepted by POST /leads.")
HUBSPOT_LATENCY = Histogram(
    "leadsync_hubspot_request_duration_seconds",
    "HubSpot request latency by operation.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SYNC_LATENCY = Histogram(
    "leadsync_lead_sync_latency_seconds",
    "Time from a lead's creation to its SYNCED outcome.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
LEADS_BY_STATUS = Gauge(
    "leadsync_leads", "Leads per sync status (sampled periodically).", ["status"]
)
OLDEST_DUE = Gauge(
    "leadsync_oldest_due_lead_seconds",
    "How long the oldest due lead has been waiting (0 when none is due; sampled).",
)
GATE_PAUSED = Gauge(
    "leadsync_gate_paused", "1 while every worker is paused, by reason (sampled).", ["reason"]
)
BUDGET_REMAINING = Gauge(
    "leadsync_hubspot_budget_remaining",
    "Requests left in HubSpot's rolling window as it last reported (sampled; -1 when unknown).",
)
GAUGES_SAMPLED = Gauge(
    "leadsync_gauges_sampled_timestamp_seconds",
    "When the sampled gauges were last refreshed (Unix time): stale while the database is away.",
)
DAILY_REMAINING = Gauge(
    "leadsync_hubspot_daily_remaining",
    "Requests left today as HubSpot last reported (sampled; -1 when unknown).",
)

# Pre-create every label combination so dashboards show zeros instead of gaps.
for _outcome in SYNC_OUTCOMES:
    SYNC_ATTEMPTS.labels(outcome=_outcome)
for _operation in (*HUBSPOT_OPERATIONS, "other"):
    HUBSPOT_LATENCY.labels(operation=_operation)
    for _cls in STATUS_CLASSES:
        HUBSPOT_REQUESTS.labels(operation=_operation, status_class=_cls)
for _status in SyncStatus:
    LEADS_BY_STATUS.labels(status=_status.value)
for _reason in PauseReason:
    GATE_PAUSED.labels(reason=_reason.value)


def status_class(http_status: int | None) -> str:
    """Return the bounded label for an HTTP status (None means no response at all)."""
    if http_status is None:
        return "network"
    if http_status == 429:
        return "429"
    return f"{min(max(http_status // 100, 2), 5)}xx"


def observe_hubspot_request(operation: str, http_status: int | None, seconds: float) -> None:
    """Count one HubSpot request and its latency (the client's observer hook)."""
    if operation not in HUBSPOT_OPERATIONS:
        operation = "other"
    HUBSPOT_REQUESTS.labels(operation=operation, status_class=status_class(http_status)).inc()
    HUBSPOT_LATENCY.labels(operation=operation).observe(seconds)


def observe_sync_results(
    results: Sequence[LeadResult], leads: Sequence[LeadSnapshot], _seconds: float
) -> None:
    """Count each lead's outcome and the creation-to-sync latency of the synced ones."""
    created = {lead.id: lead.created_at for lead in leads}
    now = utcnow()
    outcomes = collections.Counter(result.kind for result in results)
    outcomes.pop(ResultKind.RELEASED, None)
    for kind, count in outcomes.items():  # one increment per outcome, not per lead
        SYNC_ATTEMPTS.labels(outcome=kind.value).inc(count)
    RETRIES.inc(outcomes.get(ResultKind.RETRY, 0))
    for result in results:
        if result.kind is ResultKind.SYNCED and result.lead_id in created:
            SYNC_LATENCY.observe(max(0.0, (now - created[result.lead_id]).total_seconds()))


async def sample_gauges(sessions: async_sessionmaker[AsyncSession], *, settings: Settings) -> None:
    """Refresh the gauges from the database: one grouped count and one indexed min."""
    now = utcnow()
    async with sessions() as session:
        queue_stats = await stats(session, now=now)
    for status, count in queue_stats.counts.items():
        LEADS_BY_STATUS.labels(status=status).set(count)
    OLDEST_DUE.set(queue_stats.oldest_due_seconds or 0.0)
    gate = Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)
    state = await gate.state()
    paused = state.paused(now)
    for reason in PauseReason:
        GATE_PAUSED.labels(reason=reason.value).set(
            1 if paused and state.pause_reason == reason else 0
        )
    BUDGET_REMAINING.set(-1 if state.reported_remaining is None else state.reported_remaining)
    DAILY_REMAINING.set(state.daily_remaining if state.daily_remaining is not None else -1)
    GAUGES_SAMPLED.set(now.timestamp())


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
    stack: contextlib.AsyncExitStack,
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
