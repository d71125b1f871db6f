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
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from leadsync.config import Settings
from leadsync.engine import gate as gate_module
from leadsync.engine.gate import GateState, PauseReason
from leadsync.engine.worker import Worker
from leadsync.engine.writer import LeadResult, ResultKind
from leadsync.hubspot.client import HubSpotClient
from leadsync.sandbox.server import RunningSandbox
from leadsync.store import queue
from leadsync.store.db import transaction, utcnow
from leadsync.store.tables import Lead
from tests.helpers import wait_for
from tests.helpers.clock import FakeClock
from tests.helpers.hubspot import SandboxHubSpot, error_body, rate_limit_body
from tests.helpers.leads import failed_columns, fetch, insert_lead
from tests.helpers.worker import attempted, new_lead, sandbox_worker, status_of

MODES = pytest.mark.parametrize("mode", ["batch", "single"])
YEAR = "31536000"


def contact_of(sandbox: RunningSandbox, email: str) -> dict[str, str]:
    found = sandbox.state.store.get_by_email(email)
    assert found is not None, f"no contact for {email}"
    return found.properties


def server_error(retry_after: str | None = None) -> dict[str, Any]:
    """An injection: HubSpot's 503, with a Retry-After if given."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return {"status": 503, "json": error_body("Service Unavailable", "UNKNOWN"), "headers": headers}


def rate_limited(retry_after: str, policy: str = "TEN_SECONDLY_ROLLING") -> dict[str, Any]:
    """An injection: HubSpot's 429 for `policy`, with a Retry-After."""
    return {"status": 429, "json": rate_limit_body(policy), "headers": {"Retry-After": retry_after}}


async def set_failed(sessions: Any, lead_id: int, status: int = 503) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(Lead).where(Lead.id == lead_id).values(**failed_columns(status))
        )


# --- 1. newest data wins ----------------------------------------------------------------


@MODES
async def test_an_older_leads_retry_cannot_overwrite_a_newer_lead(
    mode: str,
    sandbox: RunningSandbox,
    hubspot: SandboxHubSpot,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    settings = sandbox_settings(hubspot_write_mode=mode, retry_base_seconds=0.5)
    await hubspot.inject(**server_error())  # the first write of lead 1 fails
    async with sandbox_worker(settings, sessions):
        old = await new_lead(
            sessions, email="ana@example.com", firstname="Old", phone="111", company="Acme"
        )
        await wait_for(attempted(sessions, old), timeout=10)  # its first write failed
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
    async with sandbox_worker(settings, sessions) as worker:
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
    async with sandbox_worker(
        settings, sessions, on_results=lambda batch, _leads, _s: results.extend(batch)
    ):
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
    hubspot: SandboxHubSpot,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    settings = sandbox_settings(retry_cap_seconds=0.5)
    await hubspot.inject(**server_error(retry_after))
    lead_id = await new_lead(sessions)
    async with sandbox_worker(settings, sessions):
        retrying = await wait_for(status_of(sessions, lead_id, "RETRYING"), timeout=10)
        assert retrying.last_hubspot_attempt_at is not None
        wait = retrying.hubspot_next_attempt_at - retrying.last_hubspot_attempt_at
        assert dt.timedelta(0) <= wait <= dt.timedelta(seconds=0.5)
        synced = await wait_for(status_of(sessions, lead_id), timeout=10)
    assert synced.hubspot_sync_attempts == 2


async def test_a_huge_retry_after_on_a_429_pauses_at_most_the_pause_cap(
    hubspot: SandboxHubSpot, sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    settings = sandbox_settings(pause_cap_seconds=1.0)
    await hubspot.inject(**rate_limited(YEAR))
    lead_id = await new_lead(sessions)
    async with sandbox_worker(settings, sessions) as worker:

        async def paused() -> GateState | None:
            # The pause is written once the worker has the 429, a moment after the sandbox
            # sent it: wait for the gate row, not for the sandbox's counter.
            state = await worker.gate.state()
            return state if state.pause_reason == PauseReason.RATE_LIMIT else None

        state = await wait_for(paused, timeout=10)
        assert (await hubspot.stats())["injected"] == 1
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


# --- over the sandbox's control API (POST /_sandbox/inject, /input-errors, /requests) -------


@MODES
async def test_a_newer_lead_waits_while_its_email_is_being_written(
    mode: str,
    sandbox: RunningSandbox,
    hubspot: SandboxHubSpot,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    # Lead 1's write hangs in HubSpot for a while; lead 2 of the same email arrives meanwhile.
    # Before: lead 2 was claimed and sent at once, two writes of one email in flight.
    settings = sandbox_settings(hubspot_write_mode=mode)
    writes = ["batch_upsert"] if mode == "batch" else ["create", "update"]
    await hubspot.inject(action="delay", delay_ms=1200, endpoints=writes)
    async with sandbox_worker(settings, sessions):
        first = await new_lead(sessions, email="eva@example.com", firstname="Eva", phone="1")
        await wait_for(lambda: sandbox.state.stats.injected, timeout=10)  # in flight now
        second = await new_lead(sessions, email="EVA@example.com", firstname="Eve")
        await wait_for(status_of(sessions, first), timeout=10)
        await wait_for(status_of(sessions, second), timeout=10)
    stats = await hubspot.stats()
    assert stats["write_overlaps"] == 0, stats["overlapping_emails"]
    contact = contact_of(sandbox, "eva@example.com")
    assert (contact["firstname"], contact["phone"]) == ("Eve", "1")


# --- 4. a pause means no request -----------------------------------------------------------


async def test_slots_booked_before_a_429_are_not_used_during_the_pause(
    sandbox: RunningSandbox,
    hubspot: SandboxHubSpot,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    sandbox.state.update_config({"rate_limit": None})
    # A backlog of small batches, 4 in flight, slots ~0.1 s apart: slots are booked ahead.
    settings = sandbox_settings(
        hubspot_rate_limit="20/2s", batch_size=5, max_inflight_batches=4, pause_cap_seconds=60
    )
    ids = [await new_lead(sessions, email=f"backlog{i}@example.com") for i in range(150)]
    pause = 1.5
    async with sandbox_worker(settings, sessions):
        await wait_for(
            lambda: sum(sandbox.state.stats.requests["batch_upsert"].values()) >= 3,
            timeout=10,
        )
        await hubspot.inject(**rate_limited(str(pause)), endpoints=["batch_upsert"])
        for lead_id in ids:
            await wait_for(status_of(sessions, lead_id), timeout=30)
    upserts = await hubspot.requests("batch_upsert")
    (limited,) = [entry for entry in upserts if entry["status"] == 429]
    assert limited["retry_after"] == pause
    start, end = limited["done_at"] + 0.15, limited["done_at"] + pause - 0.15
    during = [entry["at"] - limited["done_at"] for entry in upserts if start < entry["at"] < end]
    assert during == [], f"requests sent {during} s into a {pause} s pause"


# --- 5. auth pauses back off until a write works -------------------------------------------


async def test_a_token_that_can_read_but_not_write_backs_off(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: RunningSandbox,
    hubspot: SandboxHubSpot,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    # The runbook's "app lost the write scope", on a short clock: every probe (a GET) passes,
    # every write gets 403 MISSING_SCOPES. Before: the pause lifted and came back every cycle.
    monkeypatch.setattr(gate_module, "AUTH_PROBE_FIRST_SECONDS", 0.1)
    monkeypatch.setattr(gate_module, "AUTH_PROBE_MAX_SECONDS", 0.8)
    scopes = error_body("missing scopes", "MISSING_SCOPES")
    await hubspot.inject(status=403, json=scopes, endpoints=["batch_upsert"], times=1000)
    settings = sandbox_settings()
    lead_id = await new_lead(sessions)
    async with sandbox_worker(settings, sessions) as worker:
        await wait_for(lambda: sandbox.state.stats.requests["batch_upsert"]["403"] >= 5, timeout=15)
        await hubspot.control("DELETE", "/inject")  # the scope is given back
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
        state = await worker.gate.state()
    refused = [e["at"] for e in await hubspot.requests("batch_upsert") if e["status"] == 403]
    gaps = [later - earlier for earlier, later in itertools.pairwise(refused)]
    # 0.1 s, then 0.4, then the 0.8 s maximum: growing, not a 0.1 s flap.
    assert gaps[2] >= 0.7, gaps
    assert gaps == sorted(gaps[:3]) + gaps[3:], gaps
    assert lead.hubspot_sync_attempts == 1  # the refused writes used no attempt
    assert state.auth_failures == 0  # the write that worked ended the trial


# --- 6. per-input errors follow HubSpot's status and category ------------------------------


async def test_a_207_retries_temporary_input_errors_and_fails_permanent_ones(
    sandbox: RunningSandbox,
    hubspot: SandboxHubSpot,
    sandbox_settings: Callable[..., Settings],
    sessions: Any,
) -> None:
    temporary = {"email": "busy@example.com", "status": "503", "category": "INTERNAL_ERROR"}
    permanent = {
        "email": "refused@example.com",
        "status": "400",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: phone",
        "times": 10,
    }
    for error in (temporary, permanent):
        await hubspot.control("POST", "/input-errors", error)
    settings = sandbox_settings()
    ids = {
        email: await new_lead(sessions, email=email)
        for email in ("busy@example.com", "refused@example.com", "fine@example.com")
    }
    async with sandbox_worker(settings, sessions):
        busy = await wait_for(status_of(sessions, ids["busy@example.com"]), timeout=10)
        refused = await wait_for(
            status_of(sessions, ids["refused@example.com"], "FAILED"), timeout=10
        )
        fine = await wait_for(status_of(sessions, ids["fine@example.com"]), timeout=10)
    assert busy.hubspot_sync_attempts == 2  # retried after the 503, then synced
    assert fine.hubspot_sync_attempts == 1
    assert refused.hubspot_last_http_status == 400
    assert refused.hubspot_error == "VALIDATION_ERROR: Property values were not valid: phone"
    assert sandbox.state.store.get_by_email("refused@example.com") is None


async def test_a_batch_409_is_retried_not_failed(
    hubspot: SandboxHubSpot, sandbox_settings: Callable[..., Settings], sessions: Any
) -> None:
    conflict = error_body("Conflict", "CONFLICT")
    await hubspot.inject(status=409, json=conflict, endpoints=["batch_upsert"])
    settings = sandbox_settings()
    lead_id = await new_lead(sessions)
    async with sandbox_worker(settings, sessions):
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
    assert lead.hubspot_sync_attempts == 2
