"""Shared plumbing of the benchmarks: machine facts, scratch databases, processes, results."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.sandbox.server import SandboxProcess, sandbox_in_process
from leadsync.store import queue
from leadsync.store.bulk import LeadLoad, load_leads
from leadsync.store.db import create_engine, create_sessionmaker, transaction
from leadsync.store.tables import SyncStatus

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
LEADSYNC = str(Path(sys.executable).parent / "leadsync")
PG_ADMIN_URL = os.environ.get("LEADSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Scratch databases are named PREFIX_<name>_<pid>; another prefix keeps parallel runs apart.
DB_PREFIX = os.environ.get("LEADSYNC_BENCH_DB_PREFIX", "leadsync_bench")


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    # Turn SIGTERM into SystemExit so that `finally` blocks stop the processes we started.
    sys.exit(143)


signal.signal(signal.SIGTERM, _exit_on_sigterm)


def machine() -> str:
    """Describe the machine in one line: cores, memory, CPU model, Python."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gib = kib / 1024 / 1024
    return f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, {model}, Python {platform.python_version()}"


def log(message: str) -> None:
    """Print a progress line at once."""
    print(message, flush=True)


@contextlib.contextmanager
def scratch_postgres(name: str) -> Iterator[str]:
    """Create a throw-away PostgreSQL database; yield its URL; drop it afterwards."""
    database = f"{DB_PREFIX}_{name}_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{database}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def migrate(database_url: str) -> None:
    """Bring a database to the schema head with the real CLI."""
    subprocess.run(
        [LEADSYNC, "migrate"], env=service_env(database_url), check=True, capture_output=True
    )


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """Return the environment of a leadsync process for a benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "LEADSYNC_"))}
    env.update({"DATABASE_URL": database_url, "LEADSYNC_LOG_LEVEL": "WARNING", **extra})
    return env


@contextlib.asynccontextmanager
async def leads_store(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the benchmark's database, through leadsync's own store."""
    engine = create_engine(Settings(database_url=database_url).async_database_url, pool_size=2)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def insert_backlog(
    database_url: str,
    *,
    count: int,
    status: str = "PENDING",
    created_at: dt.datetime | None = None,
    tag: str | None = None,
) -> None:
    """Insert `count` leads quickly with COPY (unique emails, due now), through the store.

    `created_at`: their creation time (default now); `tag`: what makes their emails unique
    (default the status and the process id: give another one to load twice in one run)."""
    now = created_at or dt.datetime.now(dt.UTC)
    state = SyncStatus(status)
    synced = state is SyncStatus.SYNCED
    tag = tag or f"{status.lower()}{os.getpid()}"
    chunk = 50_000
    async with leads_store(database_url) as sessions:
        for start in range(0, count, chunk):
            loads = [
                LeadLoad(
                    fields={
                        "email": f"{tag}.{i}@bench.example",
                        "firstname": "Bench",
                        "lastname": f"Lead {i}",
                        "phone": "+34 600 000 000",
                    },
                    created_at=now,
                    status=state,
                    # Pre-filled history is stamped long ago so that rate windows ignore it.
                    synced_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC) if synced else None,
                    hubspot_id="1" if synced else None,
                )
                for i in range(start, min(count, start + chunk))
            ]
            async with transaction(sessions) as session:
                await load_leads(session, loads)
            if count > chunk:
                log(f"  loaded {min(count, start + chunk):,}/{count:,} {status} leads")
        # Committed: statistics written in a transaction that rolls back are lost, and the
        # planner then reads a 20,000-row backlog as ~100 rows (bitmap scan + sort per claim).
        async with transaction(sessions) as session:
            await session.execute(text("ANALYZE leads"))


async def count_status(database_url: str, status: str = "SYNCED") -> int:
    """Count leads in one sync status."""
    async with leads_store(database_url) as sessions, sessions() as session:
        return await queue.count_status(session, SyncStatus(status))


# How often wait_drained counts: each count scans the leads' status, so it must not take a
# measurable share of PostgreSQL from the drain (rates come from the rows' own timestamps).
POLL_SECONDS = 0.5


async def wait_drained(
    database_url: str, *, expected: int, timeout: float, label: str, status: str = "SYNCED"
) -> float:
    """Wait until `expected` leads are in `status`, printing progress; return the seconds."""
    started = time.monotonic()
    last_print = 0.0
    async with leads_store(database_url) as sessions:
        while True:
            async with sessions() as session:
                done = await queue.count_status(session, SyncStatus(status))
            elapsed = time.monotonic() - started
            if done >= expected:
                return elapsed
            if elapsed - last_print >= 2:
                log(f"  {label}: {done}/{expected} {status} after {elapsed:.0f} s")
                last_print = elapsed
            if elapsed > timeout:
                raise TimeoutError(
                    f"{label}: only {done}/{expected} {status} after {timeout:.0f} s"
                )
            await asyncio.sleep(POLL_SECONDS)


async def sync_rate(
    database_url: str, *, since: dt.datetime | None = None
) -> tuple[float, float, int]:
    """Return (contacts/s, seconds, synced) between the first and the last batch recorded.

    Outcomes are stamped when a batch's response is recorded, so the first batch's leads
    mark the start line and are left out of the count: what remains was synced in between.
    """
    async with leads_store(database_url) as sessions, sessions() as session:
        window = await queue.sync_window(
            session, since=since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        )
    if not window.synced or window.first is None or window.last is None:
        raise RuntimeError("no lead was synced")
    seconds = (window.last - window.first).total_seconds()
    rate = (window.synced - window.head) / seconds if seconds > 0 else float("inf")
    return rate, seconds, window.synced


@contextlib.contextmanager
def sandbox(*args: str) -> Iterator[SandboxProcess]:
    """Run the HubSpot sandbox in its own process."""
    with sandbox_in_process(args=["--daily-limit", "0", *args]) as running:
        yield running


def sandbox_stats(url: str) -> dict[str, Any]:
    """Return the sandbox's request statistics."""
    stats: dict[str, Any] = httpx.get(f"{url}/_sandbox/stats", timeout=10).json()
    return stats


@contextlib.contextmanager
def processes(commands: Sequence[Sequence[str]], *, env: dict[str, str]) -> Iterator[list[Any]]:
    """Start processes; SIGTERM (then SIGKILL) them on exit."""
    procs = [
        subprocess.Popen(list(cmd), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cmd in commands
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_results(section: str, body: str) -> None:
    """Replace (or add) one `## section` of bench/RESULTS.md, keeping the others."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if not text.startswith("# "):
        text = (
            "# Benchmark results\n\nEach section is rewritten by the benchmark that owns it "
            "(`make bench`, `make chaos`). Figures are as measured on the machine named in the "
            "section; timings on a shared machine are noisy, so compare the ratios measured "
            "within one run.\n"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"## {section}\n\nMeasured {stamp} on {machine()}.\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(block + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    )
    RESULTS.write_text(text.rstrip() + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def require_tool(name: str, debian_package: str) -> str:
    """Return the path of a tool, installing its Debian package when missing (as root)."""
    found = shutil.which(name)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {debian_package} for {name} ...")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", debian_package],
            check=False,
            capture_output=True,
        )
        found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is needed: apt-get install {debian_package}")
    return found
