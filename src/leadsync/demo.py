"""`leadsync demo`: the whole system in one process against a misbehaving HubSpot sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, Task, TextColumn
from rich.progress_bar import ProgressBar
from rich.text import Text

from leadsync.app import create_app
from leadsync.config import RateLimit, Settings
from leadsync.demo_data import (
    REJECT_REGEX,
    REJECTED_DOMAIN,
    Audit,
    DemoLeads,
    DemoReport,
    LeadRow,
    Traffic,
    audit,
    judge,
    make_leads,
    summary_table,
    verdict,
)
from leadsync.leads.models import UNFINISHED, SyncStatus
from leadsync.logging import configure_logging
from leadsync.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from leadsync.sandbox.server import bind_socket, socket_url
from leadsync.sync.worker import start_in_app

DEFAULT_LEADS = 300
SUBMIT_RATE = 40.0  # leads per second at most: a busy website, slow enough to watch
# Few forms in flight at once: SQLite has one writer, and a crowd of them only queues.
SUBMIT_CONCURRENCY = 4
POLL_SECONDS = 0.25
SETTLE_TIMEOUT = 45.0
RESYNC_TIMEOUT = 20.0
# The account allows 20 requests/s; leadsync is told 24/s on purpose: the rate-limit headers
# of HubSpot's answers correct the budget, and a burst from another integration forces 429s.
SANDBOX_LIMIT = "20/1s"
DEMO_BUDGET = "24/1s"
FAULT_5XX, FAULT_DROP, FAULT_TIMEOUT = 0.06, 0.03, 0.01
CHAOS_MAX_SECONDS = 15.0  # a forced 429 or drop waits at most this long for leadsync to call
STATUS_STYLES = {
    SyncStatus.PENDING: "yellow",
    SyncStatus.IN_PROGRESS: "cyan",
    SyncStatus.RETRYING: "magenta",
    SyncStatus.SYNCED: "green",
    SyncStatus.FAILED: "red",
}


class DemoError(Exception):
    """The demo could not run (as opposed to running and finding a lost or duplicated lead)."""


class DemoSettings(Settings):
    """Settings that read nothing from the environment: the demo runs on embedded values."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The command's options."""

    leads: int = DEFAULT_LEADS
    seed: int | None = None
    keep_running: bool = False
    port: int = 0


class _Bar(BarColumn):
    """A bar coloured by its task's `style` field."""

    def render(self, task: Task) -> ProgressBar:
        self.complete_style = self.finished_style = str(task.fields.get("style", "bar.complete"))
        return super().render(task)


class _View(Progress):
    """A bar per sync status (and one for submissions), with the sandbox's counters below."""

    def __init__(
        self, console: Console, *, total: int, footer: Callable[[], RenderableType], submit: bool
    ) -> None:
        self._footer = footer  # before super().__init__, which renders once
        super().__init__(
            TextColumn("{task.description}"),
            _Bar(bar_width=44),
            TextColumn("{task.completed:>5.0f}", justify="right"),
            console=console,
            refresh_per_second=10,
        )
        self.submitted = self.add_task("submitted  ", total=total, style="blue") if submit else None
        self._bars = {
            status.value: self.add_task(f"[{style}]{status.value:<11}", total=total, style=style)
            for status, style in STATUS_STYLES.items()
        }

    def show(self, counts: Mapping[str, int]) -> None:
        """Set every status bar from the queue's counts."""
        for status, task_id in self._bars.items():
            self.update(task_id, completed=counts.get(status, 0))

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self._footer()


class _CurrentStderr:
    """Writes to whatever sys.stderr is now: rich's live display swaps it to print above."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _PerLeadOutcomes(logging.Filter):
    """Counts, and keeps off the screen, the worker's per-lead warnings: the bars show them."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        if isinstance(event, str) and event.startswith("sync.lead."):
            self.hidden += 1
            return False
        return True


class _ApiServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C stays with asyncio.run and the demo."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def sandbox_config(*, seed: int) -> SandboxConfig:
    """Return the sandbox's misbehaviour for the demo."""
    return SandboxConfig(
        rate_limit=RateLimit.parse(SANDBOX_LIMIT),
        latency_ms=25,
        fault_5xx=FAULT_5XX,
        fault_drop=FAULT_DROP,
        fault_timeout=FAULT_TIMEOUT,
        hang_seconds=5,
        reject_emails=REJECT_REGEX,
        seed=seed,
    )


def demo_settings(*, workdir: Path, sandbox: RunningSandbox, internal_token: str) -> Settings:
    """Return leadsync's settings: production defaults, with short timeouts and backoff."""
    return DemoSettings(
        database_url=f"sqlite:///{workdir / 'leadsync-demo.db'}",
        hubspot_token=SecretStr(sandbox.token),
        hubspot_base_url=sandbox.url,
        hubspot_rate_limit=DEMO_BUDGET,
        hubspot_connect_timeout_seconds=1.0,
        hubspot_read_timeout_seconds=2.0,
        hubspot_total_timeout_seconds=4.0,
        internal_token=SecretStr(internal_token),
        log_level="WARNING",
        poll_interval_seconds=0.2,
        lease_seconds=10.0,
        retry_base_seconds=0.2,
        retry_cap_seconds=2.0,
        max_attempts=8,
        reconcile_interval_seconds=5.0,
    )


class _Demo:
    """One run: the sandbox, the service, the leads, the live view and the verdict."""

    def __init__(self, options: DemoOptions, *, console: Console, seed: int) -> None:
        self.options = options
        self.console = console
        self.report = DemoReport(seed=seed)
        self.leads: DemoLeads = make_leads(options.leads, seed=seed)
        self.token = secrets.token_urlsafe(24)
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
        self.quiet = _PerLeadOutcomes()
        self.api: httpx.AsyncClient
        self.sandbox: httpx.AsyncClient
        self.running: RunningSandbox

    # --- plumbing -------------------------------------------------------------------------
    def event(self, text: str) -> None:
        self.events.append(f"[dim]+{time.monotonic() - self.started:5.1f}s[/] {text}")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        workdir = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="leadsync-demo-", ignore_cleanup_errors=True)
            )
        )
        self.workdir = workdir
        self.running = stack.enter_context(
            run_sandbox(config=sandbox_config(seed=self.report.seed))
        )
        settings = demo_settings(workdir=workdir, sandbox=self.running, internal_token=self.token)
        # After the sandbox: its uvicorn config installs handlers that this replaces.
        configure_logging(level="WARNING", secrets=settings.secrets, stream=_CurrentStderr())
        worker_log = logging.getLogger("leadsync.sync.worker")
        worker_log.addFilter(self.quiet)
        stack.callback(worker_log.removeFilter, self.quiet)
        try:
            sock = bind_socket(port=self.options.port)
        except OSError as exc:
            raise DemoError(f"cannot listen on 127.0.0.1:{self.options.port}: {exc}") from None
        stack.callback(sock.close)
        self.url = socket_url(sock)
        server = _ApiServer(
            uvicorn.Config(
                create_app(settings, background=start_in_app),
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=3,
            )
        )
        task = asyncio.create_task(server.serve(sockets=[sock]), name="leadsync-demo-api")

        async def stop() -> None:
            server.should_exit = True
            await task

        stack.push_async_callback(stop)
        while not server.started:
            if task.done():
                raise DemoError("the leadsync API did not start (see the log above)")
            await asyncio.sleep(0.02)
        self.api = await stack.enter_async_context(httpx.AsyncClient(base_url=self.url, timeout=10))
        self.sandbox = await stack.enter_async_context(
            httpx.AsyncClient(base_url=self.running.url, timeout=5)
        )

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
        requests: dict[str, dict[str, int]] = self.stats.get("requests", {})
        return sum(c.get("drop", 0) for name, c in requests.items() if name != "list")

    def note_firsts(self, counts: Mapping[str, int]) -> None:
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
        seen = self.seen  # refreshed by poll(): rendering runs in rich's thread, often
        lines = (
            f"leadsync → HubSpot: {seen.requests:.0f} calls · [red]429[/] {seen.rate_limited:.0f}"
            f" · [red]5xx[/] {seen.server_errors:.0f} · no answer {seen.no_answer:.0f}"
            f" · retries {seen.retries:.0f}",
            f"sandbox: [bold]{self.stats.get('contacts', 0)}[/] contacts · "
            f"[dim]{self.quiet.hidden} per-lead warnings shown as bars, not log lines[/]",
            *self.events[-9:],
        )
        return Group(*(Text.from_markup(line) for line in lines))

    async def watch(
        self, view: _View, *, done: Callable[[dict[str, int]], bool], within: float
    ) -> dict[str, int]:
        deadline = time.monotonic() + within
        counts: dict[str, int] = {}
        while True:
            polled = await self.poll()
            if polled is not None:
                counts = polled
                view.show(counts)
                if done(counts):
                    return counts
            if time.monotonic() > deadline:
                unfinished = {s.value: counts.get(s, 0) for s in UNFINISHED}
                self.report.problems.append(f"still unfinished after {within:.0f} s: {unfinished}")
                return counts
            await asyncio.sleep(POLL_SECONDS)

    async def refresh_stats(self) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            self.stats = (await self.sandbox.get("/_sandbox/stats")).json()

    async def configure_sandbox(self, changes: dict[str, Any]) -> None:
        response = await self.sandbox.patch("/_sandbox/config", json=changes)
        if response.status_code != 200:
            raise DemoError(f"the sandbox refused {changes}: {response.text[:200]}")

    # --- the first pass: submit under faults ------------------------------------------------
    async def submit(self, view: _View) -> None:
        bodies = self.leads.bodies
        gap = 1 / SUBMIT_RATE
        slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        loop = asyncio.get_running_loop()
        begin = loop.time()

        async def post(index: int, body: dict[str, str]) -> None:
            # An Idempotency-Key, as the website sends: a double-clicked form stays one lead.
            key = {"Idempotency-Key": f"demo-{self.report.seed}-{index}"}
            try:
                response = await self.api.post("/leads", json=body, headers=key)
            except httpx.HTTPError as exc:
                self.report.problems.append(f"POST /leads #{index}: {type(exc).__name__}")
                return
            finally:
                self.count_posted()
                slots.release()
                if view.submitted is not None:
                    view.advance(view.submitted)
            if response.status_code == 201:
                self.report.accepted += 1
            else:
                self.report.problems.append(
                    f"POST /leads #{index} answered {response.status_code}: {response.text[:200]}"
                )

        async with asyncio.TaskGroup() as group:
            for index, body in enumerate(bodies):
                await asyncio.sleep(max(0.0, begin + index * gap - loop.time()))
                await slots.acquire()  # released by post(): at most a few in flight
                group.create_task(post(index, body))
        self.report.submitted = len(bodies)
        self.event(
            f"all {len(bodies)} leads submitted ({self.report.accepted} answered 201 Created)"
        )

    async def chaos(self) -> None:
        """Add the trouble chance may not bring: a write whose answer is lost, and a 429."""
        # Each starts while most leads are still to come, so the worker is bound to meet it.
        await asyncio.gather(self.lose_an_answer(), self.noisy_neighbour())

    async def lose_an_answer(self) -> None:
        await self.until_posted(0.1)
        await self.refresh_stats()
        if not self.worker_drops():
            await self.force_drop()

    async def until_posted(self, share: float) -> None:
        reached = self.milestones.setdefault(share, asyncio.Event())
        if self.posted >= share * len(self.leads.bodies):
            reached.set()  # already past it: count_posted() will not set a new event
        await reached.wait()

    def count_posted(self) -> None:
        self.posted += 1
        self.last_post_at = time.monotonic()
        for share, reached in self.milestones.items():
            if self.posted >= share * len(self.leads.bodies):
                reached.set()

    def chaos_over(self, deadline: float) -> bool:
        """Whether to stop forcing trouble: time is up, or no lead is left to send."""
        all_in = self.posted >= len(self.leads.bodies) and self.counted_at > self.last_post_at
        return (all_in and _settled(self.counts)) or time.monotonic() > deadline

    async def noisy_neighbour(self) -> None:
        """Keep the account's window full from another integration until leadsync meets a 429."""
        await self.until_posted(0.3)
        headers = {"Authorization": f"Bearer {self.running.token}"}
        deadline = time.monotonic() + CHAOS_MAX_SECONDS
        self.event("another integration on the same HubSpot account bursts requests")

        async def hammer() -> None:
            while not (Traffic.now() - self.baseline).rate_limited and not self.chaos_over(
                deadline
            ):
                self.report.neighbour_requests += 1
                try:
                    response = await self.sandbox.get(
                        "/crm/v3/objects/contacts", params={"limit": "1"}, headers=headers
                    )
                except httpx.HTTPError:
                    continue
                if response.status_code == 429:
                    # Right back: a slot freed in the window goes to us, not to leadsync.
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(hammer() for _ in range(3)))

    async def force_drop(self) -> None:
        """Drop answers on purpose until one of leadsync's writes is applied and unanswered."""
        self.event("the sandbox will apply the next write, then cut the connection")
        await self.configure_sandbox({"fault_drop": 1.0})
        try:
            deadline = time.monotonic() + CHAOS_MAX_SECONDS
            while not self.worker_drops() and not self.chaos_over(deadline):
                await asyncio.sleep(0.05)
                await self.refresh_stats()
        finally:
            await self.configure_sandbox({"fault_drop": FAULT_DROP})

    async def first_pass(self) -> None:
        count = len(self.leads.bodies)
        self.intro()
        with _View(self.console, total=count, footer=self.footer, submit=True) as view:
            submit = asyncio.create_task(self.submit(view))
            chaos = asyncio.create_task(self.chaos())
            try:
                counts = await self.watch(
                    view,
                    done=lambda c: submit.done() and chaos.done() and _settled(c),
                    within=SETTLE_TIMEOUT + count / SUBMIT_RATE,
                )
                await submit
                await chaos
            finally:
                for task in (submit, chaos):
                    task.cancel()
            self.event(
                f"queue settled: {counts.get('SYNCED', 0)} SYNCED, {counts.get('FAILED', 0)} FAILED"
            )
            view.show(counts)
        self.report.first = await self.take_audit()
        self.report.first_traffic = Traffic.now() - self.baseline

    # --- the second pass: fix the rule, resync ---------------------------------------------
    async def second_pass(self) -> None:
        self.events.clear()
        with _View(
            self.console, total=len(self.leads.bodies), footer=self.footer, submit=False
        ) as view:
            await self.configure_sandbox({"reject_emails": None})
            self.event('rule fixed: PATCH /_sandbox/config {"reject_emails": null}')
            response = await self.api.post("/internal/leads/resync-failed", headers=self.auth)
            if response.status_code != 200:
                raise DemoError(f"resync-failed answered {response.status_code}: {response.text}")
            self.report.requeued = int(response.json()["requeued"])
            self.event(
                f"POST /internal/leads/resync-failed: {self.report.requeued} lead(s) requeued"
            )
            counts = await self.watch(view, done=_settled, within=RESYNC_TIMEOUT)
            self.event(f"{counts.get('SYNCED', 0)} of {sum(counts.values())} leads SYNCED")
            view.show(counts)
        self.report.final = await self.take_audit()
        self.report.traffic = Traffic.now() - self.baseline
        self.report.faults = dict(self.stats.get("faults", {}))

    async def take_audit(self) -> Audit:
        rows: list[LeadRow] = []
        after: int | None = None
        while True:
            params = {"limit": "500"} | ({"after": str(after)} if after else {})
            page = await self.api.get("/internal/leads", params=params, headers=self.auth)
            page.raise_for_status()
            body = page.json()
            rows += [LeadRow.from_json(item) for item in body["items"]]
            if (after := body["next_after"]) is None:
                break
        contacts = await self.sandbox.get("/_sandbox/contacts")
        contacts.raise_for_status()
        return audit(rows, contacts.json()["results"])

    # --- what the user reads ---------------------------------------------------------------
    def intro(self) -> None:
        leads, seed = self.leads, self.report.seed
        pad = " " * 19
        self.console.print(
            f"[bold]leadsync demo[/] · seed {seed} (--seed {seed} replays these leads and faults)\n"
            f"  HubSpot sandbox  {self.running.url}  limit {SANDBOX_LIMIT}, {FAULT_5XX:.0%} 5xx,\n"
            f"{pad}{FAULT_DROP:.0%} applied then dropped, {FAULT_TIMEOUT:.0%} hang, "
            f"refuses *@{REJECTED_DOMAIN}\n"
            f"  leadsync         {self.url}  API + worker, SQLite in a temp dir,\n"
            f"{pad}budget {DEMO_BUDGET}: above the limit on purpose\n"
            f"  {len(leads.bodies)} leads, up to {SUBMIT_RATE:.0f}/s: {leads.repeats} repeat an "
            f"email in another casing, {len(leads.rejected_emails)} are refused",
            highlight=False,
        )

    def print_urls(self) -> None:
        url, sandbox = self.url, self.running.url
        self.console.print(
            "\n[bold]Still running[/] (Ctrl-C to stop; everything is deleted on exit):\n"
            f"  API docs        {url}/docs\n"
            f"  metrics         {url}/metrics\n"
            f"  internal token  {self.token}\n"
            f"  sync status     curl -H 'Authorization: Bearer {self.token}' "
            f"{url}/internal/sync/status\n"
            f"  a new lead      curl -X POST {url}/leads -H 'Content-Type: application/json' "
            """-d '{"email": "ana@ejemplo.es", "firstname": "Ana"}'\n"""
            f"  sandbox         {sandbox}/_sandbox/contacts · {sandbox}/_sandbox/stats · "
            f"{sandbox}/_sandbox/docs",
            highlight=False,
            soft_wrap=True,
        )


def _settled(counts: Mapping[str, int]) -> bool:
    return sum(counts.values()) > 0 and not any(counts.get(s, 0) for s in UNFINISHED)


async def _until_interrupted() -> None:
    """Wait for Ctrl-C or SIGTERM (where the platform lets us catch them)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_demo(options: DemoOptions, *, console: Console) -> DemoReport:
    """Run the demo and return what it saw; raise DemoError if it could not run."""
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 10_000)
    demo = _Demo(options, console=console, seed=seed)
    report = demo.report
    async with contextlib.AsyncExitStack() as stack:
        await demo.start(stack)
        await demo.first_pass()
        assert report.first is not None
        console.print(summary_table(report, final=False))
        await demo.second_pass()
        report.problems += judge(report, expected_emails=demo.leads.distinct_emails)
        report.seconds = time.monotonic() - demo.started
        console.print(summary_table(report, final=True))
        console.print(verdict(report), highlight=False)
        if options.keep_running:
            demo.print_urls()
            await _until_interrupted()
            console.print("stopping…")
    return report


def demo(
    leads: Annotated[
        int,
        typer.Option(
            min=20,
            max=5000,
            help="How many leads to submit (~6% repeat an earlier email in another casing, "
            "~2% use an address the sandbox refuses).",
        ),
    ] = DEFAULT_LEADS,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the leads and of the sandbox's faults; the run prints the one it "
            "used. Default: a random one."
        ),
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Afterwards leave the API (/docs, /metrics) and the sandbox up to explore, "
            "printing their URLs and the internal token, until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="API port on 127.0.0.1; 0 picks a free one.")
    ] = 0,
) -> None:
    """Watch leads sync to a misbehaving HubSpot sandbox, then check nothing was lost or doubled.

    Everything runs in this process on embedded settings (a temporary SQLite database, no
    HubSpot token, no internet; environment variables are ignored): a local HubSpot sandbox
    with realistic trouble (429s when another integration bursts, 5xx answers, writes applied
    and then the connection dropped, hanging requests, a rule refusing some emails) and
    leadsync itself, API and sync worker.

    Realistic leads go through POST /leads while bars show the queue by status. A table then
    compares the leads with the sandbox's contacts. The refusing rule is lifted, the FAILED
    leads are requeued through POST /internal/leads/resync-failed, and they sync too.

    Exit status: 0 when every lead is SYNCED with exactly one contact per email; 1 when a lead
    is lost or duplicated (the reason is printed) or the demo cannot run; 130 on Ctrl-C before
    the end. 300 leads take 15 to 30 s.
    """
    console = Console(highlight=False)
    options = DemoOptions(leads=leads, seed=seed, keep_running=keep_running, port=port)
    try:
        report = asyncio.run(run_demo(options, console=console))
    except KeyboardInterrupt:
        console.print("[yellow]leadsync demo: interrupted[/]")
        raise typer.Exit(130) from None
    except (DemoError, httpx.HTTPError) as exc:
        console.print(f"leadsync demo: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the leadsync CLI."""
    app.command("demo")(demo)
