"""Every Prometheus metric of leadsync, with bounded labels (no lead id, email or error text).

Definitions only: what feeds them (the HubSpot client's observer, the worker's result hook,
the gauge sampler) is wired by the entry points in `runtime.py`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from leadsync.engine.eraser import ErasureOutcome
from leadsync.engine.gate import PauseReason
from leadsync.engine.writer import COUNTED_OUTCOMES
from leadsync.store.tables import ErasureStatus, SyncStatus

# `*_created` samples double the series count and no dashboard or alert of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# One label value per outcome kind the engine counts (engine/writer.py).
SYNC_OUTCOMES = tuple(kind.value for kind in COUNTED_OUTCOMES)
HUBSPOT_OPERATIONS = (
    "create",
    "update",
    "update_by_email",
    "search",
    "batch_upsert",
    "probe",
    "gdpr_delete",
)
# 3xx: the client never follows redirects, so one means a wrong HUBSPOT_BASE_URL or proxy.
STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "network")

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

ERASURES = Counter(
    "leadsync_erasure_calls_total",
    "GDPR delete calls of erasure requests by outcome (docs/privacy.md).",
    ["outcome"],
)
ERASURES_BY_STATUS = Gauge(
    "leadsync_erasure_requests", "Erasure requests per status (sampled periodically).", ["status"]
)
OLDEST_OPEN_ERASURE = Gauge(
    "leadsync_oldest_open_erasure_seconds",
    "Age of the oldest erasure request not yet completed (0 when none is open; sampled).",
)
RETENTION_SCRUBBED = Counter(
    "leadsync_retention_scrubbed_total",
    "Leads whose personal data the retention period (LEADSYNC_RETENTION_DAYS) removed.",
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


for _erasure_outcome in ErasureOutcome:
    ERASURES.labels(outcome=_erasure_outcome.value)
for _erasure_status in ErasureStatus:
    ERASURES_BY_STATUS.labels(status=_erasure_status.value)
