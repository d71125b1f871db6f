"""Migrations on SQLite and PostgreSQL: match the models, go down and up, run concurrently."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import pkgutil
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import leadsync
from leadsync.store import migrations
from leadsync.store.db import Base, UTCDateTime, create_engine
from leadsync.store.tables import Lead

HEAD = migrations.head_revision()
TABLES = {"leads", "hubspot_gate"}


def _import_all_models() -> None:
    # Every `models` module registers its tables on Base.metadata; a model nobody imported
    # would otherwise escape the comparison below.
    for module in pkgutil.walk_packages(leadsync.__path__, "leadsync."):
        if module.name.rsplit(".", 1)[-1] == "models":
            importlib.import_module(module.name)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_schema_matches_the_models(engine: AsyncEngine) -> None:
    _import_all_models()

    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)

    assert diff == []


async def test_head_is_the_single_newest_revision() -> None:
    assert HEAD is not None
    assert await asyncio.to_thread(migrations.head_revision) == HEAD


async def test_downgrade_to_base_then_upgrade_again(engine: AsyncEngine) -> None:
    await migrations.downgrade(engine, revision="base")

    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) & TABLES == set()
    assert await migrations.schema_revision(engine) is None

    assert await migrations.upgrade(engine) == (None, HEAD)

    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) >= TABLES
        assert await conn.run_sync(_diff) == []
    assert await migrations.schema_revision(engine) == HEAD
    assert await _count(engine, "hubspot_gate") == 1


async def test_upgrade_is_idempotent_and_keeps_data(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO leads (email) VALUES ('kept@example.com')"))

    assert await migrations.upgrade(engine) == (HEAD, HEAD)
    assert await migrations.upgrade(engine) == (HEAD, HEAD)

    assert await _count(engine, "leads") == 1
    assert await _count(engine, "hubspot_gate") == 1  # the seed row is not inserted twice


async def test_the_gate_row_is_seeded(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM hubspot_gate"))).scalars().all()

    assert names == ["hubspot"]


async def test_indexes_and_constraints_exist(engine: AsyncEngine) -> None:
    def describe(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = inspect(connection)
        indexes = {ix["name"] for ix in inspector.get_indexes("leads") if ix["name"]}
        uniques = {uq["name"] for uq in inspector.get_unique_constraints("leads") if uq["name"]}
        return indexes, uniques

    async with engine.connect() as conn:
        indexes, uniques = await conn.run_sync(describe)
        if engine.dialect.name == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_leads_due'"
        else:
            query = "SELECT sql FROM sqlite_master WHERE name = 'ix_leads_due'"
        due_index = (await conn.execute(text(query))).scalar_one()

    assert {"ix_leads_email", "ix_leads_due", "ix_leads_hubspot_sync_status_id"} <= indexes
    assert "uq_leads_idempotency_key" in uniques
    # Partial: SYNCED and FAILED rows never enter the index the claim query walks.
    assert "WHERE" in due_index.upper()
    assert "SYNCED" not in due_index
    assert "PENDING" in due_index


# SQLite has no time zone type: there UTCDateTime stores naive UTC text (tested below).
@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres, id="postgres")], indirect=True
)
async def test_timestamp_columns_are_time_zone_aware(engine: AsyncEngine) -> None:
    expected = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    }
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() "
                    "AND data_type = 'timestamp with time zone'"
                )
            )
        ).all()

    assert {("leads", "created_at"), ("hubspot_gate", "paused_until")} <= expected
    assert expected <= {(t, c) for t, c in rows}


async def test_timestamps_round_trip_as_aware_utc(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    madrid_noon = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    async with sessions() as session, session.begin():
        lead = Lead(email="tz@example.com", hubspot_synced_at=madrid_noon)
        session.add(lead)
    async with sessions() as session:
        stored = (await session.execute(select(Lead))).scalar_one()

    assert stored.hubspot_synced_at == madrid_noon
    assert stored.hubspot_synced_at is not None
    assert stored.hubspot_synced_at.tzinfo is dt.UTC
    assert stored.hubspot_synced_at.hour == 10
    assert stored.created_at.tzinfo is dt.UTC


async def test_server_default_timestamps_are_utc(engine: AsyncEngine) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO leads (email) VALUES ('raw@example.com')"))
    async with AsyncSession(engine) as session:
        lead = (await session.execute(select(Lead))).scalar_one()

    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert lead.created_at.tzinfo is dt.UTC
    # CURRENT_TIMESTAMP is UTC on SQLite; read back as local time it would be hours off.
    assert before - dt.timedelta(seconds=1) <= lead.created_at <= after


async def test_naive_datetimes_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with sessions() as session, session.begin():
            session.add(Lead(email="naive@example.com", hubspot_synced_at=dt.datetime(2026, 1, 1)))


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres, id="postgres")], indirect=True
)
async def test_concurrent_upgrades_both_succeed_and_migrate_once(
    engine: AsyncEngine, db_url: str
) -> None:
    for _ in range(3):
        await migrations.downgrade(engine, revision="base")
        first, second = create_engine(db_url), create_engine(db_url)
        try:
            for eng in (first, second):  # open connections first so both race from the start
                async with eng.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            results = await asyncio.gather(migrations.upgrade(first), migrations.upgrade(second))
        finally:
            await first.dispose()
            await second.dispose()

        # The advisory lock serialises them: one migrates, the other finds the schema at head.
        assert sorted(results, key=str) == [(HEAD, HEAD), (None, HEAD)]
        assert await _count(engine, "hubspot_gate") == 1
        assert await migrations.schema_revision(engine) == HEAD
