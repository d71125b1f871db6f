"""What the user sees: live bars of the queue by status, the intro, the summary and the verdict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, Progress, Task, TextColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from leadsync.demo.kit import REJECTED_DOMAIN, STATUSES, Audit, LeadMix
from leadsync.demo.options import (
    DEMO_BUDGET,
    FAULT_5XX,
    FAULT_DROP,
    FAULT_TIMEOUT,
    SANDBOX_LIMIT,
    SUBMIT_RATE,
)
from leadsync.demo.report import DemoReport
from leadsync.demo.traffic import Traffic
from leadsync.store.tables import SyncStatus

STATUS_STYLES = {
    SyncStatus.PENDING: "yellow",
    SyncStatus.IN_PROGRESS: "cyan",
    SyncStatus.RETRYING: "magenta",
    SyncStatus.SYNCED: "green",
    SyncStatus.FAILED: "red",
}


class _Bar(BarColumn):
    """A bar coloured by its task's `style` field."""

    def render(self, task: Task) -> ProgressBar:
        self.complete_style = self.finished_style = str(task.fields.get("style", "bar.complete"))
        return super().render(task)


class StatusBars(Progress):
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


def footer(
    *, seen: Traffic, stats: Mapping[str, Any], hidden: int, events: Sequence[str]
) -> RenderableType:
    """Render the lines below the bars: HubSpot calls, contacts, and the latest events."""
    lines = (
        f"leadsync → HubSpot: {seen.requests:.0f} calls · [red]429[/] {seen.rate_limited:.0f}"
        f" · [red]5xx[/] {seen.server_errors:.0f} · no answer {seen.no_answer:.0f}"
        f" · retries {seen.retries:.0f}",
        f"sandbox: [bold]{stats.get('contacts', 0)}[/] contacts · "
        f"[dim]{hidden} per-lead warnings shown as bars, not log lines[/]",
        *events[-9:],
    )
    return Group(*(Text.from_markup(line) for line in lines))


def intro(console: Console, *, leads: LeadMix, seed: int, sandbox_url: str, api_url: str) -> None:
    """Print what is about to run: the sandbox's trouble, leadsync, and the leads."""
    pad = " " * 19
    console.print(
        f"[bold]leadsync demo[/] · seed {seed} (--seed {seed} replays these leads and faults)\n"
        f"  HubSpot sandbox  {sandbox_url}  limit {SANDBOX_LIMIT}, {FAULT_5XX:.0%} 5xx,\n"
        f"{pad}{FAULT_DROP:.0%} applied then dropped, {FAULT_TIMEOUT:.0%} hang, "
        f"refuses *@{REJECTED_DOMAIN}\n"
        f"  leadsync         {api_url}  API + worker, SQLite in a temp dir,\n"
        f"{pad}budget {DEMO_BUDGET}: above the limit on purpose\n"
        f"  {len(leads.bodies)} leads, up to {SUBMIT_RATE:.0f}/s: {leads.repeats} repeat an "
        f"email in another casing, {len(leads.rejected_emails)} are refused",
        highlight=False,
    )


def print_urls(console: Console, *, url: str, sandbox: str, token: str) -> None:
    """Print where to explore the services that are left running."""
    console.print(
        "\n[bold]Still running[/] (Ctrl-C to stop; everything is deleted on exit):\n"
        f"  console         {url}/console (log in with the internal token below)\n"
        f"  API docs        {url}/docs\n"
        f"  metrics         {url}/metrics\n"
        f"  internal token  {token}\n"
        f"  sync status     curl -H 'Authorization: Bearer {token}' "
        f"{url}/internal/sync/status\n"
        f"  a new lead      curl -X POST {url}/leads -H 'Content-Type: application/json' "
        """-d '{"email": "ana@ejemplo.es", "firstname": "Ana"}'\n"""
        f"  sandbox         {sandbox}/_sandbox/contacts · {sandbox}/_sandbox/stats · "
        f"{sandbox}/_sandbox/docs",
        highlight=False,
        soft_wrap=True,
    )


def hands_on(console: Console, *, url: str, lead_ids: list[int]) -> None:
    """Tell the person at the keyboard what is left for them to fix in the console."""
    ids = ", ".join(str(i) for i in lead_ids)
    console.print(
        f"\n[bold]Try the console:[/] HubSpot refused {len(lead_ids)} more lead(s) ({ids}), "
        "as it refuses addresses it deems invalid; they are FAILED. The rule that refused "
        f"them is lifted now. Open {url}/console, log in with the internal token, go to "
        "[bold]Failed[/], select them and resync: within seconds they are SYNCED, and each "
        "lead's page shows its history (failed, then synced).",
        highlight=False,
        soft_wrap=True,
    )


def privacy_hands_on(console: Console, *, url: str, database_url: str, erasure_key: str) -> None:
    """Show how to forget a person from the command line, against the running demo."""
    console.print(
        "\n[bold]Forget a person[/] (docs/privacy.md): submit a lead as above, then erase its "
        "address from another terminal, and watch the contact go from the sandbox and the "
        "lead's row lose its personal data:\n"
        f"  DATABASE_URL={database_url} LEADSYNC_ERASURE_KEY={erasure_key} \\\n"
        "    .venv/bin/leadsync erase ana@ejemplo.es\n"
        f"  or: curl -X POST {url}/internal/erasures -H 'Authorization: Bearer <token>' "
        """-H 'Content-Type: application/json' -d '{"email": "ana@ejemplo.es"}'""",
        highlight=False,
        soft_wrap=True,
    )


def _zero(value: int) -> str:
    return f"[green]{value}[/]" if value == 0 else f"[bold red]{value}[/]"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


_ROWS = (
    "leads accepted (POST /leads → 201)",
    "leads stored",
    *(f"  {status}" for status in STATUSES),
    "distinct emails (any casing)",
    "contacts in the sandbox",
    "duplicate contacts (same email)",
    "leads pointing at another contact",
    "lost (SYNCED, no contact)",
    "HubSpot calls by leadsync",
    "  answered 429 / 5xx / nothing",
    "leads held back by 429 (no attempt)",
    "retries (sync_retries_total metric)",
    "sync latency median / p95",
)


def _column(report: DemoReport, audit: Audit, traffic: Traffic) -> list[str]:
    return [
        str(report.accepted),
        str(audit.stored),
        *(str(audit.counts.get(status, 0)) for status in STATUSES),
        str(audit.distinct_emails),
        str(audit.contacts),
        _zero(audit.duplicate_contacts),
        _zero(audit.mismatched_ids),
        _zero(audit.missing_contacts),
        f"{traffic.requests:.0f}",
        f"{traffic.rate_limited:.0f} / {traffic.server_errors:.0f} / {traffic.no_answer:.0f}",
        f"{traffic.held_by_429:.0f}",
        f"{traffic.retries:.0f}",
        f"{_seconds(audit.median_latency)} / {_seconds(audit.p95_latency)}",
    ]


def summary_table(report: DemoReport, *, final: bool) -> Table:
    """Render the leads against the sandbox: after the first pass, and after the fix."""
    table = Table(title="leads vs. HubSpot sandbox", title_justify="left", caption_justify="left")
    table.add_column("")
    columns: list[list[str]] = []
    if report.first is not None:
        table.add_column("first pass", justify="right")
        columns.append(_column(report, report.first, report.first_traffic))
    if final and report.final is not None:
        table.add_column("after fix + resync", justify="right")
        columns.append(_column(report, report.final, report.traffic))
    for index, label in enumerate(_ROWS):
        table.add_row(label, *(column[index] for column in columns))
    faults = report.faults
    if final:
        table.caption = (
            f"sandbox faults injected: 5xx {faults.get('5xx', 0)}, applied then dropped "
            f"{faults.get('drop', 0)}, hangs {faults.get('timeout', 0)}; "
            f"{report.neighbour_requests} requests from another integration"
        )
    return table


def verdict(report: DemoReport) -> str:
    """Return the closing line(s): what was proven, or every problem found."""
    final = report.final
    if report.ok and final is not None:
        text = (
            f"[bold green]✔ nothing lost, nothing duplicated[/] ({report.seconds:.1f} s): "
            f"{report.accepted} leads →\n  {final.contacts} contacts, one per email, all SYNCED"
        )
        gone = report.forgotten
        if gone is not None:
            text += (
                f"\n[bold green]✔ forgotten on request[/]: erasure {gone.erasure_id} of "
                f"{gone.masked_email} → its HubSpot contact deleted (GDPR delete), "
                f"{gone.rows_scrubbed} lead row(s) kept without personal data"
            )
        return text
    # Problems quote leads and HubSpot's errors: brackets there are text, not rich markup.
    lines = "\n".join(f"  ✘ {escape(problem)}" for problem in report.problems)
    return f"[bold red]✘ the demo found problems:[/]\n{lines}"
