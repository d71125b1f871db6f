"""The worker end to end on SQLite and PostgreSQL, against the HubSpot sandbox."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from leadsync.engine.gate import PauseReason
from leadsync.engine.worker import Worker
from leadsync.hubspot.client import HubSpotClient
from leadsync.runtime import start_in_app
from leadsync.sandbox.server import RunningSandbox
from leadsync.store.db import create_engine, create_sessionmaker, transaction, utcnow
from leadsync.store.tables import HubSpotGate, Lead
from tests.helpers import wait_for
from tests.helpers.hubspot import SandboxHubSpot, rate_limit_body
from tests.helpers.leads import failed_row, fetch, fetch_all, insert_leads, lead_row
from tests.helpers.worker import in_progress, new_lead, running_worker, status_of

QUIET = 60.0  # a poll interval no test waits for: anything faster is a wake-up


def assert_synced(lead: Lead, *, hubspot_id: str, after: dt.datetime, attempts: int = 1) -> None:
    """Every sync column of a lead that synced on its `attempts`-th try."""
    assert lead.hubspot_sync_status == "SYNCED"
    assert lead.hubspot_id == hubspot_id
    assert lead.hubspot_synced_at is not None
    assert after <= lead.hubspot_synced_at <= utcnow()
    assert lead.hubspot_error is None
    assert lead.hubspot_sync_attempts == attempts
    assert lead.last_hubspot_attempt_at == lead.hubspot_synced_at
    assert lead.hubspot_last_http_status == 200
    assert lead.hubspot_lease_token is None
    assert lead.hubspot_lease_expires_at is None
    assert lead.hubspot_next_attempt_at is None


# --- the hand-off ---------------------------------------------------------------------


async def test_lead_posted_to_the_api_is_handed_off_and_synced(
    client_factory, sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    woken: list[float] = []

    async def background(ctx, stack):
        wake = await start_in_app(ctx, stack)

        def spy() -> None:
            woken.append(time.monotonic())
            wake()

        return spy

    settings = sandbox_settings(poll_interval_seconds=QUIET)
    before = utcnow()
    async with client_factory(settings, background=background) as (_app, client):
        response = await client.post(
            "/leads",
            json={
                "email": "Ana.Garcia@Example.com",
                "firstname": "Ana",
                "lastname": "García",
                "phone": "+34 600 123 456",
                "company": "Acme Coworking SL",
                "message": "Six desks from January.",
            },
        )
        assert response.status_code == 201, response.text
        lead_id = response.json()["id"]
        assert woken, "POST /leads must wake the worker after its commit"
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)

    (contact,) = list(sandbox.state.store)
    assert contact.properties["email"] == "ana.garcia@example.com"
    assert contact.properties["firstname"] == "Ana"
    assert contact.properties["lastname"] == "García"
    assert contact.properties["company"] == "Acme Coworking SL"
    assert contact.properties["message"] == "Six desks from January."
    assert sandbox.state.stats.requests["batch_upsert"] == {"200": 1}
    assert_synced(lead, hubspot_id=contact.id, after=before)


async def test_lead_committed_while_no_worker_runs_syncs_when_one_starts(
    sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    before = utcnow()
    lead_id = await new_lead(sessions, email="late@example.com")
    settings = sandbox_settings(poll_interval_seconds=QUIET)
    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings),
    ):
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
    (contact,) = list(sandbox.state.store)
    assert_synced(lead, hubspot_id=contact.id, after=before)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_notify_wakes_a_worker_in_another_engine(
    db_url: str, sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    settings = sandbox_settings(poll_interval_seconds=QUIET)
    events: list[Any] = []
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        real_wake, real_has_due = worker.wake, worker.has_due

        def wake() -> None:
            events.append("wake")
            real_wake()

        async def has_due() -> bool:
            events.append("check")
            due = await real_has_due()
            events.append(("checked", due))
            return due

        worker.wake = wake  # type: ignore[method-assign]
        worker.has_due = has_due  # type: ignore[method-assign]
        async with running_worker(worker, settings):
            # Settle: the listener's connect wake-up has been answered by a look at the queue
            # that found nothing, so the worker now sleeps QUIET seconds unless woken.
            def settled() -> bool:
                wakes = [i for i, e in enumerate(events) if e == "wake"]
                if not wakes:
                    return False
                last_wake = wakes[-1]
                after = events[last_wake:]
                return "check" in after and ("checked", False) in after[after.index("check") :]

            await wait_for(settled, timeout=10)
            mark = len(events)

            other = create_engine(db_url)  # another engine: other pool, other connections
            try:
                started = time.monotonic()
                lead_id = await new_lead(create_sessionmaker(other), email="remote@example.com")
            finally:
                await other.dispose()
            lead = await wait_for(status_of(sessions, lead_id), timeout=15)
            elapsed = time.monotonic() - started

    assert "wake" in events[mark:], events
    assert elapsed < 15 < QUIET
    assert lead.hubspot_id == next(iter(sandbox.state.store)).id


# --- batches of duplicates, single mode, rate limits, credentials ---------------------


async def test_leads_of_one_email_become_one_contact(
    sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    first = await new_lead(sessions, email="dup@example.com", firstname="Old", phone="+34 1")
    second = await new_lead(sessions, email="DUP@example.com", firstname="New")
    settings = sandbox_settings()
    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings),
    ):
        await wait_for(status_of(sessions, first), timeout=10)
        await wait_for(status_of(sessions, second), timeout=10)
    (contact,) = list(sandbox.state.store)
    assert contact.properties["firstname"] == "New"
    assert contact.properties["phone"] == "+34 1"
    leads = await fetch_all(sessions)
    assert leads[first].hubspot_id == leads[second].hubspot_id == contact.id


async def test_single_mode_patches_an_existing_contact(
    sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    existing = sandbox.state.store.create(
        {"email": "known@example.com", "firstname": "Old"}, now=time.time()
    )
    before = utcnow()
    lead_id = await new_lead(sessions, email="known@example.com", firstname="New")
    settings = sandbox_settings(hubspot_write_mode="single")
    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings),
    ):
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
    assert len(sandbox.state.store) == 1  # never a duplicate
    assert sandbox.state.store.get(existing.id).properties["firstname"] == "New"
    assert sandbox.state.stats.requests["create"] == {"409": 1}
    assert sandbox.state.stats.requests["update"] == {"200": 1}
    assert_synced(lead, hubspot_id=existing.id, after=before)


async def test_rate_limit_pauses_without_using_an_attempt(
    sandbox_settings, hubspot: SandboxHubSpot, sessions
) -> None:
    await hubspot.inject(
        status=429,
        json=rate_limit_body("TEN_SECONDLY_ROLLING"),
        headers={"Retry-After": "0.4"},
        endpoints=["batch_upsert"],
    )
    lead_id = await new_lead(sessions)
    settings = sandbox_settings()
    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings) as (
            worker,
            _,
        ),
    ):
        # First outcome: back in the queue, not counted, with the 429 recorded.
        paused = await wait_for(
            lambda: _lead_where(sessions, lead_id, hubspot_last_http_status=429), timeout=10
        )
        assert paused.hubspot_sync_status == "PENDING"
        assert paused.hubspot_sync_attempts == 0
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
        state = await worker.gate.state()
    calls = await hubspot.requests("batch_upsert")
    assert [call["status"] for call in calls] == [429, 200]
    # Due when the shared pause ends: 0.4 s from the 429's answer (the sandbox stamps it when
    # sent; the outcome may be written much later on a loaded machine: that must not matter).
    answered = dt.datetime.fromtimestamp(calls[0]["done_at"], dt.UTC)
    assert paused.hubspot_next_attempt_at >= answered + dt.timedelta(seconds=0.35)
    assert calls[1]["at"] - calls[0]["at"] >= 0.39  # the whole worker honoured Retry-After
    assert lead.hubspot_sync_attempts == 1
    assert lead.hubspot_error is None
    assert state.pause_reason is None


async def _lead_where(sessions, lead_id: int, **values: Any) -> Lead | None:
    lead = await fetch(sessions, lead_id)
    return lead if all(getattr(lead, k) == v for k, v in values.items()) else None


async def test_revoked_token_pauses_probes_once_per_interval_and_resumes(
    sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    settings = sandbox_settings(hubspot_token="revoked-token-0000")
    lead_id = await new_lead(sessions)

    async def expire_pause() -> None:
        # Time passes: the pause runs out, and the lead that waits for it falls due.
        past = utcnow() - dt.timedelta(seconds=1)
        async with transaction(sessions) as session:
            await session.execute(update(HubSpotGate).values(paused_until=past))
            await session.execute(
                update(Lead).where(Lead.id == lead_id).values(hubspot_next_attempt_at=past)
            )

    def probes() -> int:
        return sum(sandbox.state.stats.requests["list"].values())

    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings) as (
            worker,
            _,
        ),
    ):
        await wait_for(lambda: sandbox.state.stats.requests["batch_upsert"].get("401"), timeout=10)
        state = await wait_for(
            lambda: _gate_where(worker, pause_reason=PauseReason.AUTH), timeout=10
        )
        assert state.auth_failures == 1
        lead = await wait_for(
            lambda: _lead_where(sessions, lead_id, hubspot_lease_token=None), timeout=10
        )
        assert lead.hubspot_sync_status == "PENDING"
        assert lead.hubspot_sync_attempts == 0  # a credential problem is not the lead's

        # The pause runs out while the token is still bad: one probe, then a longer pause.
        await expire_pause()
        await wait_for(lambda: probes() >= 1, timeout=10)
        state = await wait_for(lambda: _gate_where(worker, auth_failures=2), timeout=10)
        assert state.paused_until is not None
        assert state.paused_until > utcnow() + dt.timedelta(seconds=5)
        assert probes() == 1
        assert sandbox.state.stats.requests["batch_upsert"] == {"401": 1}

        # The secret is fixed; at the next probe the sync resumes by itself.
        sandbox.state.update_config({"add_tokens": ["revoked-token-0000"]})
        await expire_pause()
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
        state = await worker.gate.state()
    assert probes() == 2
    assert state.pause_reason is None
    assert state.auth_failures == 0
    assert lead.hubspot_sync_attempts == 1
    assert lead.hubspot_id == next(iter(sandbox.state.store)).id


async def _gate_where(worker: Worker, **values: Any):
    state = await worker.gate.state()
    return state if all(getattr(state, k) == v for k, v in values.items()) else None


async def test_two_workers_drain_a_backlog_sending_each_lead_once(
    sandbox_settings, sandbox: RunningSandbox, hubspot: SandboxHubSpot, sessions
) -> None:
    ids = await insert_leads(sessions, [lead_row(i) for i in range(250)])
    settings = sandbox_settings(hubspot_rate_limit="1000/10s", poll_interval_seconds=0.05)
    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings),
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings),
    ):

        async def all_synced() -> bool:
            leads = await fetch_all(sessions)
            return all(lead.hubspot_sync_status == "SYNCED" for lead in leads.values())

        await wait_for(all_synced, timeout=20)
    sent = [call["emails"] for call in await hubspot.requests("batch_upsert")]
    every = sorted(email for batch in sent for email in batch)
    assert every == sorted(f"lead{i}@example.com" for i in range(250))  # each lead sent once
    assert max(len(batch) for batch in sent) <= 100
    assert len(sent) <= 5  # full batches, not one request per lead
    leads = await fetch_all(sessions)
    contacts = {contact.properties["email"]: contact.id for contact in sandbox.state.store}
    assert len(contacts) == len(ids)
    assert all(lead.hubspot_id == contacts[lead.email] for lead in leads.values())


# --- stopping -------------------------------------------------------------------------


def upsert_in_flight(hubspot: SandboxHubSpot) -> Callable[[], Awaitable[bool]]:
    """A wait_for check: a batch upsert has reached the sandbox and is not answered yet."""

    async def check() -> bool:
        return any(call["done_at"] is None for call in await hubspot.requests("batch_upsert"))

    return check


async def test_stop_lets_an_in_flight_batch_finish(
    sandbox_settings, sandbox: RunningSandbox, hubspot: SandboxHubSpot, sessions
) -> None:
    # HubSpot answers a second after the request arrives, well after the stop below.
    await hubspot.inject(action="delay", delay_ms=1000, endpoints=["batch_upsert"])
    ids = await insert_leads(sessions, [lead_row(i) for i in range(3)])
    settings = sandbox_settings(lease_seconds=10.0)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        async with running_worker(worker, settings) as (_, stack):
            await wait_for(upsert_in_flight(hubspot), timeout=10)
            assert await in_progress(sessions) == 3
            stopped_at = time.time()
            await worker.stop()
            await stack.aclose()  # returns only once the worker has drained
        leads = await fetch_all(sessions)
    (call,) = await hubspot.requests("batch_upsert")
    assert call["done_at"] > stopped_at  # the drain waited for an answer sent after the stop
    assert await in_progress(sessions) == 0
    assert [leads[i].hubspot_sync_status for i in ids] == ["SYNCED"] * 3
    contacts = {contact.properties["email"]: contact.id for contact in sandbox.state.store}
    assert [leads[i].hubspot_id for i in ids] == [contacts[leads[i].email] for i in ids]


async def test_stop_releases_the_leases_of_a_hung_batch(
    sandbox_settings, sandbox: RunningSandbox, hubspot: SandboxHubSpot, sessions
) -> None:
    await hubspot.inject(action="hang", hang_seconds=60, endpoints=["batch_upsert"])
    ids = await insert_leads(
        sessions,
        [
            lead_row(0),
            lead_row(1, hubspot_sync_status="RETRYING", hubspot_sync_attempts=2),
        ],
    )
    # The drain's grace (lease/2 = 3 s) ends before the HubSpot call's timeout (4 s).
    settings = sandbox_settings(lease_seconds=6.0, hubspot_total_timeout_seconds=4.0)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        async with running_worker(worker, settings) as (_, stack):
            await wait_for(upsert_in_flight(hubspot), timeout=10)
            begun = time.monotonic()
            await stack.aclose()
            took = time.monotonic() - begun
    leads = await fetch_all(sessions)
    assert took < 3.9  # the drain's grace (lease/2), not the HubSpot timeout
    assert await in_progress(sessions) == 0
    assert len(sandbox.state.store) == 0  # the hung write was never applied
    fresh, retrying = leads[ids[0]], leads[ids[1]]
    assert (fresh.hubspot_sync_status, fresh.hubspot_sync_attempts) == ("PENDING", 0)
    assert (retrying.hubspot_sync_status, retrying.hubspot_sync_attempts) == ("RETRYING", 2)
    for lead in (fresh, retrying):
        assert lead.hubspot_lease_token is None
        assert lead.hubspot_lease_expires_at is None
        assert lead.hubspot_next_attempt_at is not None
        assert lead.hubspot_next_attempt_at <= utcnow()  # due again at once
        assert lead.last_hubspot_attempt_at is None  # nothing was sent to completion


# --- reconciliation -------------------------------------------------------------------


async def test_reconcile_requeues_old_transient_failures_only(sandbox_settings, sessions) -> None:
    now = utcnow()
    old, recent = now - dt.timedelta(hours=2), now - dt.timedelta(minutes=5)
    ids = await insert_leads(
        sessions,
        [
            failed_row(0, status=503, attempted_at=old),
            failed_row(1, status=None, attempted_at=old),  # a timeout: no status at all
            failed_row(2, status=429, attempted_at=old),
            failed_row(3, status=400, attempted_at=old),
            failed_row(4, status=404, attempted_at=old),
            failed_row(5, status=503, attempted_at=recent),
            lead_row(
                6,
                hubspot_sync_status="IN_PROGRESS",
                hubspot_lease_token="dead-worker",
                hubspot_lease_expires_at=now - dt.timedelta(seconds=30),
                hubspot_next_attempt_at=now - dt.timedelta(seconds=30),
            ),
        ],
    )
    settings = sandbox_settings(reconcile_after_seconds=3600)
    async with HubSpotClient.from_settings(settings) as client:
        await Worker(settings=settings, sessions=sessions, client=client).reconcile()
    leads = await fetch_all(sessions)
    assert [leads[i].hubspot_sync_status for i in ids] == [
        "PENDING",
        "PENDING",
        "PENDING",
        "FAILED",
        "FAILED",
        "FAILED",
        "RETRYING",  # a dead lease: the lost attempt counts, the lead waits as a retry
    ]
    assert [leads[i].hubspot_sync_attempts for i in ids[:3]] == [0, 0, 0]
    assert leads[ids[6]].hubspot_lease_token is None


async def test_running_worker_reconciles_and_syncs_a_transient_failure(
    sandbox_settings, sandbox: RunningSandbox, sessions
) -> None:
    five_seconds_ago = utcnow() - dt.timedelta(seconds=5)
    (lead_id,) = await insert_leads(
        sessions, [failed_row(0, status=503, attempted_at=five_seconds_ago)]
    )
    settings = sandbox_settings(reconcile_after_seconds=1, reconcile_interval_seconds=0.1)
    async with (
        HubSpotClient.from_settings(settings) as client,
        running_worker(Worker(settings=settings, sessions=sessions, client=client), settings),
    ):
        lead = await wait_for(status_of(sessions, lead_id), timeout=10)
    assert lead.hubspot_sync_attempts == 1
    assert lead.hubspot_error is None
    assert lead.hubspot_id == next(iter(sandbox.state.store)).id


async def test_a_database_error_does_not_end_the_worker_loop(sandbox_settings, sessions) -> None:
    settings = sandbox_settings(poll_interval_seconds=0.05)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        real_has_due = worker.has_due
        failures = 0

        async def flaky_has_due() -> bool:
            nonlocal failures
            if failures < 3:  # the database is away for three looks
                failures += 1
                raise ConnectionRefusedError("database unreachable")
            return await real_has_due()

        worker.has_due = flaky_has_due  # type: ignore[method-assign]
        lead_id = await new_lead(sessions)
        async with running_worker(worker, settings):
            assert await wait_for(status_of(sessions, lead_id), timeout=20)
    assert failures == 3  # the loop went on after each error, then synced the lead
