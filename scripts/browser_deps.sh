#!/usr/bin/env bash
# What the console's browser tests (tests/e2e/test_console_browser.py) need besides .venv:
# Debian's Chromium (apt) and axe-core (npm registry, pinned) in a cache directory that is not
# committed. Safe to run again: it installs only what is missing. Playwright itself comes from
# requirements-dev.lock and drives /usr/bin/chromium (never `playwright install`).
#
#   scripts/browser_deps.sh        # then: make test (the tests find axe in .cache/browser)
set -euo pipefail

AXE_CORE_VERSION=4.14.1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LEADSYNC_BROWSER_CACHE:-$ROOT/.cache/browser}"
AXE="$CACHE/node_modules/axe-core"

if [[ ! -x /usr/bin/chromium ]]; then
    echo "browser_deps: installing chromium (Debian package)"
    if [[ $(id -u) -ne 0 ]]; then
        echo "browser_deps: /usr/bin/chromium is missing; run as root or: sudo apt-get install chromium" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if ! grep -qs "\"version\": \"$AXE_CORE_VERSION\"" "$AXE/package.json"; then
    echo "browser_deps: installing axe-core@$AXE_CORE_VERSION into $CACHE"
    mkdir -p "$CACHE"
    npm install --prefix "$CACHE" --no-save --no-audit --no-fund --no-package-lock \
        --loglevel=error "axe-core@$AXE_CORE_VERSION" >/dev/null
fi
test -f "$AXE/axe.min.js"
echo "browser_deps: $(/usr/bin/chromium --version 2>/dev/null | head -n 1); axe-core $AXE_CORE_VERSION at $AXE"
