"""Retention benchmark: LEADSYNC_RETENTION_DAYS applied to 1,000,000 old leads while a worker
drains a backlog, against the same drain without it (issue #13: ratio >= 0.9).

One scratch PostgreSQL database holds the million old SYNCED leads throughout. The drain is
measured twice on it, each time with a fresh backlog of PENDING leads: first with retention
unset, then with LEADSYNC_RETENTION_DAYS=30 and a 1 s reconciliation interval, so the
worker's privacy loop scrubs old leads (1,000 per transaction, 50 per pass) for the whole
drain (paced: each transaction is followed by a rest nine times its length). Each scenario
runs at the real budget (the sandbox enforcing 190/10s) and unthrottled.
Prints contacts/s, the ratio, and how many old leads were scrubbed meanwhile.

    python bench/retention.py                # 1,000,000 old leads, writes bench/RESULTS.md
    python bench/retention.py --old 100000 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    insert_backlog,
    leads_store,
    log,
    migrate,
    processes,
    sandbox,
    scratch_postgres,
    service_env,
    sync_rate,
    table,
    write_results,
)
from leadsync.store.tables import UNFINISHED_SQL, Lead

LIMIT = "190/10s"
GOAL_RATIO = 0.9
OLD = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


async def scrubbed(url: str) -> int:
    """Count the leads whose personal data was removed."""
    async with leads_store(url) as sessions, sessions() as session:
        return int(
            await session.scalar(select(func.count()).where(Lead.scrubbed_at.is_not(None))) or 0
        )


def drain(
    url: str, *, hub_url: str, budget: str, backlog: int, retention: bool, label: str
) -> tuple[float, int]:
    """Drain a new backlog with one worker; return (contacts/s, old leads scrubbed meanwhile)."""
    asyncio.run(insert_backlog(url, count=backlog, tag=label))
    before = asyncio.run(scrubbed(url))
    extra = (
        {"LEADSYNC_RETENTION_DAYS": "30", "LEADSYNC_RECONCILE_INTERVAL_SECONDS": "1"}
        if retention
        else {}
    )
    env = service_env(
        url,
        HUBSPOT_BASE_URL=hub_url,
        HUBSPOT_TOKEN="sandbox-token",
        HUBSPOT_RATE_LIMIT=budget,
        **extra,
    )
    since = dt.datetime.now(dt.UTC)
    with processes([[LEADSYNC, "worker"]], env=env):
        asyncio.run(_wait_unfinished_gone(url, timeout=600 + backlog / 5, label=label))
    rate, seconds, _ = asyncio.run(sync_rate(url, since=since))
    during = asyncio.run(scrubbed(url)) - before
    log(
        f"  {label}: {rate:,.0f} contacts/s over {seconds:.1f} s, "
        f"{during:,} old leads scrubbed meanwhile"
    )
    return rate, during


async def _wait_unfinished_gone(url: str, *, timeout: float, label: str) -> None:
    """Wait until no lead is unfinished (a count on the status index, not over the million)."""
    started = time.monotonic()
    async with leads_store(url) as sessions:
        while True:
            async with sessions() as session:
                left = int(
                    await session.scalar(
                        select(func.count()).select_from(Lead).where(text(UNFINISHED_SQL))
                    )
                    or 0
                )
            if not left:
                return
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{label}: {left} leads still unfinished after {timeout:.0f} s")
            await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=int, default=1_000_000, help="Old SYNCED leads to scrub.")
    parser.add_argument("--backlog", type=int, default=20_000, help="PENDING leads per drain.")
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    rows = []
    left = 0
    # One database per sandbox: the gate keeps the rate limit HubSpot last reported (the
    # throttled sandbox's 190/10s), which would bind an unthrottled run on the same database.
    for name, sandbox_args, budget in (
        ("budget", ["--rate-limit", LIMIT], LIMIT),
        ("unthrottled", ["--rate-limit", "none"], "1000000/10s"),
    ):
        with scratch_postgres(f"retention_{name}") as url, sandbox(*sandbox_args) as hub:
            migrate(url)
            started = time.monotonic()
            asyncio.run(
                insert_backlog(url, count=args.old, status="SYNCED", created_at=OLD, tag="old")
            )
            log(f"{args.old:,} old leads loaded in {time.monotonic() - started:.0f} s")
            without, _ = drain(
                url,
                hub_url=hub.url,
                budget=budget,
                backlog=args.backlog,
                retention=False,
                label=f"{name}-off",
            )
            with_it, during = drain(
                url,
                hub_url=hub.url,
                budget=budget,
                backlog=args.backlog,
                retention=True,
                label=f"{name}-on",
            )
            left = args.old - asyncio.run(scrubbed(url))
        rows.append(
            (
                name,
                args.backlog,
                f"{without:,.0f}",
                f"{with_it:,.0f}",
                f"{with_it / without:.2f}",
                f"{during:,}",
            )
        )
    body = "\n".join(
        [
            f"{args.old:,} old SYNCED leads; each drain is {args.backlog:,} new PENDING leads "
            "and one worker. With retention, LEADSYNC_RETENTION_DAYS=30 and a 1 s "
            "reconciliation interval "
            "keep the privacy loop scrubbing old leads for the whole drain (1,000 per "
            "transaction, 50 per pass, each transaction followed by a rest of nine times its "
            f"length). Goal: ratio >= {GOAL_RATIO}.",
            "",
            table(
                [
                    "sandbox",
                    "backlog",
                    "contacts/s without",
                    "contacts/s with retention",
                    "ratio",
                    "old leads scrubbed during the drain",
                ],
                rows,
            ),
            "",
            f"Old leads still holding personal data at the end of the unthrottled run: {left:,} "
            "(retention goes on after the drain, at its paced rate).",
        ]
    )
    print(body)
    if not args.no_write:
        write_results("Retention (issue #13)", body)


if __name__ == "__main__":
    main()
