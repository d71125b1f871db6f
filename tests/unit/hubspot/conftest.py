"""Fixtures for the HubSpot client's tests.

The contract: `hubspot_server` is parametrized over `respx` (the in-memory `FakeHubSpot`) and
`sandbox` (`leadsync.sandbox` over real HTTP, one uvicorn server on a free loopback port for
the session, reset before each test). Every test that asks for `hubspot`, `client` or
`make_client` (test_client_scenarios.py, test_client_fault_scenarios.py) runs once per server,
with ids `[respx]` and `[sandbox]`; the two must agree, and docs/hubspot.md says which is right when
they do not. `-k respx` runs the in-memory half alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from leadsync.hubspot import HubSpotClient
from leadsync.sandbox import RunningSandbox, sandbox_in_thread
from tests.unit.hubspot.fake import BASE_URL, TOKEN, FakeHubSpot, HubSpotServer, Observed
from tests.unit.hubspot.sandbox_hubspot import SandboxHubSpot


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[RunningSandbox]:
    """Serve one sandbox over HTTP for the whole session (a uvicorn thread, loopback only)."""
    with sandbox_in_thread() as sandbox:
        yield sandbox


@pytest.fixture(params=["respx", "sandbox"])
def hubspot_server(request: pytest.FixtureRequest) -> HubSpotServer:
    """Return the HubSpot to talk to: the respx fake, or the sandbox over real HTTP."""
    if request.param == "respx":
        return FakeHubSpot()
    return SandboxHubSpot.fresh(request.getfixturevalue("running_sandbox"))


@pytest.fixture
def hubspot(hubspot_server: HubSpotServer) -> HubSpotServer:
    """Return the server the scenario tests program and assert against."""
    return hubspot_server


@pytest.fixture
def observed() -> Observed:
    """Return an observer that records every request the client reports."""
    return Observed()


@pytest.fixture
def make_client(hubspot: HubSpotServer, observed: Observed) -> Callable[..., HubSpotClient]:
    """Return a factory for clients bound to `hubspot` (extra kwargs go to HubSpotClient)."""

    def make(**overrides: Any) -> HubSpotClient:
        kwargs: dict[str, Any] = {
            "base_url": hubspot.base_url,
            "token_provider": lambda: hubspot.token,
            "transport": hubspot.transport,
            "observer": observed,
        }
        return HubSpotClient(**(kwargs | overrides))

    return make


@pytest.fixture
async def client(make_client: Callable[..., HubSpotClient]) -> AsyncIterator[HubSpotClient]:
    """Return a client bound to `hubspot`, closed after the test."""
    async with make_client() as hub:
        yield hub


@pytest.fixture
def router() -> respx.MockRouter:
    """Return a bare respx router, for tests that script each response themselves."""
    return respx.MockRouter(base_url=BASE_URL, assert_all_called=False)


@pytest.fixture
def new_client(router: respx.MockRouter, observed: Observed) -> Callable[..., HubSpotClient]:
    """Return a factory for clients bound to `router` (extra kwargs go to HubSpotClient)."""

    def make(**overrides: Any) -> HubSpotClient:
        kwargs: dict[str, Any] = {
            "base_url": BASE_URL,
            "token_provider": lambda: TOKEN,
            "transport": httpx.MockTransport(router.async_handler),
            "observer": observed,
        }
        return HubSpotClient(**(kwargs | overrides))

    return make
