"""Forced trouble: what chance may not bring in a short run, the demo makes happen on purpose."""

from __future__ import annotations

import asyncio
import time

import httpx

from leadsync.demo.harness import Harness
from leadsync.demo.options import CHAOS_MAX_SECONDS, FAULT_DROP
from leadsync.demo.traffic import Traffic


async def chaos(run: Harness) -> None:
    """Add the trouble chance may not bring: a write whose answer is lost, and a 429."""
    # Each starts while most leads are still to come, so the worker is bound to meet it.
    await asyncio.gather(_lose_an_answer(run), _noisy_neighbour(run))


async def _lose_an_answer(run: Harness) -> None:
    await run.until_posted(0.1)
    await run.refresh_stats()
    if not run.worker_drops():
        await _force_drop(run)


async def _noisy_neighbour(run: Harness) -> None:
    """Keep the account's window full from another integration until leadsync meets a 429."""
    await run.until_posted(0.3)
    headers = {"Authorization": f"Bearer {run.running.token}"}
    deadline = time.monotonic() + CHAOS_MAX_SECONDS
    run.event("another integration on the same HubSpot account bursts requests")

    async def hammer() -> None:
        while not (Traffic.now() - run.baseline).rate_limited and not run.chaos_over(deadline):
            run.report.neighbour_requests += 1
            try:
                response = await run.sandbox.get(
                    "/crm/v3/objects/contacts", params={"limit": "1"}, headers=headers
                )
            except httpx.HTTPError:
                continue
            if response.status_code == 429:
                # Right back: a slot freed in the window goes to us, not to leadsync.
                await asyncio.sleep(0.01)

    await asyncio.gather(*(hammer() for _ in range(3)))


async def _force_drop(run: Harness) -> None:
    """Drop answers on purpose until one of leadsync's writes is applied and unanswered."""
    run.event("the sandbox will apply the next write, then cut the connection")
    await run.configure_sandbox({"fault_drop": 1.0})
    try:
        deadline = time.monotonic() + CHAOS_MAX_SECONDS
        while not run.worker_drops() and not run.chaos_over(deadline):
            await asyncio.sleep(0.05)
            await run.refresh_stats()
    finally:
        await run.configure_sandbox({"fault_drop": FAULT_DROP})
