"""The `leadsync` command line: serve, migrate and the operators' tools."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from leadsync import __version__, migrations
from leadsync.config import ConfigError, Settings, load_settings
from leadsync.db import create_engine
from leadsync.logging import configure_logging, get_logger

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
) -> None:
    """Run the lead API (and, by default, the sync worker); applies pending migrations first."""
    import uvicorn

    from leadsync.app import create_app

    settings = settings_or_exit()
    background = None
    if worker:
        from leadsync.sync.worker import start_in_app

        background = start_in_app
    api = create_app(settings, background=background)
    typer.echo(f"leadsync {__version__}: API docs at http://{host}:{port}/docs")
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False)


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

    before, after = asyncio.run(run())
    if before == after:
        typer.echo(f"schema already at {after}")
    else:
        typer.echo(f"schema upgraded from {before or 'nothing'} to {after}")


def main() -> None:
    """Entry point of the console script."""
    app()
