"""The `leadsync demo` command: its options, its exit status, and its registration."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

# How many leads a demo submits by default (the options module reads it from here).
DEFAULT_LEADS = 300


def demo(
    leads: Annotated[
        int,
        typer.Option(
            min=20,
            max=5000,
            help="How many leads to submit (~6% repeat an earlier email in another casing, "
            "~2% use an address the sandbox refuses).",
        ),
    ] = DEFAULT_LEADS,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the leads and of the sandbox's faults; the run prints the one it "
            "used. Default: a random one."
        ),
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Afterwards leave the API (/docs, /metrics) and the sandbox up to explore, "
            "printing their URLs and the internal token, until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="API port on 127.0.0.1; 0 picks a free one.")
    ] = 0,
) -> None:
    """Watch leads sync to a misbehaving HubSpot sandbox, then check nothing was lost or doubled.

    Everything runs in this process on embedded settings (a temporary SQLite database, no
    HubSpot token, no internet; environment variables are ignored): a local HubSpot sandbox
    with realistic trouble (429s when another integration bursts, 5xx answers, writes applied
    and then the connection dropped, hanging requests, a rule refusing some emails) and
    leadsync itself, API and sync worker.

    Realistic leads go through POST /leads while bars show the queue by status. A table then
    compares the leads with the sandbox's contacts. The refusing rule is lifted, the FAILED
    leads are requeued through POST /internal/leads/resync-failed, and they sync too.

    Exit status: 0 when every lead is SYNCED with exactly one contact per email; 1 when a lead
    is lost or duplicated (the reason is printed) or the demo cannot run; 130 on Ctrl-C before
    the end. 300 leads take 15 to 30 s.
    """
    # Imported here: every `leadsync` command registers this one, and only the demo needs them.
    import httpx
    from rich.console import Console

    from leadsync.demo.options import DemoError, DemoOptions
    from leadsync.demo.run import run_demo

    console = Console(highlight=False)
    options = DemoOptions(leads=leads, seed=seed, keep_running=keep_running, port=port)
    try:
        report = asyncio.run(run_demo(options, console=console))
    except KeyboardInterrupt:
        console.print("[yellow]leadsync demo: interrupted[/]")
        raise typer.Exit(130) from None
    except (DemoError, httpx.HTTPError) as exc:
        console.print(f"leadsync demo: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the leadsync CLI."""
    app.command("demo")(demo)
