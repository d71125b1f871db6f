"""The body size limit of every route: 413 before the application reads an oversized body."""

from __future__ import annotations

from fastapi import status
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadsync.web.responses import ErrorResponse


class BodySizeLimit:
    """Answer 413 for bodies over the limit, before the application reads them whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send)
            return
        if declared is not None and not chunked:
            # The server reads exactly Content-Length bytes as this request's body (more would
            # be the next request): nothing to count.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # a chunked body that lied by omission
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = JSONResponse(
            ErrorResponse.of(_BodyTooLarge(self.max_bytes).detail),
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        )
        await send(
            {"type": "http.response.start", "status": body.status_code, "headers": body.raw_headers}
        )
        await send({"type": "http.response.body", "body": body.body})


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException on purpose: FastAPI turns any other error raised while it reads the
    # body into "400 There was an error parsing the body", and re-raises only these.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {max_bytes} bytes"
        )
