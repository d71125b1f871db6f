"""What a running app holds: settings, database handles and the worker's wake-up hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.store.fence import SendFence
from leadsync.store.leads import LeadIntake


def _no_wake() -> None:
    return None


@dataclass
class AppContext:
    """Shared handles, built in the app's lifespan and reached through `request.app.state`."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Where POST /leads stores: asyncpg on PostgreSQL, the sessions on SQLite.
    intake: LeadIntake
    # What an erasure request takes exclusively: it waits for the HubSpot writes in flight.
    fence: SendFence
    # Called after a lead commits: wakes the in-process worker at once (no polling delay).
    wake_worker: Callable[[], None] = field(default=_no_wake)


async def get_context(request: Request) -> AppContext:
    """Return the app's context (a FastAPI dependency; async so it skips the threadpool)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


# What a route declares to get the context: `ctx: Ctx`.
Ctx = Annotated[AppContext, Depends(get_context)]
