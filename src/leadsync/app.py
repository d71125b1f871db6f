"""The FastAPI application: routers, middleware and error handlers, and the lifespan that
opens the database, migrates, samples the gauges and starts the background worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from leadsync import __version__, runtime
from leadsync.config import Settings, load_settings
from leadsync.logging import configure_logging, get_logger
from leadsync.store import migrations
from leadsync.store.db import POOL_SIZE, create_engine, create_sessionmaker
from leadsync.store.fence import open_fence
from leadsync.store.leads import open_intake
from leadsync.usecases import privacy
from leadsync.web import console, health, leads, sync
from leadsync.web import privacy as privacy_routes
from leadsync.web.bodysize import BodySizeLimit
from leadsync.web.context import AppContext
from leadsync.web.handlers import install_error_handlers
from leadsync.web.headers import HeaderSizeLimit
from leadsync.web.openapi import with_exact_bounds

log = get_logger(__name__)

# A hook started in the lifespan beside the API (the sync worker); it returns a callable that
# wakes it, and runs until the exit stack closes.
BackgroundStarter = Callable[[AppContext, AsyncExitStack], Awaitable[Callable[[], None]]]


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
            sessions = create_sessionmaker(engine)
            intake = await open_intake(
                engine, sessions, max_size=POOL_SIZE, hasher=privacy.hasher(settings)
            )
            stack.push_async_callback(intake.close)
            ctx = AppContext(
                settings=settings,
                engine=engine,
                sessions=sessions,
                intake=intake,
                fence=open_fence(engine, sessions),
            )
            app.state.ctx = ctx
            await runtime.start_sampler(ctx.sessions, settings=settings, stack=stack)
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
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderSizeLimit, max_bytes=settings.max_header_bytes)  # outermost
    app.include_router(leads.public)
    app.include_router(leads.internal)
    app.include_router(sync.router)
    app.include_router(privacy_routes.router)
    app.include_router(privacy_routes.methods)
    app.include_router(health.router)
    app.include_router(console.router)
    app.openapi = with_exact_bounds(app)  # type: ignore[method-assign]
    return app


def _from_environment(*, worker: bool) -> FastAPI:
    settings = load_settings()
    configure_logging(
        log_format=settings.log_format, level=settings.log_level, secrets=settings.secrets
    )
    return create_app(settings, background=runtime.start_in_app if worker else None)


def app_with_worker() -> FastAPI:
    """The app with a sync worker beside it, from the environment (`leadsync serve`)."""
    return _from_environment(worker=True)


def app_without_worker() -> FastAPI:
    """The app alone, from the environment (`leadsync serve --no-worker`)."""
    return _from_environment(worker=False)
