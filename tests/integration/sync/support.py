"""Helpers of the worker tests: run a worker for a block, store leads, read their state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.db import transaction
from leadsync.leads import service as leads_service
from leadsync.leads.models import Lead
from leadsync.leads.schemas import LeadIn
from leadsync.sync.worker import Worker, start_worker
from tests.integration.sync.conftest import fetch

Sessions = async_sessionmaker[AsyncSession]


@asynccontextmanager
async def running_worker(
    worker: Worker, settings: Settings
) -> AsyncIterator[tuple[Worker, AsyncExitStack]]:
    """Run a worker (and its PostgreSQL listener) until the block ends; then stop and drain."""
    async with AsyncExitStack() as stack:
        await start_worker(worker, settings=settings, stack=stack)
        yield worker, stack


async def new_lead(sessions: Sessions, **fields: Any) -> int:
    """Store a lead through the lead service (as POST /leads does) and return its id."""
    data = LeadIn(**({"email": "ana@example.com", "firstname": "Ana"} | fields))
    async with transaction(sessions) as session:
        stored = await leads_service.create_lead(session, data=data)
    return stored.lead.id


def status_of(sessions: Sessions, lead_id: int, status: str = "SYNCED") -> Callable[[], Any]:
    """Return a wait_for check: the lead once it has `status`, else None."""

    async def check() -> Lead | None:
        lead = await fetch(sessions, lead_id)
        return lead if lead.hubspot_sync_status == status else None

    return check


async def in_progress(sessions: Sessions) -> int:
    """Return how many leads are IN_PROGRESS."""
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).where(Lead.hubspot_sync_status == "IN_PROGRESS")
            )
            or 0
        )
