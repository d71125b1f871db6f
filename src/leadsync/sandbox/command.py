"""`leadsync sandbox`: serve the fake HubSpot from the command line."""

from __future__ import annotations

import enum
from typing import Annotated

import typer
from pydantic import ValidationError

from leadsync.sandbox.settings import DEFAULT_TOKEN, SandboxConfig

_FAULTS = "Faults"
_LIMITS = "Limits"


class InvalidBatch(enum.StrEnum):
    """How a batch upsert with an invalid input is answered."""

    whole = "whole"
    per_input = "per-input"


def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one.")
    ] = 8089,
    token: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Accepted bearer token; repeat for several. Default: a single '{DEFAULT_TOKEN}'."
        ),
    ] = None,
    rate_limit: Annotated[
        str,
        typer.Option(
            help="Rolling limit per token, COUNT/WINDOW (e.g. 100/10s), or 'none'.",
            rich_help_panel=_LIMITS,
        ),
    ] = "190/10s",
    daily_limit: Annotated[
        int,
        typer.Option(
            help="Requests per day for the account; 0 means no daily limit.",
            rich_help_panel=_LIMITS,
        ),
    ] = 1_000_000,
    retry_after: Annotated[
        bool,
        typer.Option(help="Send Retry-After (seconds) on 429 answers.", rich_help_panel=_LIMITS),
    ] = True,
    search_rate_limit: Annotated[
        str, typer.Option(help="Search limit for the account, or 'none'.", rich_help_panel=_LIMITS)
    ] = "5/1s",
    fault_5xx: Annotated[
        float,
        typer.Option(help="Probability of an injected 500/502/503/504.", rich_help_panel=_FAULTS),
    ] = 0.0,
    fault_timeout: Annotated[
        float,
        typer.Option(
            help="Probability that a request hangs (see --hang-seconds).", rich_help_panel=_FAULTS
        ),
    ] = 0.0,
    fault_drop: Annotated[
        float,
        typer.Option(
            help="Probability that a request is applied, then its connection cut with no answer.",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    hang_seconds: Annotated[
        float,
        typer.Option(help="How long a hanging request is held open.", rich_help_panel=_FAULTS),
    ] = 120.0,
    latency_ms: Annotated[
        float,
        typer.Option(help="Latency added to every CRM request, in ms.", rich_help_panel=_FAULTS),
    ] = 0.0,
    search_lag_ms: Annotated[
        float, typer.Option(help="How long a new contact stays invisible to search, in ms.")
    ] = 0.0,
    invalid_batch: Annotated[
        InvalidBatch,
        typer.Option(help="A batch upsert with an invalid input: 'whole' 400, or 207 'per-input'."),
    ] = InvalidBatch.whole,
    reject_emails: Annotated[
        str | None, typer.Option(help="Regex; matching emails are refused with INVALID_EMAIL.")
    ] = None,
    extra_property: Annotated[
        list[str] | None,
        typer.Option(help="A custom contact property to accept (e.g. lead_source); repeatable."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed for the faults, so a run can be replayed.", rich_help_panel=_FAULTS
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve a local HubSpot CRM v3 contacts API with its limits and faults.

    Control API (no auth) under /_sandbox/: GET contacts, GET stats,
    POST reset, GET and PATCH config (option names with underscores).

    Test-only: POST /_sandbox/inject with
    {"status": 503, "json": {...}, "headers": {...}, "times": 1}
    ("content": "text" instead of "json" for a raw body) answers the next
    `times` CRM requests with that response, before auth, limits and
    faults, changing no contact. DELETE /_sandbox/inject drops the queue.
    """
    try:
        config = SandboxConfig(
            tokens=frozenset(token or [DEFAULT_TOKEN]),
            rate_limit=rate_limit,
            daily_limit=daily_limit or None,
            retry_after=retry_after,
            search_rate_limit=search_rate_limit,
            search_lag_ms=search_lag_ms,
            latency_ms=latency_ms,
            fault_5xx=fault_5xx,
            fault_timeout=fault_timeout,
            fault_drop=fault_drop,
            hang_seconds=hang_seconds,
            invalid_batch=invalid_batch.value,
            reject_emails=reject_emails,
            extra_properties=frozenset(extra_property or ()),
            seed=seed,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        typer.echo(f"invalid sandbox option: {problems}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"invalid sandbox option: {exc}", err=True)
        raise typer.Exit(2) from None
    # Imported here: every `leadsync` command registers this one, and only it serves.
    import uvicorn

    from leadsync.sandbox.app import create_sandbox_app
    from leadsync.sandbox.server import bind_socket, socket_url, uvicorn_config

    app = create_sandbox_app(config)
    try:
        sock = bind_socket(host=host, port=port)
    except OSError as exc:
        typer.echo(f"leadsync sandbox: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    url = socket_url(sock)
    tokens = ", ".join(sorted(config.tokens))
    # Printed before serving on purpose: the socket already listens, so the URL is usable.
    typer.echo(f"leadsync sandbox listening on {url}")
    typer.echo(f"  HUBSPOT_BASE_URL={url}")
    typer.echo(f"  accepted token(s): {tokens}")
    typer.echo(f"  rate limit {config.rate_limit or 'none'}, control API {url}/_sandbox/stats")
    uvicorn.Server(uvicorn_config(app, log_level=log_level)).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command to the leadsync CLI."""
    app.command("sandbox")(sandbox)
