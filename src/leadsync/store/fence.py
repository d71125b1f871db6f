"""The send fence: no HubSpot write for an email leaves after its erasure request committed.

Every write to HubSpot is made inside `SendFence.hold()`: a shared lock, then one check in the
database that the worker still owns the leads it is about to send and that their email is
not being erased, held until HubSpot has answered. An erasure request takes the same lock
exclusively (`SendFence.exclusive()`) around its transaction. So the request waits for the
writes already in flight (each bounded by HUBSPOT_TOTAL_TIMEOUT_SECONDS) and commits; every
write after that sees its cancellation and drops the erased leads. The erasure's own GDPR
delete comes later still, so it removes whatever the last write created (docs/privacy.md).

- PostgreSQL: a transaction-scoped advisory lock (shared by writers, exclusive by erasures).
  It is released by the transaction's end, or by the server when a killed worker's
  connection closes, so no crash can leave it taken. PostgreSQL queues a shared request
  behind a waiting exclusive one: a stream of writes cannot starve an erasure.
- SQLite (one machine): `flock` on two files beside the database, a turnstile in front of the
  lock so that an erasure waiting for the lock is not starved by new writers either. An
  in-memory database (one process) gets the same lock in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final, Protocol

import asyncpg
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    exists,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.store import pgdirect
from leadsync.store.db import transaction
from leadsync.store.pgdirect import Direct
from leadsync.store.tables import OPEN_ERASURE_SQL, Erasure, Lead, SyncStatus

FENCE_LOCK_KEY: Final = 0x6C65_6164_6665_6E63  # "leadfenc"
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))")
# How often a waiter for a SQLite file lock tries again (cancellable, unlike a blocking flock
# in a thread, which would take the lock after its caller has gone and never give it back).
_POLL_FIRST_SECONDS = 0.002
_POLL_MAX_SECONDS = 0.05

_leads: Table = Lead.__table__  # type: ignore[assignment]
_erasures: Table = Erasure.__table__  # type: ignore[assignment]
_OPEN_ERASURE = text(f"erasures.{OPEN_ERASURE_SQL}")


def _sendable(ids: ColumnElement[bool], token: object) -> Select[int]:
    """The leads `ids` selects still leased under `token` whose email is not being erased
    (SQLite: an IN list and a value; PostgreSQL: an array and a parameter, below)."""
    erased = exists().where(_erasures.c.email == _leads.c.email, _OPEN_ERASURE)
    return select(_leads.c.id).where(
        and_(
            ids,
            _leads.c.hubspot_lease_token == token,
            text(f"leads.hubspot_sync_status = '{SyncStatus.IN_PROGRESS.value}'"),
            ~erased,
        )
    )


async def _check(session: AsyncSession, token: str, lead_ids: Sequence[int]) -> set[int]:
    if not lead_ids:
        return set()
    rows = await session.execute(_sendable(_leads.c.id.in_(list(lead_ids)), token))
    return {int(row[0]) for row in rows}


class SendFence(Protocol):
    """The lock and check around every HubSpot write, and the erasure's side of it."""

    def hold(
        self, *, token: str, lead_ids: Sequence[int]
    ) -> contextlib.AbstractAsyncContextManager[set[int]]:
        """Hold the shared lock for one write; yield the ids that may still be sent."""
        ...

    def erasing(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """Yield a session in a transaction that holds the lock exclusively until it commits."""
        ...


# The writer's side on PostgreSQL, sent through asyncpg (store/pgdirect.py): BEGIN and the
# shared lock in one round trip, then the check, then ROLLBACK once HubSpot has answered.
_BEGIN_SHARED: Final = f"BEGIN; SELECT pg_advisory_xact_lock_shared({FENCE_LOCK_KEY})"
_D_SENDABLE = Direct.of(
    _sendable(
        _leads.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger()))),
        bindparam("token", type_=String()),
    )
)


async def _check_direct(
    driver: asyncpg.Connection, token: str, lead_ids: Sequence[int]
) -> set[int]:
    if not lead_ids:
        return set()
    rows = await driver.fetch(
        _D_SENDABLE.sql, *_D_SENDABLE.args({"ids": list(lead_ids), "token": token})
    )
    return {int(row[0]) for row in rows}


class PostgresFence:
    """The fence as a transaction-scoped advisory lock (PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._engine = engine
        self._sessions = sessions

    @contextlib.asynccontextmanager
    async def hold(self, *, token: str, lead_ids: Sequence[int]) -> AsyncIterator[set[int]]:
        """Take the shared lock in a transaction kept open until the write has its answer."""
        async with self._engine.connect() as conn:
            driver = await pgdirect.raw(conn)
            try:
                await driver.execute(_BEGIN_SHARED)
                yield await asyncio.shield(_check_direct(driver, token, lead_ids))
            finally:
                # Ends the transaction and so releases the lock, even when cancelled. SQLAlchemy
                # did not begin it: a connection whose ROLLBACK did not go through is closed,
                # never handed back to the pool inside the transaction (holding the lock).
                try:
                    await asyncio.shield(driver.execute("ROLLBACK"))
                except BaseException:
                    await conn.invalidate()
                    raise

    @contextlib.asynccontextmanager
    async def erasing(self) -> AsyncIterator[AsyncSession]:
        """Take the lock first thing in the transaction; its commit or rollback releases it."""
        async with transaction(self._sessions) as session:
            await session.execute(_EXCLUSIVE, {"key": FENCE_LOCK_KEY})
            yield session


class _FileLock:
    """A readers-writer lock across processes on one machine: flock on two files."""

    def __init__(self, path: Path) -> None:
        self._lock_path = path
        self._turnstile_path = path.with_name(path.name + "-turnstile")

    @staticmethod
    def _open(path: Path) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @staticmethod
    async def _flock(fd: int, operation: int) -> None:
        wait = _POLL_FIRST_SECONDS
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                await asyncio.sleep(wait)
                wait = min(wait * 2, _POLL_MAX_SECONDS)

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        lock = self._open(self._lock_path)
        try:
            turnstile = self._open(self._turnstile_path)
            try:  # pass through the turnstile: an erasure waiting inside it goes first
                await self._flock(turnstile, fcntl.LOCK_EX)
                await self._flock(lock, fcntl.LOCK_SH)
            finally:
                os.close(turnstile)
            yield
        finally:
            os.close(lock)  # closing the descriptor releases its lock

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        turnstile = self._open(self._turnstile_path)
        try:
            await self._flock(turnstile, fcntl.LOCK_EX)
            lock = self._open(self._lock_path)
            try:
                await self._flock(lock, fcntl.LOCK_EX)
                yield
            finally:
                os.close(lock)
        finally:
            os.close(turnstile)


class _MemoryLock:
    """The same readers-writer lock inside one process (an in-memory SQLite database)."""

    def __init__(self) -> None:
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            self._writers_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._writer and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._changed:
                self._writer = False
                self._changed.notify_all()


class SqliteFence:
    """The fence for SQLite: a readers-writer lock beside the database file."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], lock: _FileLock | _MemoryLock
    ) -> None:
        self._sessions = sessions
        self._lock = lock

    @contextlib.asynccontextmanager
    async def hold(self, *, token: str, lead_ids: Sequence[int]) -> AsyncIterator[set[int]]:
        """Take the shared lock, check the leads in a short read, keep the lock until exit."""
        async with self._lock.shared():
            # Shielded: a worker stopped at this moment (Worker.abandon, a cancelled batch)
            # must not leave SQLite's connection mid-statement holding the write lock.
            sendable = await asyncio.shield(self._read(token, lead_ids))
            yield sendable

    async def _read(self, token: str, lead_ids: Sequence[int]) -> set[int]:
        async with self._sessions() as session:
            sendable = await _check(session, token, lead_ids)
            await session.rollback()  # no database lock is kept during the write
        return sendable

    @contextlib.asynccontextmanager
    async def erasing(self) -> AsyncIterator[AsyncSession]:
        """Take the lock before the transaction begins (its BEGIN IMMEDIATE would otherwise
        hold SQLite's write lock while waiting for writers that need it for their check)."""
        async with self._lock.exclusive(), transaction(self._sessions) as session:
            yield session


# One in-memory lock per engine (a test's in-memory database lives in one process).
_MEMORY_LOCKS: dict[int, _MemoryLock] = {}


def open_fence(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> SendFence:
    """Return the fence for the engine's database."""
    if engine.dialect.name == "postgresql":
        return PostgresFence(engine, sessions)
    database = engine.url.database
    if not database or database == ":memory:":
        return SqliteFence(sessions, _MEMORY_LOCKS.setdefault(id(engine), _MemoryLock()))
    path = Path(database).resolve()
    return SqliteFence(sessions, _FileLock(path.with_name(path.name + "-fence")))
