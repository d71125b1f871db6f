"""Issue 4, scenarios 2 and 3: several `leadsync worker` processes on one PostgreSQL.

The workers are real processes of the console script; the sandbox is a real HTTP server in
a thread of the test process, so the test can also count what its store applied. Leads
arrive through `POST /leads` of an in-process app without a worker: the workers hear of
them through PostgreSQL NOTIFY (and their polling).
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import RateLimit, Settings
from leadsync.demo.kit import LeadsyncProcess, lead_mix, read_leads_from_db
from leadsync.store.tables import SyncStatus
from tests.e2e.support import (
    SandboxFactory,
    UpsertRecorder,
    WorkerFactory,
    assert_synced_exactly_once,
    patch_sandbox,
    post_leads,
    sandbox_stats,
    wait_settled,
    worker_env,
)
from tests.helpers import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]

# HubSpot's own free-tier limit. Three workers with their own limiters would overrun it
# three times over; one shared budget keeps them inside it. Its 10 s window leaves the
# schedule's 3% spacing margin (300 ms) room for the jitter of a busy 2-core machine.
BUDGET = "100/10s"
# Batches of 2: 240 leads make 120 requests, more than one window allows, so it binds.
LEADS = 240
BATCH_SIZE = 2


async def _started(*workers: LeadsyncProcess) -> None:
    def ready() -> bool:
        for worker in workers:
            assert worker.process.poll() is None, f"{worker.name} exited:\n{worker.log_text()}"
        return all(worker.logged("sync.worker.started") for worker in workers)

    await wait_for(ready, timeout=30, interval=0.1, message="workers started")


async def test_three_workers_share_one_budget_and_never_share_a_lead(
    db_url: str,
    client_factory: Any,
    settings_factory: Callable[..., Settings],
    sessions: async_sessionmaker[AsyncSession],
    sandbox_factory: SandboxFactory,
    worker_factory: WorkerFactory,
) -> None:
    budget = RateLimit.parse(BUDGET)
    # The sandbox enforces exactly the budget the workers share: any overrun is a 429.
    sandbox = sandbox_factory(rate_limit=BUDGET)
    writes = UpsertRecorder(sandbox)
    env = worker_env(
        database_url=db_url,
        sandbox=sandbox,
        hubspot_rate_limit=BUDGET,
        batch_size=BATCH_SIZE,
        poll_interval_seconds=0.2,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.5,
    )
    workers = [worker_factory(f"worker-{n}", env) for n in range(3)]
    total = LEADS
    # Unique emails and no faults: every lead must be written exactly once, by one batch.
    mix = lead_mix(total, seed=2, repeat_share=0, reject_share=0)
    async with client_factory(settings_factory()) as (_app, client):
        await post_leads(client, mix.bodies)  # while the workers start
    await _started(*workers)
    await wait_settled(sessions, total, timeout=60)

    leads = await assert_synced_exactly_once(sessions, sandbox, mix)
    retried = [lead.id for lead in leads if lead.hubspot_sync_attempts != 1]
    assert not retried, f"leads that needed more than one attempt: {retried[:10]}"
    per_email = writes.per_email()
    twice = {email: n for email, n in per_email.items() if n > 1}
    assert not twice, f"{len(twice)} emails sent in more than one batch: {list(twice)[:5]}"
    assert set(per_email) == mix.valid_emails

    stats = await sandbox_stats(sandbox)
    requests = stats["total_requests"]
    assert stats["rate_limited"] < requests * 0.01, stats  # fewer than 1% (in practice none)
    # The sandbox's busiest 10 s window (the budget's window too) stays within the budget...
    busiest = stats["max_requests_in_10s"][sandbox.token]
    assert busiest <= budget.count, f"{busiest} requests in one {budget.window_seconds:g} s window"
    # ...and the budget really bound: the workers used most of it, they were not idle.
    assert busiest >= budget.count * 0.75, f"only {busiest} requests in the busiest window"
    idle = [worker.name for worker in workers if not worker.logged("sync.lead.synced")]
    assert not idle, f"workers that synced nothing: {idle}"
    assert all(worker.process.poll() is None for worker in workers)


async def test_a_worker_killed_mid_batch_loses_nothing(
    db_url: str,
    client_factory: Any,
    settings_factory: Callable[..., Settings],
    sessions: async_sessionmaker[AsyncSession],
    sandbox_factory: SandboxFactory,
    worker_factory: WorkerFactory,
) -> None:
    # A slow HubSpot keeps the victim's first batch in flight while it is killed.
    sandbox = sandbox_factory(rate_limit=None, latency_ms=5_000)
    writes = UpsertRecorder(sandbox)
    env = worker_env(
        database_url=db_url,
        sandbox=sandbox,
        hubspot_rate_limit="100/1s",
        hubspot_read_timeout_seconds=6,
        hubspot_total_timeout_seconds=6,
        batch_size=10,
        max_inflight_batches=2,
        lease_seconds=8,  # the shortest lease that covers one whole call (6 s + 2 s)
        poll_interval_seconds=0.2,
        reconcile_interval_seconds=0.5,
    )
    victim = worker_factory("victim", env)
    total = 60
    mix = lead_mix(total, seed=3, repeat_share=0, reject_share=0)
    async with client_factory(settings_factory()) as (_app, client):
        await post_leads(client, mix.bodies)  # while the victim starts
    await _started(victim)

    async def batch_in_flight() -> bool:
        stats = await sandbox_stats(sandbox)
        return bool(stats["max_requests_in_10s"])  # the sandbox admitted a request

    await wait_for(batch_in_flight, timeout=20, interval=0.05, message="a batch reached HubSpot")
    victim.kill()
    assert victim.process.returncode == -signal.SIGKILL
    # The dead worker's leases, exactly as it left them.
    orphaned: dict[int, dt.datetime] = {}
    for lead in await read_leads_from_db(sessions):
        if lead.hubspot_sync_status == SyncStatus.IN_PROGRESS:
            assert lead.hubspot_lease_expires_at is not None, lead.id
            orphaned[lead.id] = lead.hubspot_lease_expires_at
    assert orphaned, "the victim held no lease when it died"

    await patch_sandbox(sandbox, {"latency_ms": 0})
    survivors = [worker_factory(f"survivor-{n}", env) for n in range(2)]
    await _started(*survivors)
    await wait_settled(sessions, total, timeout=30, interval=0.2)

    leads = await assert_synced_exactly_once(sessions, sandbox, mix)
    for lead in leads:
        if lead.id in orphaned:
            # Nobody touched an orphaned lead before its lease ran out (no double send).
            assert lead.hubspot_synced_at is not None
            assert lead.hubspot_synced_at >= orphaned[lead.id], lead.id
    # An orphaned email may be written twice (the lost request may still land); others once.
    orphaned_emails = {lead.email for lead in leads if lead.id in orphaned}
    for email, count in writes.per_email().items():
        assert count <= (2 if email in orphaned_emails else 1), (email, count)
    assert sum(worker.logged("sync.lead.synced") for worker in survivors) == total
