"""The end-to-end scenarios' own pieces; the lead mix, the audit and the worker fleet are the
scenario kit's (`leadsync.demo.kit`), shared with `leadsync demo` and bench/chaos.py.

Here: the fixtures' types, posting leads as a busy website would, waiting for the queue to
settle, steering the sandbox, the audit as one assertion, and a recorder of the writes the
sandbox's store applies.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.demo.kit import (
    LeadDetail,
    LeadMix,
    LeadsyncProcess,
    audit,
    count_by_status,
    leadsync_env,
    read_contacts,
    read_leads_from_db,
    settled,
)
from leadsync.sandbox import RunningSandbox
from tests.helpers import wait_for

Sessions = async_sessionmaker[AsyncSession]
# The fixtures of conftest.py: a sandbox with a SandboxConfig built from the keywords, and a
# `leadsync worker` process with exactly the given environment.
SandboxFactory = Callable[..., RunningSandbox]
WorkerFactory = Callable[[str, Mapping[str, str]], LeadsyncProcess]


async def post_leads(
    client: httpx.AsyncClient, bodies: list[dict[str, str]], *, concurrency: int = 16
) -> list[int]:
    """POST every lead (several at once, as a busy website would); return their ids in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, str]) -> int:
        async with gate:
            response = await client.post("/leads", json=body)
        assert response.status_code == 201, response.text
        lead_id: int = response.json()["id"]
        return lead_id

    return list(await asyncio.gather(*(one(body) for body in bodies)))


async def wait_settled(
    sessions: Sessions, total: int, *, timeout: float, interval: float = 0.25
) -> Counter[str]:
    """Wait until `total` leads are stored and none is unfinished; return the counts by status."""

    async def counts_once_settled() -> Counter[str] | None:
        counts = await count_by_status(sessions)
        return counts if settled(counts, total=total) else None

    return await wait_for(
        counts_once_settled,
        timeout=timeout,
        interval=interval,
        message=f"all {total} leads SYNCED or FAILED",
    )


async def sandbox_stats(sandbox: RunningSandbox) -> dict[str, Any]:
    """Return the sandbox's request counters, through its control API."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.get("/_sandbox/stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


async def patch_sandbox(sandbox: RunningSandbox, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change the sandbox's configuration at run time, through its control API."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.patch("/_sandbox/config", json=dict(changes))
    response.raise_for_status()
    config: dict[str, Any] = response.json()
    return config


async def assert_synced_exactly_once(
    sessions: Sessions, sandbox: RunningSandbox, mix: LeadMix
) -> list[LeadDetail]:
    """Check the end state every scenario shares (the kit's audit); return the leads.

    Every lead of a valid email is SYNCED with the id of the one sandbox contact of its
    email, which holds its newest values; the sandbox holds exactly one contact per valid
    email and none other; refused leads are FAILED with an error; nothing holds a lease.
    """
    leads = await read_leads_from_db(sessions)
    found = audit(
        leads,
        await read_contacts(sandbox.url),
        emails=mix.distinct_emails,
        rejected=mix.rejected_emails,
    )
    assert found.ok, "the audit failed:\n" + "\n".join(found.problems)
    return leads


def worker_env(*, database_url: str, sandbox: RunningSandbox, **settings: object) -> dict[str, str]:
    """Return a worker's environment: the database, the sandbox, INFO logs, and `settings`."""
    return leadsync_env(
        database_url=database_url,
        hubspot_base_url=sandbox.url,
        hubspot_token=sandbox.token,
        log_level="INFO",
        **settings,
    )


class UpsertRecorder:
    """Counts what the sandbox's store applies, per email, with the time of each write.

    Installed on the running sandbox's store (it runs in a thread of this process), so it
    sees exactly the writes that landed, whatever the HTTP layer answered.
    """

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.writes: list[tuple[float, str]] = []
        store = sandbox.state.store
        upsert = store.upsert_by_email
        create = store.create

        inside_upsert = False

        def recording_upsert(email: str, properties: dict[str, str], *, now: float) -> Any:
            nonlocal inside_upsert
            self.writes.append((time.monotonic(), email.lower()))
            inside_upsert = True  # an upsert of a new email creates: count it once
            try:
                return upsert(email, properties, now=now)
            finally:
                inside_upsert = False

        def recording_create(properties: dict[str, str], *, now: float) -> Any:
            if not inside_upsert:
                self.writes.append((time.monotonic(), properties.get("email", "").lower()))
            return create(properties, now=now)

        store.upsert_by_email = recording_upsert  # type: ignore[method-assign]
        store.create = recording_create  # type: ignore[method-assign]

    def per_email(self) -> Counter[str]:
        """Return how many writes each email received."""
        return Counter(email for _at, email in self.writes)
