"""Lead rows for the engine's database tests: build them, insert them fast, read them back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.store.db import transaction, utcnow
from leadsync.store.tables import Lead

Sessions = async_sessionmaker[AsyncSession]


def lead_row(index: int = 0, **columns: Any) -> dict[str, Any]:
    """Return the columns of one lead; sync columns default to a fresh, due PENDING lead.

    `now=` sets the creation time and when the lead is due (default: the real time).
    """
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


def failed_columns(
    status: int | None = 400, *, attempted_at: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the sync columns of a lead that ended FAILED on HTTP `status` (None: no answer).

    Attempts are spent (10), the error reads `HTTP <status>`, nothing is due. `attempted_at`
    sets `last_hubspot_attempt_at` (what reconciliation ages a failure by); left out if None.
    """
    columns: dict[str, Any] = {
        "hubspot_sync_status": "FAILED",
        "hubspot_sync_attempts": 10,
        "hubspot_last_http_status": status,
        "hubspot_error": f"HTTP {status}",
        "hubspot_next_attempt_at": None,
    }
    if attempted_at is not None:
        columns["last_hubspot_attempt_at"] = attempted_at
    return columns


def failed_row(
    index: int = 0,
    *,
    status: int | None = 400,
    attempted_at: dt.datetime | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """Return the columns of one FAILED lead (see `failed_columns`); `columns` override."""
    return lead_row(index, **(failed_columns(status, attempted_at=attempted_at) | columns))


async def insert_leads(sessions: Sessions, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert lead rows in one statement and return their ids in order."""
    async with transaction(sessions) as session:
        result = await session.execute(
            insert(Lead).returning(Lead.id, sort_by_parameter_order=True), list(rows)
        )
        return [row[0] for row in result.all()]


async def insert_lead(sessions: Sessions, **columns: Any) -> int:
    """Insert one lead (`lead_row(**columns)`) and return its id."""
    (lead_id,) = await insert_leads(sessions, [lead_row(**columns)])
    return lead_id


async def fetch(sessions: Sessions, lead_id: int) -> Lead:
    """Return a fresh copy of one lead."""
    async with sessions() as session:
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        return lead


async def fetch_all(sessions: Sessions) -> dict[int, Lead]:
    """Return every lead by id."""
    async with sessions() as session:
        return {lead.id: lead for lead in (await session.execute(select(Lead))).scalars()}
