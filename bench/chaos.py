"""Chaos test: faults everywhere, workers killed at random; then every guarantee is checked.

PostgreSQL, `leadsync serve` plus 3 `leadsync worker` processes; leads arrive through the API
while it runs (5% repeat an earlier email in other casing, 2% are rejected by HubSpot); the
sandbox injects 5xx, timeouts and apply-then-drop under a 100/10s limit; every few seconds a
random worker is killed with SIGKILL and restarted. Exit code 1 on any violation.

    python bench/chaos.py               # 20,000 leads
    python bench/chaos.py --ci          # the 2-minute variant CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import async_database_url
from leadsync.demo.kit import (
    CHECKS,
    REJECT_REGEX,
    Fleet,
    LeadDetail,
    audit,
    count_by_status,
    lead_mix,
    leadsync_env,
    read_contacts,
    read_leads_from_db,
    unfinished,
)
from leadsync.store.db import create_engine, create_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, migrate, sandbox, sandbox_stats, scratch_postgres, table, write_results
from ingest import free_port, wait_http

LIMIT_COUNT, LIMIT_WINDOW = 100, 10
# leadsync's settings in every process: a budget under the sandbox's limit, timeouts short
# enough to turn its 30 s hangs into retries, a lease that a killed worker's leads wait out
# (10 s), and attempts enough to ride out the faults.
SETTINGS: dict[str, object] = {
    "hubspot_rate_limit": "90/10s",
    "hubspot_read_timeout_seconds": 2,
    "hubspot_total_timeout_seconds": 5,
    "lease_seconds": 10,
    "retry_base_seconds": 0.5,
    "retry_cap_seconds": 8,
    "max_attempts": 30,
    "log_level": "INFO",
}


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the scratch database, for this event loop."""
    engine = create_engine(async_database_url(url), pool_size=2)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def kill_one(fleet: Fleet, rng: random.Random) -> str:
    """SIGKILL a random worker and start it again."""
    name = rng.choice(fleet.names(prefix="worker"))
    fleet.restart(name)
    return name


async def submit(api: str, leads: list[dict[str, str]], *, rate: float) -> dict[int, str]:
    """POST every lead at about `rate`/s; return lead id -> email of every 201."""
    accepted: dict[int, str] = {}
    limiter = asyncio.Semaphore(32)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:

        async def one(index: int, lead: dict[str, str]) -> None:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with limiter:
                for _ in range(5):  # the API process may be busy; never lose a submission
                    try:
                        reply = await client.post("/leads", json=lead)
                    except httpx.HTTPError:
                        continue
                    if reply.status_code == 201:
                        accepted[int(reply.json()["id"])] = lead["email"].lower()
                    return

        await asyncio.gather(*(one(i, lead) for i, lead in enumerate(leads)))
    return accepted


async def drive(
    api: str, url: str, fleet: Fleet, leads: list[dict[str, str]], args: argparse.Namespace
) -> dict[int, str]:
    """Submit the leads while killing workers, then kill on while the queue drains."""
    rng = random.Random(args.seed)
    task = asyncio.create_task(submit(api, leads, rate=args.rate))
    while not task.done():
        await asyncio.wait({task}, timeout=args.kill_every)
        if not task.done():
            log(f"  killed {kill_one(fleet, rng)} (SIGKILL), restarted it")
    accepted = task.result()
    log(f"  {len(accepted)} leads accepted; killing on while the queue drains")
    deadline = time.monotonic() + 900
    next_kill = time.monotonic() + args.kill_every
    async with database(url) as sessions:
        while (left := unfinished(await count_by_status(sessions))) > 0:
            if time.monotonic() > deadline:
                log(f"  gave up with {left} unfinished leads")
                break
            if time.monotonic() >= next_kill and left > 200:
                log(f"  {left} unfinished; killed {kill_one(fleet, rng)}")
                next_kill = time.monotonic() + args.kill_every
            await asyncio.sleep(0.5)
    return accepted


async def end_state(url: str, sandbox_url: str) -> tuple[list[LeadDetail], list[dict[str, Any]]]:
    """Read every lead and every contact, once the processes have stopped."""
    async with database(url) as sessions:
        return await read_leads_from_db(sessions), await read_contacts(sandbox_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=250.0, help="Leads submitted per second.")
    parser.add_argument("--kill-every", type=float, default=4.0, help="Seconds between kills.")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ci", action="store_true", help="The 2-minute variant: 3,000 leads.")
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    parser.add_argument("--logs", type=Path, help="Keep the processes' logs in this folder.")
    args = parser.parse_args()
    if args.ci:
        args.leads, args.rate = 3_000, 100.0
    token = f"pat-na1-chaos-{uuid.uuid4()}"
    mix = lead_mix(args.leads, seed=args.seed)
    started = time.monotonic()
    with (
        scratch_postgres("chaos") as url,
        tempfile.TemporaryDirectory() as logs_dir,
        sandbox(
            "--token",
            token,
            "--rate-limit",
            f"{LIMIT_COUNT}/{LIMIT_WINDOW}s",
            "--fault-5xx",
            "0.10",
            "--fault-timeout",
            "0.05",
            "--fault-drop",
            "0.03",
            "--hang-seconds",
            "30",
            "--reject-emails",
            REJECT_REGEX,
            "--seed",
            str(args.seed),
        ) as hub,
    ):
        migrate(url)
        logs = args.logs or Path(logs_dir)
        logs.mkdir(parents=True, exist_ok=True)
        env = leadsync_env(
            database_url=url, hubspot_base_url=hub.url, hubspot_token=token, **SETTINGS
        )
        port = free_port()
        fleet = Fleet(logs)
        try:
            fleet.start("serve", env, "serve", "--port", str(port))
            for index in range(args.workers):
                fleet.start(f"worker{index}", env, "worker")
            api = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{api}/readyz", timeout=60)
            except TimeoutError:
                for path in fleet.log_paths():
                    log(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
                raise
            log(
                f"chaos: {args.leads} leads at {args.rate:g}/s, a worker killed every "
                f"{args.kill_every:g} s"
            )
            accepted = asyncio.run(drive(api, url, fleet, mix.bodies, args))
        finally:
            fleet.stop(timeout=30)
        leads, contacts = asyncio.run(end_state(url, hub.url))
        stats = sandbox_stats(hub.url)
        # Every stored lead must end as HubSpot decides (one contact per email, or FAILED
        # when refused), and every accepted one must be stored.
        found = audit(leads, contacts, rejected=mix.rejected_emails, accepted_ids=accepted)
        violations = {CHECKS[name]: count for name, count in found.violations().items()}
        token_hits = sum(path.read_bytes().count(token.encode()) for path in fleet.log_paths())
        log_lines = sum(path.read_bytes().count(b"\n") for path in fleet.log_paths())
        for problem in found.problems:
            log(f"  VIOLATED: {problem}")
    violations["token occurrences in logs"] = token_hits
    # The sandbox counts only the requests it accepted, so this can reach but never pass the
    # limit; the 429s it had to serve are what tell whether the shared budget held.
    busiest = max((stats.get("max_requests_in_10s") or {}).values(), default=0)
    elapsed = time.monotonic() - started
    faults = stats.get("faults", {})
    summary = [
        ("leads submitted / accepted", f"{len(mix.bodies)} / {len(accepted)}"),
        ("contacts in the sandbox", len(contacts)),
        ("workers killed (SIGKILL)", fleet.kills),
        (
            "faults injected (5xx / timeout / drop)",
            "{} / {} / {}".format(
                faults.get("5xx", 0), faults.get("timeout", 0), faults.get("drop", 0)
            ),
        ),
        ("429s served", stats.get("rate_limited", 0)),
        ("busiest 10 s window / limit", f"{busiest} / {LIMIT_COUNT}"),
        ("log lines scanned", log_lines),
        ("wall time", f"{elapsed:.0f} s"),
    ]
    checks = [
        (name, count, "ok" if count == 0 else "VIOLATED") for name, count in violations.items()
    ]
    text = "\n".join(
        [
            f"{'CI variant' if args.ci else 'Full run'}: {args.leads} leads, {args.workers} "
            f"workers + serve on PostgreSQL, sandbox 10% 5xx / 5% timeouts / 3% apply-then-drop "
            f"at {LIMIT_COUNT}/{LIMIT_WINDOW}s.",
            "",
            table(["run", "value"], summary),
            "",
            table(["check", "count", "verdict"], checks),
        ]
    )
    print("\n" + text)
    if not args.no_write and not args.ci:
        write_results("Chaos (bench/chaos.py)", text)
    if any(violations.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
