"""One run's state, and its calls to the services: the queue's counts, the events, the audit."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from rich.console import Console, RenderableType

from leadsync.demo import view
from leadsync.demo.kit import Audit, LeadMix, audit, read_contacts, read_leads, settled
from leadsync.demo.options import POLL_SECONDS, DemoError, DemoOptions, demo_leads
from leadsync.demo.report import DemoReport
from leadsync.demo.services import PerLeadOutcomes, start_services
from leadsync.demo.traffic import Traffic
from leadsync.sandbox import RunningSandbox
from leadsync.store.tables import UNFINISHED


class Harness:
    """One run: its leads and report, the services' clients, and what it has seen so far."""

    def __init__(self, options: DemoOptions, *, console: Console, seed: int) -> None:
        self.options = options
        self.console = console
        self.report = DemoReport(seed=seed)
        self.leads: LeadMix = demo_leads(options.leads, seed=seed)
        self.token = secrets.token_urlsafe(24)
        self.erasure_key = secrets.token_urlsafe(32)
        self.started = time.monotonic()
        self.baseline = Traffic.now()
        self.events: list[str] = []
        self.firsts: set[str] = set()
        self.stats: dict[str, Any] = {}
        self.seen = Traffic()
        self.posted = 0
        self.counts: dict[str, int] = {}
        self.counted_at = self.last_post_at = 0.0
        self.milestones: dict[float, asyncio.Event] = {}
        self.quiet = PerLeadOutcomes()
        self.api: httpx.AsyncClient
        self.sandbox: httpx.AsyncClient
        self.running: RunningSandbox
        self.url: str
        self.database_url: str

    def event(self, text: str) -> None:
        """Add a line, stamped with the time since the start, to the events below the bars."""
        self.events.append(f"[dim]+{time.monotonic() - self.started:5.1f}s[/] {text}")

    @property
    def auth(self) -> dict[str, str]:
        """Return the headers of leadsync's internal API."""
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        """Start the sandbox and leadsync, which `stack` stops."""
        services = await start_services(
            stack,
            seed=self.report.seed,
            port=self.options.port,
            internal_token=self.token,
            erasure_key=self.erasure_key,
            quiet=self.quiet,
        )
        self.running, self.url = services.running, services.url
        self.database_url = services.database_url
        self.api, self.sandbox = services.api, services.sandbox

    async def poll(self) -> dict[str, int] | None:
        """Read the queue's counts and the sandbox's stats; None when the API did not answer."""
        asked_at = time.monotonic()
        try:
            status = await self.api.get("/internal/sync/status", headers=self.auth)
            stats = await self.sandbox.get("/_sandbox/stats")
        except httpx.HTTPError:
            return None
        if status.status_code != 200 or stats.status_code != 200:
            return None
        self.stats = stats.json()
        self.seen = Traffic.now() - self.baseline
        self.counts = counts = dict(status.json()["counts"])
        self.counted_at = asked_at
        self.note_firsts(counts)
        return counts

    def worker_drops(self) -> int:
        """Return how many of leadsync's writes the sandbox applied and left unanswered."""
        requests: dict[str, dict[str, int]] = self.stats.get("requests", {})
        return sum(c.get("drop", 0) for name, c in requests.items() if name != "list")

    def note_firsts(self, counts: Mapping[str, int]) -> None:
        """Explain each kind of trouble in an event, the first time it shows up."""
        seen = self.seen
        for key, happened, text in (
            ("5xx", seen.server_errors, "5xx from HubSpot: those leads go RETRYING, with backoff"),
            ("429", seen.rate_limited, "429: all workers pause until Retry-After; no attempt used"),
            (
                "drop",
                self.worker_drops(),
                "write applied, answer lost: the retry upserts the same contact",
            ),
            (
                "failed",
                counts.get("FAILED", 0),
                "refused email: its batch is halved, only it FAILS",
            ),
        ):
            if happened and key not in self.firsts:
                self.firsts.add(key)
                self.event(text)

    def footer(self) -> RenderableType:
        """Render the lines below the bars (called from rich's thread, often)."""
        # self.seen is refreshed by poll(): rendering only reads it.
        return view.footer(
            seen=self.seen, stats=self.stats, hidden=self.quiet.hidden, events=self.events
        )

    async def watch(
        self, bars: view.StatusBars, *, done: Callable[[dict[str, int]], bool], within: float
    ) -> dict[str, int]:
        """Poll the queue onto the bars until `done`, or note a problem after `within` s."""
        deadline = time.monotonic() + within
        counts: dict[str, int] = {}
        while True:
            polled = await self.poll()
            if polled is not None:
                counts = polled
                bars.show(counts)
                if done(counts):
                    return counts
            if time.monotonic() > deadline:
                unfinished = {s.value: counts.get(s, 0) for s in UNFINISHED}
                self.report.problems.append(f"still unfinished after {within:.0f} s: {unfinished}")
                return counts
            await asyncio.sleep(POLL_SECONDS)

    async def refresh_stats(self) -> None:
        """Read the sandbox's stats, keeping the last ones if it does not answer."""
        with contextlib.suppress(httpx.HTTPError, ValueError):
            self.stats = (await self.sandbox.get("/_sandbox/stats")).json()

    async def configure_sandbox(self, changes: dict[str, Any]) -> None:
        """Change the sandbox's behaviour at run time."""
        response = await self.sandbox.patch("/_sandbox/config", json=changes)
        if response.status_code != 200:
            raise DemoError(f"the sandbox refused {changes}: {response.text[:200]}")

    async def until_posted(self, share: float) -> None:
        """Wait until this share of the leads has been submitted."""
        reached = self.milestones.setdefault(share, asyncio.Event())
        if self.posted >= share * len(self.leads.bodies):
            reached.set()  # already past it: count_posted() will not set a new event
        await reached.wait()

    def count_posted(self) -> None:
        """Count one more submitted lead, and wake whoever waits for that share."""
        self.posted += 1
        self.last_post_at = time.monotonic()
        for share, reached in self.milestones.items():
            if self.posted >= share * len(self.leads.bodies):
                reached.set()

    def chaos_over(self, deadline: float) -> bool:
        """Whether to stop forcing trouble: time is up, or no lead is left to send."""
        all_in = self.posted >= len(self.leads.bodies) and self.counted_at > self.last_post_at
        return (all_in and settled(self.counts)) or time.monotonic() > deadline

    async def take_audit(self, *, refusing: bool) -> Audit:
        """Read every stored lead and every sandbox contact, and compare them.

        `refusing`: whether the sandbox still refuses the mix's rejected emails.
        """
        return audit(
            await read_leads(self.api, token=self.token),
            await read_contacts(self.running.url),
            emails=self.leads.distinct_emails,
            rejected=self.leads.rejected_emails if refusing else frozenset(),
            accepted_ids=self.report.accepted_ids,
        )
