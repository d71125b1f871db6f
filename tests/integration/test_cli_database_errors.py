"""Every command, given a database it cannot use, prints one line saying what and what to do.

Run as the operator runs them (the console script in a subprocess): exit code 1, one line on
stderr, no traceback (unless LEADSYNC_LOG_LEVEL=DEBUG), never the password.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.store import migrations

LEADSYNC = str(Path(sys.executable).with_name("leadsync"))
PASSWORD = "s3cret-never-shown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def leadsync(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSYNC_", "HUBSPOT_"))}
    return subprocess.run(
        [LEADSYNC, *args],
        env={**clean, "NO_COLOR": "1", "HUBSPOT_TOKEN": "pat-test", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class _FakePostgres(socketserver.BaseRequestHandler):
    """Answers a connection attempt the way PostgreSQL refuses it: one ErrorResponse."""

    sqlstate = "28P01"
    message = "password authentication failed"

    def handle(self) -> None:
        sock = self.request
        length, code = struct.unpack("!ii", sock.recv(8))
        if code == 80877103:  # SSLRequest: no TLS here, then the real startup message
            sock.sendall(b"N")
            length = struct.unpack("!i", sock.recv(4))[0]
            sock.recv(length - 4)
        else:
            sock.recv(length - 8)
        fields = b"".join(
            kind + value.encode() + b"\0"
            for kind, value in [(b"S", "FATAL"), (b"V", "FATAL"), (b"C", self.sqlstate),
                                (b"M", self.message)]
        ) + b"\0"  # fmt: skip
        sock.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)


@pytest.fixture
def wrong_password_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _FakePostgres)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def pg_url(port: int, database: str = "leadsync") -> str:
    return f"postgresql://leadsync:{PASSWORD}@127.0.0.1:{port}/{database}"


COMMANDS = [["status"], ["resync-failed"], ["migrate"], ["worker"], ["serve", "--port", "8999"]]


def assert_one_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [f"leadsync: {line}"]
    assert "Traceback" not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_refused_connection(command: list[str]) -> None:
    port = free_port()  # nothing listens there

    result = leadsync(*command, DATABASE_URL=pg_url(port))

    assert_one_line(
        result,
        f"check DATABASE_URL: 127.0.0.1:{port} refused the connection (is the server running?)",
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_wrong_password(command: list[str], wrong_password_server: int) -> None:
    result = leadsync(*command, DATABASE_URL=pg_url(wrong_password_server))

    assert_one_line(
        result,
        f"check DATABASE_URL: 127.0.0.1:{wrong_password_server} refused the password of user "
        "'leadsync'",
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_unresolvable_host(command: list[str]) -> None:
    url = f"postgresql://leadsync:{PASSWORD}@db.leadsync.invalid:5432/leadsync"

    result = leadsync(*command, DATABASE_URL=url)

    assert_one_line(result, "check DATABASE_URL: cannot resolve the host 'db.leadsync.invalid'")


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_missing_postgres_database(command: list[str]) -> None:
    base = os.environ["LEADSYNC_TEST_DATABASE_URL"].rsplit("/", 1)[0]
    url = f"{base}/leadsync_no_such_database"

    result = leadsync(*command, DATABASE_URL=url)

    host_port = base.rsplit("@", 1)[-1]
    host, port = host_port.split(":")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"leadsync: the database 'leadsync_no_such_database' does not exist on {host_port}: "
        f"create it (createdb -h {host} -p {port} -U postgres leadsync_no_such_database) or "
        "check DATABASE_URL"
    ]


@pytest.mark.parametrize("command", [["status"], ["resync-failed"]], ids=lambda c: c[0])
async def test_an_unmigrated_database(command: list[str], engine: AsyncEngine, db_url: str) -> None:
    await migrations.downgrade(engine, revision="base")  # the fixture migrates the next test
    plain = db_url.replace("+aiosqlite", "").replace("+asyncpg", "")

    result = leadsync(*command, DATABASE_URL=plain)

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("leadsync: the database at ")
    assert line.endswith(" has no leadsync schema: run `leadsync migrate`")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["status"], ["resync-failed"]], ids=lambda c: c[0])
def test_a_missing_sqlite_file_is_not_created(command: list[str], tmp_path: Path) -> None:
    database = tmp_path / "nothing-here.db"

    result = leadsync(*command, DATABASE_URL=f"sqlite:///{database}")

    assert_one_line(
        result,
        f"there is no database at {database}: run `leadsync migrate` first, or check DATABASE_URL",
    )
    assert not database.exists()


@pytest.mark.parametrize("command", [["migrate"], ["worker"], ["serve", "--port", "8999"]])
def test_a_sqlite_file_in_a_missing_directory(command: list[str], tmp_path: Path) -> None:
    database = tmp_path / "no-such-dir" / "leadsync.db"

    result = leadsync(*command, DATABASE_URL=f"sqlite:///{database}")

    assert_one_line(
        result,
        f"check DATABASE_URL: cannot open the SQLite database {database} (does its directory "
        "exist, and may leadsync write there?)",
    )


def test_debug_shows_the_traceback_then_the_line() -> None:
    port = free_port()

    result = leadsync("status", DATABASE_URL=pg_url(port), LEADSYNC_LOG_LEVEL="DEBUG")

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConnectionRefusedError" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"leadsync: check DATABASE_URL: 127.0.0.1:{port} refused the connection (is the server "
        "running?)"
    )


# --- serve and worker say at start that no HubSpot token is configured ------------------------

WARNING = (
    "leadsync: warning: no HubSpot token (set HUBSPOT_TOKEN or HUBSPOT_TOKEN_FILE): leads are "
    "stored but none reaches HubSpot until one is set"
)


def _run_until_started(args: list[str], database: Path, *, token: bool) -> list[str]:
    """Start the command, read its output until it is up, stop it; return every line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSYNC_", "HUBSPOT_"))}
    env = {**clean, "NO_COLOR": "1", "DATABASE_URL": f"sqlite:///{database}"}
    if token:
        env["HUBSPOT_TOKEN"] = "pat-test"
    marker = "sync.worker.started" if args[0] == "worker" else "API docs at"
    process = subprocess.Popen(
        [LEADSYNC, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:  # bounded by the test's timeout
            lines.append(line.rstrip("\n"))
            if marker in line:
                break
        else:
            pytest.fail(f"{args} ended before it started: {lines}")
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    return lines + rest.splitlines()


@pytest.mark.parametrize("args", [["worker"], ["serve"]], ids=lambda a: a[0])
def test_serve_and_worker_warn_once_at_start_without_a_token(
    args: list[str], tmp_path: Path
) -> None:
    command = [*args, "--port", str(free_port())] if args[0] == "serve" else args

    lines = _run_until_started(command, tmp_path / "leadsync.db", token=False)

    assert lines.count(WARNING) == 1
    assert not any("HubSpot token" in line for line in lines if line != WARNING)


@pytest.mark.parametrize(
    ("args", "token"),
    [(["worker"], True), (["serve"], True), (["serve", "--no-worker"], False)],
    ids=["worker with a token", "serve with a token", "serve --no-worker"],
)
def test_no_warning_with_a_token_or_without_a_worker(
    args: list[str], token: bool, tmp_path: Path
) -> None:
    command = [*args, "--port", str(free_port())] if args[0] == "serve" else args

    lines = _run_until_started(command, tmp_path / "leadsync.db", token=token)

    assert not any("HubSpot token" in line for line in lines)
