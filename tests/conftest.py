"""Shared fixtures for every leadsync test suite.

Databases
---------
``db_url``
    An async SQLAlchemy URL, parametrized over ``sqlite`` and ``postgres`` (test ids).
    ``sqlite``: a fresh file in ``tmp_path``.  ``postgres``: ``$LEADSYNC_TEST_DATABASE_URL``
    (a plain ``postgresql://postgres@127.0.0.1:5432/leadsync_test`` works; it is mapped to
    asyncpg).  PostgreSQL cases carry ``pytest.mark.postgres``.  Without the variable they
    are skipped with the reason shown; with ``CI=true`` they fail instead, so a CI run can
    never pass by silently skipping PostgreSQL.  Any other test marked ``postgres`` gets the
    same treatment.
``engine``
    An ``AsyncEngine`` on ``db_url`` with the schema at head; disposed after the test.
    SQLite: migrated per test (new file).  PostgreSQL: migrated once per session (after a
    downgrade to base, so a run starts from nothing); before each test ``leads`` is
    truncated (identities restarted) and the ``hubspot_gate`` row is reset, and a schema a
    previous test left below head is upgraded again.  Tests are independent and fast.
``sessions``
    ``async_sessionmaker`` bound to ``engine`` (``leadsync.store.db.create_sessionmaker``).

Settings and the app
--------------------
``settings_factory(**overrides)``
    Builds ``leadsync.config.Settings`` on ``db_url`` with test-friendly values:
    internal token ``test-internal-token`` (``tests.helpers.INTERNAL_HEADERS`` carries it),
    a HubSpot token, a HubSpot base URL where nothing listens, short poll/retry/reconcile
    intervals.  Keyword overrides use field names (``internal_token=None``...).
``app``
    ``create_app(settings_factory(), migrate_on_start=True)`` with its lifespan running.
``app_client``
    ``httpx.AsyncClient`` on ``app`` through ``httpx.ASGITransport``, base ``http://test``.
``client_factory(settings=None, *, background=None, migrate_on_start=True)``
    Async context manager yielding ``(app, client)`` for custom settings or a background
    hook (the sync worker's ``start_in_app``).

``repo_root``
    The repository root, for tests that read README.md, docs/ or the lock files.

HubSpot and logging
-------------------
``hubspot``
    A ``tests.helpers.hubspot.SandboxHubSpot``: the HubSpot sandbox over real HTTP (one
    uvicorn thread on a free loopback port for the session, ``running_sandbox``), with its
    default config, no contacts and nothing injected; programmed through its control API.
    The tests' one HubSpot stand-in (docs/sandbox.md).
``restore_logging``
    Puts the loggers and structlog back as they were after a test that configures logging.

Isolation
---------
An autouse fixture removes every environment variable that ``Settings`` reads
(``DATABASE_URL``, ``HUBSPOT_*``, ``LEADSYNC_*``) so a developer's shell cannot change a
test's outcome; tests that need one set it with ``monkeypatch.setenv``.

Helpers live in ``tests/helpers/`` (its ``__init__`` lists them), never in a conftest.py:
``wait_for(predicate, *, timeout=10.0, interval=0.02)`` awaits a sync or async condition
with a deadline; never ``sleep`` over a race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.app import BackgroundStarter, create_app
from leadsync.config import Settings, env_name
from leadsync.sandbox import RunningSandbox, sandbox_in_thread
from leadsync.store import migrations
from leadsync.store.db import create_engine, create_sessionmaker
from tests.helpers.app import INTERNAL_TOKEN, ClientFactory
from tests.helpers.hubspot import SandboxHubSpot
from tests.helpers.logs import saved_logging
from tests.helpers.postgres import PG_ENV, in_ci, postgres_url, require_postgres, reset_postgres

# in_ci stays importable from here for tests/integration/test_ops_files.py (tests.helpers.postgres).
__all__ = ["in_ci"]


def pytest_report_header(config: pytest.Config) -> str:
    url = postgres_url()
    if url is not None:
        shown = make_url(url).render_as_string(hide_password=True)
        return f"leadsync: PostgreSQL cases run against {shown}"
    if in_ci():
        return f"leadsync: {PG_ENV} unset and CI=true: PostgreSQL cases will FAIL"
    return f"leadsync: {PG_ENV} unset: PostgreSQL cases are skipped"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields:
        for name in {env_name(field), field.upper(), field}:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _postgres_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") is not None:
        require_postgres()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return an async database URL: a fresh SQLite file, or the test PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'leadsync.db'}"
    return require_postgres()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on db_url with the schema at head and no leads."""
    eng = create_engine(db_url)
    try:
        if eng.dialect.name == "postgresql":
            await reset_postgres(eng, db_url)
        else:
            await migrations.upgrade(eng)
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory bound to the test engine."""
    return create_sessionmaker(engine)


@pytest.fixture
def settings_factory(db_url: str) -> Callable[..., Settings]:
    """Return a builder of Settings on db_url with fast, offline test values."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": db_url,
            "internal_token": INTERNAL_TOKEN,
            "hubspot_token": "test-hubspot-token",
            # Port 9 (discard): nothing listens, so a forgotten stub can never reach HubSpot.
            "hubspot_base_url": "http://127.0.0.1:9",
            "poll_interval_seconds": 0.05,
            "retry_base_seconds": 0.01,
            "retry_cap_seconds": 0.2,
            "lease_seconds": 5.0,
            "hubspot_total_timeout_seconds": 3.0,
            "reconcile_interval_seconds": 0.2,
            # One GDPR delete per erasure unless a test asks for the confirming second one.
            "erasure_confirm_seconds": 0.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def client_factory(engine: AsyncEngine, settings_factory: Callable[..., Settings]) -> ClientFactory:
    """Return a context manager factory yielding (app, client) with the lifespan running."""

    @asynccontextmanager
    async def make(
        settings: Settings | None = None,
        *,
        background: BackgroundStarter | None = None,
        migrate_on_start: bool = True,
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        application = create_app(
            settings or settings_factory(),
            migrate_on_start=migrate_on_start,
            background=background,
        )
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://test"
            ) as client,
        ):
            yield application, client

    return make


@pytest.fixture
async def app(client_factory: ClientFactory) -> AsyncIterator[FastAPI]:
    """Yield the app built from settings_factory() with its lifespan running."""
    async with client_factory() as (application, _client):
        yield application


@pytest.fixture
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an HTTP client that talks to `app` in process."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client


@pytest.fixture
def repo_root() -> Path:
    """Return the repository root (for tests reading README.md, docs/ or lock files)."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the loggers and structlog back as they were once the test is over."""
    with saved_logging():
        yield


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[RunningSandbox]:
    """Serve one HubSpot sandbox over HTTP for the whole session (a uvicorn thread)."""
    with sandbox_in_thread() as sandbox:
        yield sandbox


@pytest.fixture
def hubspot(running_sandbox: RunningSandbox) -> SandboxHubSpot:
    """Return the session's sandbox reset for this test: default config, nothing stored."""
    return SandboxHubSpot.fresh(running_sandbox)
