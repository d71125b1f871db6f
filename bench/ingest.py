"""Ingest benchmark: POST /leads at rising concurrency on PostgreSQL and SQLite.

Each level runs wrk (installed from Debian's `wrk` package when missing) against
`leadsync serve --no-worker`, then against a baseline endpoint of the same stack that inserts
a bare row with no sync bookkeeping; prints throughput, p50/p99 latency and the ratio.

    python bench/ingest.py                       # both databases, writes bench/RESULTS.md
    python bench/ingest.py --db postgres --seconds 5 --concurrency 32
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    log,
    migrate,
    processes,
    require_tool,
    scratch_postgres,
    service_env,
    table,
    write_results,
)

HERE = Path(__file__).resolve().parent
LUA = """
counter = 0
request = function()
  counter = counter + 1
  local id = tostring(counter) .. "-" .. tostring(math.random(1, 1000000000))
  local body = '{"email":"lead' .. id .. '@bench.example","firstname":"Ana","lastname":"Garcia",'
    .. '"company":"Acme Coworking","phone":"+34 600 123 456","message":"Desk for 3",'
    .. '"source":"bench"}'
  return wrk.format("POST", PATH, {["Content-Type"] = "application/json"}, body)
end
"""
GOAL_RATE = 1000.0
GOAL_P99_MS = 50.0
GOAL_RATIO = 0.8


@dataclass
class Level:
    """wrk's figures for one endpoint at one concurrency."""

    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, *, timeout: float = 30.0) -> None:
    """Wait until a URL answers, with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[re.sub(r"^[\d.]+", "", text)]


def run_wrk(url: str, path: str, *, connections: int, seconds: int) -> Level:
    """Run wrk for `seconds` with `connections` open connections; parse its summary."""
    wrk = require_tool("wrk", "wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'PATH = "{path}"\n' + LUA)
    threads = max(1, min(2, connections))
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: "71.50%" ends a stdev column elsewhere in wrk's report.
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors:.*", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Level(rate=rate, p50_ms=p50, p99_ms=p99, errors=errors)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """Yield a fresh database URL of a kind."""
    if kind == "postgres":
        with scratch_postgres("ingest") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/ingest.db"


def bench_database(
    kind: str, *, levels: list[int], seconds: int, procs: int = 1
) -> list[tuple[object, ...]]:
    """Measure leadsync and the baseline on one database at every concurrency level."""
    rows: list[tuple[object, ...]] = []
    with database(kind) as url:
        migrate(url)
        api_port, base_port = free_port(), free_port()
        env = service_env(url)
        commands = [
            [LEADSYNC, "serve", "--no-worker", "--processes", str(procs), "--port", str(api_port)],
            [sys.executable, str(HERE / "baseline_app.py"), url, str(base_port), str(procs)],
        ]
        with processes(commands, env=env):
            wait_http(f"http://127.0.0.1:{api_port}/healthz")
            wait_http(f"http://127.0.0.1:{base_port}/docs")
            for connections in levels:
                ours = run_wrk(
                    f"http://127.0.0.1:{api_port}",
                    "/leads",
                    connections=connections,
                    seconds=seconds,
                )
                base = run_wrk(
                    f"http://127.0.0.1:{base_port}",
                    "/baseline",
                    connections=connections,
                    seconds=seconds,
                )
                ratio = ours.rate / base.rate if base.rate else 0.0
                log(
                    f"  {kind} x{procs} c={connections}: leadsync {ours.rate:,.0f}/s "
                    f"p50 {ours.p50_ms:.1f} ms p99 {ours.p99_ms:.1f} ms | baseline "
                    f"{base.rate:,.0f}/s p99 {base.p99_ms:.1f} ms | ratio {ratio:.2f}"
                )
                rows.append(
                    (
                        kind,
                        procs,
                        connections,
                        f"{ours.rate:,.0f}",
                        f"{ours.p50_ms:.1f}",
                        f"{ours.p99_ms:.1f}",
                        ours.errors,
                        f"{base.rate:,.0f}",
                        f"{base.p99_ms:.1f}",
                        f"{ratio:.2f}",
                    )
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], action="append")
    parser.add_argument("--concurrency", type=int, action="append", help="Repeatable.")
    parser.add_argument("--seconds", type=int, default=8, help="Duration of each level.")
    parser.add_argument(
        "--processes",
        type=int,
        action="append",
        help="API processes on PostgreSQL (repeatable; default 1 and 2; SQLite runs 1).",
    )
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    levels = args.concurrency or [1, 8, 32, 64]
    rows: list[tuple[object, ...]] = []
    for kind in args.db or ["postgres", "sqlite"]:
        for procs in (args.processes or [1, 2]) if kind == "postgres" else [1]:
            log(f"ingest on {kind}, {procs} process(es): {levels} connections, {args.seconds} s")
            rows += bench_database(kind, levels=levels, seconds=args.seconds, procs=procs)
    text = "\n".join(
        [
            "`POST /leads` on `leadsync serve --no-worker --processes N` driven by wrk, beside "
            "a baseline endpoint of the same stack (same process count) inserting a bare row. "
            f"Goal: >= {GOAL_RATE:,.0f} leads/s with p99 <= {GOAL_P99_MS:.0f} ms on "
            f"PostgreSQL, and >= {GOAL_RATIO} of the baseline's throughput.",
            "",
            table(
                [
                    "db",
                    "processes",
                    "connections",
                    "leads/s",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "baseline/s",
                    "baseline p99 ms",
                    "ratio",
                ],
                rows,
            ),
        ]
    )
    print("\n" + text)
    if not args.no_write:
        write_results("Ingest (bench/ingest.py)", text)


if __name__ == "__main__":
    main()
