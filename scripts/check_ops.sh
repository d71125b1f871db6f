#!/usr/bin/env sh
# Check the ops files: alert rules (promtool), dashboard JSON, and their agreement with the
# code (tests/integration/test_ops_files.py: metrics exported, alerts firing once, runbook
# links and commands). Needs promtool (Debian/Ubuntu: apt-get install prometheus).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

command -v promtool >/dev/null 2>&1 || {
    echo "check_ops: promtool not found (apt-get install prometheus)" >&2
    exit 1
}
promtool check rules ops/prometheus/alerts.yml
"$PYTHON" -m json.tool ops/grafana/leadsync-dashboard.json >/dev/null
exec "$PYTHON" -m pytest -q tests/integration/test_ops_files.py
