"""The worker's hottest statements on PostgreSQL, sent through asyncpg directly.

SQLAlchemy builds and compiles each statement once (for asyncpg's `$n` placeholders); the
values then go to asyncpg as they are. For the completion of a 100-lead batch that skips
SQLAlchemy's per-element processing of a dozen 100-element arrays, the largest share of the
worker's own CPU (bench/RESULTS.md, "Issue #11").

Two ways to run them:
- `driver()`: on the connection a session holds, inside the caller's transaction (the claim,
  the completion). It first makes SQLAlchemy begin the transaction on the server if it has not
  yet (SQLAlchemy's asyncpg adapter sends BEGIN with its first statement), so the caller's
  commit or rollback covers them like any other statement of the transaction.
- `autocommit()` / `raw()`: on a pooled connection SQLAlchemy has not begun (the gate's
  reservation, one statement; the send fence, which sends its own BEGIN and ROLLBACK).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

_PG = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Direct:
    """A statement compiled once for asyncpg: its SQL and how to order its values."""

    sql: str
    order: tuple[str, ...]
    # The statement's own literal values (a `None` it sets, a status it compares with).
    literals: Mapping[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement) -> Direct:
        """Compile a SQLAlchemy statement for asyncpg."""
        compiled = statement.compile(dialect=_PG)
        assert isinstance(compiled, SQLCompiler)
        order = tuple(compiled.positiontup or ())
        binds = {name: compiled.binds[name] for name in order if name in compiled.binds}
        unknown = [name for name in order if name not in binds]
        if unknown:  # pragma: no cover - a statement SQLAlchemy would fill at execution
            raise TypeError(f"parameters without a bind: {unknown}")
        literals = {
            name: bind.value
            for name, bind in binds.items()
            if not bind.required and bind.callable is None
        }
        if any(bind.callable is not None for bind in binds.values()):  # pragma: no cover
            raise TypeError("a column default computed at execution: set it explicitly")
        return cls(str(compiled), order, literals)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional values: each required one from `values` (a KeyError if missing)."""
        return [
            self.literals[name] if name in self.literals else values[name] for name in self.order
        ]


_BEGIN = text("SELECT 1")


async def driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy connection (PostgreSQL only), inside the
    connection's transaction."""
    driver_connection = await raw(conn)
    if conn.in_transaction() and not driver_connection.is_in_transaction():
        await conn.execute(_BEGIN)  # SQLAlchemy's BEGIN goes out with its first statement
    return driver_connection


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled asyncpg connection outside any transaction: each statement commits by itself.

    SQLAlchemy never begins a transaction on it, so its return to the pool costs no ROLLBACK;
    a caller that sends BEGIN itself must end the transaction itself.
    """
    async with engine.connect() as conn:
        yield await raw(conn)


async def raw(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy connection, as it is (no BEGIN sent)."""
    pooled = await conn.get_raw_connection()
    driver_connection = pooled.driver_connection
    assert isinstance(driver_connection, asyncpg.Connection)
    return driver_connection


def postgres_engine(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    """The engine behind a session factory when it is PostgreSQL's, else None."""
    bind = sessions.kw.get("bind") if isinstance(sessions, async_sessionmaker) else None
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
        return bind
    return None
