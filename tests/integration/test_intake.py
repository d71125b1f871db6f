"""POST /leads' store: the asyncpg intake on PostgreSQL keeps the sessions' rules exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.store.db import DatabaseUnavailable
from leadsync.store.leads import (
    IdempotencyConflict,
    PostgresIntake,
    SessionIntake,
    open_intake,
)
from leadsync.store.queue import NOTIFY_CHANNEL
from leadsync.store.tables import Lead
from tests.helpers import wait_for
from tests.helpers.app import ClientFactory

FIELDS = {"email": "ana@example.com", "firstname": "Ana", "message": "Hola"}
COLUMNS = (
    "email", "firstname", "lastname", "phone", "company", "message", "source",
    "idempotency_key", "idempotency_fingerprint", "hubspot_sync_status",
    "hubspot_sync_attempts", "hubspot_id", "hubspot_error",
)  # fmt: skip


async def _row(sessions: async_sessionmaker[AsyncSession], lead_id: int) -> dict[str, object]:
    async with sessions() as session:
        lead = (await session.execute(select(Lead).where(Lead.id == lead_id))).scalar_one()
    assert lead.hubspot_next_attempt_at == lead.created_at == lead.updated_at
    return {name: getattr(lead, name) for name in COLUMNS}


async def test_open_intake_picks_asyncpg_on_postgresql_only(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await open_intake(engine, sessions, max_size=2)
    try:
        expected = PostgresIntake if engine.dialect.name == "postgresql" else SessionIntake
        assert type(intake) is expected
    finally:
        await intake.close()


async def test_both_intakes_write_the_same_row_and_replay_the_same_way(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    fast = await open_intake(engine, sessions, max_size=2)
    slow = SessionIntake(sessions)
    try:
        rows = []
        for n, intake in enumerate((fast, slow)):
            stored = await intake.insert(fields=FIELDS, idempotency_key=f"k{n}", fingerprint="f")
            again = await intake.insert(fields=FIELDS, idempotency_key=f"k{n}", fingerprint="f")
            assert (stored.created, again.created) == (True, False)
            assert again.id == stored.id
            assert again.row["email"] == stored.row["email"] == "ana@example.com"
            assert again.row["hubspot_sync_status"] == "PENDING"
            with pytest.raises(IdempotencyConflict):
                await intake.insert(fields=FIELDS, idempotency_key=f"k{n}", fingerprint="other")
            rows.append(await _row(sessions, stored.id))
    finally:
        await fast.close()
    fast_row, slow_row = rows
    assert fast_row | {"idempotency_key": None} == slow_row | {"idempotency_key": None}


async def test_one_key_sent_at_once_many_times_stores_one_lead(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await open_intake(engine, sessions, max_size=4)
    try:
        results = await asyncio.gather(
            *(
                intake.insert(fields=FIELDS, idempotency_key="same", fingerprint="f")
                for _ in range(8)
            )
        )
    finally:
        await intake.close()
    assert len({stored.id for stored in results}) == 1
    assert sum(stored.created for stored in results) == 1


async def test_an_unreachable_postgresql_is_a_503_from_the_asyncpg_intake(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(database_url="postgresql://postgres@127.0.0.1:9/nowhere")
    async with client_factory(settings, migrate_on_start=False) as (_app, client):
        response = await client.post("/leads", json={"email": "a@example.com"})
    assert response.status_code == 503
    assert response.json()["detail"] == "the database is unavailable; try again later"


async def test_the_asyncpg_intake_says_unavailable_not_a_driver_error() -> None:
    intake = await PostgresIntake.connect("postgresql://postgres@127.0.0.1:9/x", max_size=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            await intake.insert(fields=FIELDS, idempotency_key=None, fingerprint=None)
    finally:
        await intake.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # LISTEN/NOTIFY: PostgreSQL's
async def test_the_asyncpg_intake_notifies_on_commit_once_per_new_lead(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    # Workers in other processes LISTEN: a new lead must wake them, a replay must not.
    heard: list[str] = []
    listener = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
    await listener.add_listener(
        NOTIFY_CHANNEL, lambda _conn, _pid, channel, _payload: heard.append(channel)
    )
    intake = await open_intake(engine, sessions, max_size=2)
    try:
        await intake.insert(fields=FIELDS, idempotency_key="once", fingerprint="f")
        await wait_for(lambda: len(heard) == 1 or None, timeout=5)
        await intake.insert(fields=FIELDS, idempotency_key="once", fingerprint="f")  # replay
        await intake.insert(fields=FIELDS, idempotency_key=None, fingerprint=None)
        await wait_for(lambda: len(heard) == 2 or None, timeout=5)
    finally:
        await intake.close()
        await listener.close()
    assert heard == [NOTIFY_CHANNEL, NOTIFY_CHANNEL]
