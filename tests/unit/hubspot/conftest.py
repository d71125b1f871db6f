"""Fixtures for the HubSpot client's tests: clients bound to the sandbox.

`hubspot` (tests/conftest.py) is the HubSpot sandbox over real HTTP, reset for each test and
programmed through its control API; `client` and `make_client` talk to it through a
`RecordingTransport`, so `hubspot.sent` holds every request they made. The few tests that
need a fault no server can make use respx in their own module (test_client_failures.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from leadsync.hubspot import HubSpotClient
from tests.helpers.hubspot import Observed, SandboxHubSpot


@pytest.fixture
def observed() -> Observed:
    """Return an observer that records every request the client reports."""
    return Observed()


@pytest.fixture
def make_client(hubspot: SandboxHubSpot, observed: Observed) -> Callable[..., HubSpotClient]:
    """Return a factory for clients bound to `hubspot` (extra kwargs go to HubSpotClient)."""

    def make(**overrides: Any) -> HubSpotClient:
        return hubspot.client(**({"observer": observed} | overrides))

    return make


@pytest.fixture
async def client(make_client: Callable[..., HubSpotClient]) -> AsyncIterator[HubSpotClient]:
    """Return a client bound to `hubspot`, closed after the test."""
    async with make_client() as hub:
        yield hub
