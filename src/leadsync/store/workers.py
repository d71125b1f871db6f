"""Worker heartbeats (`sync_workers`): each worker upserts its row at every reconciliation
pass; the console lists the workers seen recently."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leadsync.store.tables import SyncWorker


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    """A worker and when it last reported."""

    worker_id: str
    host: str
    pid: int
    started_at: dt.datetime
    last_seen_at: dt.datetime


async def heartbeat(
    session: AsyncSession,
    *,
    worker_id: str,
    host: str,
    pid: int,
    started_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """Record that this worker is alive now (insert or update its row)."""
    values = {
        "worker_id": worker_id,
        "host": host,
        "pid": pid,
        "started_at": started_at,
        "last_seen_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SyncWorker).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[SyncWorker.worker_id], set_={"last_seen_at": now}
        )
    )


async def seen_since(session: AsyncSession, *, since: dt.datetime) -> list[WorkerSeen]:
    """Return the workers whose last heartbeat is at or after `since`, newest first."""
    rows = await session.execute(
        select(
            SyncWorker.worker_id,
            SyncWorker.host,
            SyncWorker.pid,
            SyncWorker.started_at,
            SyncWorker.last_seen_at,
        )
        .where(SyncWorker.last_seen_at >= since)
        .order_by(SyncWorker.last_seen_at.desc())
        .limit(100)
    )
    return [WorkerSeen(*row) for row in rows.all()]


async def forget_before(session: AsyncSession, *, before: dt.datetime) -> int:
    """Delete the rows of workers not seen since `before`; return how many."""
    result = await session.execute(
        delete(SyncWorker)
        .where(SyncWorker.last_seen_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
