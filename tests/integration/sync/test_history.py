"""Each lead's sync history on SQLite and PostgreSQL: written with the outcome, in one
statement per batch, read back in order, pruned in bounded batches."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine import worker as worker_module
from leadsync.engine.worker import Worker
from leadsync.hubspot.client import HubSpotClient
from leadsync.sandbox.server import RunningSandbox
from leadsync.store import history, pgdirect, queue
from leadsync.store.db import transaction, utcnow
from leadsync.store.queue import Completion
from leadsync.store.tables import (
    HISTORY_ERROR_CHARS,
    Lead,
    LeadSyncAttempt,
    SyncStatus,
    SyncWorker,
)
from leadsync.usecases.leads import get_lead_with_history
from tests.helpers import INTERNAL_HEADERS, wait_for
from tests.helpers.cli import leadsync
from tests.helpers.clock import FakeClock
from tests.helpers.leads import fetch, insert_lead, insert_leads, lead_row
from tests.helpers.worker import new_lead, sandbox_worker, status_of

Sessions = async_sessionmaker[AsyncSession]


async def rows_of(sessions: Sessions, lead_id: int | None = None) -> list[LeadSyncAttempt]:
    async with sessions() as session:
        query = select(LeadSyncAttempt).order_by(LeadSyncAttempt.id)
        if lead_id is not None:
            query = query.where(LeadSyncAttempt.lead_id == lead_id)
        return list((await session.execute(query)).scalars())


async def claim_all(sessions: Sessions, clock: FakeClock) -> queue.Claim:
    async with transaction(sessions) as session:
        return await queue.claim(session, limit=100, lease_seconds=30, now=clock.now)


def done(lead: queue.LeadSnapshot, clock: FakeClock, **changes: Any) -> Completion:
    values: dict[str, Any] = {
        "lead_id": lead.id,
        "lease_token": lead.lease_token,
        "status": SyncStatus.SYNCED,
        "attempts": lead.attempts + 1,
        "attempted_at": clock.now,
        "http_status": 200,
        "hubspot_id": f"hs-{lead.id}",
        "synced_at": clock.now,
        "outcome": history.SyncOutcome.SYNCED,
    }
    return Completion(**(values | changes))


async def test_a_batch_appends_one_row_per_lead_in_one_insert(
    engine: AsyncEngine, sessions: Sessions, clock: FakeClock
) -> None:
    await insert_leads(sessions, [lead_row(i, now=clock.now) for i in range(5)])
    batch = await claim_all(sessions, clock)
    failure = "HTTP 400 VALIDATION_ERROR: " + "x" * 2000
    completions = [done(lead, clock) for lead in batch.leads[:4]] + [
        done(
            batch.leads[4],
            clock,
            status=SyncStatus.FAILED,
            http_status=400,
            hubspot_id=None,
            synced_at=None,
            error=failure,
            outcome=history.SyncOutcome.FAILED,
        )
    ]
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO LEAD_SYNC_ATTEMPTS"):
            inserts.append(statement)

    def logged(query: Any) -> None:  # asyncpg's logger: PostgreSQL's statements go direct
        count(None, None, query.query)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with transaction(sessions) as session:
            if engine.dialect.name == "postgresql":
                driver = await pgdirect.driver(await session.connection())
                driver.add_query_logger(logged)
            written = await queue.complete(
                session, completions=completions, now=clock.now, worker_id="w1", duration_ms=42
            )
            if engine.dialect.name == "postgresql":
                driver.remove_query_logger(logged)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)

    assert written == {lead.id for lead in batch.leads}
    assert len(inserts) == 1
    rows = await rows_of(sessions)
    assert [(r.lead_id, r.outcome, r.attempt) for r in rows] == [
        *((lead.id, "synced", 1) for lead in batch.leads[:4]),
        (batch.leads[4].id, "failed", 1),
    ]
    assert {(r.worker_id, r.duration_ms, r.attempted_at) for r in rows} == {("w1", 42, clock.now)}
    assert rows[0].hubspot_id == f"hs-{batch.leads[0].id}"
    assert rows[4].http_status == 400
    assert rows[4].error is not None
    assert len(rows[4].error) == HISTORY_ERROR_CHARS
    assert rows[4].error.startswith("HTTP 400 VALIDATION_ERROR: xxx")
    lead = await fetch(sessions, batch.leads[4].id)
    assert lead.hubspot_error == failure  # the lead keeps HubSpot's whole message


async def test_a_fenced_outcome_is_recorded_as_fenced_and_not_written(
    sessions: Sessions, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, now=clock.now)
    (lead,) = (await claim_all(sessions, clock)).leads
    stale = done(lead, clock, lease_token="00000000-0000-0000-0000-000000000000")

    async with transaction(sessions) as session:
        written = await queue.complete(session, completions=[stale], now=clock.now)

    assert written == set()
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "IN_PROGRESS"
    assert [r.outcome for r in await rows_of(sessions, lead_id)] == ["fenced"]


async def test_history_is_written_in_the_outcomes_transaction(
    sessions: Sessions, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, now=clock.now)
    (lead,) = (await claim_all(sessions, clock)).leads

    class Boom(Exception):
        pass

    async def complete_then_fail() -> None:
        async with transaction(sessions) as session:
            await queue.complete(session, completions=[done(lead, clock)], now=clock.now)
            raise Boom

    with pytest.raises(Boom):
        await complete_then_fail()

    assert await rows_of(sessions) == []
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "IN_PROGRESS"


async def test_expired_leases_released_by_reconciliation_are_recorded(
    sessions: Sessions, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, now=clock.now)
    await claim_all(sessions, clock)

    clock.advance(31)
    async with transaction(sessions) as session:
        released = await queue.release_expired_leases(
            session, now=clock.now, max_attempts=10, worker_id="reaper"
        )

    assert released == 1
    (row,) = await rows_of(sessions, lead_id)
    assert (row.outcome, row.attempt, row.worker_id) == ("expired", 1, "reaper")
    assert row.error == queue.LEASE_EXPIRED_ERROR


async def test_worker_records_synced_and_failed_outcomes_against_the_sandbox(
    sessions: Sessions,
    sandbox: RunningSandbox,
    sandbox_settings: Callable[..., Settings],
) -> None:
    sandbox.state.update_config({"reject_emails": r"^bad@"})
    settings = sandbox_settings()
    async with sandbox_worker(settings, sessions) as worker:
        good = await new_lead(sessions, email="good@example.com")
        bad = await new_lead(sessions, email="bad@example.com")
        await wait_for(status_of(sessions, good), timeout=20)
        await wait_for(status_of(sessions, bad, "FAILED"), timeout=20)

    (synced,) = await rows_of(sessions, good)
    lead = await fetch(sessions, good)
    assert (synced.outcome, synced.attempt, synced.hubspot_id) == ("synced", 1, lead.hubspot_id)
    assert synced.worker_id == worker.worker_id
    assert synced.duration_ms is not None
    assert synced.duration_ms >= 0
    (failed,) = await rows_of(sessions, bad)
    assert (failed.outcome, failed.http_status) == ("failed", 400)
    assert failed.error is not None
    assert "bad@example.com" in failed.error

    found = await get_lead_with_history(sessions, lead_id=bad)
    assert found is not None
    assert [h.outcome.value for h in found.history] == ["failed"]


async def _old_rows(sessions: Sessions, lead_id: int, *, count: int, at: dt.datetime) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            insert(LeadSyncAttempt),
            [
                {"lead_id": lead_id, "attempted_at": at, "attempt": i, "outcome": "retry"}
                for i in range(count)
            ],
        )


async def test_reconciliation_prunes_old_history_in_bounded_batches(
    sessions: Sessions,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "PRUNE_BATCH_ROWS", 3)
    monkeypatch.setattr(worker_module, "PRUNE_BATCHES", 2)
    lead_id = await insert_lead(sessions)
    now = utcnow()
    await _old_rows(sessions, lead_id, count=10, at=now - dt.timedelta(days=8))
    await _old_rows(sessions, lead_id, count=2, at=now - dt.timedelta(days=6))
    settings = settings_factory(history_days=7)
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client)
        await worker.reconcile()
        assert len(await rows_of(sessions)) == 12 - 6  # two batches of three, then it stops
        await worker.reconcile()
        assert len(await rows_of(sessions)) == 2  # only the rows younger than 7 days are left
        await worker.reconcile()

    assert len(await rows_of(sessions)) == 2
    async with sessions() as session:
        seen = await session.get(SyncWorker, worker.worker_id)
    assert seen is not None
    assert seen.last_seen_at >= now


async def test_deleting_a_lead_deletes_its_history(sessions: Sessions) -> None:
    lead_id = await insert_lead(sessions)
    await _old_rows(sessions, lead_id, count=2, at=utcnow())

    async with transaction(sessions) as session:
        await session.execute(delete(Lead).where(Lead.id == lead_id))

    assert await rows_of(sessions) == []


async def test_get_lead_answers_its_history_oldest_first(
    client_factory: Any, sessions: Sessions
) -> None:
    lead_id = await insert_lead(sessions)
    async with transaction(sessions) as session:
        await history.append(
            session,
            [
                history.Attempt(lead_id, utcnow(), 1, history.SyncOutcome.RETRY, 503, "HTTP 503"),
                history.Attempt(lead_id, utcnow(), 2, history.SyncOutcome.SYNCED, 200, None),
            ],
        )
    async with client_factory() as (_app, client):
        response = await client.get(f"/internal/leads/{lead_id}", headers=INTERNAL_HEADERS)

    assert response.status_code == 200
    rows = response.json()["history"]
    assert [(r["attempt"], r["outcome"], r["http_status"]) for r in rows] == [
        (1, "retry", 503),
        (2, "synced", 200),
    ]


async def test_cli_lead_prints_the_lead_and_its_history(db_url: str, sessions: Sessions) -> None:
    lead_id = await insert_lead(sessions, email="cli@example.com")
    async with transaction(sessions) as session:
        await history.append(
            session,
            [history.Attempt(lead_id, utcnow(), 1, history.SyncOutcome.FAILED, 400, "bad email")],
        )

    code, out, err = await leadsync(db_url, "lead", str(lead_id), "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["email"] == "cli@example.com"
    assert [(h["outcome"], h["error"]) for h in shown["history"]] == [("failed", "bad email")]

    code, out, err = await leadsync(db_url, "lead", str(lead_id))
    assert code == 0, err
    for shown_text in ("cli@example.com", "bad email", "failed"):
        assert shown_text in out

    code, _out, err = await leadsync(db_url, "lead", "999999")
    assert code == 1
    assert "no lead with id 999999" in err
