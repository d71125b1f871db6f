"""The ops files agree with the code: dashboard, alert rules and runbook.

Every metric a PromQL expression names (and every label value it matches on) is exported by
the real `/metrics` of a running app, read through a real PromQL parser (promql-parser);
promtool accepts the rules and the dashboard's queries, and its rule unit tests
(ops/prometheus/alerts.test.yml) show the alerts fire once, however many processes report
the same gauges; every runbook link resolves and every `leadsync` command and internal URL in
the runbook (read with markdown-it-py) exists.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]  # types-PyYAML
from markdown_it import MarkdownIt
from markdown_it.token import Token
from prometheus_client.parser import text_string_to_metric_families
from promql_parser import AggregateExpr, BinaryExpr, Call, MatchOp, ParenExpr, VectorSelector
from starlette.routing import Match
from typer.main import get_command
from typer.testing import CliRunner

from leadsync import cli
from leadsync.app import create_app
from leadsync.config import Settings
from tests.helpers.postgres import in_ci

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "leadsync-dashboard.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "ops" / "prometheus" / "alerts.test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"

DATASOURCE_UID = "${DS_PROMETHEUS}"
SEVERITIES = {"critical", "warning", "info"}
# Prometheus' own series a rule may use besides ours.
PROMETHEUS_SERIES = {"up"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
# The alerts the issue asks for (the rest are our judgement and may change freely).
REQUIRED_ALERTS = {
    "LeadsyncSyncStalled",
    "LeadsyncSyncFailureRateHigh",
    "LeadsyncSyncRetriesHigh",
    "LeadsyncHubSpotAuthPaused",
    "LeadsyncHubSpotDailyLimitReached",
    "LeadsyncTargetDown",
    "LeadsyncMetricsAbsent",
}
# Every process reports the same gauges: read them with one of these. Counters and
# histograms are read with rate() or increase(), then sum()med across processes.
GAUGE_READERS = {"max", "min", "count", "absent"}
COUNTER_READERS = {"rate", "increase"}

# --------------------------------------------------------------------------- loading files


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def load_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))  # collapsed rows nest their panels


def dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in iter_panels(load_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def alert_exprs() -> list[tuple[str, str]]:
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in load_rules()]


# --------------------------------------------------------------------------- PromQL


def as_prometheus_gets_it(expr: str) -> str:
    """Return a query with Grafana's interval variables ($__rate_interval...) filled in."""
    return re.sub(r"\$__\w+", "5m", expr)


def nodes(expr: str) -> list[tuple[promql_parser.Expr, list[str]]]:
    """Return every node of the parsed query with what encloses it, innermost first.

    An enclosing aggregation or function is named by its operator ("max", "rate"), a range
    selector by "[]"; parentheses are left out.
    """
    found: list[tuple[promql_parser.Expr, list[str]]] = []
    around: list[str] = []

    def enter(node: promql_parser.Expr) -> None:
        found.append((node, around[::-1]))
        if isinstance(node, AggregateExpr):
            around.append(str(node.op))
        elif isinstance(node, Call):
            around.append(node.func.name)
        elif not isinstance(node, ParenExpr):
            around.append("[]" if isinstance(node, promql_parser.MatrixSelector) else "")

    def leave(node: promql_parser.Expr) -> None:
        if not isinstance(node, ParenExpr):
            around.pop()

    promql_parser.walk(promql_parser.parse(as_prometheus_gets_it(expr)), enter, leave)
    return found


def selectors(expr: str) -> list[tuple[VectorSelector, list[str]]]:
    return [(node, around) for node, around in nodes(expr) if isinstance(node, VectorSelector)]


def grouping_labels(expr: str) -> set[str]:
    """Return the labels of every by/without and on/ignoring/group_left/group_right."""
    labels: set[str] = set()
    for node, _around in nodes(expr):
        if isinstance(node, AggregateExpr) and node.modifier:
            labels.update(node.modifier.labels)
        if isinstance(node, BinaryExpr) and node.modifier:
            labels.update(node.modifier.matching.labels if node.modifier.matching else [])
            labels.update(node.modifier.group_labels or [])
    return labels


# --------------------------------------------------------------------------- the real /metrics


@dataclass
class Exported:
    """What a running app serves on /metrics: sample names, their labels, family types."""

    labels: dict[str, list[dict[str, str]]]
    types: dict[str, str]

    def family_names(self) -> set[str]:
        return {base_name(name) for name in self.labels}


def base_name(sample: str) -> str:
    """Return the family of a sample name (histograms' and counters' suffixes stripped)."""
    return re.sub(r"_(bucket|sum|count|total)$", "", sample)


async def _scrape(tmp: Path) -> str:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp / 'ops.db'}",
        internal_token="ops-test-internal-token",
        hubspot_token="ops-test-hubspot-token",
        hubspot_base_url="http://127.0.0.1:9",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    text = asyncio.run(_scrape(tmp_path_factory.mktemp("metrics")))
    labels: dict[str, list[dict[str, str]]] = defaultdict(list)
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels[sample.name].append(dict(sample.labels))
            types[sample.name] = family.type
    return Exported(dict(labels), types)


def _matcher_problem(exported: Exported, name: str, matcher: promql_parser.Matcher) -> str | None:
    label, value = matcher.name, matcher.value
    values = {labels[label] for labels in exported.labels[name] if label in labels}
    if not values:
        return f"{name} has no label {label!r}"
    if matcher.op in (MatchOp.Equal, MatchOp.NotEqual):
        wanted = [value]
    elif re.fullmatch(r"[\w|]+", value):
        wanted = value.split("|")  # a plain alternation: each alternative must exist
    else:
        return None if any(re.fullmatch(value, v) for v in values) else f"{name}: no {label}"
    missing = [w for w in wanted if w not in values]
    return f"{name}{{{label}}} has no value {missing} (has {sorted(values)})" if missing else None


def promql_problems(where: str, expr: str, exported: Exported) -> list[str]:
    try:
        found = selectors(expr)
    except ValueError as exc:  # promql_parser's syntax error
        return [f"{where}: {exc}"]
    problems: list[str] = []
    known_labels = set(TARGET_LABELS)
    for selector, around in found:
        name = selector.name or ""
        if name in PROMETHEUS_SERIES:
            continue
        if not name.startswith("leadsync_"):
            problems.append(f"{where}: {name!r} is not a leadsync metric")
            continue
        if name not in exported.labels:
            problems.append(f"{where}: {name} (family {base_name(name)}) is not exported")
            continue
        known_labels |= {label for labels in exported.labels[name] for label in labels}
        problems += [
            f"{where}: {problem}"
            for matcher in selector.matchers.matchers
            if (problem := _matcher_problem(exported, name, matcher))
        ]
        kind = exported.types[name]
        outer = [*around, "", ""]  # "" past the top
        if kind == "gauge" and outer[0] not in GAUGE_READERS:
            problems.append(
                f"{where}: gauge {name} must be read with max() (every process reports it)"
            )
        if kind in ("counter", "histogram") and not (
            outer[0] == "[]" and outer[1] in COUNTER_READERS and "sum" in around
        ):
            problems.append(f"{where}: {name} must be sum()med over rate()/increase()")
    unknown = grouping_labels(expr) - known_labels
    if unknown:
        problems.append(f"{where}: groups by labels no metric has: {sorted(unknown)}")
    return problems


def test_every_metric_and_label_in_promql_is_exported(exported: Exported) -> None:
    exprs = dashboard_exprs() + alert_exprs()
    assert len(exprs) > 10

    problems = [p for where, expr in exprs for p in promql_problems(where, expr, exported)]

    assert not problems, "\n".join(problems)


def test_promql_check_catches_typos(exported: Exported) -> None:
    # The check above must be able to fail: a misspelt metric, label or value, a missing max().
    assert promql_problems("t", "sum(rate(leadsync_sync_attempt_total[5m]))", exported)
    assert promql_problems("t", 'max(leadsync_leads{status="failed"})', exported)
    assert promql_problems("t", 'max(leadsync_leads{state="FAILED"})', exported)
    assert promql_problems("t", "max by (state) (leadsync_leads)", exported)
    assert promql_problems("t", "leadsync_oldest_due_lead_seconds > 900", exported)
    assert promql_problems("t", "rate(leadsync_sync_retries_total[5m]) > 1", exported)
    assert promql_problems("t", "sum(leadsync_sync_retries_total)", exported)
    assert promql_problems("t", "max(leadsync_leads{status=FAILED})", exported)  # syntax
    assert not promql_problems("t", 'max by (status) (leadsync_leads{status="FAILED"})', exported)


# --------------------------------------------------------------------------- the dashboard


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = load_dashboard()

    assert dashboard["title"] == "leadsync"
    assert dashboard["uid"] == "leadsync"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard.get("id") is None  # Grafana assigns it on import
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"

    panels = list(iter_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["expr"].strip()


RATE = "[$__rate_interval]"
# The seed's four signals (throughput, failure rate, retries, latency) and the queue, gate
# and budget views: each a query, or part of one, of the dashboard.
SIGNALS = [
    f"sum by (outcome) (rate(leadsync_sync_attempts_total{RATE}))",
    f'(sum(rate(leadsync_sync_attempts_total{{outcome="failed"}}{RATE}))) / '
    f'(sum(rate(leadsync_sync_attempts_total{{outcome=~"synced|retry|failed"}}{RATE})))',
    f"sum(rate(leadsync_sync_retries_total{RATE}))",
    *(
        f"histogram_quantile({q}, sum by ({by}) (rate({histogram}_bucket{RATE})))"
        for histogram, by in (
            ("leadsync_lead_sync_latency_seconds", "le"),
            ("leadsync_hubspot_request_duration_seconds", "le, operation"),
        )
        for q in ("0.5", "0.95", "0.99")
    ),
    'leadsync_hubspot_requests_total{status_class="429"}',
    'max by (status) (leadsync_leads{status!="SYNCED"})',
    "max by (reason) (leadsync_gate_paused)",
    "max(leadsync_oldest_due_lead_seconds)",
    "max(leadsync_hubspot_daily_remaining)",
    "max(leadsync_hubspot_budget_remaining)",
]


def test_dashboard_shows_every_exported_metric_and_signal(exported: Exported) -> None:
    exprs = [expr for _where, expr in dashboard_exprs()]
    used = {base_name(s.name or "") for expr in exprs for s, _around in selectors(expr)}
    shown = {node.prettify() for expr in exprs for node, _around in nodes(expr)}

    assert {f for f in exported.family_names() if f.startswith("leadsync_")} <= used
    missing = [s for s in SIGNALS if nodes(s)[0][0].prettify() not in shown]
    assert not missing, f"the dashboard has no query for: {missing}"


# --------------------------------------------------------------------------- the alert rules


def test_alert_rules_carry_severity_summary_and_runbook() -> None:
    rules = load_rules()
    names = [rule["alert"] for rule in rules]

    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), rule["alert"]
        assert annotations["description"].strip(), rule["alert"]
        assert re.fullmatch(r"(.*/)?docs/runbook\.md#[\w-]+", annotations["runbook_url"])


def test_every_runbook_url_anchor_is_a_runbook_heading() -> None:
    anchors = runbook_anchors()

    for rule in load_rules():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in docs/runbook.md"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_accepts_every_dashboard_query(tmp_path: Path) -> None:
    # promtool parses rule files only, so each query becomes a recording rule.
    rules = [
        {"record": f"leadsync:dashboard_query_{index}", "expr": as_prometheus_gets_it(expr)}
        for index, (_where, expr) in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run_promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_once_across_processes_and_stay_quiet_otherwise() -> None:
    # The cases are promtool rule unit tests: input series from two processes, expected
    # alerts (labels and rendered annotations) at given times.
    spec = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    assert spec["rule_files"] == [ALERTS.name]
    checks = [check for case in spec["tests"] for check in case["alert_rule_test"]]
    alerts = {rule["alert"] for rule in load_rules()}
    assert {c["alertname"] for c in checks} == alerts, "every alert needs a case"
    fired = {c["alertname"] for c in checks if c["exp_alerts"]}
    assert fired == alerts, "every alert needs a case where it fires"

    result = run_promtool("test", "rules", str(ALERT_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- the runbook

SHELL_FENCES = ("", "sh", "bash", "console", "shell")


def runbook_tokens() -> list[Token]:
    """Return the runbook's Markdown tokens, inline ones flattened in."""
    tokens = MarkdownIt("commonmark").parse(RUNBOOK.read_text(encoding="utf-8"))
    return [t for token in tokens for t in (token, *(token.children or []))]


def github_anchor(heading: str) -> str:
    """Return the anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    tokens = runbook_tokens()
    anchors = [
        github_anchor(tokens[i + 1].content)
        for i, token in enumerate(tokens)
        if token.type == "heading_open"
    ]
    assert len(anchors) == len(set(anchors)), "duplicate headings make ambiguous anchors"
    return set(anchors)


def runbook_command_lines() -> list[list[str]]:
    """Return every shell command line of the runbook: code blocks and inline code."""
    lines: list[str] = []
    for token in runbook_tokens():
        if token.type == "fence" and token.info in SHELL_FENCES:
            lines += token.content.replace("\\\n", " ").splitlines()
        elif token.type == "code_inline":
            lines.append(token.content)
    commands = []
    for line in lines:
        words = shlex.split(line.strip().removeprefix("$ "), comments=True)
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            words.pop(0)  # VAR=value before the command
        if words:
            commands.append(words)
    return commands


def leadsync_commands() -> list[list[str]]:
    # A bare `leadsync` is the program's name in prose, not a command line.
    commands = runbook_command_lines()
    return [words[1:] for words in commands if words[0] == "leadsync" and len(words) > 1]


def test_runbook_links_resolve() -> None:
    anchors = runbook_anchors()
    hrefs = [str(t.attrGet("href")) for t in runbook_tokens() if t.type == "link_open"]
    assert any(href.startswith("#") for href in hrefs)

    for anchor in [href[1:] for href in hrefs if href.startswith("#")]:
        assert anchor in anchors, f"docs/runbook.md links to #{anchor}, which is no heading"


def test_runbook_covers_the_procedures_the_issue_asks_for() -> None:
    anchors = runbook_anchors()

    for section in (
        "rotate-the-hubspot-token",
        "inspect-the-failed-queue",
        "trigger-a-resync",
        "scale-out-workers",
        "postgresql-failover",
        "leadsynchubspotdailylimitreached",
    ):
        assert section in anchors
    text = RUNBOOK.read_text(encoding="utf-8")
    for needle in (
        "HUBSPOT_TOKEN_FILE",
        "advisory lock",
        "pool_pre_ping",
        "LISTEN",
        "/readyz",
        "'http://host:8000/internal/leads?status=FAILED'",
    ):
        assert needle in text, needle


def test_every_leadsync_subcommand_in_the_runbook_has_help() -> None:
    subcommands = sorted({words[0] for words in leadsync_commands()})
    assert {"status", "resync-failed", "worker", "serve"} <= set(subcommands)
    # The installed console script once (each start imports the whole application)...
    executable = Path(sys.executable).with_name("leadsync")
    assert executable.exists(), f"the leadsync console script is not installed: {executable}"
    result = subprocess.run(
        [str(executable), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runner = CliRunner()

    for name in subcommands:  # ...and each subcommand in process.
        assert name in result.stdout, f"`leadsync --help` does not list {name}"
        outcome = runner.invoke(cli.app, [name, "--help"])
        assert outcome.exit_code == 0, f"`leadsync {name} --help` failed:\n{outcome.output}"


def test_every_leadsync_command_line_in_the_runbook_parses() -> None:
    # Parsed by the real CLI definition without running anything: unknown commands or
    # options and bad values fail here, as they would for the operator.
    group = get_command(cli.app)
    commands = leadsync_commands()
    assert any("--lead-id" in words and "--older-than" not in words for words in commands)
    assert any("--older-than" in words for words in commands)
    assert any("--metrics-port" in words for words in commands)

    for words in commands:
        parent = group.make_context("leadsync", [words[0]])
        command = group.get_command(parent, words[0])  # type: ignore[attr-defined]
        assert command is not None, f"leadsync has no command {words[0]!r}"
        try:
            command.make_context(words[0], list(words[1:]), parent=parent)
        except Exception as exc:  # click's UsageError, from the click that typer bundles
            if not hasattr(exc, "format_message"):
                raise
            pytest.fail(f"`leadsync {shlex.join(words)}`: {exc.format_message()}")


def test_every_internal_url_in_the_runbook_is_a_route() -> None:
    app = create_app(Settings(database_url="sqlite:///unused.db"))
    curls = [words for words in runbook_command_lines() if words[0] == "curl"]
    assert len(curls) >= 5

    for words in curls:
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        url = next(w for w in words if w.startswith("http"))
        scope = {"type": "http", "path": httpx.URL(url).path, "method": method, "root_path": ""}
        matches = [route.matches(scope)[0] for route in app.router.routes]
        assert Match.FULL in matches, f"no {method} route for {url} ({shlex.join(words)})"
