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
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    log,
    migrate,
    sandbox,
    sandbox_stats,
    scratch_postgres,
    service_env,
    table,
    write_results,
)
from ingest import free_port, wait_http

LIMIT_COUNT, LIMIT_WINDOW = 100, 10
REJECT = r"^reject-"


class Fleet:
    """The serve process and the workers, each logging to its own file."""

    def __init__(self, env: dict[str, str], logs: Path, *, port: int, workers: int) -> None:
        self.env = env
        self.logs = logs
        self.port = port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0
        self._starts = Counter[str]()
        self.start("serve", [LEADSYNC, "serve", "--port", str(port)])
        for index in range(workers):
            self.start(f"worker{index}", [LEADSYNC, "worker"])

    def start(self, name: str, command: list[str]) -> None:
        self._starts[name] += 1
        log_file = (self.logs / f"{name}.{self._starts[name]}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
        )

    def kill_one(self, rng: random.Random) -> str:
        """SIGKILL a random worker and start it again."""
        name = rng.choice([n for n in self.procs if n.startswith("worker")])
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()
        self.kills += 1
        self.start(name, [LEADSYNC, "worker"])
        return name

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def make_leads(count: int, rng: random.Random) -> list[dict[str, str]]:
    """Return the leads to submit: 5% repeat an earlier email in other casing, 2% rejected."""
    leads: list[dict[str, str]] = []
    for index in range(count):
        roll = rng.random()
        if roll < 0.02:
            email = f"reject-{index}@chaos.example"
        elif roll < 0.07 and leads:
            earlier = rng.choice(leads)["email"]
            email = earlier.upper() if earlier.islower() else earlier.lower()
        else:
            email = f"lead{index}.{rng.randrange(10**6)}@chaos.example"
        leads.append({"email": email, "firstname": f"Lead{index}", "company": "Chaos SL"})
    return leads


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


async def unfinished(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM leads WHERE hubspot_sync_status IN "
                "('PENDING','RETRYING','IN_PROGRESS')"
            )
        )
    finally:
        await conn.close()


async def rows(url: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(
            await conn.fetch(
                "SELECT id, email, hubspot_sync_status, hubspot_id, hubspot_error FROM leads"
            )
        )
    finally:
        await conn.close()


def check(
    *, accepted: dict[int, str], leads: list[Any], contacts: list[dict[str, Any]]
) -> dict[str, int]:
    """Count every violation of the guarantees."""
    by_id = {row["id"]: row for row in leads}
    per_email = Counter((c.get("properties") or {}).get("email", "").lower() for c in contacts)
    contact_of = {(c.get("properties") or {}).get("email", "").lower(): c["id"] for c in contacts}
    rejected = re.compile(REJECT)
    stats = {
        "leads lost": sum(1 for lead_id in accepted if lead_id not in by_id),
        "duplicate contacts": sum(n - 1 for n in per_email.values() if n > 1),
        "valid leads not SYNCED": 0,
        "hubspot_id not the email's contact": 0,
        "rejected leads not FAILED": 0,
        "leads left IN_PROGRESS": 0,
    }
    for row in leads:
        email = row["email"]
        status = row["hubspot_sync_status"]
        if status == "IN_PROGRESS":
            stats["leads left IN_PROGRESS"] += 1
        if rejected.match(email):
            stats["rejected leads not FAILED"] += status != "FAILED" or not row["hubspot_error"]
            continue
        if status != "SYNCED":
            stats["valid leads not SYNCED"] += 1
        elif row["hubspot_id"] != contact_of.get(email):
            stats["hubspot_id not the email's contact"] += 1
    return stats


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
    rng = random.Random(args.seed)
    token = f"pat-na1-chaos-{uuid.uuid4()}"
    leads = make_leads(args.leads, rng)
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
            REJECT,
            "--seed",
            str(args.seed),
        ) as hub,
    ):
        migrate(url)
        logs = args.logs or Path(logs_dir)
        logs.mkdir(parents=True, exist_ok=True)
        env = service_env(
            url,
            HUBSPOT_BASE_URL=hub.url,
            HUBSPOT_TOKEN=token,
            HUBSPOT_RATE_LIMIT="90/10s",
            HUBSPOT_READ_TIMEOUT_SECONDS="2",
            HUBSPOT_TOTAL_TIMEOUT_SECONDS="5",
            LEADSYNC_LEASE_SECONDS="10",
            LEADSYNC_RETRY_BASE_SECONDS="0.5",
            LEADSYNC_RETRY_CAP_SECONDS="8",
            LEADSYNC_MAX_ATTEMPTS="30",
            LEADSYNC_LOG_LEVEL="INFO",
            LEADSYNC_LOG_FORMAT="json",
        )
        port = free_port()
        fleet = Fleet(env, logs, port=port, workers=args.workers)
        try:
            api = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{api}/readyz", timeout=60)
            except TimeoutError:
                for path in sorted(logs.iterdir()):
                    log(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
                raise
            log(
                f"chaos: {args.leads} leads at {args.rate:g}/s, a worker killed every "
                f"{args.kill_every:g} s"
            )

            async def drive() -> dict[int, str]:
                task = asyncio.create_task(submit(api, leads, rate=args.rate))
                while not task.done():
                    await asyncio.wait({task}, timeout=args.kill_every)
                    if not task.done():
                        log(f"  killed {fleet.kill_one(rng)} (SIGKILL), restarted it")
                return task.result()

            accepted = asyncio.run(drive())
            log(f"  {len(accepted)} leads accepted; killing on while the queue drains")
            deadline = time.monotonic() + 900
            next_kill = time.monotonic() + args.kill_every
            while (left := asyncio.run(unfinished(url))) > 0:
                if time.monotonic() > deadline:
                    log(f"  gave up with {left} unfinished leads")
                    break
                if time.monotonic() >= next_kill and left > 200:
                    log(f"  {left} unfinished; killed {fleet.kill_one(rng)}")
                    next_kill = time.monotonic() + args.kill_every
                time.sleep(0.5)
        finally:
            fleet.stop()
        contacts_json = httpx.get(f"{hub.url}/_sandbox/contacts", timeout=60).json()
        contacts = contacts_json["results"]
        stats = sandbox_stats(hub.url)
        violations = check(accepted=accepted, leads=asyncio.run(rows(url)), contacts=contacts)
        token_hits = sum(path.read_bytes().count(token.encode()) for path in logs.iterdir())
        log_lines = sum(path.read_bytes().count(b"\n") for path in logs.iterdir())
    violations["token occurrences in logs"] = token_hits
    # The sandbox counts only the requests it accepted, so this can reach but never pass the
    # limit; the 429s it had to serve are what tell whether the shared budget held.
    busiest = max((stats.get("max_requests_in_10s") or {}).values(), default=0)
    elapsed = time.monotonic() - started
    faults = stats.get("faults", {})
    summary = [
        ("leads submitted / accepted", f"{len(leads)} / {len(accepted)}"),
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
