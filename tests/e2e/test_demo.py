"""`leadsync demo` end to end: it exits 0, and its numbers show nothing lost and nothing doubled."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from leadsync.demo import register
from leadsync.demo import run as run_module
from leadsync.demo.options import DemoOptions, demo_leads
from leadsync.demo.report import DemoReport
from leadsync.demo.run import run_demo
from leadsync.demo.view import verdict

LEADS, SEED = 60, 5
LEADSYNC = str(Path(sys.executable).with_name("leadsync"))


def cli() -> typer.Typer:
    """A CLI with only the demo command, as cli.py registers it."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """Test shim."""

    register(app)
    return app


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.usefixtures("restore_logging")
def test_demo_syncs_every_lead_to_exactly_one_contact(monkeypatch: pytest.MonkeyPatch) -> None:
    reports: list[DemoReport] = []

    async def keep_report(options: DemoOptions, *, console: Console) -> DemoReport:
        report = await run_demo(options, console=console)
        reports.append(report)
        return report

    monkeypatch.setattr(run_module, "run_demo", keep_report)  # the command imports it per call
    result = CliRunner().invoke(cli(), ["demo", "--leads", str(LEADS), "--seed", str(SEED)])

    assert result.exit_code == 0, result.output
    assert "nothing lost, nothing duplicated" in result.output
    (report,) = reports
    leads = demo_leads(LEADS, seed=SEED)
    first, final = report.first, report.final
    assert first is not None
    assert final is not None
    assert report.problems == []
    assert report.submitted == report.accepted == final.stored == LEADS
    # First pass: the refused addresses FAILED (nothing else should, but a lead could exhaust
    # its attempts on a loaded machine), nothing is left in flight.
    assert first.counts["FAILED"] >= len(leads.rejected_emails) > 0
    assert first.counts["SYNCED"] + first.counts["FAILED"] == LEADS
    # After the fix and resync-failed: every lead SYNCED, one contact per email, no strays.
    assert final.counts == {
        "PENDING": 0,
        "IN_PROGRESS": 0,
        "RETRYING": 0,
        "SYNCED": LEADS,
        "FAILED": 0,
        "ERASED": 0,
    }
    assert final.contacts == final.distinct_emails == len(leads.distinct_emails)
    assert final.duplicates == final.missing_contacts == final.stray_contacts == 0
    assert final.ok, final.problems  # every check of the kit's audit, newest values included
    assert report.requeued >= len(leads.rejected_emails)
    # The trouble the demo promises did happen.
    assert report.traffic.rate_limited >= 1
    assert report.faults["drop"] >= 1
    assert final.median_latency is not None


def test_demo_help_documents_every_option() -> None:
    result = CliRunner().invoke(cli(), ["demo", "--help"], terminal_width=120)

    assert result.exit_code == 0
    for option in ("--leads", "--seed", "--keep-running", "--port"):
        assert option in result.output


def test_demo_exits_1_and_says_why_when_a_lead_is_duplicated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(options: DemoOptions, *, console: Console) -> DemoReport:
        report = DemoReport(seed=1, problems=["2 duplicate contact(s)"])
        console.print(verdict(report))
        return report

    monkeypatch.setattr(run_module, "run_demo", broken)
    result = CliRunner().invoke(cli(), ["demo", "--leads", "20"])

    assert result.exit_code == 1
    assert "2 duplicate contact(s)" in result.output


def test_demo_leads_are_realistic_and_reproducible() -> None:
    leads = demo_leads(300, seed=42)

    assert leads == demo_leads(300, seed=42)
    assert len(leads.bodies) == 300
    assert leads.repeats >= 2
    assert len(leads.rejected_emails) >= 2
    # Repeats use another casing of an address sent before, so they must not add contacts.
    assert len(leads.distinct_emails) == 300 - leads.repeats
    lowered = [body["email"].lower() for body in leads.bodies]
    repeated = [
        b["email"] for b, e in zip(leads.bodies, lowered, strict=True) if lowered.count(e) > 1
    ]
    assert any(email != email.lower() for email in repeated)
    # Even a short run shows a repeat and a refused address.
    short = demo_leads(20, seed=1)
    assert short.repeats == len(short.rejected_emails) == 2


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_keep_running_leaves_refused_leads_for_the_console_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    # The README's walk-through: the demo stays up with a few FAILED leads whose rule is
    # lifted, so resyncing them (here through the API the console calls) makes them SYNCED.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSYNC_", "HUBSPOT_"))}
    command = [LEADSYNC, "demo", "--leads", "20", "--seed", "3", "--keep-running", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Try the console" in line:
                break
        output = "".join(lines)
        assert "Try the console" in output, output[-3000:]
        url = re.search(r"console\s+(http://\S+)/console", output)
        token = re.search(r"^\s*internal token\s+(\S+)\s*$", output, re.MULTILINE)
        assert url is not None, output[-3000:]
        assert token is not None, output[-3000:]
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        with httpx.Client(base_url=url.group(1), headers=headers, timeout=10) as api:
            listed = api.get("/internal/leads", params={"status": "FAILED"})
            assert listed.status_code == 200, listed.text
            failed = listed.json()["items"]
            assert sorted(lead["email"] for lead in failed) == [
                f"console-3-{i}@rejected.example" for i in range(5)
            ]
            requeued = api.post(
                "/internal/leads/resync-failed", json={"lead_ids": [lead["id"] for lead in failed]}
            ).json()["requeued"]
            assert requeued == 5

            def all_synced() -> bool:
                page = api.get("/internal/leads", params={"status": "FAILED"}).json()["items"]
                leads = [api.get(f"/internal/leads/{lead['id']}").json() for lead in failed]
                return not page and all(lead["hubspot_sync_status"] == "SYNCED" for lead in leads)

            deadline = time.monotonic() + 30
            while not all_synced():
                assert time.monotonic() < deadline, "the resynced leads did not become SYNCED"
                time.sleep(0.2)  # polling a separate process's state, with a deadline
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
