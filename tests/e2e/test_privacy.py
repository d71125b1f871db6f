"""Issue 13 end to end: erasures carried through to the HubSpot sandbox by `leadsync worker`
processes on PostgreSQL, whatever state the email's leads were in, and through a worker killed
in the middle of the GDPR delete.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.demo.kit import LeadsyncProcess
from leadsync.sandbox import RunningSandbox
from leadsync.store.fence import open_fence
from leadsync.store.tables import ErasureStatus, SyncStatus
from leadsync.usecases import privacy
from tests.e2e.support import SandboxFactory, UpsertRecorder, WorkerFactory, worker_env
from tests.helpers import wait_for
from tests.helpers.leads import fetch
from tests.helpers.privacy import erasure_in, fetch_erasure
from tests.helpers.worker import status_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]

KEY = "e2e-erasure-key-0123456789"
Sessions = async_sessionmaker[AsyncSession]


async def _control(sandbox: RunningSandbox, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=f"{sandbox.url}/_sandbox", timeout=10) as http:
        response = await http.request(method, path, json=body)
    assert response.is_success, response.text
    return response.json()


async def _started(worker: LeadsyncProcess) -> None:
    def ready() -> bool:
        assert worker.process.poll() is None, f"{worker.name} exited:\n{worker.log_text()}"
        return worker.logged("sync.worker.started")

    await wait_for(ready, timeout=30, interval=0.1, message=f"{worker.name} started")


async def _post(client: httpx.AsyncClient, email: str, **fields: str) -> int:
    response = await client.post("/leads", json={"email": email, "firstname": "Test", **fields})
    assert response.status_code == 201, response.text
    lead_id: int = response.json()["id"]
    return lead_id


async def test_erasure_of_synced_retrying_and_in_flight_leads_leaves_nothing_behind(
    db_url: str,
    engine: AsyncEngine,
    client_factory: Any,
    settings_factory: Callable[..., Settings],
    sessions: Sessions,
    sandbox_factory: SandboxFactory,
    worker_factory: WorkerFactory,
) -> None:
    sandbox = sandbox_factory(rate_limit=None)
    applied = UpsertRecorder(sandbox)
    env = worker_env(
        database_url=db_url,
        sandbox=sandbox,
        erasure_key=KEY,
        batch_size=1,
        poll_interval_seconds=0.2,
        retry_base_seconds=60,  # a RETRYING lead stays RETRYING for the test
        lease_seconds=30,
        hubspot_total_timeout_seconds=10,
        erasure_confirm_seconds=3,
    )
    worker = worker_factory("worker", env)
    # The request decides whether a confirming delete is needed: its process's setting counts.
    settings = settings_factory(erasure_key=KEY, erasure_confirm_seconds=3)
    synced, retrying, in_flight = "ana@example.com", "bea@example.com", "cai@example.com"
    async with client_factory(settings) as (_app, client):
        await _started(worker)
        ana = await _post(client, synced, phone="+34 600 000 001")
        await wait_for(status_of(sessions, ana, "SYNCED"), timeout=30)
        await _control(
            sandbox,
            "POST",
            "/input-errors",
            {"email": retrying, "status": "500", "category": "INTERNAL_ERROR", "times": 100},
        )
        bea = await _post(client, retrying)
        await wait_for(status_of(sessions, bea, "RETRYING"), timeout=30)
        await _control(
            sandbox,
            "POST",
            "/inject",
            {"action": "delay", "delay_ms": 3000, "endpoints": ["batch_upsert"]},
        )
        cai = await _post(client, in_flight)

        async def cai_in_flight() -> bool:
            log = (await _control(sandbox, "GET", "/requests"))["requests"]
            return any(
                in_flight in entry["emails"] and entry["status"] is None
                for entry in log
                if entry["endpoint"] == "batch_upsert"
            )

        await wait_for(cai_in_flight, timeout=30)
        assert (await fetch(sessions, cai)).hubspot_sync_status == SyncStatus.IN_PROGRESS

        fence = open_fence(engine, sessions)
        returned: dict[str, tuple[float, float]] = {}
        erasures: dict[str, int] = {}
        for email in (in_flight, retrying, synced):
            accepted = await privacy.request_erasure(
                sessions, fence=fence, settings=settings, email=email, requested_by="api"
            )
            returned[email] = (time.monotonic(), time.time())
            erasures[email] = accepted.id
        for email, erasure_id in erasures.items():
            done = await wait_for(erasure_in(sessions, erasure_id), timeout=60)
            assert done.leads_scrubbed == 1, email
        # The write in flight at its request: a second delete confirmed the erasure once
        # that write could no longer land (the others' last writes were seconds old).
        confirmed = await fetch_erasure(sessions, erasures[in_flight])
        assert confirmed.confirm_after is not None
        assert confirmed.completed_at is not None
        assert confirmed.completed_at >= confirmed.confirm_after

    # Nothing of the three is left at HubSpot, and every one went through a GDPR delete.
    left = {
        c["properties"].get("email")
        for c in (await _control(sandbox, "GET", "/contacts"))["results"]
    }
    assert left.isdisjoint(erasures), left
    deleted = {d["objectId"] for d in await _control(sandbox, "GET", "/gdpr-deletions")}
    assert deleted >= set(erasures)
    # No write of an erased email landed, or even started, after its request returned.
    for email, (mono, wall) in returned.items():
        late = [t for t, written in applied.writes if written == email and t > mono]
        assert not late, f"{email}: a write landed after the erasure request"
        log = (await _control(sandbox, "GET", "/requests"))["requests"]
        started = [
            e
            for e in log
            if email in e["emails"] and e["endpoint"] != "gdpr_delete" and e["at"] > wall
        ]
        assert not started, f"{email}: {started}"
    # The rows keep no personal data, only the audit columns and the keyed hash.
    for lead_id in (ana, bea, cai):
        lead = await fetch(sessions, lead_id)
        assert lead.hubspot_sync_status == SyncStatus.ERASED
        assert lead.email is None
        assert lead.firstname is None
        assert lead.phone is None
        assert lead.email_hash is not None
        assert lead.scrubbed_at is not None
    # No log line of the worker carries an address or a phone number.
    text = worker.log_text()
    for value in (synced, retrying, in_flight, "600 000 001"):
        assert value not in text


async def test_a_worker_killed_in_the_middle_of_an_erasure_leaves_it_to_another(
    db_url: str,
    engine: AsyncEngine,
    client_factory: Any,
    settings_factory: Callable[..., Settings],
    sessions: Sessions,
    sandbox_factory: SandboxFactory,
    worker_factory: WorkerFactory,
) -> None:
    sandbox = sandbox_factory(rate_limit=None)
    env = worker_env(
        database_url=db_url,
        sandbox=sandbox,
        erasure_key=KEY,
        poll_interval_seconds=0.2,
        lease_seconds=6,
        hubspot_total_timeout_seconds=3,
        reconcile_interval_seconds=0.5,
        erasure_confirm_seconds=0,  # one delete: this test is about the worker's death
    )
    victim = worker_factory("victim", env)
    settings = settings_factory(erasure_key=KEY)
    email = "dan@example.com"
    async with client_factory(settings) as (_app, client):
        await _started(victim)
        lead_id = await _post(client, email)
        await wait_for(status_of(sessions, lead_id, "SYNCED"), timeout=30)
        await _control(sandbox, "POST", "/inject", {"action": "hang", "endpoints": ["gdpr_delete"]})
        accepted = await privacy.request_erasure(
            sessions,
            fence=open_fence(engine, sessions),
            settings=settings,
            email=email,
            requested_by="cli",
        )

        async def delete_in_flight() -> bool:
            log = (await _control(sandbox, "GET", "/requests"))["requests"]
            return any(e["endpoint"] == "gdpr_delete" and e["status"] is None for e in log)

        await wait_for(delete_in_flight, timeout=30)
        assert (await fetch_erasure(sessions, accepted.id)).status == ErasureStatus.IN_HUBSPOT
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)

        heir = worker_factory("heir", env)
        await _started(heir)
        erasure = await wait_for(erasure_in(sessions, accepted.id), timeout=60)

    assert erasure.attempts == 2
    assert erasure.leads_scrubbed == 1
    deletions = await _control(sandbox, "GET", "/gdpr-deletions")
    assert [d["objectId"] for d in deletions] == [email]  # the hung call applied nothing
    assert heir.logged("privacy.erasure.completed")
    assert email not in heir.log_text()
    assert email not in victim.log_text()
