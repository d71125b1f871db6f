"""The client over real sockets on localhost: timeouts and refused connections really fire."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from leadsync.hubspot import HubSpotClient, TransientError

TOKEN = "pat-na1-network-test"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; these requests must go straight to localhost.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accept connections and never answer, like a hung HubSpot edge."""
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    release.set()
    server.close()
    await server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_read_timeout_on_a_silent_server(silent_server: str) -> None:
    async with HubSpotClient(
        base_url=silent_server, token_provider=lambda: TOKEN, read_timeout=0.05
    ) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.probe()

    assert caught.value.reason == "timeout"
    assert "ReadTimeout" in caught.value.message


async def test_total_timeout_fires_before_a_longer_read_timeout(silent_server: str) -> None:
    async with HubSpotClient(
        base_url=silent_server, token_provider=lambda: TOKEN, read_timeout=10, total_timeout=0.05
    ) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.probe()

    assert caught.value.reason == "total_timeout"


async def test_refused_connection_is_transient() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    seen: list[tuple[str, int | None]] = []

    async with HubSpotClient(
        base_url=base_url,
        token_provider=lambda: TOKEN,
        observer=lambda op, status, _: seen.append((op, status)),
    ) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.probe()

    assert caught.value.reason == "connection"
    assert caught.value.__context__ is None
    assert TOKEN not in str(caught.value)
    assert seen == [("probe", None)]
