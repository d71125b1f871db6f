"""Each lead's sync history (`lead_sync_attempts`): appended in the outcome's transaction, one
statement per batch; read for one lead, counted for the overview, pruned in bounded batches.

The table is append-only: rows are never updated, only deleted once older than
LEADSYNC_HISTORY_DAYS (`prune`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeEngine

from leadsync.store.pgdirect import Direct
from leadsync.store.tables import HISTORY_ERROR_CHARS, LeadSyncAttempt, SyncOutcome

_history: Table = LeadSyncAttempt.__table__  # type: ignore[assignment]

# The columns one appended row carries, with the SQL type of its array on PostgreSQL.
_FIELDS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("lead_id", BigInteger()),
    ("attempted_at", DateTime(timezone=True)),
    ("attempt", Integer()),
    ("outcome", String()),
    ("http_status", Integer()),
    ("error", Text()),
    ("duration_ms", Integer()),
    ("worker_id", String()),
    ("hubspot_id", String()),
)
_NAMES = [name for name, _ in _FIELDS]

# PostgreSQL: one cached INSERT .. SELECT FROM unnest(arrays) for the whole batch.
_ROWS = (
    func.unnest(*(cast(bindparam(f"h_{name}"), ARRAY(type_)) for name, type_ in _FIELDS))
    .table_valued(*(column(name, type_) for name, type_ in _FIELDS))
    .render_derived(name="h")
)
_APPEND_UNNEST = insert(_history).from_select(_NAMES, select(*(_ROWS.c[name] for name in _NAMES)))
# SQLite: one INSERT executed for every row (SQLAlchemy sends it as multi-row VALUES).
_APPEND = insert(_history)
_APPEND_DIRECT = Direct.of(_APPEND_UNNEST)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One row to append: what a HubSpot round did to one lead."""

    lead_id: int
    attempted_at: dt.datetime
    attempt: int
    outcome: SyncOutcome
    http_status: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    worker_id: str | None = None
    hubspot_id: str | None = None

    def row(self) -> dict[str, object]:
        """The row's columns, the error cut to HISTORY_ERROR_CHARS."""
        error = self.error
        if error is not None and len(error) > HISTORY_ERROR_CHARS:
            error = error[: HISTORY_ERROR_CHARS - 1] + "…"
        return {
            "lead_id": self.lead_id,
            "attempted_at": self.attempted_at,
            "attempt": self.attempt,
            "outcome": self.outcome.value,
            "http_status": self.http_status,
            "error": error,
            "duration_ms": self.duration_ms,
            "worker_id": self.worker_id,
            "hubspot_id": self.hubspot_id,
        }


async def append(conn: AsyncSession | AsyncConnection, attempts: Sequence[Attempt]) -> None:
    """Append history rows in one statement, inside the caller's transaction."""
    if not attempts:
        return
    rows = [attempt.row() for attempt in attempts]
    bind = conn.get_bind() if isinstance(conn, AsyncSession) else conn
    if bind.dialect.name == "postgresql":
        arrays = {f"h_{name}": [row[name] for row in rows] for name in _NAMES}
        await conn.execute(_APPEND_UNNEST, arrays)
    else:
        await conn.execute(_APPEND, rows)


async def append_direct(driver: asyncpg.Connection, attempts: Sequence[Attempt]) -> None:
    """`append` on PostgreSQL through asyncpg directly (store/pgdirect.py), in its transaction."""
    if not attempts:
        return
    rows = [attempt.row() for attempt in attempts]
    arrays = {f"h_{name}": [row[name] for row in rows] for name in _NAMES}
    await driver.execute(_APPEND_DIRECT.sql, *_APPEND_DIRECT.args(arrays))


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One stored history row, as operators read it."""

    id: int
    lead_id: int
    attempted_at: dt.datetime
    attempt: int
    outcome: str
    http_status: int | None
    error: str | None
    duration_ms: int | None
    worker_id: str | None
    hubspot_id: str | None


_COLUMNS = [_history.c[name] for name in ("id", *_NAMES)]


async def for_lead(session: AsyncSession, *, lead_id: int, limit: int) -> list[HistoryRow]:
    """Return a lead's newest `limit` history rows, oldest first."""
    result = await session.execute(
        select(*_COLUMNS)
        .where(_history.c.lead_id == lead_id)
        .order_by(_history.c.id.desc())
        .limit(limit)
    )
    return [HistoryRow(*row) for row in reversed(result.all())]


async def prune(session: AsyncSession, *, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` of the oldest rows attempted before `before`; return how many.

    On PostgreSQL rows another worker is deleting right now are skipped, not waited for.
    """
    picked = (
        select(_history.c.id)
        .where(_history.c.attempted_at < before)
        .order_by(_history.c.attempted_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    result = await session.execute(
        delete(_history)
        .where(_history.c.id.in_(picked.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def per_minute(
    session: AsyncSession, *, outcome: SyncOutcome, since: dt.datetime
) -> dict[int, int]:
    """Count rows of one outcome per minute since `since`: {unix minute: count}."""
    attempted = _history.c.attempted_at
    minute: ColumnElement[Any]
    if session.get_bind().dialect.name == "postgresql":
        minute = func.floor(func.extract("epoch", attempted) / 60)
    else:  # naive UTC text
        minute = cast(func.strftime("%s", attempted), Integer) / 60
    bucket = cast(minute, BigInteger).label("minute")
    rows = await session.execute(
        select(bucket, func.count())
        .where(attempted >= since, _history.c.outcome == outcome.value)
        .group_by(bucket)
    )
    return {int(minute_): int(count) for minute_, count in rows.all()}


async def last_error(session: AsyncSession) -> HistoryRow | None:
    """Return the newest row that carries an error (one step down a partial index)."""
    row = (
        await session.execute(
            select(*_COLUMNS)
            .where(_history.c.error.is_not(None))
            .order_by(_history.c.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else HistoryRow(*row)
