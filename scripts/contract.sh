#!/usr/bin/env bash
# The API contract test: schemathesis with every check and every phase (stateful included)
# against a live `leadsync serve` on PostgreSQL. A fixed seed and example budget keep the run
# reproducible and at about three minutes on 2 cores; any failure exits non-zero.
#
#   scripts/contract.sh postgresql://postgres@127.0.0.1:5432/throwaway_db
#
# The database is migrated and written to: give it a throw-away one. The server listens on a
# free port of 127.0.0.1 and is stopped at the end; its log is shown when the run fails.
# Knobs: CONTRACT_MAX_EXAMPLES (per operation), CONTRACT_SEED, VENV (default .venv).
set -euo pipefail

cd "$(dirname "$0")/.."
database_url=${1:?usage: scripts/contract.sh postgresql://user@host:port/throwaway_db}
bin="${VENV:-.venv}/bin"
max_examples=${CONTRACT_MAX_EXAMPLES:-3000}
seed=${CONTRACT_SEED:-20261129}
token="contract-$(date +%s)-$$-internal-token"
log="$(mktemp -t leadsync-contract.XXXXXX.log)"
port="$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# The API alone (no worker): the contract is about what the API answers.
env -u HUBSPOT_TOKEN -u HUBSPOT_TOKEN_FILE \
    DATABASE_URL="$database_url" \
    LEADSYNC_INTERNAL_TOKEN="$token" \
    LEADSYNC_ERASURE_KEY="contract-erasure-key-$$-$(date +%s)" \
    LEADSYNC_LOG_LEVEL=WARNING \
    "$bin/leadsync" serve --no-worker --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
server=$!
stop_server() {
    local rc=$?
    kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    if ((rc != 0)); then
        echo "contract: server log ($log):"
        tail -n 40 "$log"
    fi
    exit "$rc"
}
trap stop_server EXIT

url="http://127.0.0.1:$port"
deadline=$((SECONDS + 60))
until "$bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/readyz" 2>/dev/null; do
    if ! kill -0 "$server" 2>/dev/null || ((SECONDS >= deadline)); then
        echo "contract: leadsync serve did not become ready on $url" >&2
        exit 1
    fi
    sleep 0.5
done

echo "contract: schemathesis on $url, seed $seed, $max_examples examples per operation"
started=$SECONDS
"$bin/schemathesis" --config-file scripts/schemathesis.toml run "$url/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --seed "$seed" \
    --max-examples "$max_examples" \
    --generation-database none \
    --header "Authorization: Bearer $token" \
    --no-color
echo "contract: passed in $((SECONDS - started)) s"
