"""The worker in tests: run one for a block, submit leads as POST /leads does, wait on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import func, select

from leadsync.config import Settings
from leadsync.engine.worker import Worker
from leadsync.engine.writer import LeadResult
from leadsync.hubspot.client import HubSpotClient
from leadsync.runtime import start_worker
from leadsync.store.leads import SessionIntake
from leadsync.store.queue import LeadSnapshot
from leadsync.store.tables import Lead
from leadsync.usecases.leads import submit_lead
from leadsync.usecases.schemas import LeadIn
from tests.helpers.leads import Sessions, fetch


@asynccontextmanager
async def running_worker(
    worker: Worker, settings: Settings
) -> AsyncIterator[tuple[Worker, AsyncExitStack]]:
    """Run a worker (and its PostgreSQL listener) until the block ends; then stop and drain."""
    async with AsyncExitStack() as stack:
        await start_worker(worker, settings=settings, stack=stack)
        yield worker, stack


@asynccontextmanager
async def sandbox_worker(
    settings: Settings,
    sessions: Sessions,
    *,
    on_results: Callable[[list[LeadResult], list[LeadSnapshot], float], None] | None = None,
) -> AsyncIterator[Worker]:
    """Run a worker with its own HubSpot client (settings point it at the sandbox)."""
    async with HubSpotClient.from_settings(settings) as client:
        worker = Worker(settings=settings, sessions=sessions, client=client, on_results=on_results)
        async with running_worker(worker, settings):
            yield worker


async def new_lead(sessions: Sessions, **fields: Any) -> int:
    """Store a lead through the use case behind POST /leads and return its id."""
    data = LeadIn(**({"email": "ana@example.com", "firstname": "Ana"} | fields))
    stored = await submit_lead(SessionIntake(sessions), data=data, idempotency_key=None)
    return stored.id


def status_of(sessions: Sessions, lead_id: int, status: str = "SYNCED") -> Callable[[], Any]:
    """Return a wait_for check: the lead once it has `status`, else None."""

    async def check() -> Lead | None:
        lead = await fetch(sessions, lead_id)
        return lead if lead.hubspot_sync_status == status else None

    return check


def attempted(sessions: Sessions, lead_id: int) -> Callable[[], Any]:
    """Return a wait_for check: the lead once an attempt of it has been recorded, whatever
    came next (a retry due in a few milliseconds can be claimed again before a poll sees
    RETRYING)."""

    async def check() -> Lead | None:
        lead = await fetch(sessions, lead_id)
        return lead if lead.last_hubspot_attempt_at is not None else None

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
