"""Helpers for the sync engine's database tests: a settable clock, fast lead rows, row reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.sandbox.server import RunningSandbox, sandbox_in_loop
from leadsync.sandbox.settings import SandboxConfig
from leadsync.store.db import transaction, utcnow
from leadsync.store.tables import Lead


class FakeClock:
    """A clock that only moves when told; callable like `leadsync.store.db.utcnow`."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock an hour ahead of real time (so it is past any server-default timestamp)."""
    start = utcnow().replace(microsecond=0) + dt.timedelta(hours=1)
    return FakeClock(start)


def lead_row(index: int = 0, **columns: Any) -> dict[str, Any]:
    """Return the columns of one lead; sync columns default to a fresh, due PENDING lead."""
    now = columns.pop("now", None) or utcnow()
    row: dict[str, Any] = {
        "email": f"lead{index}@example.com",
        "firstname": f"Lead{index}",
        "created_at": now,
        "updated_at": now,
        "hubspot_sync_status": "PENDING",
        "hubspot_sync_attempts": 0,
        "hubspot_next_attempt_at": now,
    }
    row.update(columns)
    return row


async def insert_leads(
    sessions: async_sessionmaker[AsyncSession], rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert lead rows in one statement and return their ids in order."""
    async with transaction(sessions) as session:
        result = await session.execute(
            insert(Lead).returning(Lead.id, sort_by_parameter_order=True), list(rows)
        )
        return [row[0] for row in result.all()]


async def insert_lead(sessions: async_sessionmaker[AsyncSession], **columns: Any) -> int:
    """Insert one lead and return its id."""
    (lead_id,) = await insert_leads(sessions, [lead_row(**columns)])
    return lead_id


async def fetch(sessions: async_sessionmaker[AsyncSession], lead_id: int) -> Lead:
    """Return a fresh copy of one lead."""
    async with sessions() as session:
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        return lead


async def fetch_all(sessions: async_sessionmaker[AsyncSession]) -> dict[int, Lead]:
    """Return every lead by id."""
    async with sessions() as session:
        return {lead.id: lead for lead in (await session.execute(select(Lead))).scalars()}


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """The HubSpot sandbox over real HTTP, in this test's event loop."""
    async with sandbox_in_loop(config=SandboxConfig(seed=1)) as running:
        yield running


@pytest.fixture
def sandbox_settings(
    settings_factory: Callable[..., Settings], sandbox: RunningSandbox
) -> Callable[..., Settings]:
    """Settings pointing at the sandbox (keyword overrides as settings_factory)."""

    def make(**overrides: Any) -> Settings:
        values = {"hubspot_base_url": sandbox.url, "hubspot_token": sandbox.token}
        return settings_factory(**(values | overrides))

    return make
