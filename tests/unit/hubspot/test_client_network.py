"""The client over real sockets on localhost: timeouts, drops and refused connections really fire.

The sandbox hangs or drops a request when told to (docs/sandbox.md, injections); a refused
connection needs no server at all.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from leadsync.hubspot import HubSpotClient, TransientError
from tests.helpers.hubspot import SandboxHubSpot

PEOPLE = {"email": "ada@example.com", "firstname": "Ada"}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; these requests must go straight to localhost.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_read_timeout_on_a_hanging_server(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient]
) -> None:
    await hubspot.inject(action="hang")

    async with make_client(read_timeout=0.05) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.probe()

    assert caught.value.reason == "timeout"
    assert "ReadTimeout" in caught.value.message


async def test_total_timeout_fires_before_a_longer_read_timeout(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient]
) -> None:
    await hubspot.inject(action="hang")

    async with make_client(read_timeout=10, total_timeout=0.05) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties=PEOPLE)

    assert caught.value.reason == "total_timeout"
    assert caught.value.__context__ is None
    assert await hubspot.contacts() == []  # a hang applies nothing


async def test_a_dropped_connection_is_transient_though_the_write_landed(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(action="drop")

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.reason == "connection"
    assert caught.value.http_status is None
    assert caught.value.__context__ is None
    # HubSpot applied it and the answer was lost: the retry must find the contact (docs/hubspot.md).
    (contact,) = await hubspot.contacts()
    assert contact["properties"]["email"] == "ada@example.com"


async def test_refused_connection_is_transient() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    token = "pat-na1-network-test"
    seen: list[tuple[str, int | None]] = []

    async with HubSpotClient(
        base_url=base_url,
        token_provider=lambda: token,
        observer=lambda op, status, _: seen.append((op, status)),
    ) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.probe()

    assert caught.value.reason == "connection"
    assert caught.value.__context__ is None
    assert token not in str(caught.value)
    assert seen == [("probe", None)]
