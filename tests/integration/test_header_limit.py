"""Request heads are bounded: 431 in the API's error shape, before the app reads a large one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from leadsync.config import Settings
from leadsync.sandbox.server import bind_socket
from leadsync.web.headers import head_size
from tests.helpers import ClientFactory, wait_for

TOO_LARGE = {"detail": "request headers larger than 16384 bytes", "errors": []}


async def test_a_head_over_the_limit_is_431(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/healthz", headers={"X-Big": "a" * 16 * 1024})

    assert response.status_code == 431
    assert response.headers["content-type"] == "application/json"
    assert response.json() == TOO_LARGE


async def test_a_head_within_the_limit_is_served(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/healthz", headers={"X-Big": "a" * 15 * 1024})

    assert response.status_code == 200


async def test_the_limit_follows_the_setting(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings]
) -> None:
    async with client_factory(settings_factory(max_header_bytes=2048)) as (_app, client):
        small = await client.get("/healthz", headers={"X-A": "a" * 1500})
        large = await client.get("/healthz", headers={"X-A": "a" * 2100})

    assert small.status_code == 200
    assert large.status_code == 431
    assert large.json()["detail"] == "request headers larger than 2048 bytes"


def test_head_size_counts_the_bytes_on_the_wire() -> None:
    scope: dict[str, Any] = {
        "method": "GET",
        "path": "/leads",
        "raw_path": b"/leads",
        "query_string": b"a=1",
        "headers": [(b"host", b"x"), (b"x-k", b"vv")],
    }
    wire = b"GET /leads?a=1 HTTP/1.1\r\nhost: x\r\nx-k: vv\r\n\r\n"

    assert head_size(scope) == len(wire)


# --- while reading: the protocol `leadsync serve` runs uvicorn with ---------------------------


class _Recorder:
    """A bare ASGI app that answers 200 and records what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def bounded_server() -> AsyncIterator[tuple[int, _Recorder]]:
    app = _Recorder()
    sock = bind_socket()
    config = uvicorn.Config(
        app,
        http="leadsync.web.headers:BoundedHttpToolsProtocol",
        h11_max_incomplete_event_size=2048,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started)
    try:
        yield sock.getsockname()[1], app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


async def _exchange(port: int, chunks: list[bytes]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the server closed the connection after its answer
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


async def test_an_endless_header_is_refused_while_it_arrives(
    bounded_server: tuple[int, _Recorder],
) -> None:
    port, app = bounded_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # A head that has not ended (no blank line yet) and is already past 2 KiB: the answer must
    # come now, not after the client finished sending a head of any size.
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 4096)
    await writer.drain()

    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    body = rest.partition(b"\r\n\r\n")[2]
    assert json.loads(body) == {"detail": "request headers larger than 2048 bytes", "errors": []}
    assert app.calls == 0  # the app never saw it


async def test_what_follows_a_refused_head_is_dropped_without_resetting_the_answer(
    bounded_server: tuple[int, _Recorder],
) -> None:
    port, app = bounded_server
    head = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: "

    # 512 KiB of header in 16 KiB writes: dropped after the answer, which still arrives whole.
    answer = await _exchange(port, [head] + [b"a" * 16384] * 32)

    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert answer.endswith(b'{"detail":"request headers larger than 2048 bytes","errors":[]}')
    assert app.calls == 0


async def test_a_small_head_with_a_large_body_is_not_mistaken_for_a_large_head(
    bounded_server: tuple[int, _Recorder],
) -> None:
    port, app = bounded_server
    body = b"x" * 50_000
    request = (
        b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )

    answer = await _exchange(port, [request])

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert app.calls == 1


async def test_each_request_on_a_connection_gets_its_own_budget(
    bounded_server: tuple[int, _Recorder],
) -> None:
    port, app = bounded_server
    small = b"GET / HTTP/1.1\r\nhost: x\r\nx-a: " + b"a" * 1500 + b"\r\n\r\n"
    last = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-a: " + b"a" * 1500 + b"\r\n\r\n"

    answer = await _exchange(port, [small, small, last])

    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert app.calls == 3
