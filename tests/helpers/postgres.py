"""The test PostgreSQL database: where it is, whether a missing one fails (CI), its reset."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import async_database_url
from leadsync.store import migrations

PG_ENV = "LEADSYNC_TEST_DATABASE_URL"
PG_MISSING = (
    f"PostgreSQL cases need a database: set {PG_ENV}="
    "postgresql://postgres@127.0.0.1:5432/leadsync_test (see README.md)"
)

# URLs already migrated in this session (PostgreSQL is migrated once, then truncated per test).
_MIGRATED: set[str] = set()


def in_ci() -> bool:
    """Return whether we run under CI, where a skipped PostgreSQL case is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def postgres_url() -> str | None:
    """Return the async URL of the test PostgreSQL database, or None when not configured."""
    raw = os.environ.get(PG_ENV, "").strip()
    return async_database_url(raw) if raw else None


def require_postgres() -> str:
    """Return the database URL; without one, skip the test (fail it under CI)."""
    url = postgres_url()
    if url is None:
        if in_ci():
            pytest.fail(f"CI=true but {PG_ENV} is not set: {PG_MISSING}", pytrace=False)
        pytest.skip(PG_MISSING)
    return url


async def reset_postgres(engine: AsyncEngine, url: str) -> None:
    """Bring the test database to head (migrated once per session) with no leads, no
    erasures and a fresh gate row."""
    head = migrations.head_revision()
    if url not in _MIGRATED:
        try:
            await migrations.downgrade(engine, revision="base")
        except Exception:  # a schema from another branch: revisions this code does not know
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await migrations.upgrade(engine)
        _MIGRATED.add(url)
    elif await migrations.schema_revision(engine) != head:
        await migrations.upgrade(engine)  # a test downgraded the schema and did not restore it
    async with engine.begin() as conn:
        # A connection some earlier test leaked inside a transaction would make TRUNCATE wait
        # forever; fail clearly instead.
        await conn.execute(text("SET LOCAL lock_timeout = '20s'"))
        await conn.execute(text("TRUNCATE leads, erasures RESTART IDENTITY CASCADE"))
        await conn.execute(text("DELETE FROM hubspot_gate"))
        await conn.execute(text("INSERT INTO hubspot_gate (name) VALUES ('hubspot')"))
