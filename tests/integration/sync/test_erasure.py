"""Erasure in the store and the engine: cancellation, the send fence, the GDPR delete, the scrub.

Against SQLite and PostgreSQL, with the HubSpot sandbox over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import Settings
from leadsync.engine.eraser import ErasureOutcome
from leadsync.engine.worker import Worker
from leadsync.hubspot.client import HubSpotClient
from leadsync.store import history as lead_history
from leadsync.store import privacy, queue
from leadsync.store.db import transaction, utcnow
from leadsync.store.fence import SendFence, open_fence
from leadsync.store.history import Attempt
from leadsync.store.leads import IdempotencyConflict, SessionIntake, open_intake
from leadsync.store.queue import Completion
from leadsync.store.tables import (
    ErasureStatus,
    Lead,
    LeadSyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from leadsync.usecases import privacy as privacy_usecases
from leadsync.usecases.leads import submit_lead
from leadsync.usecases.schemas import LeadIn
from tests.helpers.hubspot import SandboxHubSpot
from tests.helpers.leads import Sessions, failed_columns, fetch, insert_leads, lead_row
from tests.helpers.privacy import erasure_in, fetch_erasure
from tests.helpers.waiting import wait_for
from tests.helpers.worker import new_lead, running_worker, status_of

KEY = "k" * 32
ANA = "ana@example.com"
BEA = "bea@example.com"


@pytest.fixture
def fence(engine: AsyncEngine, sessions: Sessions) -> SendFence:
    return open_fence(engine, sessions)


def _keyed(settings_factory: Callable[..., Settings], **overrides: Any) -> Settings:
    return settings_factory(erasure_key=KEY, **overrides)


async def _erase(
    sessions: Sessions, fence: SendFence, settings: Settings, email: str = ANA
) -> privacy_usecases.ErasureAccepted:
    return await privacy_usecases.request_erasure(
        sessions, fence=fence, settings=settings, email=email, requested_by="api"
    )


async def _history_rows(sessions: Sessions, lead_id: int) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).where(LeadSyncAttempt.lead_id == lead_id))
            or 0
        )


async def _history_of(sessions: Sessions, lead_id: int) -> list[lead_history.HistoryRow]:
    async with sessions() as session:
        return await lead_history.for_lead(session, lead_id=lead_id, limit=10)


async def test_a_request_cancels_every_lead_of_the_email_and_no_other(
    sessions: Sessions, fence: SendFence, settings_factory: Callable[..., Settings]
) -> None:
    ids = await insert_leads(
        sessions,
        [
            lead_row(1, email=ANA),
            lead_row(2, email=ANA, hubspot_sync_status="RETRYING", hubspot_sync_attempts=2),
            lead_row(3, email=ANA, **failed_columns()),
            lead_row(4, email=ANA, hubspot_sync_status="SYNCED", hubspot_id="7"),
            lead_row(5, email=BEA),
        ],
    )
    now = utcnow()
    async with transaction(sessions) as session:
        claim = await queue.claim(session, limit=10, lease_seconds=60, now=now)
    assert {lead.id for lead in claim.leads} == {ids[0], ids[1], ids[4]}

    accepted = await _erase(sessions, fence, _keyed(settings_factory))

    assert accepted.created
    assert accepted.leads_cancelled == 4
    assert accepted.status is ErasureStatus.REQUESTED
    for lead_id in ids[:4]:
        lead = await fetch(sessions, lead_id)
        assert lead.hubspot_sync_status == SyncStatus.ERASED
        assert lead.hubspot_lease_token is None
        assert lead.hubspot_next_attempt_at is None
    bea = await fetch(sessions, ids[4])
    assert bea.hubspot_sync_status == SyncStatus.IN_PROGRESS
    # The batch's outcome for Ana's leads comes too late: fenced, not written.
    completions = [
        Completion(
            lead.id,
            claim.token,
            SyncStatus.SYNCED,
            1,
            now,
            200,
            "9",
            now,
            outcome=SyncOutcome.SYNCED,
        )
        for lead in claim.leads
    ]
    async with transaction(sessions) as session:
        written = await queue.complete(session, completions=completions, now=now)
    assert written == {ids[4]}
    # ...and leaves no history row on the erased leads (their scrub would miss it).
    assert await _history_rows(sessions, ids[0]) == 0
    assert await _history_rows(sessions, ids[4]) == 1
    assert (await fetch(sessions, ids[0])).hubspot_sync_status == SyncStatus.ERASED
    # A second request reuses the open erasure.
    again = await _erase(sessions, fence, _keyed(settings_factory), email=ANA)
    assert not again.created
    assert again.id == accepted.id
    assert again.leads_cancelled == 4


async def test_an_erasure_waits_for_the_write_in_flight_and_later_writes_drop_its_leads(
    sessions: Sessions, fence: SendFence, settings_factory: Callable[..., Settings]
) -> None:
    ids = await insert_leads(sessions, [lead_row(1, email=ANA), lead_row(2, email=BEA)])
    async with transaction(sessions) as session:
        claim = await queue.claim(session, limit=10, lease_seconds=60, now=utcnow())
    settings = _keyed(settings_factory)

    async with fence.hold(token=claim.token, lead_ids=ids) as sendable:
        assert sendable == set(ids)
        request = asyncio.create_task(_erase(sessions, fence, settings))
        # The request is blocked on the fence while the write is "in flight": the leads are
        # still IN_PROGRESS. It cannot finish before the hold ends.
        done, _ = await asyncio.wait({request}, timeout=0.3)
        assert not done
        assert (await fetch(sessions, ids[0])).hubspot_sync_status == SyncStatus.IN_PROGRESS
    accepted = await asyncio.wait_for(request, timeout=10)
    assert accepted.leads_cancelled == 1

    async with fence.hold(token=claim.token, lead_ids=ids) as sendable:
        assert sendable == {ids[1]}


async def test_a_write_cancelled_at_the_fence_leaves_no_lock_behind(
    sessions: Sessions, fence: SendFence
) -> None:
    ids = await insert_leads(sessions, [lead_row(1, email=ANA)])
    async with transaction(sessions) as session:
        claim = await queue.claim(session, limit=10, lease_seconds=60, now=utcnow())
    entered = asyncio.Event()

    async def write() -> None:
        async with fence.hold(token=claim.token, lead_ids=ids):
            entered.set()
            await asyncio.Event().wait()  # the HubSpot call that never answers

    # Cancelled while it waits for the lock (an erasure holds it)...
    async with fence.erasing():
        waiting = asyncio.create_task(write())
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    # ...and cancelled while it holds it, as a worker stopped mid-call is.
    holding = asyncio.create_task(write())
    await asyncio.wait_for(entered.wait(), timeout=10)
    holding.cancel()
    await asyncio.gather(holding, return_exceptions=True)

    # Neither left the lock taken (say, on a pooled connection still in its transaction):
    # an erasure gets it at once, and so do the writers after it.
    async def erase_then_write() -> set[int]:
        async with fence.erasing():
            pass
        async with fence.hold(token=claim.token, lead_ids=ids) as sendable:
            return sendable

    assert await asyncio.wait_for(erase_then_write(), timeout=10) == set(ids)


async def test_a_lead_of_an_email_being_erased_is_held_until_the_erasure_completes(
    sessions: Sessions, fence: SendFence, settings_factory: Callable[..., Settings]
) -> None:
    settings = _keyed(settings_factory)
    accepted = await _erase(sessions, fence, settings)
    intake = SessionIntake(sessions, hasher=privacy_usecases.hasher(settings))
    stored = await submit_lead(intake, data=LeadIn(email="ANA@example.com"), idempotency_key=None)

    erasure = await fetch_erasure(sessions, accepted.id)
    assert erasure.returned_lead_id == stored.id
    assert erasure.returned_at is not None
    async with transaction(sessions) as session:
        claim = await queue.claim(session, limit=10, lease_seconds=60, now=utcnow())
    assert not claim
    lead = await fetch(sessions, stored.id)
    assert lead.hubspot_sync_status == SyncStatus.PENDING
    assert lead.hubspot_next_attempt_at is None

    async with transaction(sessions) as session:
        (taken,) = await privacy.claim_erasures(session, limit=5, lease_seconds=60, now=utcnow())
    async with transaction(sessions) as session:
        scrubbed = await privacy.complete_erasure(
            session, erasure_id=taken.id, token=taken.token, http_status=204, now=utcnow()
        )
    assert scrubbed == 0
    async with transaction(sessions) as session:
        claim = await queue.claim(session, limit=10, lease_seconds=60, now=utcnow())
    assert [lead.id for lead in claim.leads] == [stored.id]


async def _waiting_on_locks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found.scalar_one())


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_erasure_completing_between_a_claims_scan_and_its_hold_strands_no_lead(
    sessions: Sessions,
    engine: AsyncEngine,
    fence: SendFence,
    settings_factory: Callable[..., Settings],
) -> None:
    # Ana comes back while her erasure is open: a claim's scan sees the erasure and holds her
    # new lead (no due time) until it completes, and the completion wakes held leads. Here the
    # erasure completes after the scan and before the hold is written (a row lock on the lead
    # stops the claim there): the hold must see it, or the completion must wait for the hold
    # and wake the lead. Found by the stateful test: the lead stayed PENDING for good.
    # (SQLite runs one transaction at a time: the claim and the completion cannot interleave.)
    settings = _keyed(settings_factory)
    accepted = await _erase(sessions, fence, settings)
    intake = SessionIntake(sessions, hasher=privacy_usecases.hasher(settings))
    stored = await submit_lead(intake, data=LeadIn(email=ANA), idempotency_key=None)
    async with transaction(sessions) as session:
        (taken,) = await privacy.claim_erasures(session, limit=5, lease_seconds=60, now=utcnow())

    async def claim() -> queue.Claim:
        async with transaction(sessions) as session:
            return await queue.claim(session, limit=10, lease_seconds=60, now=utcnow())

    async def complete() -> int | None:
        async with transaction(sessions) as session:
            return await privacy.complete_erasure(
                session, erasure_id=taken.id, token=taken.token, http_status=204, now=utcnow()
            )

    async with engine.connect() as blocker:
        await blocker.execute(
            text("SELECT id FROM leads WHERE id = :id FOR UPDATE"), {"id": stored.id}
        )
        claiming = asyncio.create_task(claim())

        async def claim_waits() -> bool:
            return await _waiting_on_locks(engine) >= 1

        await wait_for(claim_waits, message="the claim waits at its hold")
        completing = asyncio.create_task(complete())

        async def completion_ran_or_waits() -> bool:
            return completing.done() or await _waiting_on_locks(engine) >= 2

        await wait_for(completion_ran_or_waits, message="the completion finished or waits")
        await blocker.rollback()
    assert not await claiming  # her lead was held, nothing else is due
    assert await completing == 0

    assert (await fetch_erasure(sessions, accepted.id)).status == ErasureStatus.COMPLETED
    lead = await fetch(sessions, stored.id)
    assert lead.hubspot_sync_status == SyncStatus.PENDING
    assert lead.hubspot_next_attempt_at is not None, "the new lead is held for good"
    assert [lead.id for lead in (await claim()).leads] == [stored.id]


@contextlib.asynccontextmanager
async def _worker(
    settings: Settings, sessions: Sessions, outcomes: list[ErasureOutcome]
) -> AsyncIterator[Worker]:
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(
            settings=settings, sessions=sessions, client=client, on_erasure=outcomes.append
        )
        async with running_worker(worker, settings):
            yield worker


async def test_the_worker_deletes_the_contact_and_scrubs_every_row(
    sessions: Sessions,
    fence: SendFence,
    sandbox_settings: Callable[..., Settings],
    hubspot: SandboxHubSpot,
) -> None:
    settings = sandbox_settings(erasure_key=KEY)
    outcomes: list[ErasureOutcome] = []
    async with _worker(settings, sessions, outcomes):
        first = await new_lead(sessions, email=ANA, firstname="Ana", phone="+34 600 000 001")
        other = await new_lead(sessions, email=BEA)
        synced = await wait_for(status_of(sessions, first))
        await wait_for(status_of(sessions, other))
        second = await new_lead(sessions, email=ANA, lastname="García", message="Hola")
        await wait_for(status_of(sessions, second))
        assert len(await hubspot.contacts()) == 2

        accepted = await _erase(sessions, fence, settings)
        erasure = await wait_for(erasure_in(sessions, accepted.id))

    assert erasure.email is None
    assert erasure.leads_scrubbed == 2
    assert erasure.attempts == 1
    assert outcomes == [ErasureOutcome.COMPLETED]
    emails = {contact["properties"].get("email") for contact in await hubspot.contacts()}
    assert emails == {BEA}
    for lead_id in (first, second):
        lead = await fetch(sessions, lead_id)
        assert lead.hubspot_sync_status == SyncStatus.ERASED
        assert (lead.email, lead.firstname, lead.lastname, lead.phone, lead.message) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert lead.scrubbed_at is not None
        assert lead.email_hash == erasure.email_hash
        assert lead.hubspot_id == synced.hubspot_id  # the audit trail stays
        assert await _history_rows(sessions, lead_id) == 0
    assert (await fetch(sessions, other)).email == BEA
    # Access after the erasure: only the scrubbed rows, found by the keyed hash.
    subject = await privacy_usecases.lookup_subject(sessions, settings=settings, email=ANA)
    assert [lead.id for lead in subject.leads] == [first, second]
    assert all(lead.email is None for lead in subject.leads)
    assert [e.id for e in subject.erasures] == [accepted.id]


async def test_transient_failures_retry_and_a_refusal_fails_until_an_operator_retries(
    sessions: Sessions,
    fence: SendFence,
    sandbox_settings: Callable[..., Settings],
    hubspot: SandboxHubSpot,
) -> None:
    settings = sandbox_settings(erasure_key=KEY)
    await hubspot.inject(status=503, endpoints=["gdpr_delete"], times=2)
    outcomes: list[ErasureOutcome] = []
    async with _worker(settings, sessions, outcomes):
        accepted = await _erase(sessions, fence, settings)
        done = await wait_for(erasure_in(sessions, accepted.id))
        assert done.attempts == 3
        assert outcomes == [ErasureOutcome.RETRY, ErasureOutcome.RETRY, ErasureOutcome.COMPLETED]

        await hubspot.inject(
            status=400,
            json={
                "status": "error",
                "message": f"Cannot delete {BEA}: property is read-only",
                "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
                "category": "VALIDATION_ERROR",
            },
            endpoints=["gdpr_delete"],
        )
        refused = await _erase(sessions, fence, settings, email=BEA)

        erasure = await wait_for(erasure_in(sessions, refused.id, ErasureStatus.FAILED))
        assert erasure.http_status == 400
        assert erasure.error is not None
        assert BEA not in erasure.error
        assert "read-only" in erasure.error
        retried = await privacy_usecases.retry_erasure(sessions, erasure_id=refused.id)
        assert retried is not None
        assert retried.status is ErasureStatus.REQUESTED
        await wait_for(erasure_in(sessions, refused.id))


async def test_an_answer_lost_after_hubspot_applied_the_delete_ends_in_one_completion(
    sessions: Sessions,
    fence: SendFence,
    sandbox_settings: Callable[..., Settings],
    hubspot: SandboxHubSpot,
) -> None:
    settings = sandbox_settings(erasure_key=KEY)
    outcomes: list[ErasureOutcome] = []
    async with _worker(settings, sessions, outcomes):
        lead_id = await new_lead(sessions, email=ANA)
        await wait_for(status_of(sessions, lead_id))
        await hubspot.inject(action="drop", endpoints=["gdpr_delete"])
        accepted = await _erase(sessions, fence, settings)
        erasure = await wait_for(erasure_in(sessions, accepted.id))

    assert outcomes == [ErasureOutcome.RETRY, ErasureOutcome.COMPLETED]
    assert erasure.attempts == 2
    deletions = await hubspot.gdpr_deletions()
    assert [d["deleted_contact_id"] is not None for d in deletions] == [True, False]
    assert await hubspot.contacts() == []


async def test_a_write_that_lands_after_the_delete_is_deleted_again(
    sessions: Sessions,
    fence: SendFence,
    sandbox_settings: Callable[..., Settings],
    hubspot: SandboxHubSpot,
) -> None:
    # The client gives up on the write after 0.5 s; HubSpot applies it at 1.5 s, after the
    # first GDPR delete. The erasure, requested right after the timeout, confirms at 2.5 s.
    # One attempt only: a retry (its full jitter under the tests' 0.2 s cap can be 0) would
    # send the lead again before the erasure, and the wait below could miss its RETRYING.
    settings = sandbox_settings(
        erasure_key=KEY,
        erasure_confirm_seconds=2.5,
        hubspot_total_timeout_seconds=0.5,
        max_attempts=1,
    )
    await hubspot.inject(action="delay", delay_ms=1500, endpoints=["batch_upsert"])
    outcomes: list[ErasureOutcome] = []
    async with _worker(settings, sessions, outcomes):
        lead_id = await new_lead(sessions, email=ANA)
        await wait_for(status_of(sessions, lead_id, "FAILED"))  # the client gave up
        accepted = await _erase(sessions, fence, settings)
        assert accepted.confirm_after is not None
        erasure = await wait_for(erasure_in(sessions, accepted.id), timeout=15)

    assert outcomes == [ErasureOutcome.CONFIRMING, ErasureOutcome.COMPLETED]
    assert erasure.deleted_at is not None
    assert erasure.completed_at is not None
    assert erasure.completed_at >= accepted.confirm_after
    deletions = await hubspot.gdpr_deletions()
    assert len(deletions) == 2
    assert deletions[1]["deleted_contact_id"] is not None  # the late write had re-created it
    assert await hubspot.contacts() == []


async def test_retention_scrubs_old_finished_leads_in_bounded_batches(
    sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    now = utcnow()
    old = now - dt.timedelta(days=40)
    ids = await insert_leads(
        sessions,
        [
            lead_row(1, now=old, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None),
            lead_row(
                2,
                now=old,
                **failed_columns(400) | {"hubspot_error": "INVALID_EMAIL: lead2@example.com"},
            ),
            lead_row(3, now=old),  # still PENDING: kept until it is finished
            lead_row(4, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None),
        ],
    )
    async with transaction(sessions) as session:
        await lead_history.append(
            session,
            [
                Attempt(
                    lead_id=ids[1],
                    attempted_at=old,
                    attempt=1,
                    outcome=SyncOutcome.FAILED,
                    error="Lead2 refused: lead2@example.com is invalid",
                )
            ],
        )
    settings = settings_factory(retention_days=30)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        assert await worker.apply_retention(now=now) == 2
        assert await worker.apply_retention(now=now) == 0

    synced, failed, pending, recent = [await fetch(sessions, i) for i in ids]
    assert synced.email is None
    assert synced.firstname is None
    assert synced.scrubbed_at is not None
    assert synced.hubspot_sync_status == SyncStatus.SYNCED  # the sync columns stay
    assert failed.email is None
    assert failed.hubspot_error == "INVALID_EMAIL: [removed]"
    (row,) = await _history_of(sessions, ids[1])
    assert row.error == "[removed] refused: [removed] is invalid"
    assert pending.email == "lead3@example.com"
    assert recent.email == "lead4@example.com"


async def test_retention_batches_are_bounded(
    sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    now = utcnow()
    old = now - dt.timedelta(days=2)
    await insert_leads(
        sessions,
        [lead_row(i, now=old, hubspot_sync_status="SYNCED") for i in range(25)],
    )
    async with transaction(sessions) as session:
        first = await privacy.scrub_expired(
            session, created_before=now - dt.timedelta(days=1), limit=10, now=now
        )
    assert first == 10
    async with sessions() as session:
        left = await session.scalar(select(func.count()).where(Lead.email.is_not(None)))
    assert left == 15


async def test_a_replay_of_an_erased_lead_is_refused_with_its_reason(
    engine: AsyncEngine,
    sessions: Sessions,
    fence: SendFence,
    settings_factory: Callable[..., Settings],
) -> None:
    settings = _keyed(settings_factory)
    intake = await open_intake(engine, sessions, max_size=2)
    try:
        data = LeadIn(email=ANA, firstname="Ana")
        first = await submit_lead(intake, data=data, idempotency_key="form-1")
        accepted = await _erase(sessions, fence, settings)
        async with transaction(sessions) as session:
            (taken,) = await privacy.claim_erasures(
                session, limit=1, lease_seconds=60, now=utcnow()
            )
            assert taken.id == accepted.id
        async with transaction(sessions) as session:
            await privacy.complete_erasure(
                session, erasure_id=taken.id, token=taken.token, http_status=204, now=utcnow()
            )
        with pytest.raises(IdempotencyConflict) as refused:
            await submit_lead(intake, data=data, idempotency_key="form-1")
        assert refused.value.erased
        assert (await fetch(sessions, first.id)).email is None
    finally:
        await intake.close()
