"""What is wrong with the database, in one line an operator can act on.

The CLI's commands reach the database first thing; when that fails, the driver's traceback
(`ConnectionRefusedError`, `InvalidCatalogNameError`, `no such table: leads`) says little to
the person at the terminal. `explain()` turns the usual failures into one sentence that names
the problem and the fix, and never the password: the URL is shown without it.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import make_url
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.store import migrations

# PostgreSQL SQLSTATEs (asyncpg exceptions carry them as `sqlstate`).
_WRONG_PASSWORD = "28P01"  # noqa: S105 - a SQLSTATE, not a password
_NO_SUCH_ROLE = "28000"
_NO_SUCH_DATABASE = "3D000"
_NO_SUCH_TABLE = "42P01"
_TOO_MANY_CONNECTIONS = "53300"
_CANNOT_CONNECT_NOW = "57P03"

MIGRATE = "run `leadsync migrate`"


class DatabaseProblem(Exception):
    """The database cannot be used as it is; the message says why and what to do."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(
            e
            for e in (getattr(current, "orig", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        )
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)


def where(url: URL) -> str:
    """`host:port` of a PostgreSQL URL, or the file of a SQLite one."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def explain(exc: BaseException, database_url: str) -> str | None:
    """Return one line saying what is wrong and what to do, or None for another failure."""
    url = make_url(database_url)
    place = where(url)
    for cause in _chain(exc):
        if isinstance(cause, DatabaseProblem):
            return str(cause)
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate == _WRONG_PASSWORD:
            return f"check DATABASE_URL: {place} refused the password of user {url.username!r}"
        if sqlstate == _NO_SUCH_ROLE:
            return f"check DATABASE_URL: {place} has no user {url.username!r} or refused it"
        if sqlstate == _NO_SUCH_DATABASE:
            return (
                f"the database {url.database!r} does not exist on {place}: create it "
                f"(createdb -h {url.host or 'localhost'} -p {url.port or 5432} "
                f"-U {url.username or 'postgres'} {url.database}) or check DATABASE_URL"
            )
        if sqlstate == _NO_SUCH_TABLE or (
            isinstance(cause, sqlite3.OperationalError) and "no such table" in str(cause)
        ):
            return f"the database at {place} has no leadsync schema: {MIGRATE}"
        if sqlstate in (_TOO_MANY_CONNECTIONS, _CANNOT_CONNECT_NOW):
            return f"{place} does not accept connections now ({cause}); try again later"
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
            return (
                f"check DATABASE_URL: cannot open the SQLite database {place} "
                "(does its directory exist, and may leadsync write there?)"
            )
        if isinstance(cause, CommandError) and "Can't locate revision" in str(cause):
            return (
                f"the database at {place} was migrated by a newer leadsync "
                "(its schema revision is unknown here): upgrade leadsync"
            )
        if isinstance(cause, ConnectionRefusedError):
            return f"check DATABASE_URL: {place} refused the connection (is the server running?)"
        if isinstance(cause, socket.gaierror):
            return f"check DATABASE_URL: cannot resolve the host {url.host!r}"
        if isinstance(cause, TimeoutError):
            return f"check DATABASE_URL: {place} did not answer in time"
        if isinstance(cause, OSError) and cause.strerror:
            return f"check DATABASE_URL: cannot reach {place} ({cause.strerror})"
    return None


def require_writable_directory(database_url: str) -> None:
    """Refuse a SQLite URL whose directory does not exist, before any driver thread starts.

    aiosqlite opens the file in a thread of its own; when that fails, the thread may still be
    printing its traceback as the command exits, so the one-line answer comes first.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if not Path(url.database).parent.is_dir():
        raise DatabaseProblem(
            f"check DATABASE_URL: cannot open the SQLite database {url.database} "
            "(does its directory exist, and may leadsync write there?)"
        )


def require_existing_file(database_url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (opening it would create an empty one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if not Path(url.database).exists():
        raise DatabaseProblem(
            f"there is no database at {url.database}: {MIGRATE} first, or check DATABASE_URL"
        )


async def require_schema_at_head(engine: AsyncEngine) -> None:
    """Raise DatabaseProblem unless the schema is at this leadsync's head revision."""
    # Alembic logs "Context impl ..." at INFO on every look: noise for a read-only command.
    alembic_log = logging.getLogger("alembic.runtime.migration")
    level = alembic_log.level
    alembic_log.setLevel(max(level, logging.WARNING))
    try:
        current = await migrations.schema_revision(engine)
    finally:
        alembic_log.setLevel(level)
    head = migrations.head_revision()
    if current == head:
        return
    place = where(engine.url)
    if current is None:
        raise DatabaseProblem(f"the database at {place} has no leadsync schema: {MIGRATE}")
    if current in migrations.known_revisions():
        raise DatabaseProblem(
            f"the database at {place} has schema {current}, this leadsync needs {head}: {MIGRATE}"
        )
    raise DatabaseProblem(
        f"the database at {place} has schema {current}, unknown to this leadsync "
        f"(needs {head}): it was migrated by a newer leadsync; upgrade leadsync"
    )
