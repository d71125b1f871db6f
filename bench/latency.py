"""Latency benchmark: time from the `POST /leads` response to the contact existing in HubSpot.

Leads arrive at a steady rate (default 20/s) at `leadsync serve` (API + in-process worker) on
PostgreSQL; the sandbox stamps each contact's `createdAt` when it applies the write. Printed:
p50/p95/p99 with after-commit wake-ups on, then with wake-ups off (polling only) for contrast.

    python bench/latency.py
    python bench/latency.py --rate 20 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    count_status,
    log,
    migrate,
    processes,
    sandbox,
    scratch_postgres,
    service_env,
    table,
    write_results,
)
from ingest import free_port, wait_http

LIMIT = "190/10s"
GOAL_P50_MS = 50.0
GOAL_P99_MS = 250.0


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))
    return ordered[index]


async def submit(api: str, *, rate: float, seconds: float) -> dict[str, float]:
    """POST leads at a steady rate; return email -> epoch time of the 201 response."""
    responded: dict[str, float] = {}
    total = int(rate * seconds)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:

        async def one(index: int) -> None:
            email = f"latency.{index}.{int(started)}@bench.example"
            reply = await client.post("/leads", json={"email": email, "firstname": "Ana"})
            if reply.status_code == 201:
                responded[email] = time.time()

        tasks = []
        for index in range(total):
            # An open-loop schedule: each lead leaves on time whatever the earlier ones do.
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    return responded


def contact_times(sandbox_url: str) -> dict[str, float]:
    """Return email -> epoch time the sandbox created the contact."""
    contacts = httpx.get(f"{sandbox_url}/_sandbox/contacts", timeout=30).json()
    items = contacts.get("results", contacts) if isinstance(contacts, dict) else contacts
    created: dict[str, float] = {}
    for contact in items:
        email = (contact.get("properties") or {}).get("email")
        if email:
            moment = dt.datetime.fromisoformat(contact["createdAt"].replace("Z", "+00:00"))
            created[email.lower()] = moment.timestamp()
    return created


def run(*, wakeups: bool, rate: float, seconds: float) -> tuple[list[float], int]:
    """Measure one configuration; return latencies in ms and how many leads were sent."""
    label = "wake-ups on" if wakeups else "wake-ups off (polling only)"
    with scratch_postgres("latency") as url, sandbox("--rate-limit", LIMIT) as hub:
        migrate(url)
        port = free_port()
        env = service_env(
            url,
            HUBSPOT_BASE_URL=hub.url,
            HUBSPOT_TOKEN="sandbox-token",
            HUBSPOT_RATE_LIMIT=LIMIT,
            LEADSYNC_WAKEUPS="true" if wakeups else "false",
        )
        with processes([[LEADSYNC, "serve", "--port", str(port)]], env=env):
            api = f"http://127.0.0.1:{port}"
            wait_http(f"{api}/readyz")
            log(f"latency, {label}: {rate:g} leads/s for {seconds:g} s")
            responded = asyncio.run(submit(api, rate=rate, seconds=seconds))
            deadline = time.monotonic() + 60
            while asyncio.run(count_status(url)) < len(responded):
                if time.monotonic() > deadline:
                    raise TimeoutError("leads were not all synced within 60 s")
                time.sleep(0.2)
            created = contact_times(hub.url)
    latencies = [
        max(0.0, (created[email] - at) * 1000)
        for email, at in responded.items()
        if email in created
    ]
    return latencies, len(responded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="Leads per second.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Duration with wake-ups.")
    parser.add_argument(
        "--polling-seconds", type=float, default=15.0, help="Duration of the polling-only run."
    )
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    rows = []
    figures = {}
    for wakeups, seconds in ((True, args.seconds), (False, args.polling_seconds)):
        latencies, sent = run(wakeups=wakeups, rate=args.rate, seconds=seconds)
        p50, p95, p99 = (percentile(latencies, q) for q in (0.50, 0.95, 0.99))
        figures[wakeups] = (p50, p99)
        rows.append(
            (
                "after-commit wake-up" if wakeups else "polling only (5 s)",
                sent,
                len(latencies),
                f"{p50:.0f}",
                f"{p95:.0f}",
                f"{p99:.0f}",
                f"{statistics.fmean(latencies):.0f}",
            )
        )
        log(f"  p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms over {len(latencies)} leads")
    p50, p99 = figures[True]
    text = "\n".join(
        [
            f"{args.rate:g} leads/s into `leadsync serve` (API + worker) on PostgreSQL, sandbox "
            f"and budget at {LIMIT}; latency = sandbox `createdAt` minus the 201 response. "
            f"Goal: p50 <= {GOAL_P50_MS:.0f} ms, p99 <= {GOAL_P99_MS:.0f} ms with wake-ups. "
            f"Measured ratios to goal: p50 {p50 / GOAL_P50_MS:.2f}, p99 {p99 / GOAL_P99_MS:.2f} "
            "(<= 1 meets it).",
            "",
            table(["hand-off", "sent", "synced", "p50 ms", "p95 ms", "p99 ms", "mean ms"], rows),
        ]
    )
    print("\n" + text)
    if not args.no_write:
        write_results("Latency (bench/latency.py)", text)


if __name__ == "__main__":
    main()
