"""`python -m leadsync.sandbox`: the sandbox command without the rest of the CLI."""

from __future__ import annotations

import typer

from leadsync.sandbox.command import register

app = typer.Typer(add_completion=False)
register(app)

if __name__ == "__main__":
    app()
