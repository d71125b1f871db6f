"""Alembic migrations shipped inside the package, and the functions that run them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent
# Any constant works; it only has to be the same in every replica of leadsync.
ADVISORY_LOCK_KEY = 0x1EAD5C


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic Config pointing at the packaged scripts, bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """Return the newest revision shipped with this version of leadsync."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Return every revision shipped with this version of leadsync."""
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database is at, or None when it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def _lock(connection: Connection) -> None:
    # Several replicas may start together: the transaction-scoped advisory lock makes the
    # second one wait, then find the schema at head and do nothing.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _upgrade(connection: Connection, revision: str) -> tuple[str | None, str | None]:
    # Read "before" only once the lock is held: a replica that waited for another one's
    # upgrade must report that it found the schema at head, not what it saw before waiting.
    _lock(connection)
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), revision)
    return before, current_revision(connection)


def _downgrade(connection: Connection, revision: str) -> None:
    _lock(connection)
    command.downgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, *, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema (idempotent); return the revisions before and after."""
    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade, revision)


async def downgrade(engine: AsyncEngine, *, revision: str = "base") -> None:
    """Downgrade the schema to a revision (base removes every table)."""
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, revision)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """Return the database's current revision."""
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)
