"""SQLite's single write lock: a connection closed in the middle of a statement gives it back.

Every SQLite transaction of leadsync takes the write lock up front (BEGIN IMMEDIATE), so a
connection that keeps a transaction open stops every other writer and reader for
busy_timeout (30 s) and then fails them with "database is locked". The stateful test met
this: a task cancelled between a SELECT and its fetch made SQLAlchemy close the connection,
but sqlite3 could not finalize the statement the cancelled cursor still held, and SQLite kept
the connection (and its transaction) alive until the garbage collector freed that cursor.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from leadsync.store.db import create_engine
from tests.helpers import wait_for


def _can_write(path: Path) -> bool:
    """Whether another connection gets the write lock without waiting."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    finally:
        other.close()


async def test_a_statement_cancelled_before_its_fetch_leaves_the_write_lock_free(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locks.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    started, release = threading.Event(), threading.Event()

    def block() -> int:  # runs in the connection's thread, inside the SELECT's first step
        started.set()
        release.wait(10)
        return 1

    def register(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("block", 0, block)

    event.listen(engine.sync_engine, "connect", register)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
        assert _can_write(path)

        async def read() -> None:
            async with engine.connect() as conn:  # BEGIN IMMEDIATE, then the SELECT
                await conn.execute(text("SELECT block(), x FROM t"))

        task = asyncio.create_task(read())
        await wait_for(started.is_set, timeout=10, message="the SELECT is running")
        task.cancel()  # SQLAlchemy invalidates the connection and closes it
        release.set()
        # Kept, as a log record or an unretrieved task result would keep it: the traceback
        # holds the cursor, whose unfinished statement sqlite3 cannot finalize on close.
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await task
        assert cancelled.traceback
        await wait_for(lambda: _can_write(path), timeout=5, message="the write lock is free")
    finally:
        release.set()
        await engine.dispose()
