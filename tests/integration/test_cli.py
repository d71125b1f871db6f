"""The `leadsync` command line, run as the installed console script (and in process for help)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

import leadsync
from leadsync.cli import app
from leadsync.store import migrations

LEADSYNC = Path(sys.executable).with_name("leadsync")
HEAD = migrations.head_revision()


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script with the (cleaned) test environment plus `env`."""
    return subprocess.run(
        [str(LEADSYNC), *args],
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def plain_url(async_url: str) -> str:
    """Return the URL an operator would write (no async driver) for an async test URL."""
    return async_url.replace("+aiosqlite", "").replace("+asyncpg", "")


def all_commands() -> list[list[str]]:
    """Return the path of every command and group, nested groups included."""
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        # Typer vendors its own click: recognise a group by its sub-commands, not its class.
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_console_script_is_installed() -> None:
    assert LEADSYNC.is_file(), f"{LEADSYNC} missing: run `make install`"


def test_version() -> None:
    result = run("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"leadsync {leadsync.__version__}\n"
    assert leadsync.__version__ != "0.0.0"  # the installed distribution's version


def test_root_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    for name in ("serve", "migrate"):
        assert name in result.output
    assert len(all_commands()) >= 3  # the root and at least serve and migrate


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "leadsync")
def test_help_of_every_command(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


def test_serve_help_documents_its_options() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--worker", "--no-worker"):
        assert option in result.output


async def test_migrate_twice_is_idempotent(engine: AsyncEngine, db_url: str) -> None:
    await migrations.downgrade(engine, revision="base")
    env = {"DATABASE_URL": plain_url(db_url)}

    first = run("migrate", **env)
    second = run("migrate", **env)

    assert first.returncode == 0, first.stderr
    assert first.stdout == f"schema upgraded from nothing to {HEAD}\n"
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"schema already at {HEAD}\n"
    assert await migrations.schema_revision(engine) == HEAD


def test_migrate_creates_a_new_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"

    result = run("migrate", DATABASE_URL=f"sqlite:///{database}")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"schema upgraded from nothing to {HEAD}\n"
    assert database.is_file()


def test_bad_environment_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run(
        "migrate",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        HUBSPOT_TOKEN="pat-eu1-never-printed",
        HUBSPOT_RATE_LIMIT="abc",
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "leadsync: invalid configuration: HUBSPOT_RATE_LIMIT: "
        "expected COUNT/WINDOW such as '190/10s', got 'abc'"
    ]
    assert "pat-eu1-never-printed" not in result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing was touched


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEADSYNC_BATCH_SIZE", "1000"),
        ("DATABASE_URL", "mysql://leadsync:db-secret-pw@db/leads"),
        ("LEADSYNC_INTERNAL_TOKEN", "short-secret"),
        ("HUBSPOT_TOKEN_FILE", "/nonexistent/token"),
    ],
)
def test_every_bad_value_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-eu1-never-printed")
    monkeypatch.setenv(variable, value)

    result = CliRunner().invoke(app, ["migrate"])

    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("leadsync: invalid configuration: ")
    assert f"{variable}: " in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for secret in ("pat-eu1-never-printed", "db-secret-pw", "short-secret"):
        assert secret not in result.output
    assert not (tmp_path / "x.db").exists()
