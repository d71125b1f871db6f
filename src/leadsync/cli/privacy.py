"""The privacy commands: erase, erasures, erasure, erasure-retry, subject (docs/privacy.md).

The address is an argument here, typed by the operator; it is never printed back except in
the access report, which is its purpose.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.cli import (
    _prepare_database,
    app,
    fail,
    run_use_case,
    settings_or_exit,
    with_database,
)
from leadsync.config import Settings
from leadsync.emails import MAX_EMAIL
from leadsync.limits import MAX_ID, MAX_PAGE_SIZE
from leadsync.store.db import create_engine, create_sessionmaker
from leadsync.store.tables import ErasureStatus

if TYPE_CHECKING:
    from leadsync.store.fence import SendFence
    from leadsync.usecases.privacy import ErasureOut

T = TypeVar("T")

# Who an erasure from the command line is recorded as requested by.
CLI_REQUESTER: Final = "cli"


def _canonical_or_exit(email: str) -> str:
    """The canonical form of an EMAIL argument, or one line saying why not (exit 2)."""
    from pydantic import ValidationError

    from leadsync.usecases.privacy import EmailIn

    try:
        return EmailIn(email=email).email
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = {
            "string_too_short": "must not be empty",
            "string_too_long": f"must be at most {MAX_EMAIL} characters",
        }.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
        typer.secho(f"leadsync: EMAIL {reason}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


def _require_erasure_key(settings: Settings) -> None:
    from leadsync.usecases.privacy import ErasureKeyMissing

    if settings.read_erasure_key() is None:
        fail(str(ErasureKeyMissing()), settings=settings)


def run_fenced(
    settings: Settings,
    use_case: Callable[[async_sessionmaker[AsyncSession], SendFence], Awaitable[T]],
) -> T:
    """`run_use_case` with the send fence too (an erasure takes it exclusively)."""
    from leadsync.store.fence import open_fence

    async def run() -> T:
        await _prepare_database(settings, migrate=False)
        engine = create_engine(settings.async_database_url)
        try:
            sessions = create_sessionmaker(engine)
            return await use_case(sessions, open_fence(engine, sessions))
        finally:
            await engine.dispose()

    return with_database(settings, lambda: asyncio.run(run()))


def _print_erasures(title: str, erasures: Sequence[ErasureOut]) -> None:
    """A table of erasures, then HubSpot's error and any return of each, one line apiece."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("id", "status", "requested (UTC)", "by", "tries", "http", "cancelled"):
        table.add_column(name, no_wrap=True)
    table.add_column("scrubbed", overflow="fold")
    notes = []
    for row in erasures:
        table.add_row(
            str(row.id),
            row.status.value,
            row.requested_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            row.requested_by,
            str(row.attempts),
            "" if row.http_status is None else str(row.http_status),
            str(row.leads_cancelled),
            "" if row.leads_scrubbed is None else str(row.leads_scrubbed),
        )
        if row.error:
            notes.append(f"erasure {row.id}: HubSpot's error: {row.error}")
        if row.returned_at is not None:
            notes.append(
                f"erasure {row.id}: the address came back with lead {row.returned_lead_id} "
                f"at {row.returned_at.isoformat(timespec='seconds')}"
            )
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)


@app.command()
def erase(
    email: Annotated[str, typer.Argument(help="The address, in any casing.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Erase one person's data (art. 17 GDPR): cancel every lead of EMAIL now, then a worker
    deletes the HubSpot contact and removes the leads' personal fields. Cannot be undone.

    Needs LEADSYNC_ERASURE_KEY. An open erasure of the same address is reused.
    """
    from leadsync.usecases.privacy import ErasureKeyMissing, request_erasure

    settings = settings_or_exit()
    canonical = _canonical_or_exit(email)
    _require_erasure_key(settings)
    if not yes:
        typer.confirm(
            "Erase every lead of this address here and its contact in HubSpot? This cannot "
            "be undone",
            abort=True,
        )
    try:
        accepted = run_fenced(
            settings,
            lambda sessions, fence: request_erasure(
                sessions,
                fence=fence,
                settings=settings,
                email=canonical,
                requested_by=CLI_REQUESTER,
            ),
        )
    except ErasureKeyMissing as exc:  # the key file was emptied meanwhile
        fail(str(exc), settings=settings, exc=exc)
    if as_json:
        typer.echo(accepted.model_dump_json(indent=2))
        return
    how = "new" if accepted.created else "an open erasure of this address, reused"
    typer.echo(
        f"erasure {accepted.id} {accepted.status.value} ({how}): "
        f"{accepted.leads_cancelled} lead(s) cancelled; a worker sends HubSpot's GDPR delete "
        f"next (`leadsync erasure {accepted.id}` shows its progress)"
    )


@app.command()
def erasures(
    status_: Annotated[
        ErasureStatus | None,
        typer.Option("--status", case_sensitive=False, help="Only erasures in this status."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(min=1, max=MAX_PAGE_SIZE, help=f"Page size (1 to {MAX_PAGE_SIZE})."),
    ] = 50,
    after: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_ID, help="Only erasures older than this id (the next page)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List erasure requests, newest first (addresses are never shown)."""
    from leadsync.usecases.privacy import list_erasures

    settings = settings_or_exit()
    page = run_use_case(
        settings,
        lambda sessions: list_erasures(sessions, status=status_, limit=limit, after=after),
    )
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    if not page.items:
        typer.echo("no erasure" + ("" if status_ is None else f" is {status_.value}"))
        return
    shown = "" if status_ is None else f" {status_.value}"
    _print_erasures(f"erasures{shown}, newest first", page.items)
    if page.next_after is not None:
        typer.echo(f"older ones: leadsync erasures --after {page.next_after}")


@app.command("erasure")
def erasure(
    erasure_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The erasure's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show one erasure request and how far it got (HubSpot's last answer included)."""
    from leadsync.usecases.privacy import get_erasure

    settings = settings_or_exit()
    found = run_use_case(settings, lambda sessions: get_erasure(sessions, erasure_id=erasure_id))
    if found is None:
        fail(f"no erasure with id {erasure_id}", settings=settings)
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    columns = Table(title=f"erasure {found.id}", show_header=False)
    columns.add_column("column")
    columns.add_column("value", overflow="fold")
    for name, value in found.model_dump(mode="json").items():
        columns.add_row(name, "" if value is None else str(value))
    Console().print(columns)


@app.command("erasure-retry")
def erasure_retry(
    erasure_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The erasure's id.")],
) -> None:
    """Retry a FAILED erasure: its attempts reset and a worker sends the GDPR delete again.

    Fix what HubSpot refused first (`leadsync erasure ID` shows its error).
    """
    from leadsync.usecases.privacy import NotFailed, retry_erasure

    settings = settings_or_exit()
    try:
        retried = run_use_case(
            settings, lambda sessions: retry_erasure(sessions, erasure_id=erasure_id)
        )
    except NotFailed as exc:
        fail(f"{exc}: only a FAILED erasure can be retried", settings=settings)
    if retried is None:
        fail(f"no erasure with id {erasure_id}", settings=settings)
    typer.echo(f"erasure {retried.id} is {retried.status.value} again: a worker retries it")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


@app.command()
def subject(
    email: Annotated[str, typer.Argument(help="The address, in any casing.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Write the JSON to this file (mode 0600) instead of printing it.",
        ),
    ] = None,
) -> None:
    """Print everything stored about EMAIL as JSON (art. 15 GDPR): every lead with its sync
    history and every erasure. With LEADSYNC_ERASURE_KEY, erased leads are found too."""
    from leadsync.usecases.privacy import lookup_subject

    settings = settings_or_exit()
    canonical = _canonical_or_exit(email)
    found = run_use_case(
        settings, lambda sessions: lookup_subject(sessions, settings=settings, email=canonical)
    )
    report = found.model_dump_json(indent=2) + "\n"
    if output is None:
        typer.echo(report, nl=False)
        return
    try:
        _write_private(output, report)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", settings=settings, exc=exc)
    typer.echo(
        f"wrote {len(found.leads)} lead(s) and {len(found.erasures)} erasure(s) to {output} "
        "(mode 0600)"
    )
