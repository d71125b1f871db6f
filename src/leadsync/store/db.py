"""Engine, sessions and the declarative Base shared by every model."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

# Stable constraint names so that Alembic migrations are identical on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; leadsync stores aware UTC timestamps only")
        value = value.astimezone(dt.UTC)
        # SQLite has no time zone type: store naive UTC so text comparisons order correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class _SqliteConnection(sqlite3.Connection):
    """A sqlite3 connection whose close() also ends its transaction.

    sqlite3's close() cannot finalize a statement that a live cursor still holds (a task
    cancelled between a SELECT and its fetch, whose traceback keeps the cursor): SQLite then
    leaves the connection a "zombie" that keeps its open transaction, and with it the
    database's write lock, until the garbage collector frees that cursor. Every other
    connection waits busy_timeout for it and fails with "database is locked". A ROLLBACK
    first aborts such statements and releases the lock at once.
    """

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self.in_transaction:
                self.rollback()
        super().close()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself, so that it can be IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    # Every transaction takes the write lock up front: a deferred transaction that reads and
    # then writes can fail with SQLITE_BUSY_SNAPSHOT under WAL, which busy_timeout cannot cure.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


CONNECT_TIMEOUT_SECONDS = 10.0


class DatabaseUnavailable(Exception):
    """The database did not answer (down, refusing, unreachable): not the caller's fault.

    Raised by the store's own driver paths; SQLAlchemy's OperationalError says the same."""


# Connections each pool of a process keeps (SQLAlchemy's may overflow to twice as many).
POOL_SIZE = 10


def create_engine(url: str, *, echo: bool = False, pool_size: int = POOL_SIZE) -> AsyncEngine:
    """Create the async engine for a URL that already names its async driver."""
    if url.startswith("sqlite"):
        # A small pool: opening a SQLite connection (file, pragmas, its aiosqlite thread)
        # costs far more than the statement. In-memory databases get one connection each.
        memory = ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:")
        connect_args = {"factory": _SqliteConnection}
        engine = (
            create_async_engine(url, echo=echo, poolclass=NullPool, connect_args=connect_args)
            if memory
            else create_async_engine(
                url, echo=echo, pool_size=5, max_overflow=5, connect_args=connect_args
            )
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        # asyncpg waits 60 s by default for a host that does not answer.
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory; sessions never expire objects on commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Yield a session inside one transaction: commit on success, roll back on error."""
    async with sessions() as session, session.begin():
        yield session
