"""Readiness: the database answers and its schema is at the head this version ships."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.logging import get_logger
from leadsync.store import migrations

log = get_logger(__name__)


async def readiness(engine: AsyncEngine) -> str | None:
    """Return why the service is not ready, or None when the database is reachable and at head."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current = await migrations.schema_revision(engine)
    except Exception as exc:  # any driver error means "not ready"; the reason is logged
        log.warning("readyz.database_unreachable", error_type=type(exc).__name__)
        return "database unreachable"
    head = migrations.head_revision()
    if current != head:
        return f"database schema at {current or 'nothing'}, expected {head}: run `leadsync migrate`"
    return None
