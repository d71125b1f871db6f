"""Scale benchmark: does draining slow down when the table holds a million SYNCED leads?

Measures one worker's drain rate (sandbox unthrottled) on an empty table and on a table with
1,000,000 SYNCED leads already in it; the partial index should keep claiming O(batch), so the
ratio should stay near 1. Then the worker's peak RSS while draining 100,000 leads.

    python bench/scale.py
    python bench/scale.py --history 200000 --leads 10000 --rss-leads 20000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import threading
import time
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    insert_backlog,
    log,
    migrate,
    processes,
    sandbox,
    scratch_postgres,
    service_env,
    sync_rate,
    table,
    wait_drained,
    write_results,
)

GOAL_RATIO = 0.9
GOAL_RSS_MB = 200.0


class PeakRss:
    """Sample a process's resident memory in a thread; keep the peak."""

    def __init__(self, pid: int, *, every: float = 0.1) -> None:
        self._proc = psutil.Process(pid)
        self._every = every
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> float:
        """Stop sampling; return the peak in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak / 1024 / 1024


async def settle(url: str) -> None:
    """VACUUM ANALYZE the leads table and force a checkpoint."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE) leads")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def drain(*, history: int, leads: int, label: str) -> tuple[float, float]:
    """Drain `leads` with `history` SYNCED rows present; return (contacts/s, peak RSS MB)."""
    with scratch_postgres(label) as url, sandbox("--rate-limit", "none") as hub:
        migrate(url)
        if history:
            log(f"{label}: inserting {history:,} SYNCED leads ...")
            asyncio.run(insert_backlog(url, count=history, status="SYNCED"))
        asyncio.run(insert_backlog(url, count=leads))
        # Settle the table as a long-running database would be: without this, autovacuum
        # and checkpoints triggered by the million fresh rows run during the measured drain.
        asyncio.run(settle(url))
        env = service_env(
            url,
            HUBSPOT_BASE_URL=hub.url,
            HUBSPOT_TOKEN="sandbox-token",
            HUBSPOT_RATE_LIMIT="1000000/10s",
        )
        started_at = dt.datetime.now(dt.UTC)
        log(f"{label}: draining {leads:,} leads")
        with processes([[LEADSYNC, "worker"]], env=env) as procs:
            rss = PeakRss(procs[0].pid)
            started = time.monotonic()
            asyncio.run(wait_drained(url, expected=history + leads, timeout=900, label=label))
            log(f"  {label}: drained in {time.monotonic() - started:.1f} s")
            peak = rss.stop()
        rate, _seconds, _count = asyncio.run(sync_rate(url, since=started_at))
    log(f"  {label}: {rate:,.0f} contacts/s, worker peak RSS {peak:.0f} MB")
    return rate, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="SYNCED leads present.")
    parser.add_argument("--leads", type=int, default=20_000, help="Leads drained per run.")
    parser.add_argument("--rss-leads", type=int, default=100_000, help="Leads for the RSS run.")
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    empty_rate, _ = drain(history=0, leads=args.leads, label="empty")
    full_rate, _ = drain(history=args.history, leads=args.leads, label="history")
    _, peak = drain(history=0, leads=args.rss_leads, label="rss")
    ratio = full_rate / empty_rate if empty_rate else 0.0
    text = "\n".join(
        [
            "One `leadsync worker` on PostgreSQL, sandbox unthrottled. "
            f"Goal: drain-rate ratio >= {GOAL_RATIO}; peak RSS <= {GOAL_RSS_MB:.0f} MB while "
            f"draining {args.rss_leads:,} leads.",
            "",
            table(
                ["table before the drain", "leads drained", "contacts/s"],
                [
                    ("empty", f"{args.leads:,}", f"{empty_rate:,.0f}"),
                    (f"{args.history:,} SYNCED", f"{args.leads:,}", f"{full_rate:,.0f}"),
                ],
            ),
            "",
            f"Ratio (with history / empty): **{ratio:.2f}**.",
            f"Worker peak RSS draining {args.rss_leads:,} leads: **{peak:.0f} MB** "
            f"(ratio to the {GOAL_RSS_MB:.0f} MB goal: {peak / GOAL_RSS_MB:.2f}).",
        ]
    )
    print("\n" + text)
    if not args.no_write:
        write_results("Scale (bench/scale.py)", text)


if __name__ == "__main__":
    main()
