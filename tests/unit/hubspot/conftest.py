"""Fixtures for the HubSpot client's tests; `hubspot_server` is the one a contract test extends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from leadsync.hubspot import HubSpotClient
from tests.unit.hubspot.fake import BASE_URL, TOKEN, FakeHubSpot, HubSpotServer, Observed


@pytest.fixture(params=["respx"])
def hubspot_server(request: pytest.FixtureRequest) -> HubSpotServer:
    """Return the HubSpot to talk to; a contract test adds a sandbox-backed param here."""
    assert request.param == "respx"
    return FakeHubSpot()


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
    """Return a factory for clients bound to the fake (extra kwargs go to HubSpotClient)."""

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
    """Return a client bound to the fake HubSpot, closed after the test."""
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
