"""The lead row as a queue on SQLite and PostgreSQL: claim, fencing, release, requeue, stats."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, text

from leadsync.hubspot.errors import TRANSIENT_4XX_STATUSES
from leadsync.store import pgdirect, queue
from leadsync.store.db import transaction
from leadsync.store.queue import Completion
from leadsync.store.tables import Lead, SyncStatus
from tests.helpers.clock import FakeClock
from tests.helpers.leads import failed_row, fetch, fetch_all, insert_lead, insert_leads, lead_row

LEASE = 30.0


def ago(clock: FakeClock, seconds: float) -> dt.datetime:
    return clock.now - dt.timedelta(seconds=seconds)


def later(clock: FakeClock, seconds: float) -> dt.datetime:
    return clock.now + dt.timedelta(seconds=seconds)


async def claim(sessions, clock: FakeClock, *, limit: int = 100, lease: float = LEASE):
    async with transaction(sessions) as session:
        return (await queue.claim(session, limit=limit, lease_seconds=lease, now=clock.now)).leads


async def complete(sessions, clock: FakeClock, *completions: Completion) -> set[int] | None:
    async with transaction(sessions) as session:
        return await queue.complete(session, completions=completions, now=clock.now)


# --- claim ----------------------------------------------------------------------------


async def test_claim_returns_due_leads_only(sessions, clock: FakeClock) -> None:
    token = "00000000-0000-0000-0000-000000000000"
    rows = {
        "pending_due": lead_row(1, hubspot_next_attempt_at=ago(clock, 1)),
        "pending_now": lead_row(2, hubspot_next_attempt_at=clock.now),
        "pending_future": lead_row(3, hubspot_next_attempt_at=later(clock, 60)),
        "retrying_due": lead_row(
            4,
            hubspot_sync_status="RETRYING",
            hubspot_sync_attempts=2,
            hubspot_next_attempt_at=ago(clock, 5),
        ),
        "retrying_future": lead_row(
            5, hubspot_sync_status="RETRYING", hubspot_next_attempt_at=later(clock, 5)
        ),
        "lease_expired": lead_row(
            6,
            hubspot_sync_status="IN_PROGRESS",
            hubspot_lease_token=token,
            hubspot_lease_expires_at=ago(clock, 1),
            hubspot_next_attempt_at=ago(clock, 1),
        ),
        "lease_live": lead_row(
            7,
            hubspot_sync_status="IN_PROGRESS",
            hubspot_lease_token=token,
            hubspot_lease_expires_at=later(clock, 10),
            hubspot_next_attempt_at=later(clock, 10),
        ),
        "synced": lead_row(8, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None),
        "synced_stale_due": lead_row(
            9, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=ago(clock, 100)
        ),
        "failed": lead_row(10, hubspot_sync_status="FAILED", hubspot_next_attempt_at=ago(clock, 9)),
    }
    ids = dict(zip(rows, await insert_leads(sessions, list(rows.values())), strict=True))

    claimed = await claim(sessions, clock)

    expected = {"pending_due", "pending_now", "retrying_due", "lease_expired"}
    assert {lead.id for lead in claimed} == {ids[name] for name in expected}
    assert [lead.id for lead in claimed] == sorted(lead.id for lead in claimed)
    tokens = {lead.lease_token for lead in claimed}
    assert len(tokens) == 1
    (new_token,) = tokens
    assert new_token != token
    by_id = {lead.id: lead for lead in claimed}
    retrying = by_id[ids["retrying_due"]]
    assert (retrying.email, retrying.values["firstname"], retrying.attempts) == (
        "lead4@example.com",
        "Lead4",
        2,
    )

    stored = await fetch_all(sessions)
    for name, lead_id in ids.items():
        row = stored[lead_id]
        if name in expected:
            assert row.hubspot_sync_status == "IN_PROGRESS"
            assert row.hubspot_lease_token == new_token
            assert row.hubspot_lease_expires_at == later(clock, LEASE)
            # An orphaned row becomes due again by itself when its lease runs out.
            assert row.hubspot_next_attempt_at == later(clock, LEASE)
        else:
            assert row.hubspot_sync_status == rows[name]["hubspot_sync_status"], name
            assert row.hubspot_lease_expires_at == rows[name].get("hubspot_lease_expires_at")
    # Claiming does not count an attempt: only an outcome does...
    assert stored[ids["retrying_due"]].hubspot_sync_attempts == 2
    # ...or a lease that ran out: that attempt was lost with its worker.
    assert stored[ids["lease_expired"]].hubspot_sync_attempts == 1
    assert stored[ids["lease_expired"]].hubspot_error == queue.LEASE_EXPIRED_ERROR


async def test_claim_takes_the_longest_waiting_first_and_respects_limit(
    sessions, clock: FakeClock
) -> None:
    ids = await insert_leads(
        sessions, [lead_row(i, hubspot_next_attempt_at=ago(clock, i)) for i in range(50)]
    )
    claimed = await claim(sessions, clock, limit=5)
    # Longest overdue = largest i = the last ids.
    assert {lead.id for lead in claimed} == set(ids[-5:])
    async with sessions() as session:
        in_progress = await session.scalar(
            select(func.count()).where(Lead.hubspot_sync_status == "IN_PROGRESS")
        )
    assert in_progress == 5


async def test_claims_never_overlap(sessions, clock: FakeClock) -> None:
    await insert_leads(sessions, [lead_row(i) for i in range(25)])
    first = await claim(sessions, clock, limit=10)
    second = await claim(sessions, clock, limit=10)
    third = await claim(sessions, clock, limit=10)
    assert [len(first), len(second), len(third)] == [10, 10, 5]
    ids = [lead.id for batch in (first, second, third) for lead in batch]
    assert len(set(ids)) == 25
    assert await claim(sessions, clock) == []
    assert len({first[0].lease_token, second[0].lease_token, third[0].lease_token}) == 3


async def test_concurrent_claimers_get_disjoint_leads(sessions, clock: FakeClock) -> None:
    await insert_leads(sessions, [lead_row(i) for i in range(60)])
    batches = await asyncio.gather(*(claim(sessions, clock, limit=7) for _ in range(12)))
    ids = [lead.id for batch in batches for lead in batch]
    assert len(ids) == len(set(ids)) == 60
    assert all(len(batch) <= 7 for batch in batches)


ONLY_POSTGRES = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
ONLY_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.mark.postgres
@ONLY_POSTGRES
async def test_claims_are_serialised_on_postgres(sessions, clock: FakeClock) -> None:
    # Per-email exclusion needs every claim to see the claims committed before it: a second
    # claimer waits for an open claim (the advisory lock), then takes only what is left.
    await insert_leads(sessions, [lead_row(i) for i in range(10)])
    async with sessions() as first_session:
        async with first_session.begin():
            first = await queue.claim(first_session, limit=4, lease_seconds=LEASE, now=clock.now)
            second_task = asyncio.ensure_future(claim(sessions, clock, limit=100))
            done, _ = await asyncio.wait({second_task}, timeout=0.5)
            assert not done, "a claim ran while another claim's transaction was open"
        second = await asyncio.wait_for(second_task, timeout=5)
    assert len(first) == 4
    assert len(second) == 6
    assert not {lead.id for lead in first.leads} & {lead.id for lead in second}


async def _insert_series(
    sessions, *, count: int, email: str, status: str, due: dt.datetime | None
) -> None:
    """Insert `count` leads (`<email><n>@example.com`) in one statement (PostgreSQL)."""
    async with transaction(sessions) as session:
        await session.execute(
            text(
                "INSERT INTO leads (email, hubspot_sync_status, hubspot_sync_attempts,"
                " hubspot_next_attempt_at, created_at, updated_at)"
                " SELECT :email || g || '@example.com', :status, :attempts, :due, now(), now()"
                " FROM generate_series(1, :count) AS g"
            ),
            {
                "email": email,
                "status": status,
                "attempts": 1 if status == "SYNCED" else 0,
                "due": due,
                "count": count,
            },
        )


async def _analyze(engine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE leads"))
        await conn.commit()


async def _plans(engine, statements: dict[str, tuple[Any, dict[str, Any]]]) -> dict[str, str]:
    """EXPLAIN each direct statement (store/pgdirect.py) as the engine sends it."""
    plans = {}
    async with engine.connect() as conn:
        driver = await pgdirect.driver(conn)
        for name, (statement, values) in statements.items():
            rows = await driver.fetch(f"EXPLAIN {statement.sql}", *statement.args(values))
            plans[name] = "\n".join(row[0] for row in rows)
        await conn.rollback()
    return plans


@pytest.mark.postgres
@ONLY_POSTGRES
async def test_claim_uses_the_partial_due_index_on_postgres(
    sessions, engine, clock: FakeClock
) -> None:
    await _insert_series(sessions, count=20000, email="synced", status="SYNCED", due=None)
    await insert_leads(sessions, [lead_row(i) for i in range(20)])
    await _analyze(engine)

    claimed = await claim(sessions, clock, limit=10)
    assert len(claimed) == 10

    # The claim's statements, as it sends them through asyncpg, each planned on the index.
    scan = {"now": clock.now, "scan": 10 + queue.CLAIM_SCAN_EXTRA}
    take = {
        "emails": [f"lead{i}@example.com" for i in range(10, 20)],
        "max_attempts": 10,
        "token": "t",
        "expires": clock.now,
        "now": clock.now,
    }
    plans = await _plans(engine, {"scan": (queue._D_SCAN, scan), "take": (queue._D_TAKE, take)})
    for plan in plans.values():
        assert "Seq Scan" not in plan, plan
    assert "ix_leads_due" in plans["scan"], plans["scan"]


@pytest.mark.postgres
@ONLY_POSTGRES
async def test_claim_finds_an_emails_other_leads_by_email_whatever_the_statistics(
    sessions, engine, clock: FakeClock
) -> None:
    # Statistics taken before a drain began say nothing is IN_PROGRESS or SYNCED; then 400
    # leads go in flight and 1,000 are synced. The claim's lookups of an email's other leads
    # (busy elsewhere? synced before?) must still go through the email index: through the
    # status index they read every IN_PROGRESS lead once per scanned lead (10.8 ms a claim in
    # the drain benchmark), through the retention index every SYNCED lead per claim.
    await _insert_series(sessions, count=20000, email="lead", status="PENDING", due=clock.now)
    await _analyze(engine)
    async with transaction(sessions) as session:
        await session.execute(
            text(
                "UPDATE leads SET hubspot_sync_status = 'SYNCED', hubspot_next_attempt_at = NULL"
                " WHERE id IN (SELECT id FROM leads ORDER BY id LIMIT 1000)"
            )
        )
        await session.execute(
            text(
                "UPDATE leads SET hubspot_sync_status = 'IN_PROGRESS',"
                " hubspot_lease_token = 't', hubspot_lease_expires_at = :until,"
                " hubspot_next_attempt_at = :until"
                " WHERE id IN (SELECT id FROM leads WHERE hubspot_sync_status = 'PENDING'"
                " ORDER BY id LIMIT 400)"
            ),
            {"until": clock.now + dt.timedelta(seconds=LEASE)},
        )
    scan = {"now": clock.now, "scan": 100 + queue.CLAIM_SCAN_EXTRA}
    synced = {"emails": [f"lead{i}@example.com" for i in range(1400, 1500)]}
    plans = await _plans(
        engine, {"scan": (queue._D_SCAN, scan), "synced": (queue._D_SYNCED, synced)}
    )
    assert "ix_leads_email " in plans["scan"], plans["scan"]
    assert "ix_leads_hubspot_sync_status_id" not in plans["scan"], plans["scan"]
    assert "ix_leads_email " in plans["synced"], plans["synced"]
    assert "ix_leads_retention" not in plans["synced"], plans["synced"]


@ONLY_SQLITE
async def test_claim_does_not_scan_synced_rows_on_sqlite(
    sessions, engine, clock: FakeClock
) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            text(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)"
                " INSERT INTO leads (email, hubspot_sync_status, hubspot_sync_attempts,"
                " hubspot_next_attempt_at, created_at, updated_at)"
                " SELECT 'synced' || n || '@example.com', 'SYNCED', 1, NULL,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM g"
            )
        )
    await insert_leads(sessions, [lead_row(i) for i in range(20)])
    async with engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
    picked = (
        select(Lead.id)
        .where(queue._UNFINISHED, Lead.hubspot_next_attempt_at <= clock.now)
        .order_by(Lead.hubspot_next_attempt_at)
        .limit(10)
    )
    compiled = picked.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        )
    # SQLite may pick the partial index or the (status, id) one: either searches only the
    # unfinished rows. What must never happen is a scan over every SYNCED row.
    assert "SEARCH leads USING" in plan, plan
    assert "SCAN leads" not in plan, plan


async def test_has_due_sees_only_due_unfinished_leads(sessions, clock: FakeClock) -> None:
    async def has_due() -> bool:
        async with sessions() as session:
            return await queue.has_due(session, now=clock.now)

    assert not await has_due()
    await insert_leads(
        sessions,
        [
            lead_row(1, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=ago(clock, 9)),
            lead_row(2, hubspot_sync_status="FAILED", hubspot_next_attempt_at=ago(clock, 9)),
            lead_row(3, hubspot_next_attempt_at=later(clock, 5)),
        ],
    )
    assert not await has_due()
    clock.advance(5)
    assert await has_due()
    await claim(sessions, clock)  # leased: not due again until the lease runs out
    assert not await has_due()
    clock.advance(LEASE)
    assert await has_due()


# --- complete and fencing -------------------------------------------------------------


def synced(lead, clock: FakeClock, **changes) -> Completion:
    values = {
        "lead_id": lead.id,
        "lease_token": lead.lease_token,
        "status": SyncStatus.SYNCED,
        "attempts": lead.attempts + 1,
        "attempted_at": clock.now,
        "http_status": 200,
        "hubspot_id": "12345",
        "synced_at": clock.now,
        "error": None,
    }
    values.update(changes)
    return Completion(**values)


async def test_complete_writes_every_column_and_clears_the_lease(
    sessions, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, hubspot_error="HTTP 503: old", hubspot_sync_attempts=1)
    (lead,) = await claim(sessions, clock)
    clock.advance(2)
    await complete(sessions, clock, synced(lead, clock))

    row = await fetch(sessions, lead_id)
    assert row.hubspot_sync_status == "SYNCED"
    assert row.hubspot_id == "12345"
    assert row.hubspot_synced_at == clock.now
    assert row.hubspot_error is None
    assert row.hubspot_sync_attempts == 2
    assert row.last_hubspot_attempt_at == clock.now
    assert row.hubspot_last_http_status == 200
    assert row.hubspot_lease_token is None
    assert row.hubspot_lease_expires_at is None
    assert row.hubspot_next_attempt_at is None
    assert row.updated_at == clock.now

    # The lease is spent: the same token cannot write a second outcome.
    await complete(sessions, clock, synced(lead, clock, attempts=7, hubspot_id="other"))
    row = await fetch(sessions, lead_id)
    assert (row.hubspot_sync_attempts, row.hubspot_id) == (2, "12345")


async def test_stale_lease_token_changes_nothing(sessions, clock: FakeClock) -> None:
    lead_id = await insert_lead(sessions)
    (old,) = await claim(sessions, clock, lease=5)
    clock.advance(6)  # the first worker stalls past its lease; another one claims the lead
    (new,) = await claim(sessions, clock, lease=5)
    assert new.id == old.id
    assert new.lease_token != old.lease_token

    written = await complete(
        sessions,
        clock,
        Completion(
            lead_id=old.id,
            lease_token=old.lease_token,
            status=SyncStatus.FAILED,
            attempts=1,
            attempted_at=clock.now,
            http_status=400,
            error="stale worker's verdict",
        ),
    )
    # Both databases report what was written, so the worker can tell it was fenced out.
    assert written == set()
    row = await fetch(sessions, lead_id)
    assert row.hubspot_sync_status == "IN_PROGRESS"
    assert row.hubspot_lease_token == new.lease_token
    assert row.hubspot_error == queue.LEASE_EXPIRED_ERROR  # the re-claim's, not the stale one
    assert row.hubspot_sync_attempts == 1  # the lost attempt counts

    written = await complete(sessions, clock, synced(new, clock))
    assert written == {lead_id}
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "SYNCED"
    # A late write with the old token after the new one finished changes nothing either.
    await complete(sessions, clock, synced(old, clock, hubspot_id="999"))
    assert (await fetch(sessions, lead_id)).hubspot_id == "12345"


async def test_release_keeps_last_attempt_status_and_error(sessions, clock: FakeClock) -> None:
    last = ago(clock, 300)
    lead_id = await insert_lead(
        sessions,
        hubspot_sync_status="RETRYING",
        hubspot_sync_attempts=3,
        hubspot_error="HTTP 503: busy",
        last_hubspot_attempt_at=last,
        hubspot_last_http_status=503,
        hubspot_next_attempt_at=ago(clock, 1),
    )
    (lead,) = await claim(sessions, clock)
    await complete(
        sessions,
        clock,
        Completion(
            lead_id=lead.id,
            lease_token=lead.lease_token,
            status=SyncStatus.RETRYING,
            attempts=3,
            attempted_at=None,
            next_attempt_at=later(clock, 10),
            keep_error=True,
        ),
    )
    row = await fetch(sessions, lead_id)
    assert row.hubspot_sync_status == "RETRYING"
    assert row.hubspot_sync_attempts == 3
    assert row.hubspot_error == "HTTP 503: busy"
    assert row.last_hubspot_attempt_at == last
    assert row.hubspot_last_http_status == 503
    assert row.hubspot_next_attempt_at == later(clock, 10)
    assert row.hubspot_lease_token is None


async def test_complete_many_in_one_call(sessions, clock: FakeClock) -> None:
    await insert_leads(sessions, [lead_row(i) for i in range(30)])
    claimed = await claim(sessions, clock)
    await complete(
        sessions,
        clock,
        *(synced(lead, clock, hubspot_id=str(lead.id)) for lead in claimed),
    )
    rows = await fetch_all(sessions)
    assert all(
        r.hubspot_sync_status == "SYNCED" and r.hubspot_id == str(r.id) for r in rows.values()
    )
    await complete(sessions, clock)  # nothing to write is fine


# --- release, requeue, stats ----------------------------------------------------------


async def test_release_expired_leases(sessions, clock: FakeClock) -> None:
    expired = await insert_lead(sessions, index=0)
    live = await insert_lead(sessions, index=1)
    async with transaction(sessions) as session:
        await queue.claim(session, limit=1, lease_seconds=1, now=clock.now)
        await queue.claim(session, limit=1, lease_seconds=60, now=clock.now)
    clock.advance(2)
    async with transaction(sessions) as session:
        released = await queue.release_expired_leases(session, now=clock.now)
    assert released == 1
    row = await fetch(sessions, expired)
    # The attempt was lost with the worker: it counts, and the lead waits as a retry.
    assert row.hubspot_sync_status == "RETRYING"
    assert row.hubspot_sync_attempts == 1
    assert row.hubspot_error == queue.LEASE_EXPIRED_ERROR
    assert row.hubspot_lease_token is None
    assert row.hubspot_lease_expires_at is None
    assert row.hubspot_next_attempt_at == clock.now
    assert (await fetch(sessions, live)).hubspot_sync_status == "IN_PROGRESS"
    assert [lead.id for lead in await claim(sessions, clock)] == [expired]


async def test_release_expired_leases_keeps_retrying_leads_retrying(
    sessions, clock: FakeClock
) -> None:
    lead_id = await insert_lead(sessions, hubspot_sync_status="RETRYING", hubspot_sync_attempts=3)
    async with transaction(sessions) as session:
        await queue.claim(session, limit=1, lease_seconds=1, now=clock.now)
    clock.advance(2)
    async with transaction(sessions) as session:
        assert await queue.release_expired_leases(session, now=clock.now) == 1
    row = await fetch(sessions, lead_id)
    assert row.hubspot_sync_status == "RETRYING"
    assert row.hubspot_sync_attempts == 4


def failed(index: int, clock: FakeClock, *, status: int | None, age: float, **columns):
    """A lead that failed on `status`, its last attempt `age` seconds before the clock."""
    return failed_row(index, status=status, attempted_at=ago(clock, age), **columns)


async def requeue(sessions, clock: FakeClock, **filters) -> int:
    async with transaction(sessions) as session:
        return await queue.requeue_failed(session, now=clock.now, **filters)


async def statuses(sessions) -> dict[int, str]:
    return {i: lead.hubspot_sync_status for i, lead in (await fetch_all(sessions)).items()}


async def test_requeue_failed_resets_attempts_keeps_error(sessions, clock: FakeClock) -> None:
    (lead_id,) = await insert_leads(sessions, [failed(1, clock, status=400, age=10)])
    other = await insert_lead(sessions, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None)
    assert await requeue(sessions, clock) == 1
    row = await fetch(sessions, lead_id)
    assert row.hubspot_sync_status == "PENDING"
    assert row.hubspot_sync_attempts == 0
    assert row.hubspot_next_attempt_at == clock.now
    assert row.hubspot_error == "HTTP 400"  # kept until the next outcome
    assert (await fetch(sessions, other)).hubspot_sync_status == "SYNCED"
    assert [lead.id for lead in await claim(sessions, clock)] == [lead_id]


async def test_requeue_failed_filters(sessions, clock: FakeClock) -> None:
    ids = await insert_leads(
        sessions,
        [
            failed(0, clock, status=400, age=10),
            failed(1, clock, status=500, age=7200),
            failed(2, clock, status=400, age=10),
            failed(3, clock, status=400, age=10),
            failed(4, clock, status=400, age=10),
            lead_row(5),
        ],
    )

    async def states() -> list[str]:
        return [s[i] for s in [await statuses(sessions)] for i in ids]

    # By id: only FAILED leads among those named; unknown ids are ignored.
    assert await requeue(sessions, clock, lead_ids=[ids[2], ids[5], 99999]) == 1
    assert await states() == ["FAILED", "FAILED", "PENDING", "FAILED", "FAILED", "PENDING"]
    assert await requeue(sessions, clock, lead_ids=[]) == 0
    # By age of the last attempt.
    assert await requeue(sessions, clock, older_than_seconds=3600) == 1
    assert await states() == ["FAILED", "PENDING", "PENDING", "FAILED", "FAILED", "PENDING"]
    # At most `limit`, lowest ids first.
    assert await requeue(sessions, clock, limit=2) == 2
    assert await states() == ["PENDING", "PENDING", "PENDING", "PENDING", "FAILED", "PENDING"]


TRANSIENT = {
    None: True,
    500: True,
    502: True,
    503: True,
    408: True,
    409: True,
    423: True,
    429: True,
}
PERMANENT = {400: False, 401: False, 403: False, 404: False, 422: False}


async def test_requeue_transient_only(sessions, clock: FakeClock) -> None:
    table = {**TRANSIENT, **PERMANENT}
    ids = await insert_leads(
        sessions, [failed(i, clock, status=status, age=10) for i, status in enumerate(table)]
    )
    assert await requeue(sessions, clock, transient_4xx=TRANSIENT_4XX_STATUSES) == len(TRANSIENT)
    states = await statuses(sessions)
    for lead_id, (status, transient) in zip(ids, table.items(), strict=True):
        assert states[lead_id] == ("PENDING" if transient else "FAILED"), status


async def test_requeue_filters_combine(sessions, clock: FakeClock) -> None:
    ids = await insert_leads(
        sessions,
        [
            failed(0, clock, status=503, age=7200),  # transient, old: yes
            failed(1, clock, status=400, age=7200),  # permanent: no
            failed(2, clock, status=503, age=10),  # too recent: no
            failed(3, clock, status=None, age=7200),  # transient, old, but over the limit
        ],
    )
    count = await requeue(
        sessions, clock, older_than_seconds=3600, transient_4xx=TRANSIENT_4XX_STATUSES, limit=1
    )
    assert count == 1
    states = await statuses(sessions)
    assert [states[i] for i in ids] == ["PENDING", "FAILED", "FAILED", "FAILED"]


async def test_stats_counts_and_oldest_due(sessions, clock: FakeClock) -> None:
    async with sessions() as session:
        empty = await queue.stats(session, now=clock.now)
    assert empty.counts == {s.value: 0 for s in SyncStatus}
    assert empty.oldest_due_seconds is None

    await insert_leads(
        sessions,
        [
            lead_row(1, hubspot_next_attempt_at=ago(clock, 30)),
            lead_row(2, hubspot_next_attempt_at=ago(clock, 5)),
            lead_row(3, hubspot_next_attempt_at=later(clock, 500)),
            lead_row(4, hubspot_sync_status="RETRYING", hubspot_next_attempt_at=ago(clock, 90)),
            lead_row(5, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=ago(clock, 999)),
            failed(6, clock, status=400, age=10),
            failed(7, clock, status=400, age=10),
        ],
    )
    async with sessions() as session:
        stats = await queue.stats(session, now=clock.now)
    assert stats.counts == {
        "PENDING": 3,
        "IN_PROGRESS": 0,
        "RETRYING": 1,
        "SYNCED": 1,
        "FAILED": 2,
        "ERASED": 0,
    }
    assert stats.oldest_due_seconds == pytest.approx(90)
