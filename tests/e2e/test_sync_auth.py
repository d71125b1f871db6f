"""Issue 4, scenario 4: the HubSpot token is revoked while leads flow, then rotated.

In process (create_app + lifespan + `start_in_app`) against the sandbox over real HTTP, on
both databases. The token comes from HUBSPOT_TOKEN_FILE, so the rotation is the real one:
a new token written to the file and accepted by HubSpot, with no restart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.demo.kit import count_by_status, lead_mix, read_leads_from_db
from leadsync.engine import gate
from leadsync.runtime import start_in_app
from tests.e2e.support import (
    SandboxFactory,
    assert_synced_exactly_once,
    patch_sandbox,
    post_leads,
    sandbox_stats,
    wait_settled,
)
from tests.helpers import INTERNAL_HEADERS, wait_for

pytestmark = pytest.mark.slow

OLD_TOKEN = "pat-na1-old-token-0001"  # sandbox-only tokens
NEW_TOKEN = "pat-na1-new-token-0002"


async def _sync_status(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/internal/sync/status", headers=INTERNAL_HEADERS)
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


async def test_revoked_token_pauses_without_harm_and_a_rotated_one_resumes(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_factory: Any,
    settings_factory: Callable[..., Settings],
    sessions: async_sessionmaker[AsyncSession],
    sandbox_factory: SandboxFactory,
) -> None:
    # Probes start 5 s apart in production; 0.2 s keeps the test short (the doubling stays).
    monkeypatch.setattr(gate, "AUTH_PROBE_FIRST_SECONDS", 0.2)
    sandbox = sandbox_factory(tokens=frozenset({OLD_TOKEN}), rate_limit="1000/1s")
    token_file = tmp_path / "hubspot-token"
    token_file.write_text(OLD_TOKEN + "\n", encoding="utf-8")
    settings = settings_factory(
        hubspot_base_url=sandbox.url,
        hubspot_token=None,
        hubspot_token_file=token_file,
        hubspot_rate_limit="500/1s",
        batch_size=10,
    )
    # 40 leads before the revocation, 120 during it (repeats in other casing among them).
    mix = lead_mix(160, seed=41, reject_share=0)
    before, during = mix.bodies[:40], mix.bodies[40:]
    total = len(mix.bodies)

    async with client_factory(settings, background=start_in_app) as (_app, client):
        await post_leads(client, before)
        await wait_settled(sessions, len(before), timeout=30, interval=0.1)

        await patch_sandbox(sandbox, {"revoke_tokens": [OLD_TOKEN]})
        # Leads keep arriving while the worker meets the 401s.
        await post_leads(client, during, concurrency=4)

        async def paused_and_probing() -> dict[str, Any] | None:
            status = await _sync_status(client)
            counts = status["counts"]
            return (
                status
                if status["gate"]["reason"] == "auth"
                and status["gate"]["auth_failures"] >= 3  # two probes failed since the pause
                and counts["PENDING"] == len(during)
                and counts["IN_PROGRESS"] == 0
                else None
            )

        status = await wait_for(paused_and_probing, timeout=30, interval=0.1)
        assert status["gate"]["paused"] is True
        counts = await count_by_status(sessions)
        assert counts["FAILED"] == 0, counts
        assert counts["RETRYING"] == 0, counts
        assert counts["SYNCED"] == len(before), counts
        waiting = [lead for lead in await read_leads_from_db(sessions) if lead.hubspot_id is None]
        assert len(waiting) == len(during)
        # A credential failure is not the lead's fault: no attempt is used up.
        assert all(lead.hubspot_sync_attempts == 0 for lead in waiting)
        requests = (await sandbox_stats(sandbox))["requests"]
        unauthorized = sum(by_status.get("401", 0) for by_status in requests.values())
        # The worker stops at the first 401s and then only probes, with growing gaps.
        assert unauthorized <= status["gate"]["auth_failures"] + 2 * settings.max_inflight_batches

        # Rotation: the new secret is written where HUBSPOT_TOKEN_FILE points, and HubSpot
        # accepts it. The running worker must pick it up at its next probe, with no restart.
        token_file.write_text(NEW_TOKEN + "\n", encoding="utf-8")
        await patch_sandbox(sandbox, {"add_tokens": [NEW_TOKEN]})
        await wait_settled(sessions, total, timeout=30, interval=0.1)
        status = await _sync_status(client)
        assert status["gate"]["paused"] is False
        assert status["gate"]["reason"] is None
        assert status["gate"]["auth_failures"] == 0

    leads = await assert_synced_exactly_once(sessions, sandbox, mix)
    assert len(leads) == total
    assert not any(OLD_TOKEN in (lead.hubspot_error or "") for lead in leads)
