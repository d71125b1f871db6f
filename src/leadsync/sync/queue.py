"""The lead row as a queue: announce, claim and complete, in single SQL statements."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Workers LISTEN on this channel; PostgreSQL delivers a NOTIFY only when its transaction
# commits, which makes it the after-commit hand-off across processes for free.
NOTIFY_CHANNEL = "leadsync_leads"


async def announce_new_leads(session: AsyncSession) -> None:
    """Queue a wake-up for workers in other processes, delivered when this transaction commits."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
