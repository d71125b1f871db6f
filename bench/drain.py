"""Drain benchmark: a backlog of leads on PostgreSQL, drained to the sandbox by real workers.

Prints contacts/s and its ratio to the budget bound (limit x batch size / window), the 429s
received and the requests sent; then the engine ceiling with the sandbox unthrottled, with
CPU seconds per process and a profile summary of where the worker's time goes.

    python bench/drain.py                 # every scenario, writes bench/RESULTS.md
    python bench/drain.py --leads 5000 --only batch-1
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    insert_backlog,
    log,
    migrate,
    processes,
    sandbox,
    sandbox_stats,
    scratch_postgres,
    service_env,
    sync_rate,
    table,
    wait_drained,
    write_results,
)

LIMIT = "190/10s"
BOUND = {"batch": 190 * 100 / 10, "single": 190 / 10}
GOAL_RATIO = 0.9
CEILING_GOAL = 5000.0  # issue #11: one worker, sandbox unthrottled


@dataclass
class Outcome:
    """What one scenario measured."""

    name: str
    mode: str
    workers: int
    leads: int
    rate: float
    seconds: float
    requests: int
    throttled: int
    peak_10s: int
    cpu: dict[str, float]

    def ratio(self) -> float:
        return self.rate / BOUND[self.mode]


def _cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (every core; idle and I/O wait left out)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def run_scenario(
    *,
    name: str,
    mode: str,
    workers: int,
    leads: int,
    throttled: bool,
    profile_to: Path | None = None,
) -> Outcome:
    """Fill a scratch database, start the sandbox and the workers, time the drain."""
    sandbox_args = ["--rate-limit", LIMIT if throttled else "none"]
    budget = LIMIT if throttled else "1000000/10s"
    with scratch_postgres(name.replace("-", "_")) as url, sandbox(*sandbox_args) as hub:
        migrate(url)
        asyncio.run(insert_backlog(url, count=leads))
        env = service_env(
            url,
            HUBSPOT_BASE_URL=hub.url,
            HUBSPOT_TOKEN="sandbox-token",
            HUBSPOT_RATE_LIMIT=budget,
            HUBSPOT_WRITE_MODE=mode,
        )
        command = [LEADSYNC, "worker"]
        if profile_to is not None:
            command = [sys.executable, "-m", "cProfile", "-o", str(profile_to), *command]
        log(f"{name}: {leads} leads, {workers} worker(s), mode {mode}, budget {budget}")
        sandbox_proc = psutil.Process(hub.process.pid)
        sandbox_cpu = _cpu(sandbox_proc)
        machine_cpu = _machine_cpu()
        with processes([command] * workers, env=env) as procs:
            watched = [psutil.Process(p.pid) for p in procs]
            started = time.monotonic()
            asyncio.run(wait_drained(url, expected=leads, timeout=600 + leads / 5, label=name))
            wall = time.monotonic() - started
            cpu = {"workers": sum(_cpu(p) for p in watched)}
            # PostgreSQL's backends end with the workers: count the machine's CPU instead, while
            # they still run (everything but the workers and the sandbox: mostly PostgreSQL).
            cpu["machine"] = _machine_cpu() - machine_cpu
        cpu["sandbox"] = _cpu(sandbox_proc) - sandbox_cpu
        cpu["rest"] = max(0.0, cpu["machine"] - cpu["workers"] - cpu["sandbox"])
        rate, seconds, _synced = asyncio.run(sync_rate(url))
        stats = sandbox_stats(hub.url)
    endpoint = "batch_upsert" if mode == "batch" else "create"
    requests = sum(
        sum(counts.values())
        for key, counts in stats["requests"].items()
        if endpoint in key or (mode == "single" and "contacts" in key)
    )
    peaks = stats.get("max_requests_in_10s") or {}
    log(f"  {name}: {rate:,.0f} contacts/s over {seconds:.1f} s (wall {wall:.1f} s)")
    return Outcome(
        name=name,
        mode=mode,
        workers=workers,
        leads=leads,
        rate=rate,
        seconds=seconds,
        requests=requests or int(stats.get("total_requests", 0)),
        throttled=int(stats.get("rate_limited", 0)),
        peak_10s=max(peaks.values(), default=0),
        cpu=cpu,
    )


def profile_summary(path: Path, *, top: int = 12) -> str:
    """Summarise a cProfile file: own time by library, then the busiest functions."""
    stats = pstats.Stats(str(path))
    by_area: defaultdict[str, float] = defaultdict(float)
    areas = (
        ("sqlalchemy", "SQLAlchemy"),
        ("asyncpg", "asyncpg (PostgreSQL driver)"),
        ("httpx", "httpx/httpcore/h11 (HTTP)"),
        ("httpcore", "httpx/httpcore/h11 (HTTP)"),
        ("h11", "httpx/httpcore/h11 (HTTP)"),
        ("pydantic", "pydantic"),
        ("json", "json"),
        ("structlog", "structlog/logging"),
        ("logging", "structlog/logging"),
        ("prometheus", "prometheus_client"),
        ("leadsync", "leadsync"),
        ("asyncio", "asyncio event loop"),
        ("selectors", "asyncio event loop"),
    )
    total = 0.0
    rows = []
    for (filename, _line, func), (_cc, _nc, tottime, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        area = next((label for key, label in areas if key in filename), "other (C calls, I/O)")
        by_area[area] += tottime
        rows.append((tottime, f"{Path(filename).name}:{func}"))
    lines = ["| where | share of worker CPU |", "|---|---|"]
    for area, seconds in sorted(by_area.items(), key=lambda item: -item[1]):
        lines.append(f"| {area} | {seconds / total:.0%} |")
    lines += ["", "| function | own seconds |", "|---|---|"]
    for tottime, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"| `{name}` | {tottime:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="Backlog size (batch mode).")
    parser.add_argument(
        "--single-leads", type=int, default=600, help="Backlog size in single mode (~19/s)."
    )
    parser.add_argument(
        "--only",
        choices=["batch-1", "batch-3", "single-1", "ceiling"],
        action="append",
        help="Run only these scenarios (repeatable).",
    )
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    wanted = set(args.only or ["batch-1", "batch-3", "single-1", "ceiling"])
    outcomes: list[Outcome] = []
    if "batch-1" in wanted:
        outcomes.append(
            run_scenario(name="batch-1", mode="batch", workers=1, leads=args.leads, throttled=True)
        )
    if "batch-3" in wanted:
        outcomes.append(
            run_scenario(name="batch-3", mode="batch", workers=3, leads=args.leads, throttled=True)
        )
    if "single-1" in wanted:
        outcomes.append(
            run_scenario(
                name="single-1", mode="single", workers=1, leads=args.single_leads, throttled=True
            )
        )
    ceiling: Outcome | None = None
    profile = ""
    if "ceiling" in wanted:
        ceiling = run_scenario(
            name="ceiling", mode="batch", workers=1, leads=args.leads, throttled=False
        )
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "worker.prof"
            run_scenario(
                name="ceiling-profiled",
                mode="batch",
                workers=1,
                leads=min(args.leads, 10_000),
                throttled=False,
                profile_to=out,
            )
            profile = profile_summary(out) if out.exists() else "(no profile written)"

    rows = [
        (
            o.name,
            o.mode,
            o.workers,
            o.leads,
            f"{o.rate:,.0f}",
            f"{BOUND[o.mode]:,.0f}",
            f"{o.ratio():.2f}",
            o.requests,
            o.throttled,
            f"{o.throttled / max(o.requests, 1):.2%}",
            o.peak_10s,
        )
        for o in outcomes
    ]
    body = [
        f"Sandbox enforcing {LIMIT} per token; workers budgeted `HUBSPOT_RATE_LIMIT={LIMIT}`. "
        f"Goal: ratio >= {GOAL_RATIO} in batch mode with < 1% of requests answered 429.",
        "",
        table(
            [
                "scenario",
                "mode",
                "workers",
                "leads",
                "contacts/s",
                "bound/s",
                "ratio",
                "requests",
                "429s",
                "429 share",
                "busiest 10 s",
            ],
            rows,
        ),
    ]
    if ceiling is not None:
        body += [
            "",
            "### Engine ceiling (sandbox unthrottled)",
            "",
            f"One worker process: **{ceiling.rate:,.0f} contacts/s** "
            f"(goal {CEILING_GOAL:,.0f}, ratio {ceiling.rate / CEILING_GOAL:.2f}); "
            f"CPU seconds for {ceiling.leads} leads: worker {ceiling.cpu['workers']:.1f}, "
            f"sandbox {ceiling.cpu['sandbox']:.1f}, the rest of the machine (PostgreSQL, the "
            f"benchmark) {ceiling.cpu['rest']:.1f}, of {ceiling.seconds:.1f} s on "
            f"{psutil.cpu_count()} cores "
            f"({ceiling.cpu['workers'] / ceiling.leads * 1e6:.0f} us of worker CPU per lead).",
            "",
            "Where the worker's time goes (cProfile, own time):",
            "",
            profile,
        ]
    text = "\n".join(body)
    print("\n" + text)
    if not args.no_write:
        write_results("Drain (bench/drain.py)", text)


if __name__ == "__main__":
    main()
