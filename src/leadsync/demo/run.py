"""Run the demo: submit the leads under faults, audit, lift the refusing rule, resync, judge."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time

import httpx
from rich.console import Console

from leadsync.demo import view
from leadsync.demo.forget import forget_one
from leadsync.demo.harness import Harness
from leadsync.demo.kit import REJECT_REGEX, REJECTED_DOMAIN, settled
from leadsync.demo.options import (
    POLL_SECONDS,
    RESYNC_TIMEOUT,
    SETTLE_TIMEOUT,
    SUBMIT_CONCURRENCY,
    SUBMIT_RATE,
    DemoError,
    DemoOptions,
)
from leadsync.demo.report import DemoReport, judge
from leadsync.demo.traffic import Traffic
from leadsync.demo.trouble import chaos


async def run_demo(options: DemoOptions, *, console: Console) -> DemoReport:
    """Run the demo and return what it saw; raise DemoError if it could not run."""
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 10_000)
    run = Harness(options, console=console, seed=seed)
    report = run.report
    async with contextlib.AsyncExitStack() as stack:
        await run.start(stack)
        await _first_pass(run)
        assert report.first is not None
        console.print(view.summary_table(report, final=False))
        await _second_pass(run)
        report.problems += judge(report)
        report.forgotten = await forget_one(run)
        report.problems += report.forgotten.problems
        report.seconds = time.monotonic() - run.started
        console.print(view.summary_table(report, final=True))
        console.print(view.verdict(report), highlight=False)
        if options.keep_running:
            refused = await _leave_refused_leads(run)
            view.print_urls(console, url=run.url, sandbox=run.running.url, token=run.token)
            view.hands_on(console, url=run.url, lead_ids=refused)
            view.privacy_hands_on(
                console, url=run.url, database_url=run.database_url, erasure_key=run.erasure_key
            )
            await _until_interrupted()
            console.print("stopping…")
    return report


# --- the first pass: submit under faults ------------------------------------------------------
async def _first_pass(run: Harness) -> None:
    count = len(run.leads.bodies)
    view.intro(
        run.console,
        leads=run.leads,
        seed=run.report.seed,
        sandbox_url=run.running.url,
        api_url=run.url,
    )
    with view.StatusBars(run.console, total=count, footer=run.footer, submit=True) as bars:
        submit = asyncio.create_task(_submit(run, bars))
        trouble = asyncio.create_task(chaos(run))
        try:
            counts = await run.watch(
                bars,
                done=lambda c: submit.done() and trouble.done() and settled(c),
                within=SETTLE_TIMEOUT + count / SUBMIT_RATE,
            )
            await submit
            await trouble
        finally:
            for task in (submit, trouble):
                task.cancel()
        run.event(
            f"queue settled: {counts.get('SYNCED', 0)} SYNCED, {counts.get('FAILED', 0)} FAILED"
        )
        bars.show(counts)
    run.report.first = await run.take_audit(refusing=True)
    run.report.first_traffic = Traffic.now() - run.baseline


async def _submit(run: Harness, bars: view.StatusBars) -> None:
    bodies = run.leads.bodies
    gap = 1 / SUBMIT_RATE
    slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)
    loop = asyncio.get_running_loop()
    begin = loop.time()

    async def post(index: int, body: dict[str, str]) -> None:
        # An Idempotency-Key, as the website sends: a double-clicked form stays one lead.
        key = {"Idempotency-Key": f"demo-{run.report.seed}-{index}"}
        try:
            response = await run.api.post("/leads", json=body, headers=key)
        except httpx.HTTPError as exc:
            run.report.problems.append(f"POST /leads #{index}: {type(exc).__name__}")
            return
        finally:
            run.count_posted()
            slots.release()
            if bars.submitted is not None:
                bars.advance(bars.submitted)
        if response.status_code == 201:
            run.report.accepted_ids.add(int(response.json()["id"]))
        else:
            run.report.problems.append(
                f"POST /leads #{index} answered {response.status_code}: {response.text[:200]}"
            )

    async with asyncio.TaskGroup() as group:
        for index, body in enumerate(bodies):
            await asyncio.sleep(max(0.0, begin + index * gap - loop.time()))
            await slots.acquire()  # released by post(): at most a few in flight
            group.create_task(post(index, body))
    run.report.submitted = len(bodies)
    run.event(f"all {len(bodies)} leads submitted ({run.report.accepted} answered 201 Created)")


# --- the second pass: fix the rule, resync ----------------------------------------------------
async def _second_pass(run: Harness) -> None:
    run.events.clear()
    with view.StatusBars(
        run.console, total=len(run.leads.bodies), footer=run.footer, submit=False
    ) as bars:
        await run.configure_sandbox({"reject_emails": None})
        run.event('rule fixed: PATCH /_sandbox/config {"reject_emails": null}')
        response = await run.api.post("/internal/leads/resync-failed", headers=run.auth)
        if response.status_code != 200:
            raise DemoError(f"resync-failed answered {response.status_code}: {response.text}")
        run.report.requeued = int(response.json()["requeued"])
        run.event(f"POST /internal/leads/resync-failed: {run.report.requeued} lead(s) requeued")
        counts = await run.watch(bars, done=settled, within=RESYNC_TIMEOUT)
        run.event(f"{counts.get('SYNCED', 0)} of {sum(counts.values())} leads SYNCED")
        bars.show(counts)
    run.report.final = await run.take_audit(refusing=False)
    run.report.traffic = Traffic.now() - run.baseline
    run.report.faults = dict(run.stats.get("faults", {}))


# --- with --keep-running: something for the operator to fix in the console -------------------
HANDS_ON_LEADS = 5
HANDS_ON_TIMEOUT = 30.0


async def _leave_refused_leads(run: Harness) -> list[int]:
    """Submit a few leads HubSpot refuses, wait until they are FAILED, then lift the rule: they
    wait in the console's failed queue for the person at the keyboard to resync them."""
    await run.configure_sandbox({"reject_emails": REJECT_REGEX})
    ids: list[int] = []
    for index in range(HANDS_ON_LEADS):
        body = {
            "email": f"console-{run.report.seed}-{index}@{REJECTED_DOMAIN}",
            "firstname": "Console",
            "lastname": f"Exercise {index + 1}",
        }
        response = await run.api.post("/leads", json=body)
        if response.status_code != 201:
            raise DemoError(f"POST /leads answered {response.status_code}: {response.text}")
        ids.append(int(response.json()["id"]))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANDS_ON_TIMEOUT
    pending = set(ids)
    while pending:
        for lead_id in sorted(pending):
            lead = await run.api.get(f"/internal/leads/{lead_id}", headers=run.auth)
            if lead.json().get("hubspot_sync_status") == "FAILED":
                pending.discard(lead_id)
        if pending and loop.time() > deadline:
            raise DemoError(
                f"leads {sorted(pending)} did not end FAILED within {HANDS_ON_TIMEOUT} s"
            )
        if pending:
            await asyncio.sleep(POLL_SECONDS)
    await run.configure_sandbox({"reject_emails": None})
    return ids


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
