"""The ops files agree with the code: dashboard, alert rules and runbook.

Every metric a PromQL expression names (and every label value it matches on) is exported by
the real `/metrics` of a running app; promtool accepts the rules and the dashboard's queries
and the alerts fire once, however many processes report the same gauges; every runbook link
resolves and every `leadsync` command and internal URL in the runbook exists.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]  # types-PyYAML
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Match
from typer.main import get_command
from typer.testing import CliRunner

from leadsync import cli
from leadsync.app import create_app
from leadsync.config import Settings
from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "leadsync-dashboard.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
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


# --------------------------------------------------------------------------- a tiny PromQL reader

_GRAFANA_VAR = re.compile(r"\$__\w+|\$\{[^}]+\}|\$\w+")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_SELECTOR = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_AGGREGATED_GAUGE = re.compile(r"\b(max|min|count|absent)\s*(by\s*\([^)]*\)\s*)?\(\s*$")
_RATE_OF_COUNTER = re.compile(r"\b(rate|increase)\s*\(\s*$")


@dataclass
class Selector:
    name: str
    matchers: list[tuple[str, str, str]]
    prefix: str  # the expression text before the selector, to see what wraps it


@dataclass
class Parsed:
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)


def parse_promql(expr: str) -> Parsed:
    """Return the series selectors and grouping labels of a PromQL expression."""
    text = _GRAFANA_VAR.sub("5m", expr)
    parsed = Parsed()
    for match in _GROUPING.finditer(text):
        parsed.grouping_labels |= {label.strip() for label in match.group(2).split(",") if label}
    text = _RANGE.sub("", _GROUPING.sub(" ", text))
    for match in _SELECTOR.finditer(text):
        name, braces = match.group(1), match.group(2)
        rest = text[match.end() :].lstrip()
        if name in _KEYWORDS or (braces is None and rest.startswith("(")):
            continue  # an operator, a function or an aggregation
        matchers = _MATCHER.findall(braces or "")
        parsed.selectors.append(Selector(name, matchers, text[: match.start()]))
    return parsed


def test_promql_reader_finds_selectors_labels_and_wrappers() -> None:
    parsed = parse_promql(
        "histogram_quantile(0.95, sum by (le, operation) "
        '(rate(x_bucket{operation="create", a=~"b|c"}[$__rate_interval]))) / max(y) and bool up'
    )

    assert [s.name for s in parsed.selectors] == ["x_bucket", "y", "up"]
    assert parsed.selectors[0].matchers == [("operation", "=", "create"), ("a", "=~", "b|c")]
    assert parsed.grouping_labels == {"le", "operation"}
    assert _RATE_OF_COUNTER.search(parsed.selectors[0].prefix)
    assert _AGGREGATED_GAUGE.search(parsed.selectors[1].prefix)


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


def _matcher_problem(exported: Exported, name: str, matcher: tuple[str, str, str]) -> str | None:
    label, op, value = matcher
    values = {labels[label] for labels in exported.labels[name] if label in labels}
    if not values:
        return f"{name} has no label {label!r}"
    if op in ("=", "!="):
        wanted = [value]
    elif re.fullmatch(r"[\w|]+", value):
        wanted = value.split("|")  # a plain alternation: each alternative must exist
    else:
        return None if any(re.fullmatch(value, v) for v in values) else f"{name}: no {label}"
    missing = [w for w in wanted if w not in values]
    return f"{name}{{{label}}} has no value {missing} (has {sorted(values)})" if missing else None


def promql_problems(where: str, expr: str, exported: Exported) -> list[str]:
    parsed = parse_promql(expr)
    problems: list[str] = []
    known_labels = set(TARGET_LABELS)
    for selector in parsed.selectors:
        name = selector.name
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
            for matcher in selector.matchers
            if (problem := _matcher_problem(exported, name, matcher))
        ]
        kind = exported.types[name]
        if kind == "gauge" and not _AGGREGATED_GAUGE.search(selector.prefix):
            problems.append(
                f"{where}: gauge {name} must be read with max() (every process reports it)"
            )
        if kind in ("counter", "histogram") and not (
            _RATE_OF_COUNTER.search(selector.prefix) and "sum" in expr
        ):
            problems.append(f"{where}: {name} must be sum()med over rate()/increase()")
    unknown = parsed.grouping_labels - known_labels
    if unknown:
        problems.append(f"{where}: groups by labels no metric has: {sorted(unknown)}")
    return problems


def test_every_metric_and_label_in_promql_is_exported(exported: Exported) -> None:
    exprs = dashboard_exprs() + alert_exprs()
    assert len(exprs) > 10

    problems = [p for where, expr in exprs for p in promql_problems(where, expr, exported)]

    assert not problems, "\n".join(problems)


def test_promql_check_catches_typos(exported: Exported) -> None:
    # The check above must be able to fail: a misspelt metric, label value or missing max().
    assert promql_problems("t", "sum(rate(leadsync_sync_attempt_total[5m]))", exported)
    assert promql_problems("t", 'max(leadsync_leads{status="failed"})', exported)
    assert promql_problems("t", "leadsync_oldest_due_lead_seconds > 900", exported)
    assert promql_problems("t", "rate(leadsync_sync_retries_total[5m]) > 1", exported)
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


def test_dashboard_shows_every_exported_metric_and_signal(exported: Exported) -> None:
    exprs = [expr for _where, expr in dashboard_exprs()]
    joined = "\n".join(exprs)
    used = {base_name(s.name) for expr in exprs for s in parse_promql(expr).selectors}

    assert {f for f in exported.family_names() if f.startswith("leadsync_")} <= used
    # The seed's four signals and the queue, gate and budget views.
    assert "sum by (outcome) (rate(leadsync_sync_attempts_total" in joined
    assert any('outcome="failed"' in e and "/" in e for e in exprs), "failure rate"
    assert "rate(leadsync_sync_retries_total" in joined
    for histogram in ("leadsync_lead_sync_latency_seconds", "leadsync_hubspot_request_duration"):
        for quantile in ("0.5", "0.95", "0.99"):
            assert any(f"histogram_quantile({quantile}," in e and histogram in e for e in exprs), (
                histogram,
                quantile,
            )
    assert "by (le, operation)" in joined
    assert 'leadsync_hubspot_requests_total{status_class="429"}' in joined
    assert "max by (status) (leadsync_leads" in joined
    assert "max by (reason) (leadsync_gate_paused)" in joined
    assert "max(leadsync_oldest_due_lead_seconds)" in joined
    assert "max(leadsync_hubspot_daily_remaining)" in joined
    assert "max(leadsync_hubspot_budget_remaining)" in joined


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
        {"record": f"leadsync:dashboard_query_{index}", "expr": _GRAFANA_VAR.sub("5m", expr)}
        for index, (_where, expr) in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run_promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


# Two processes (`serve` and one worker) report every gauge of the same database: each alert
# must fire exactly once, and never on harmless values. Times are minutes from the start.
API = 'instance="api-1:8000",job="leadsync-api"'
WORKER = 'instance="worker-1:9108",job="leadsync-worker"'


def _series(name: str, labels: str, values: str, *targets: str) -> list[dict[str, str]]:
    """Return one input series per target (default: both processes) with these labels."""
    return [
        {"series": f"{name}{{{','.join(filter(None, (labels, target)))}}}", "values": values}
        for target in targets or (API, WORKER)
    ]


def _fires(alert: str, at: int, **labels: str) -> dict[str, Any]:
    severity = {r["alert"]: r["labels"]["severity"] for r in load_rules()}[alert]
    return {
        "eval_time": f"{at}m",
        "alertname": alert,
        "exp_alerts": [{"exp_labels": {"severity": severity, **labels}}],
    }


def _silent(alert: str, at: int) -> dict[str, Any]:
    return {"eval_time": f"{at}m", "alertname": alert, "exp_alerts": []}


def _case(series: list[dict[str, str]], *checks: dict[str, Any]) -> dict[str, Any]:
    alive = _series("leadsync_leads", 'status="PENDING"', "0x60")  # metrics are being scraped
    return {"interval": "1m", "input_series": series + alive, "alert_rule_test": list(checks)}


ATTEMPTS = "leadsync_sync_attempts_total"
ALERT_CASES = [
    _case(
        _series("leadsync_oldest_due_lead_seconds", "", "1000x10"),
        _silent("LeadsyncSyncStalled", 1),
        _fires("LeadsyncSyncStalled", 3),
    ),
    _case(
        _series("leadsync_oldest_due_lead_seconds", "", "600x10"),
        _silent("LeadsyncSyncStalled", 5),
    ),
    _case(  # queued behind a daily-limit pause, which pages by itself
        _series("leadsync_oldest_due_lead_seconds", "", "5000x10")
        + _series("leadsync_gate_paused", 'reason="daily_limit"', "1x10"),
        _silent("LeadsyncSyncStalled", 5),
        _fires("LeadsyncHubSpotDailyLimitReached", 5),
    ),
    _case(  # 2 failed of 20 decided per minute = 10%; a flood of 429s must not dilute it
        _series(ATTEMPTS, 'outcome="failed"', "0+2x40", WORKER)
        + _series(ATTEMPTS, 'outcome="synced"', "0+8x40", WORKER)
        + _series(ATTEMPTS, 'outcome="synced"', "0+10x40", API)
        + _series(ATTEMPTS, 'outcome="rate_limited"', "0+500x40", API),
        _silent("LeadsyncSyncFailureRateHigh", 10),
        _fires("LeadsyncSyncFailureRateHigh", 25),
    ),
    _case(  # 1%
        _series(ATTEMPTS, 'outcome="failed"', "0+1x40", WORKER)
        + _series(ATTEMPTS, 'outcome="synced"', "0+99x40", WORKER),
        _silent("LeadsyncSyncFailureRateHigh", 30),
    ),
    _case(  # 15 + 15 retries a minute = 0.5/s
        _series("leadsync_sync_retries_total", "", "0+15x60"),
        _silent("LeadsyncSyncRetriesHigh", 10),
        _fires("LeadsyncSyncRetriesHigh", 35),
    ),
    _case(
        _series("leadsync_sync_retries_total", "", "0+5x60", WORKER),
        _silent("LeadsyncSyncRetriesHigh", 40),
    ),
    _case(
        _series("leadsync_gate_paused", 'reason="auth"', "1x10")
        + _series("leadsync_gate_paused", 'reason="rate_limit"', "0x10"),
        _fires("LeadsyncHubSpotAuthPaused", 3),
    ),
    _case(
        _series("leadsync_gate_paused", 'reason="auth"', "0x10")
        + _series("leadsync_gate_paused", 'reason="rate_limit"', "1x10"),
        _silent("LeadsyncHubSpotAuthPaused", 5),
        _silent("LeadsyncHubSpotDailyLimitReached", 5),
    ),
    _case(
        _series("leadsync_gate_paused", 'reason="daily_limit"', "1x10"),
        _fires("LeadsyncHubSpotDailyLimitReached", 1),
    ),
    _case(
        _series("leadsync_hubspot_daily_remaining", "", "5000x10"),
        _fires("LeadsyncHubSpotDailyBudgetLow", 7),
    ),
    _case(  # -1: HubSpot does not report a daily budget (OAuth apps)
        _series("leadsync_hubspot_daily_remaining", "", "-1x10"),
        _silent("LeadsyncHubSpotDailyBudgetLow", 7),
    ),
    _case(
        _series(
            "leadsync_hubspot_requests_total",
            'operation="batch_upsert",status_class="429"',
            "0+1x60",
        ),
        _silent("LeadsyncHubSpotRateLimited", 20),
        _fires("LeadsyncHubSpotRateLimited", 45),
    ),
    _case(
        _series("up", "", "0x10", WORKER) + _series("up", "", "1x10", API),
        _fires("LeadsyncTargetDown", 6, instance="worker-1:9108", job="leadsync-worker"),
        _silent("LeadsyncMetricsAbsent", 15),
    ),
    _case(  # sampled until minute 4, then the database went away
        _series("leadsync_gauges_sampled_timestamp_seconds", "", "0+60x4 240x20"),
        _silent("LeadsyncGaugesStale", 6),
        _fires("LeadsyncGaugesStale", 12),
    ),
    _case(
        _series("leadsync_gauges_sampled_timestamp_seconds", "", "0+60x20"),
        _silent("LeadsyncGaugesStale", 15),
    ),
    {  # nothing from leadsync at all
        "interval": "1m",
        "input_series": _series("up", "", "0x15", API),
        "alert_rule_test": [
            _silent("LeadsyncMetricsAbsent", 5),
            _fires("LeadsyncMetricsAbsent", 11),
        ],
    },
]


def test_alerts_fire_once_across_processes_and_stay_quiet_otherwise(tmp_path: Path) -> None:
    # promtool compares annotations too; they are templates checked above, so strip them
    # here and test what fires when.
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    tested = {c["alertname"] for case in ALERT_CASES for c in case["alert_rule_test"]}
    assert tested == {rule["alert"] for rule in load_rules()}, "every alert needs a case"
    fired = {
        c["alertname"] for case in ALERT_CASES for c in case["alert_rule_test"] if c["exp_alerts"]
    }
    assert fired == tested, "every alert needs a case where it fires"
    spec = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": ALERT_CASES}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(spec))

    result = run_promtool("test", "rules", str(tmp_path / "tests.yml"))

    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- the runbook

_FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")


def github_anchor(heading: str) -> str:
    """Return the anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = _FENCE.sub("", RUNBOOK.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
    anchors = [github_anchor(h) for h in headings]
    assert len(anchors) == len(set(anchors)), "duplicate headings make ambiguous anchors"
    return set(anchors)


def runbook_command_lines() -> list[list[str]]:
    """Return every shell command line of the runbook: code blocks and inline code."""
    text = RUNBOOK.read_text(encoding="utf-8")
    lines: list[str] = []
    for lang, body in _FENCE.findall(text):
        if lang in ("", "sh", "bash", "console", "shell"):
            lines += body.replace("\\\n", " ").splitlines()
    without_blocks = _FENCE.sub("", text)
    lines += [span.replace("\n", " ") for span in _INLINE.findall(without_blocks)]
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
    text = RUNBOOK.read_text(encoding="utf-8")

    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
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
