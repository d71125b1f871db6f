"""Regression tests for the engine's edges, each a case a review broke (issue 9), against the
sandbox over real HTTP on SQLite and PostgreSQL.

1. an older lead's retry overwrote a newer lead's data;
2. a claim outlived its lease and looped forever;
3. an unbounded Retry-After parked leads or paused everyone for a year, or crashed the record;
4. requests booked before a 429 went out during the pause;
5. a token without write scope made the auth pause flap every 5 s;
6. every per-input error of a 207 became FAILED/400; a batch 409 failed the lead;
7. SQLite counted fenced-out writes as synced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from leadsync.config import Settings
from leadsync.db import transaction, utcnow
from leadsync.hubspot.client import HubSpotClient
from leadsync.leads.models import Lead
from leadsync.sandbox.inject import InjectedResponse
from leadsync.sandbox.server import RunningSandbox
from leadsync.sync import queue
from leadsync.sync.gate import PauseReason
from leadsync.sync.service import LeadResult, ResultKind
from leadsync.sync.worker import Worker
from tests.helpers import wait_for
from tests.integration.sync.conftest import FakeClock, fetch, insert_lead
from tests.integration.sync.support import new_lead, running_worker, status_of

MODES = pytest.mark.parametrize("mode", ["batch", "single"])
YEAR = "31536000"


def contact_of(sandbox: RunningSandbox, email: str) -> dict[str, str]:
    found = sandbox.state.store.get_by_email(email)
    assert found is not None, f"no contact for {email}"
    return found.properties


def inject(sandbox: RunningSandbox, status: int, *, times: int = 1, **fields: Any) -> None:
    sandbox.state.injections.push(
        InjectedResponse.model_validate({"status": status, "times": times, **fields})
    )


def server_error(retry_after: str | None = None) -> dict[str, Any]:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"status": "error", "message": "Service Unavailable", "category": "UNKNOWN"}
    return {"json": body, "headers": headers}


def rate_limited(retry_after: str, policy: str = "TEN_SECONDLY_ROLLING") -> dict[str, Any]:
    body = {"status": "error", "message": "You have reached your limit.", "policyName": policy}
    return {"json": body, "headers": {"Retry-After": retry_after}}


async def set_failed(sessions: Any, lead_id: int, status: int = 503) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(
                hubspot_sync_status="FAILED",
                hubspot_sync_attempts=10,
                hubspot_last_http_status=status,
                hubspot_error=f"HTTP {status}",
                hubspot_next_attempt_at=None,
            )
        )


# --- 1. newest data wins ----------------------------------------------------------------


@MODES
async def test_an_older_leads_retry_cannot_overwrite_a_newer_lead(
    mode: str, sandbox: RunningSandbox, sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    settings = sandbox_settings(hubspot_write_mode=mode, retry_base_seconds=0.5)
    inject(sandbox, 503, **server_error())  # the first write of lead 1 fails
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        async with running_worker(worker, settings):
            old = await new_lead(
                sessions, email="ana@example.com", firstname="Old", phone="111", company="Acme"
            )
            await wait_for(status_of(sessions, old, "RETRYING"), timeout=10)
            new = await new_lead(sessions, email="Ana@Example.com", firstname="New", phone="222")
            await wait_for(status_of(sessions, new), timeout=10)
            await wait_for(status_of(sessions, old), timeout=10)
    contact = contact_of(sandbox, "ana@example.com")
    # The newest non-empty value of each property: lead 2's name and phone, lead 1's company.
    assert (contact["firstname"], contact["phone"], contact["company"]) == ("New", "222", "Acme")
    assert len(sandbox.state.store) == 1


@MODES
async def test_a_resynced_older_lead_keeps_the_newer_leads_values(
    mode: str, sandbox: RunningSandbox, sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    # The older lead's write really runs last here: it failed, the newer one synced, then an
    # operator re-drives the failed one.
    settings = sandbox_settings(hubspot_write_mode=mode)
    old = await new_lead(sessions, email="ana@example.com", firstname="Old", phone="111")
    await set_failed(sessions, old, status=400)  # permanent: reconciliation leaves it alone
    new = await new_lead(sessions, email="ana@example.com", firstname="New", lastname="Lopez")
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        async with running_worker(worker, settings):
            await wait_for(status_of(sessions, new), timeout=10)
            async with transaction(sessions) as session:
                assert await queue.requeue_failed(session, now=utcnow(), lead_ids=[old]) == 1
            worker.wake()
            await wait_for(status_of(sessions, old), timeout=10)
    contact = contact_of(sandbox, "ana@example.com")
    assert (contact["firstname"], contact["lastname"], contact["phone"]) == ("New", "Lopez", "111")


# --- 2. no claim outlives its lease ----------------------------------------------------


@pytest.mark.slow
async def test_a_slow_hubspot_in_single_mode_sends_each_lead_once(
    sandbox: RunningSandbox, sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    # The review's case, scaled down: each call takes 0.8 s, a claim of 10 leads needs 8 s,
    # the lease is 3.5 s. Before: leads re-claimed and re-sent in a loop, writes fenced out.
    sandbox.state.update_config({"latency_ms": 800, "rate_limit": None})
    settings = sandbox_settings(
        hubspot_write_mode="single",
        lease_seconds=3.5,
        hubspot_total_timeout_seconds=1.5,
        hubspot_read_timeout_seconds=1.5,
        hubspot_rate_limit="100/1s",
        max_inflight_batches=2,
    )
    ids = [await new_lead(sessions, email=f"slow{i}@example.com") for i in range(12)]
    results: list[LeadResult] = []
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(
            settings=settings,
            sessions=sessions,
            client=client,
            on_results=lambda batch, _leads, _s: results.extend(batch),
        )
        async with running_worker(worker, settings):
            for lead_id in ids:
                await wait_for(status_of(sessions, lead_id), timeout=30)
    creates = sandbox.state.stats.requests["create"]
    assert sum(creates.values()) == 12, dict(creates)
    assert [(await fetch(sessions, i)).hubspot_sync_attempts for i in ids] == [1] * 12
    assert sorted(r.lead_id for r in results if r.kind is ResultKind.SYNCED) == ids


async def test_a_lead_that_always_kills_its_worker_ends_failed(
    sessions: Any, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, now=clock.now)
    for claims in range(1, 5):
        async with transaction(sessions) as session:
            claim = await queue.claim(
                session, limit=10, lease_seconds=5, now=clock.now, max_attempts=3
            )
        clock.advance(6)  # the worker died with the lead: its lease runs out
        if claims < 4:
            assert [lead.id for lead in claim.leads] == [lead_id]
            assert claim.leads[0].attempts == claims - 1
    # The third re-claim finds the lease expired for the third time: FAILED, not claimed.
    assert claim.leads == []
    assert [lead.id for lead in claim.exhausted] == [lead_id]
    row = await fetch(sessions, lead_id)
    assert (row.hubspot_sync_status, row.hubspot_sync_attempts) == ("FAILED", 3)
    assert row.hubspot_error == queue.LEASE_EXPIRED_ERROR
    assert row.hubspot_lease_token is None
    assert row.hubspot_next_attempt_at is None


async def test_reconciliation_counts_a_dead_workers_attempt_too(
    sessions: Any, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, now=clock.now, hubspot_sync_attempts=2)
    async with transaction(sessions) as session:
        await queue.claim(session, limit=1, lease_seconds=5, now=clock.now, max_attempts=3)
    clock.advance(6)
    async with transaction(sessions) as session:
        assert await queue.release_expired_leases(session, now=clock.now, max_attempts=3) == 1
    row = await fetch(sessions, lead_id)
    assert (row.hubspot_sync_status, row.hubspot_sync_attempts) == ("FAILED", 3)


# --- 3. every wait is bounded --------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [YEAR, "1e12", "1e308", "Fri, 31 Dec 9999 23:59:59 GMT"])
async def test_a_huge_retry_after_on_a_503_waits_at_most_the_retry_cap(
    retry_after: str,
    sandbox: RunningSandbox,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    settings = sandbox_settings(retry_cap_seconds=0.5)
    inject(sandbox, 503, **server_error(retry_after))
    lead_id = await new_lead(sessions)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        async with running_worker(worker, settings):
            retrying = await wait_for(status_of(sessions, lead_id, "RETRYING"), timeout=10)
            assert retrying.last_hubspot_attempt_at is not None
            wait = retrying.hubspot_next_attempt_at - retrying.last_hubspot_attempt_at
            assert dt.timedelta(0) <= wait <= dt.timedelta(seconds=0.5)
            synced = await wait_for(status_of(sessions, lead_id), timeout=10)
    assert synced.hubspot_sync_attempts == 2


async def test_a_huge_retry_after_on_a_429_pauses_at_most_the_pause_cap(
    sandbox: RunningSandbox, sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    settings = sandbox_settings(pause_cap_seconds=1.0)
    inject(sandbox, 429, **rate_limited(YEAR))
    lead_id = await new_lead(sessions)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        async with running_worker(worker, settings):
            await wait_for(
                lambda: sandbox.state.stats.rate_limited or sandbox.state.stats.injected,
                timeout=10,
            )
            state = await wait_for(worker.gate.state, timeout=5)
            assert state.pause_reason == PauseReason.RATE_LIMIT
            assert state.paused_until is not None
            assert state.paused_until <= utcnow() + dt.timedelta(seconds=1.0)
            lead = await wait_for(status_of(sessions, lead_id), timeout=10)
    assert lead.hubspot_sync_attempts == 1  # the 429 used no attempt


# --- 7. fenced writes are reported as fenced, on both databases ----------------------------


async def test_a_fenced_out_batch_is_not_reported_as_synced(
    sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    settings = sandbox_settings()
    lead_id = await new_lead(sessions)
    seen: list[LeadResult] = []
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(
            settings=settings,
            sessions=sessions,
            client=client,
            on_results=lambda batch, _leads, _s: seen.extend(batch),
        )
        batch = await worker.claim()
        # Another worker takes the lead over (its lease ran out while this one stalled).
        async with transaction(sessions) as session:
            await session.execute(
                update(Lead).where(Lead.id == lead_id).values(hubspot_lease_token="other-worker")
            )
        await worker.process(batch)
    assert seen == []  # nothing counted: the write was fenced out
    row = await fetch(sessions, lead_id)
    assert (row.hubspot_sync_status, row.hubspot_lease_token) == ("IN_PROGRESS", "other-worker")
