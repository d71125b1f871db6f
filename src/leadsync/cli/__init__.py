"""The `leadsync` command line: serve, migrate and the operators' tools."""

from __future__ import annotations

import asyncio
import math
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync import __version__
from leadsync.config import ConfigError, Settings, load_settings
from leadsync.limits import MAX_ID, MAX_OLDER_THAN_SECONDS, MAX_RESYNC_IDS, MAX_RESYNC_LIMIT
from leadsync.logging import configure_logging, get_logger
from leadsync.store import dbcheck, migrations
from leadsync.store.db import create_engine, create_sessionmaker

app = typer.Typer(
    name="leadsync",
    help="BeWorking leads API and its exactly-once sync to HubSpot contacts.\n\n"
    "Configuration comes from environment variables (see README.md); a bad value stops "
    "start-up with one line naming the variable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = get_logger("leadsync.cli")


def settings_or_exit(**overrides: object) -> Settings:
    """Load settings and configure logging, or print one clear line and exit with code 2."""
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        typer.secho(f"leadsync: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    configure_logging(
        log_format=settings.log_format, level=settings.log_level, secrets=settings.secrets
    )
    return settings


T = TypeVar("T")


def fail(line: str, *, settings: Settings, exc: BaseException | None = None) -> NoReturn:
    """Print one line on stderr (the traceback first with LEADSYNC_LOG_LEVEL=DEBUG); exit 1."""
    if exc is not None and settings.log_level == "DEBUG":
        traceback.print_exception(exc)
    typer.secho(f"leadsync: {line}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def with_database(settings: Settings, run: Callable[[], T]) -> T:
    """Run `run`; a database that cannot be used ends the command with one line (dbcheck)."""
    try:
        dbcheck.require_writable_directory(settings.async_database_url)
        return run()
    except Exception as exc:
        line = dbcheck.explain(exc, settings.async_database_url)
        if line is None:
            raise
        fail(line, settings=settings, exc=exc)


def warn_without_hubspot_token(settings: Settings) -> None:
    """Say once, at start, that leads will wait when no HubSpot token is configured."""
    if settings.read_hubspot_token() is None:
        typer.secho(
            "leadsync: warning: no HubSpot token (set HUBSPOT_TOKEN or HUBSPOT_TOKEN_FILE): "
            "leads are stored but none reaches HubSpot until one is set",
            err=True,
            fg=typer.colors.YELLOW,
        )


async def _prepare_database(settings: Settings, *, migrate: bool) -> None:
    """Connect; migrate to head, or require the schema at head (read-only commands)."""
    if not migrate:
        dbcheck.require_existing_file(settings.async_database_url)
    engine = create_engine(settings.async_database_url)
    try:
        if migrate:
            await migrations.upgrade(engine)
        else:
            await dbcheck.require_schema_at_head(engine)
    finally:
        await engine.dispose()


def run_use_case(
    settings: Settings,
    use_case: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
) -> T:
    """Run one use case against the database (schema required at head, not migrated) and
    return its result; a database that cannot be used ends the command with one line."""

    async def run() -> T:
        await _prepare_database(settings, migrate=False)
        engine = create_engine(settings.async_database_url)
        try:
            return await use_case(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return with_database(settings, lambda: asyncio.run(run()))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"leadsync {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """BeWorking leads API and its exactly-once sync to HubSpot contacts."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run the HubSpot sync worker inside the API process (default) or not.",
        ),
    ] = True,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="API processes sharing the port (each with its own sync worker unless "
            "--no-worker); more than one needs PostgreSQL to be worth it.",
        ),
    ] = 1,
) -> None:
    """Run the lead API (and, by default, the sync worker); applies pending migrations first."""
    import uvicorn

    from leadsync.app import app_with_worker, app_without_worker

    settings = settings_or_exit()  # validate once, with one clear line, before any process
    # Reach and migrate the database here, where a failure is one line, rather than in the
    # app's lifespan, where uvicorn prints the driver's traceback.
    with_database(settings, lambda: asyncio.run(_prepare_database(settings, migrate=True)))
    if worker:
        warn_without_hubspot_token(settings)
    typer.echo(f"leadsync {__version__}: API docs at http://{host}:{port}/docs")
    # Request heads are bounded while they are read (web/headers.py): the protocol takes its
    # limit from h11_max_incomplete_event_size, which also bounds uvicorn's h11.
    server: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "http": "leadsync.web.headers:BoundedHttpToolsProtocol",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
    if processes == 1:
        uvicorn.run(app_with_worker() if worker else app_without_worker(), **server)
        return
    # Several processes: uvicorn imports the factory in each; settings come from the same
    # environment, migrations are serialised by the database (advisory lock / BEGIN IMMEDIATE).
    factory = "app_with_worker" if worker else "app_without_worker"
    uvicorn.run(f"leadsync.app:{factory}", factory=True, workers=processes, **server)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision (safe to run again)."""
    settings = settings_or_exit()

    async def run() -> tuple[str | None, str | None]:
        engine = create_engine(settings.async_database_url)
        try:
            return await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    before, after = with_database(settings, lambda: asyncio.run(run()))
    if before == after:
        typer.echo(f"schema already at {after}")
    else:
        typer.echo(f"schema upgraded from {before or 'nothing'} to {after}")


@app.command()
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port (/metrics)."),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Run a sync worker alone (any number of them may share one PostgreSQL).

    SIGTERM or Ctrl-C drains: in-flight batches finish or release their leases before exit.
    """
    settings = settings_or_exit()
    warn_without_hubspot_token(settings)
    with_database(
        settings,
        lambda: run_fast(
            _run_worker(settings, metrics_port=metrics_port, metrics_host=metrics_host)
        ),
    )


def run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived coroutine on uvloop when it is installed (as uvicorn does)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(main)
        return
    uvloop.run(main)


async def _run_worker(settings: Settings, *, metrics_port: int | None, metrics_host: str) -> None:
    import signal
    from contextlib import AsyncExitStack

    from prometheus_client import start_http_server

    from leadsync import runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.async_database_url)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        await migrations.upgrade(engine)
        sessions = create_sessionmaker(engine)
        if metrics_port is not None:
            server, _thread = start_http_server(metrics_port, addr=metrics_host)
            stack.callback(server.shutdown)
            await runtime.start_sampler(sessions, settings=settings, stack=stack)
            log.info("metrics.serving", port=metrics_port)
        sync_worker = await runtime.build_worker(settings, sessions=sessions, stack=stack)
        await runtime.start_worker(sync_worker, settings=settings, stack=stack)
        await stop.wait()
        log.info("sync.worker.signal", action="draining")


def _finite(value: float | None) -> float | None:
    # click's FloatRange lets "nan" through (every comparison with NaN is false).
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter("must be a finite number of seconds")
    return value


@app.command("resync-failed")
def resync_failed(
    lead_id: Annotated[
        list[int] | None,
        typer.Option(
            "--lead-id",
            min=1,
            max=MAX_ID,
            help=f"Only this lead (repeat for several, at most {MAX_RESYNC_IDS:,}).",
        ),
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=MAX_OLDER_THAN_SECONDS,
            callback=_finite,
            help="Only leads whose last attempt is at least SECONDS old "
            f"(0 to {MAX_OLDER_THAN_SECONDS:,}).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_RESYNC_LIMIT,
            help=f"Requeue at most this many (1 to {MAX_RESYNC_LIMIT:,}).",
        ),
    ] = None,
) -> None:
    """Put FAILED leads back in the queue (attempts reset; the last error stays until replaced)."""
    from leadsync.usecases.schemas import ResyncRequest
    from leadsync.usecases.sync import resync_failed as requeue

    settings = settings_or_exit()
    if lead_id is not None and len(lead_id) > MAX_RESYNC_IDS:
        typer.secho(
            f"leadsync: at most {MAX_RESYNC_IDS:,} --lead-id options at once "
            f"(got {len(lead_id):,}); run the command several times",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(2)
    request = ResyncRequest(lead_ids=lead_id or None, older_than_seconds=older_than, limit=limit)

    requeued = run_use_case(settings, lambda sessions: requeue(sessions, request=request))
    typer.echo(f"requeued {requeued} FAILED lead(s)")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show leads per sync status, the oldest due lead, the gate and the request budget."""
    from leadsync.usecases.sync import sync_status

    settings = settings_or_exit()
    report = run_use_case(settings, lambda sessions: sync_status(sessions, settings=settings))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="leads by sync status")
    table.add_column("status")
    table.add_column("leads", justify="right")
    for name, count in report.counts.items():
        table.add_row(name, str(count))
    console = Console()
    console.print(table)
    oldest = report.oldest_due_seconds
    console.print(f"oldest due lead: {'none' if oldest is None else f'{oldest:.1f} s'}")
    gate = report.gate
    if gate.paused:
        console.print(f"sync PAUSED ({gate.reason}) until {gate.paused_until}: {gate.detail}")
    else:
        console.print("sync running")
    budget = report.budget
    console.print(
        f"budget {budget.limit} (one request every {budget.seconds_between_requests} s); "
        f"HubSpot reported max={budget.reported_max} remaining={budget.reported_remaining} "
        f"daily_remaining={budget.daily_remaining}"
    )


@app.command("lead")
def lead(
    lead_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The lead's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show one lead: every column and its sync history (the newest outcomes, oldest first)."""
    from leadsync.store.db import create_sessionmaker
    from leadsync.usecases.leads import get_lead_with_history
    from leadsync.usecases.schemas import LeadWithHistory

    settings = settings_or_exit()

    async def run() -> LeadWithHistory | None:
        await _prepare_database(settings, migrate=False)
        engine = create_engine(settings.async_database_url)
        try:
            return await get_lead_with_history(create_sessionmaker(engine), lead_id=lead_id)
        finally:
            await engine.dispose()

    found = with_database(settings, lambda: asyncio.run(run()))
    if found is None:
        typer.secho(f"leadsync: no lead with id {lead_id}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    columns = Table(title=f"lead {found.id}", show_header=False)
    columns.add_column("column")
    columns.add_column("value", overflow="fold")
    for name, value in found.model_dump(exclude={"history"}).items():
        columns.add_row(name, "" if value is None else str(value))
    console.print(columns)
    history = Table(title=f"sync history ({len(found.history)} outcome(s), oldest first)")
    for name in ("when", "attempt", "outcome", "http", "error", "ms", "worker", "hubspot id"):
        history.add_column(name, overflow="fold")
    for row in found.history:
        history.add_row(
            row.attempted_at.isoformat(timespec="seconds"),
            str(row.attempt),
            row.outcome.value,
            "" if row.http_status is None else str(row.http_status),
            row.error or "",
            "" if row.duration_ms is None else str(row.duration_ms),
            row.worker_id or "",
            row.hubspot_id or "",
        )
    console.print(history)


# Who a pause or resume from the command line is logged as (the console logs its session id).
CLI_ACTOR = "cli"


def _gate_command(settings: Settings, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from leadsync.store.db import create_sessionmaker

    async def run() -> T:
        await _prepare_database(settings, migrate=False)
        engine = create_engine(settings.async_database_url)
        try:
            return await action(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return with_database(settings, lambda: asyncio.run(run()))


@app.command()
def pause(
    note: Annotated[
        str, typer.Option(help="Why, for the status page and the log (e.g. a ticket).")
    ] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Pause the HubSpot sync for every worker until `leadsync resume` (maintenance).

    Leads keep arriving and wait in the queue; nothing is lost. Logged as done by `cli`.
    """
    from leadsync.usecases.sync import pause_sync

    settings = settings_or_exit()
    if not yes:
        typer.confirm("Pause the HubSpot sync for every worker until resumed?", abort=True)
    result = _gate_command(
        settings,
        lambda sessions: pause_sync(sessions, settings=settings, actor=CLI_ACTOR, note=note),
    )
    replaced = f" (it replaces a {result.replaced} pause)" if result.replaced else ""
    typer.echo(f"sync paused by hand{replaced}; `leadsync resume` lifts it")


@app.command()
def resume(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Resume the HubSpot sync after a pause by hand, or after a credential (auth) pause once
    the token is fixed. A 429 or daily-limit pause is HubSpot's and is not lifted (exit 1)."""
    from leadsync.usecases.sync import resume_sync

    settings = settings_or_exit()
    if not yes:
        typer.confirm("Resume the HubSpot sync for every worker?", abort=True)
    result = _gate_command(
        settings, lambda sessions: resume_sync(sessions, settings=settings, actor=CLI_ACTOR)
    )
    if result.lifted is not None:
        typer.echo(f"sync resumed (lifted the {result.lifted.value} pause)")
    elif result.still_paused is not None:
        typer.secho(
            f"leadsync: the sync is paused by HubSpot ({result.still_paused.value}) until "
            f"{result.paused_until}; it resumes by itself then",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)
    else:
        typer.echo("the sync was not paused")


def _register_subcommands() -> None:
    from leadsync.cli import privacy  # its commands register themselves on `app`
    from leadsync.demo import register as register_demo
    from leadsync.sandbox.command import register as register_sandbox

    del privacy
    register_sandbox(app)
    register_demo(app)


_register_subcommands()


def main() -> None:
    """Entry point of the console script."""
    app()
