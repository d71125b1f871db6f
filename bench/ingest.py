"""Ingest benchmark: POST /leads on leadsync beside a raw ceiling app, PostgreSQL and SQLite.

On PostgreSQL each row runs wrk (one thread; installed from Debian's `wrk` package when
missing) against `leadsync serve --no-worker --processes N`, and against bench/ceiling_app.py
with N uvicorn workers: FastAPI + pydantic + asyncpg doing the same INSERT .. RETURNING id
and NOTIFY into the same `leads` table, one transaction per request. Both servers run side by
side on one scratch database and take turns at each level (the order alternates), after a
short warm-up each. A row prints both apps' leads/s, p50 and p99 and the ratios
leadsync/ceiling, and checks the goal: throughput ratio >= 0.8 and, at 8 connections, p99 at
most 2x the ceiling's. A miss is printed (MISS); the exit status stays 0.

SQLite is measured for leadsync alone (1 process), for its figures: it has no goal.

The ceiling replaces the former baseline (the same SQLAlchemy stack inserting a bare row
into another table, without index nor NOTIFY): that did less database work than leadsync, so
its ratio mixed stack and database costs; the ceiling does the same database work with the
thinnest stack, and the profile (bench/intake_profile.py) says where leadsync's extra goes.

Every request posts the same realistic 7-field lead (distinct emails are not needed: no
unique index on email, no idempotency key).

    python bench/ingest.py                       # both databases, writes bench/RESULTS.md
    python bench/ingest.py --db postgres --seconds 5 --concurrency 32 --processes 1
    python bench/ingest.py --rounds 3            # on a busy machine: medians of 3 turns
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
BODY = (
    '{"email":"ana.garcia@bench.example","firstname":"Ana","lastname":"Garcia",'
    '"phone":"+34 600 123 456","company":"Acme Coworking SL",'
    '"message":"We are 6 people looking for desks from January.",'
    '"source":"website-contact-form"}'
)
# A fixed body; done() prints wrk's exact figures in one line (microseconds), easier to read
# than its rounded human report.
LUA = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{BODY}'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""
GOAL_RATIO = 0.8  # leadsync's leads/s over the ceiling's, at every level
GOAL_P99_RATIO = 2.0  # leadsync's p99 over the ceiling's, at P99_CONNECTIONS
P99_CONNECTIONS = 8


@dataclass(frozen=True)
class Level:
    """wrk's figures for one endpoint at one concurrency."""

    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Row:
    """One database, process count and concurrency: leadsync and (on PostgreSQL) the ceiling."""

    db: str
    procs: int
    connections: int
    ours: Level
    ceiling: Level | None

    @property
    def ratio(self) -> float | None:
        """leadsync's throughput over the ceiling's."""
        if self.ceiling is None:
            return None
        return self.ours.rate / self.ceiling.rate if self.ceiling.rate else 0.0

    @property
    def p99_ratio(self) -> float | None:
        """leadsync's p99 over the ceiling's."""
        if self.ceiling is None:
            return None
        return self.ours.p99_ms / self.ceiling.p99_ms if self.ceiling.p99_ms else float("inf")

    def misses(self) -> list[str]:
        """Return why the row misses the goal (empty: it meets it)."""
        if self.ratio is None or self.p99_ratio is None:
            return []
        found = []
        if self.ratio < GOAL_RATIO:
            found.append(f"throughput {self.ratio:.2f} < {GOAL_RATIO}")
        if self.connections == P99_CONNECTIONS and self.p99_ratio > GOAL_P99_RATIO:
            found.append(f"p99 {self.p99_ratio:.3f}x > {GOAL_P99_RATIO:.0f}x")
        if self.ours.errors:
            found.append(f"{self.ours.errors} errors")
        return found

    def verdict(self) -> str:
        """PASS, MISS (why), or a dash when there is no goal."""
        if self.ceiling is None:
            return "-"
        misses = self.misses()
        return f"MISS ({'; '.join(misses)})" if misses else "PASS"

    def cells(self) -> list[object]:
        """The row of the Markdown table."""
        dash = "-"
        ceiling = self.ceiling
        return [
            self.db,
            self.procs,
            self.connections,
            f"{self.ours.rate:,.0f}",
            f"{self.ours.p50_ms:.1f}",
            f"{self.ours.p99_ms:.1f}",
            f"{ceiling.rate:,.0f}" if ceiling else dash,
            f"{ceiling.p50_ms:.1f}" if ceiling else dash,
            f"{ceiling.p99_ms:.1f}" if ceiling else dash,
            f"{self.ratio:.2f}" if self.ratio is not None else dash,
            f"{self.p99_ratio:.2f}" if self.p99_ratio is not None else dash,
            f"{self.ours.errors}/{ceiling.errors}" if ceiling else str(self.ours.errors),
            self.verdict(),
        ]


HEADERS = [
    "db",
    "processes",
    "connections",
    "leads/s",
    "p50 ms",
    "p99 ms",
    "ceiling/s",
    "ceiling p50 ms",
    "ceiling p99 ms",
    "ratio",
    "p99 ratio",
    "errors",
    "goal",
]


def load_note() -> str:
    """Say how busy the machine was before the run (warn when others use its cores)."""
    load = os.getloadavg()[0]
    if load > 1.0:
        log(f"warning: 1-minute load average {load:.1f} before the run: figures will be noisy")
    return f"1-minute load average before the run: {load:.1f}."


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, procs: Sequence[Any] = (), *, timeout: float = 60.0) -> None:
    """Wait until a URL answers, with a deadline; fail at once if a server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        for proc in procs:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}:\n{err}")
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def run_wrk(url: str, *, connections: int, seconds: int) -> Level:
    """POST the lead for `seconds` over `connections` connections, one wrk thread."""
    wrk = require_tool("wrk", "wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        done = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        Path(script.name).unlink()
    if done.returncode:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    requests, duration_us, p50_us, p99_us, errors = (int(n) for n in line.split()[1:])
    return Level(
        rate=requests / (duration_us / 1e6),
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
        errors=errors,
    )


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """Yield a fresh database URL of a kind, migrated to head by leadsync."""
    if kind == "postgres":
        with scratch_postgres("ingest") as url:
            migrate(url)
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/ingest.db"
            migrate(url)
            yield url


def median_level(levels: Sequence[Level]) -> Level:
    """Each figure's median over rounds; errors are summed."""
    return Level(
        rate=statistics.median(level.rate for level in levels),
        p50_ms=statistics.median(level.p50_ms for level in levels),
        p99_ms=statistics.median(level.p99_ms for level in levels),
        errors=sum(level.errors for level in levels),
    )


def describe(level: Level) -> str:
    """One progress fragment."""
    errors = f" ({level.errors} errors)" if level.errors else ""
    return f"{level.rate:,.0f}/s p50 {level.p50_ms:.1f} ms p99 {level.p99_ms:.1f} ms{errors}"


def bench_database(
    kind: str, *, levels: list[int], seconds: int, warmup: int, rounds: int = 1, procs: int = 1
) -> list[Row]:
    """Measure leadsync (and on PostgreSQL the ceiling) on one database at every level."""
    rows: list[Row] = []
    with database(kind) as url:
        ours_port, ceiling_port = free_port(), free_port()
        commands = [
            [LEADSYNC, "serve", "--no-worker", "--processes", str(procs), "--port", str(ours_port)]
        ]
        targets = {"leadsync": f"http://127.0.0.1:{ours_port}"}
        if kind == "postgres":
            commands.append(
                [sys.executable, str(HERE / "ceiling_app.py"), url, str(ceiling_port), str(procs)]
            )
            targets["ceiling"] = f"http://127.0.0.1:{ceiling_port}"
        log(f"  starting {', '.join(targets)} ({procs} process(es) each)")
        with processes(commands, env=service_env(url)) as running:
            for base in targets.values():
                wait_http(f"{base}/healthz", running)
            for name, base in targets.items():
                log(f"  warming up {name} for {warmup} s")
                run_wrk(f"{base}/leads", connections=P99_CONNECTIONS, seconds=warmup)
            for index, connections in enumerate(levels):
                runs: dict[str, list[Level]] = {name: [] for name in targets}
                for turn in range(rounds):
                    # Take turns, the order alternating, so that a slow spell of a shared
                    # machine does not always fall on the same app.
                    order = list(targets) if (index + turn) % 2 == 0 else list(reversed(targets))
                    for name in order:
                        log(
                            f"  {kind} x{procs} c={connections}"
                            f"{f' round {turn + 1}/{rounds}' if rounds > 1 else ''}: "
                            f"{name} for {seconds} s ..."
                        )
                        level = run_wrk(
                            f"{targets[name]}/leads", connections=connections, seconds=seconds
                        )
                        runs[name].append(level)
                        log(f"    {name}: {describe(level)}")
                measured = {name: median_level(levels_) for name, levels_ in runs.items()}
                row = Row(kind, procs, connections, measured["leadsync"], measured.get("ceiling"))
                if row.ratio is not None:
                    log(
                        f"    ratio {row.ratio:.2f}, p99 ratio {row.p99_ratio:.2f}: {row.verdict()}"
                    )
                rows.append(row)
    return rows


def summary(rows: Sequence[Row]) -> str:
    """The lines under the table: the p99 ratio at 8 connections and the rows that pass."""
    goal_rows = [row for row in rows if row.ceiling is not None]
    lines = []
    at_p99 = [row for row in goal_rows if row.connections == P99_CONNECTIONS]
    if at_p99:
        figures = ", ".join(f"{row.procs} process(es) {row.p99_ratio:.2f}" for row in at_p99)
        lines.append(
            f"p99 ratio at {P99_CONNECTIONS} connections: {figures} (goal <= {GOAL_P99_RATIO:.0f})."
        )
    if goal_rows:
        passed = sum(not row.misses() for row in goal_rows)
        lines.append(f"Rows meeting the goal: {passed} of {len(goal_rows)}.")
    return "\n".join(f"- {line}" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Never exits non-zero for a missed goal; the table says PASS or MISS per row.",
    )
    parser.add_argument(
        "--db", choices=["postgres", "sqlite"], action="append", help="Repeatable; default both."
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        action="append",
        help="wrk connections (repeatable; default 8 and 32).",
    )
    parser.add_argument("--seconds", type=int, default=10, help="Duration of each run.")
    parser.add_argument(
        "--warmup", type=int, default=2, help="Unmeasured seconds per server before the runs."
    )
    parser.add_argument(
        "--processes",
        type=int,
        action="append",
        help="Server processes on PostgreSQL (repeatable; default 1 and 2; SQLite runs 1).",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="Runs per app and level, taking turns; the table shows each figure's median.",
    )
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    levels = args.concurrency or [8, 32]
    before = load_note()
    rows: list[Row] = []
    for kind in args.db or ["postgres", "sqlite"]:
        for procs in (args.processes or [1, 2]) if kind == "postgres" else [1]:
            log(f"ingest on {kind}, {procs} process(es): {levels} connections, {args.seconds} s")
            rows += bench_database(
                kind,
                levels=levels,
                seconds=args.seconds,
                warmup=args.warmup,
                rounds=args.rounds,
                procs=procs,
            )
    text = "\n".join(
        [
            "`POST /leads` (one 7-field lead, the same body every time) driven by wrk (1 thread, "
            f"{args.seconds} s per run"
            f"{f', median of {args.rounds} rounds' if args.rounds > 1 else ''}) on "
            "`leadsync serve --no-worker --processes N`, and on "
            "PostgreSQL beside bench/ceiling_app.py with N uvicorn workers (FastAPI + pydantic "
            "+ asyncpg: the same INSERT and NOTIFY into the same `leads` table, one transaction "
            "per request). Ratios are leadsync/ceiling, measured in turn in the same run. "
            f"Goal on PostgreSQL: ratio >= {GOAL_RATIO} at every row, and p99 ratio <= "
            f"{GOAL_P99_RATIO:.0f} at {P99_CONNECTIONS} connections. SQLite: figures only.",
            "",
            table(HEADERS, [row.cells() for row in rows]),
            "",
            summary(rows),
            f"- {before}",
        ]
    )
    print("\n" + text)
    if not args.no_write:
        write_results("Ingest (bench/ingest.py)", text)


if __name__ == "__main__":
    main()
