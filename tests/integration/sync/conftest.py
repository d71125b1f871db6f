"""Fixtures of the sync engine's database tests: a hand-moved clock and a HubSpot sandbox.

Lead rows, the clock class and the worker helpers are in tests/helpers/ (leads.py, clock.py,
worker.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from leadsync.config import Settings
from leadsync.sandbox.server import RunningSandbox, sandbox_in_loop
from leadsync.sandbox.settings import SandboxConfig
from leadsync.store.db import utcnow
from tests.helpers.clock import FakeClock
from tests.helpers.hubspot import SandboxHubSpot


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock an hour ahead of real time (so it is past any server-default timestamp)."""
    return FakeClock(utcnow().replace(microsecond=0) + dt.timedelta(hours=1))


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """The HubSpot sandbox over real HTTP, in this test's event loop."""
    async with sandbox_in_loop(config=SandboxConfig(seed=1)) as running:
        yield running


@pytest.fixture
def hubspot(sandbox: RunningSandbox) -> SandboxHubSpot:
    """`sandbox` through its control API (tests.helpers.hubspot).

    Here it overrides the session-wide sandbox of tests/conftest.py: a worker test may leave
    a delayed write behind, and its own sandbox stops with it.
    """
    return SandboxHubSpot(sandbox)


@pytest.fixture
def sandbox_settings(
    settings_factory: Callable[..., Settings], sandbox: RunningSandbox
) -> Callable[..., Settings]:
    """Settings pointing at the sandbox (keyword overrides as settings_factory)."""

    def make(**overrides: Any) -> Settings:
        values = {"hubspot_base_url": sandbox.url, "hubspot_token": sandbox.token}
        return settings_factory(**(values | overrides))

    return make
