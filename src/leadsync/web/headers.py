"""A bound on the size of a request's head (request line and headers): 431 beyond it.

Two layers, one limit (`LEADSYNC_MAX_HEADER_BYTES`, 16 KiB by default):

- `HeaderSizeLimit`, an ASGI middleware, measures the head the app was given and answers 431
  in the API's error shape. It holds under any ASGI server (and in the tests).
- `BoundedHttpToolsProtocol`, the HTTP protocol `leadsync serve` runs uvicorn with, counts the
  bytes of a head while they arrive and answers the same 431 as soon as the head outgrows
  the limit, so a 1 MiB header is never read whole, let alone handed to the app. It reads
  the limit from uvicorn's `h11_max_incomplete_event_size`, which `serve` sets to the same
  value (and which bounds uvicorn's h11 protocol the same way).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import status
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from leadsync.web.responses import ErrorResponse

# "HTTP/1.1\r\n" after the target, ": " and "\r\n" around each header, the blank line.
_REQUEST_LINE_OVERHEAD = len(" HTTP/1.1\r\n") + 1
_HEADER_OVERHEAD = len(": \r\n")
_HEAD_END = len("\r\n")


def head_size(scope: Scope) -> int:
    """Return the size in bytes of the request line and headers as the client sent them."""
    target = len(scope.get("raw_path") or scope["path"].encode())
    query = scope.get("query_string") or b""
    size = len(scope["method"]) + _REQUEST_LINE_OVERHEAD + target + (len(query) + 1 if query else 0)
    size += sum(len(name) + len(value) + _HEADER_OVERHEAD for name, value in scope["headers"])
    return size + _HEAD_END


def too_large_body(max_bytes: int) -> bytes:
    """Return the JSON body of the 431 answer."""
    detail = f"request headers larger than {max_bytes} bytes"
    return json.dumps(ErrorResponse.of(detail), separators=(",", ":")).encode()


class HeaderSizeLimit:
    """Answer 431 when the request line and headers together exceed the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or head_size(scope) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        body = too_large_body(self.max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": status.HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Used when uvicorn was not given a bound (a protocol built outside `leadsync serve`).
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
# After the 431, what the client is still sending is read and dropped for a while before the
# connection closes: closing a socket with unread data sends a reset, which can destroy the
# answer before the client reads it ("lingering close", as web servers do).
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head larger than the limit as it comes."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes: int = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        # Bytes received since the current head began, counted per read: a read that ends a
        # head may also carry its body, so the check runs only while the head is incomplete.
        self.head_bytes = 0
        self.in_head = True
        self.refused = False
        self.dropped = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0  # the next head starts counting with the next read
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self.refused:  # lingering after the 431: drop what still arrives
            self.dropped += len(data)
            if self.dropped > LINGER_BYTES:
                self.transport.close()
            return
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.in_head and self.head_bytes > self.max_head_bytes:
            self._refuse_head()

    def _refuse_head(self) -> None:
        if self.transport.is_closing():
            return
        self.refused = True
        body = too_large_body(self.max_head_bytes)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
