"""create_app(): the FastAPI application with its routers, health probes and lifespan."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadsync import __version__, metrics
from leadsync.config import Settings
from leadsync.limits import MAX_ID
from leadsync.logging import get_logger
from leadsync.store import migrations
from leadsync.store.db import create_engine, create_sessionmaker
from leadsync.web.context import AppContext
from leadsync.web.headers import HeaderSizeLimit
from leadsync.web.leads import internal as leads_internal
from leadsync.web.leads import public as leads_public
from leadsync.web.responses import ErrorResponse, responses
from leadsync.web.sync import router as sync_internal

log = get_logger(__name__)

# A hook started in the lifespan beside the API (the sync worker); it returns a callable that
# wakes it, and runs until the exit stack closes.
BackgroundStarter = Callable[[AppContext, AsyncExitStack], Awaitable[Callable[[], None]]]


class BodySizeLimit:
    """Answer 413 for bodies over the limit, before the application reads them whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send)
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


# What pydantic says when the body is JSON but not an object ([], "text", 42, null).
_NOT_AN_OBJECT = {"model_attributes_type", "model_type", "dict_type"}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        field = _field_name(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            # strictjson.loads() wrote the reason as a sentence.
            field = "body"
            message = str((err.get("ctx") or {}).get("error") or "the body is not valid JSON")
        elif field == "body" and err.get("type") in _NOT_AN_OBJECT:
            message = "the body must be a JSON object"
        errors.append({"field": field, "message": message})
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return JSONResponse(
        ErrorResponse.of(f"invalid request: {fields}", errors),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        ErrorResponse.of(str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


# The database answering nothing (down, refusing, unreachable) is not the client's fault nor a
# bug: 503 in the documented shape, and the cause in the log, not in the answer.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, OSError)


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("db.unavailable", path=request.url.path, error_type=type(exc).__name__)
    return JSONResponse(
        ErrorResponse.of("the database is unavailable; try again later"),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _on_unexpected_error(_request: Request, _exc: Exception) -> JSONResponse:
    # A bug: the traceback is logged by the server; the client gets the documented shape.
    return JSONResponse(
        ErrorResponse.of("internal error"), status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# FastAPI's OpenAPI model types bounds as floats, and 2**63 - 1 is not a float: it would be
# published as 9.223372036854776e18, which is 2**63, a value the server refuses.
_EXACT = {float(MAX_ID): MAX_ID}


def _exact_bounds(node: Any) -> None:
    """Put integral bounds back as exact integers, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = _EXACT.get(value, int(value))
            else:
                _exact_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _exact_bounds(item)


def _with_exact_bounds(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()  # cached by FastAPI; fixing it again is a no-op
        _exact_bounds(spec)
        return spec

    return openapi


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """The database is reachable and its schema is at head."""

    status: Literal["ready"]


async def readiness(engine: AsyncEngine) -> str | None:
    """Return why the service is not ready, or None when the database is reachable and at head."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current = await migrations.schema_revision(engine)
    except Exception as exc:  # any driver error means "not ready"; the reason is logged
        log.warning("readyz.database_unreachable", error_type=type(exc).__name__)
        return "database unreachable"
    head = migrations.head_revision()
    if current != head:
        return f"database schema at {current or 'nothing'}, expected {head}: run `leadsync migrate`"
    return None


def create_app(
    settings: Settings,
    *,
    migrate_on_start: bool = True,
    background: BackgroundStarter | None = None,
) -> FastAPI:
    """Build the app; the lifespan opens the database, migrates and starts background work."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.async_database_url)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            if migrate_on_start:
                before, after = await migrations.upgrade(engine)
                if before != after:
                    log.info("db.migrated", before=before, after=after)
            ctx = AppContext(settings=settings, engine=engine, sessions=create_sessionmaker(engine))
            app.state.ctx = ctx
            await metrics.start_sampler(ctx.sessions, settings=settings, stack=stack)
            if background is not None:
                ctx.wake_worker = await background(ctx, stack)
            yield

    app = FastAPI(
        title="leadsync",
        version=__version__,
        description="BeWorking's lead API. Every lead is stored, then synced to HubSpot "
        "as exactly one contact per email. `/internal/*` needs `Authorization: Bearer "
        "$LEADSYNC_INTERNAL_TOKEN`.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected_error)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderSizeLimit, max_bytes=settings.max_header_bytes)  # outermost
    app.include_router(leads_public)
    app.include_router(leads_internal)
    app.include_router(sync_internal)
    app.openapi = _with_exact_bounds(app)  # type: ignore[method-assign]

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/healthz",
        operation_id="getHealth",
        response_model=Health,
        responses=responses(431),
        tags=["health"],
        summary="The process is alive",
    )
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        operation_id="getReadiness",
        response_model=Readiness,
        tags=["health"],
        summary="Database reachable and schema at head",
        responses={
            **responses(431),
            503: {
                "model": ErrorResponse,
                "description": "The database is unreachable, or its schema is not at head "
                "(the detail says which, and what to run).",
            },
        },
    )
    async def readyz(request: Request) -> Readiness | JSONResponse:
        reason = await readiness(request.app.state.ctx.engine)
        if reason is not None:
            return JSONResponse(ErrorResponse.of(reason), status_code=503)
        return Readiness(status="ready")

    return app


# Set by `leadsync serve`: whether each API process also runs a sync worker.
SERVE_WORKER_ENV = "LEADSYNC_SERVE_WORKER"


def app_from_environment() -> FastAPI:
    """Build the app from the environment (the factory each `serve` process runs)."""
    from leadsync.config import load_settings
    from leadsync.engine.worker import start_in_app
    from leadsync.logging import configure_logging

    settings = load_settings()
    configure_logging(
        log_format=settings.log_format, level=settings.log_level, secrets=settings.secrets
    )
    run_worker = os.environ.get(SERVE_WORKER_ENV, "1") != "0"
    return create_app(settings, background=start_in_app if run_worker else None)
