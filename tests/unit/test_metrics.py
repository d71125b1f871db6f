"""Prometheus metrics: status classes, outcome counting, latency, sampled gauges, bounded labels."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync import runtime
from leadsync.config import Settings
from leadsync.engine.eraser import ErasureOutcome
from leadsync.engine.gate import Gate, PauseReason
from leadsync.engine.writer import LeadResult, ResultKind
from leadsync.hubspot.models import RateLimitInfo
from leadsync.metrics import HUBSPOT_OPERATIONS, STATUS_CLASSES, SYNC_OUTCOMES, status_class
from leadsync.runtime import observe_hubspot_request, observe_sync_results, sample_gauges
from leadsync.store.db import transaction, utcnow
from leadsync.store.leads import insert_lead
from leadsync.store.queue import LeadSnapshot
from leadsync.store.tables import ErasureStatus, Lead, SyncStatus

# The label values each labelled metric may carry; anything else is an unbounded label.
# "other" is where observe_hubspot_request puts an operation it does not know.
DECLARED = {
    "outcome": set(SYNC_OUTCOMES) | {o.value for o in ErasureOutcome},
    "operation": {*HUBSPOT_OPERATIONS, "other"},
    "status_class": set(STATUS_CLASSES),
    "status": {s.value for s in SyncStatus} | {s.value for s in ErasureStatus},
    "reason": {r.value for r in PauseReason},
    "le": None,  # histogram buckets: fixed by the declaration
}


def value(name: str, **labels: str) -> float:
    """Return a sample's current value (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def leadsync_samples() -> list[tuple[str, dict[str, str]]]:
    return [
        (sample.name, dict(sample.labels))
        for family in REGISTRY.collect()
        if family.name.startswith("leadsync_")
        for sample in family.samples
    ]


def snapshot(lead_id: int, *, age_seconds: float = 0.0) -> LeadSnapshot:
    return LeadSnapshot.of(
        id=lead_id,
        email=f"lead{lead_id}@example.com",
        created_at=utcnow() - dt.timedelta(seconds=age_seconds),
        attempts=0,
        lease_token="lease",
    )


# --------------------------------------------------------------------------- status classes


@pytest.mark.parametrize(
    ("http_status", "expected"),
    [
        (None, "network"),
        (200, "2xx"),
        (201, "2xx"),
        (207, "2xx"),
        (400, "4xx"),
        (401, "4xx"),
        (403, "4xx"),
        (404, "4xx"),
        (409, "4xx"),
        (423, "4xx"),
        (429, "429"),
        (500, "5xx"),
        (502, "5xx"),
        (503, "5xx"),
        (504, "5xx"),
        (599, "5xx"),
    ],
)
def test_status_class_maps_each_status_to_its_class(http_status: int | None, expected: str) -> None:
    assert status_class(http_status) == expected


def test_status_class_of_every_status_is_declared() -> None:
    # 3xx included: the client never follows redirects, so a wrong base URL yields them.
    classes = {status_class(code) for code in range(100, 600)} | {status_class(None)}

    assert classes <= set(STATUS_CLASSES), classes - set(STATUS_CLASSES)


def test_every_declared_status_class_is_reachable() -> None:
    reachable = {status_class(code) for code in (200, 301, 404, 429, 500)} | {status_class(None)}

    assert set(STATUS_CLASSES) <= reachable


# --------------------------------------------------------------------------- HubSpot requests


def test_hubspot_request_counts_by_operation_and_class_and_times_it() -> None:
    requests = "leadsync_hubspot_requests_total"
    latency = "leadsync_hubspot_request_duration_seconds"
    before_429 = value(requests, operation="batch_upsert", status_class="429")
    before_net = value(requests, operation="create", status_class="network")
    before_count = value(f"{latency}_count", operation="batch_upsert")
    before_sum = value(f"{latency}_sum", operation="batch_upsert")

    observe_hubspot_request("batch_upsert", 429, 0.2)
    observe_hubspot_request("batch_upsert", 429, 0.3)
    observe_hubspot_request("create", None, 5.0)

    assert value(requests, operation="batch_upsert", status_class="429") == before_429 + 2
    assert value(requests, operation="create", status_class="network") == before_net + 1
    assert value(f"{latency}_count", operation="batch_upsert") == before_count + 2
    assert value(f"{latency}_sum", operation="batch_upsert") == pytest.approx(before_sum + 0.5)


def test_unknown_operation_is_counted_as_other() -> None:
    before = value("leadsync_hubspot_requests_total", operation="other", status_class="2xx")

    observe_hubspot_request("delete_everything", 200, 0.01)

    assert value("leadsync_hubspot_requests_total", operation="other", status_class="2xx") == (
        before + 1
    )
    operations = {labels.get("operation") for _name, labels in leadsync_samples()}
    assert "delete_everything" not in operations


# --------------------------------------------------------------------------- sync outcomes


def test_sync_results_count_each_outcome_once_and_retries() -> None:
    attempts = "leadsync_sync_attempts_total"
    before = {outcome: value(attempts, outcome=outcome) for outcome in SYNC_OUTCOMES}
    retries_before = value("leadsync_sync_retries_total")
    kinds = [
        ResultKind.SYNCED,
        ResultKind.SYNCED,
        ResultKind.SYNCED,
        ResultKind.RETRY,
        ResultKind.RETRY,
        ResultKind.FAILED,
        ResultKind.RATE_LIMITED,
        ResultKind.AUTH_PAUSED,
        ResultKind.RELEASED,  # never sent: not an attempt
        ResultKind.RELEASED,
    ]
    leads = [snapshot(i) for i in range(1, len(kinds) + 1)]
    results = [LeadResult(lead.id, kind) for lead, kind in zip(leads, kinds, strict=True)]

    observe_sync_results(results, leads, 0.5)

    delta = {
        outcome: value(attempts, outcome=outcome) - before[outcome] for outcome in SYNC_OUTCOMES
    }
    assert delta == {"synced": 3, "retry": 2, "failed": 1, "rate_limited": 1, "auth_paused": 1}
    assert value("leadsync_sync_retries_total") - retries_before == 2


def test_sync_latency_is_creation_to_synced_for_synced_leads_only() -> None:
    latency = "leadsync_lead_sync_latency_seconds"
    count_before = value(f"{latency}_count")
    sum_before = value(f"{latency}_sum")
    leads = [snapshot(1, age_seconds=30), snapshot(2, age_seconds=90), snapshot(3, age_seconds=500)]
    results = [
        LeadResult(1, ResultKind.SYNCED, hubspot_id="101"),
        LeadResult(2, ResultKind.SYNCED, hubspot_id="102"),
        LeadResult(3, ResultKind.FAILED, http_status=400, error="bad email"),
        LeadResult(99, ResultKind.SYNCED, hubspot_id="199"),  # no snapshot: no latency
    ]

    observe_sync_results(results, leads, 0.1)

    assert value(f"{latency}_count") - count_before == 2
    assert value(f"{latency}_sum") - sum_before == pytest.approx(120, abs=2)
    # 30 s and 90 s land in the buckets up to 30 s and up to 300 s.
    assert value(f"{latency}_bucket", le="30.0") >= 1


def test_sync_latency_of_a_lead_created_in_the_future_is_zero() -> None:
    # Clock skew between the API's and the worker's machines must not observe negatives.
    latency = "leadsync_lead_sync_latency_seconds"
    sum_before = value(f"{latency}_sum")
    lead = snapshot(1, age_seconds=-60)

    observe_sync_results([LeadResult(1, ResultKind.SYNCED, hubspot_id="1")], [lead], 0.1)

    assert value(f"{latency}_sum") == pytest.approx(sum_before)


# --------------------------------------------------------------------------- bounded labels


def test_labels_stay_within_declared_sets_however_many_leads() -> None:
    series_before = {(name, tuple(sorted(labels.items()))) for name, labels in leadsync_samples()}
    kinds = itertools.cycle(ResultKind)
    statuses = itertools.cycle([None, 200, 201, 207, 400, 401, 403, 404, 409, 423, 429, 500, 504])
    operations = itertools.cycle(HUBSPOT_OPERATIONS)

    for start in range(1, 5001, 100):  # 5,000 leads in batches of 100
        leads = [snapshot(i, age_seconds=i % 600) for i in range(start, start + 100)]
        results = [
            LeadResult(lead.id, next(kinds), error=f"lead {lead.id} {lead.email}") for lead in leads
        ]
        observe_sync_results(results, leads, 0.3)
        observe_hubspot_request(next(operations), next(statuses), 0.05)

    samples = leadsync_samples()
    for name, labels in samples:
        for label, label_value in labels.items():
            assert label in DECLARED, f"{name} has an undeclared label {label}"
            allowed = DECLARED[label]
            assert allowed is None or label_value in allowed, f"{name}{{{label}={label_value!r}}}"
    series_after = {(name, tuple(sorted(labels.items()))) for name, labels in samples}
    # Every combination was pre-created: 5,000 leads add no series at all.
    assert series_after == series_before


# --------------------------------------------------------------------------- sampled gauges


async def _add_lead(
    sessions: async_sessionmaker[AsyncSession], *, status: SyncStatus, due_ago: float
) -> None:
    async with transaction(sessions) as session:
        stored = await insert_lead(session, fields={"email": f"{status.value.lower()}@x.com"})
        await session.execute(
            update(Lead)
            .where(Lead.id == stored.id)
            .values(
                hubspot_sync_status=status.value,
                hubspot_next_attempt_at=utcnow() - dt.timedelta(seconds=due_ago),
            )
        )


async def test_sample_gauges_reads_queue_gate_and_budget_from_the_database(
    sessions: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    await _add_lead(sessions, status=SyncStatus.PENDING, due_ago=120)
    await _add_lead(sessions, status=SyncStatus.RETRYING, due_ago=-600)  # not due yet
    await _add_lead(sessions, status=SyncStatus.FAILED, due_ago=5000)  # finished: not due
    await _add_lead(sessions, status=SyncStatus.SYNCED, due_ago=9000)
    gate = Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)

    await sample_gauges(sessions, settings=settings)

    assert value("leadsync_leads", status="PENDING") == 1
    assert value("leadsync_leads", status="RETRYING") == 1
    assert value("leadsync_leads", status="FAILED") == 1
    assert value("leadsync_leads", status="SYNCED") == 1
    assert value("leadsync_leads", status="IN_PROGRESS") == 0
    assert value("leadsync_oldest_due_lead_seconds") == pytest.approx(120, abs=5)
    assert all(value("leadsync_gate_paused", reason=r.value) == 0 for r in PauseReason)
    assert value("leadsync_hubspot_budget_remaining") == -1  # nothing reported yet
    assert value("leadsync_hubspot_daily_remaining") == -1

    await gate.pause_for_auth(detail="HTTP 401 INVALID_AUTHENTICATION")
    await gate.observe(RateLimitInfo(max=190, remaining=150, daily_remaining=4321))
    await sample_gauges(sessions, settings=settings)

    assert value("leadsync_gate_paused", reason="auth") == 1
    assert value("leadsync_gate_paused", reason="rate_limit") == 0
    assert value("leadsync_gate_paused", reason="daily_limit") == 0
    assert value("leadsync_hubspot_budget_remaining") == 150
    assert value("leadsync_hubspot_daily_remaining") == 4321


async def test_sample_gauges_reports_zero_when_nothing_is_due(
    sessions: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    await _add_lead(sessions, status=SyncStatus.SYNCED, due_ago=3600)

    await sample_gauges(sessions, settings=settings_factory())

    assert value("leadsync_oldest_due_lead_seconds") == 0


def test_metrics_module_declares_no_per_lead_label() -> None:
    forbidden = {"lead_id", "email", "hubspot_id", "error", "token"}

    for family in REGISTRY.collect():
        if family.name.startswith("leadsync_"):
            for sample in family.samples:
                assert not forbidden & set(sample.labels), (family.name, sample.labels)
    assert runtime.DEFAULT_SAMPLE_SECONDS <= 60  # alerts assume a gauge is at most a minute old
