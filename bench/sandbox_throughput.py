"""How many batch-upserted contacts per second the HubSpot sandbox serves on one core.

The sandbox runs in its own process (uvicorn, one event loop, pinned to one CPU when the
machine has several); this process generates load: batches of 100 upserts by email, a few
in flight at once. It prints the figures and their ratio to the 2,000 contacts/s goal:
contacts per wall-clock second, and contacts per CPU-second the sandbox process used, which
is what one core can serve even when other work shares the machine.

    python bench/sandbox_throughput.py [--contacts 100000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

import httpx
import psutil

from leadsync.sandbox import DEFAULT_TOKEN, sandbox_in_process

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_results

GOAL = 2_000  # contacts/s
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def bodies(total: int, batch: int, run: str) -> list[bytes]:
    """Pre-encode every request so the load generator spends its time on HTTP only."""
    out = []
    for start in range(0, total, batch):
        inputs = [
            {
                "id": f"bench-{run}-{i}@example.com",
                "idProperty": "email",
                "objectWriteTraceId": str(i),
                "properties": {"firstname": f"F{i}", "lastname": "Bench", "company": "BeWorking"},
            }
            for i in range(start, min(start + batch, total))
        ]
        out.append(json.dumps({"inputs": inputs}).encode())
    return out


async def drive(url: str, payloads: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    """Send every payload with `concurrency` requests in flight; return seconds and latencies."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:

        async def worker() -> None:
            while not queue.empty():
                payload = queue.get_nowait()
                sent = time.perf_counter()
                response = await http.post(UPSERT, content=payload)
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def pin(pid: int, cpus: set[int]) -> str:
    """Pin a process to `cpus` where the OS allows it; say what was done."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return "not pinned"
    os.sched_setaffinity(pid, cpus)
    return f"pinned to CPU {sorted(cpus)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    options = parser.parse_args()
    args = ["--rate-limit", "none", "--daily-limit", "0", "--log-level", "warning"]
    with sandbox_in_process(args=args) as sandbox:
        placement = pin(sandbox.process.pid, {0})
        if placement != "not pinned":
            pin(os.getpid(), set(range(1, os.cpu_count() or 2)))
        print(f"sandbox {sandbox.url} (own process, one event loop, {placement})")
        shape = f"batches of {options.batch}, {options.concurrency} in flight"
        print(f"{options.contacts:,} contacts in {shape}")
        server = psutil.Process(sandbox.process.pid)
        # Warm-up: first connections and first-request imports are not the steady state.
        asyncio.run(drive(sandbox.url, bodies(10 * options.batch, options.batch, "warm"), 2))
        walls, cpus = [], []
        for label, run in [("create", "a"), ("update", "a")]:
            payloads = bodies(options.contacts, options.batch, run)
            cpu_before, own_before = sum(server.cpu_times()[:2]), time.process_time()
            seconds, latencies = asyncio.run(drive(sandbox.url, payloads, options.concurrency))
            cpu = sum(server.cpu_times()[:2]) - cpu_before
            own = time.process_time() - own_before
            walls.append(options.contacts / seconds)
            cpus.append(options.contacts / cpu)
            quantiles = statistics.quantiles(latencies, n=100)
            print(
                f"  {label:6s} {walls[-1]:>8,.0f} contacts/s wall  {cpus[-1]:>8,.0f} per CPU-s  "
                f"{len(payloads) / seconds:>5,.0f} req/s  p50 {quantiles[49] * 1000:5.1f} ms  "
                f"p95 {quantiles[94] * 1000:5.1f} ms  CPU busy: sandbox {cpu / seconds:.0%}, "
                f"load generator {own / seconds:.0%}"
            )
        stats = httpx.get(sandbox.url + "/_sandbox/stats").json()
        assert stats["contacts"] == options.contacts + 10 * options.batch, stats
    wall, cpu = min(walls), min(cpus)
    lines = [
        f"slowest pass: {wall:,.0f} contacts/s = {wall / GOAL:.1f}x the {GOAL:,} contacts/s goal",
        f"one core's capacity: {cpu:,.0f} contacts per CPU-second = {cpu / GOAL:.1f}x the goal",
    ]
    print("\n".join(lines))
    if not options.no_write:
        write_results(
            "Sandbox throughput (bench/sandbox_throughput.py)",
            f"{options.contacts:,} contacts upserted in {shape}, the sandbox in its own process "
            f"({placement}).\n\n" + "\n".join(f"- {line}" for line in lines),
        )
    return 0 if wall >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
