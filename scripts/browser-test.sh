#!/usr/bin/env bash
# The console's real-browser test (issue 13): headless Debian Chromium driven by Playwright for
# Python, with axe-core for the accessibility audit.
#
#   scripts/browser-test.sh
#
# Installs, idempotently and only when missing:
#   - Debian's chromium and chromium-driver (apt-get; needs root, as in CI);
#   - Playwright for Python from PyPI, in a venv under target/ (its own browser download,
#     `playwright install`, is never run: the test launches /usr/bin/chromium);
#   - axe-core from npm, under target/ (used only by the test, injected into the page by it).
# Then builds flowsnap and runs tests/browser/console_test.py, which prints
# `browser: N passed, M failed`, saves screenshots to docs/screenshots/ and figures to
# target/browser-report.json.
#
# Environment: CHROMIUM (default /usr/bin/chromium), FLOWSNAP_BIN (default: build target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { echo "browser-test: $*" >&2; }

PLAYWRIGHT_SPEC='playwright>=1.45,<2'
AXE_SPEC='axe-core@4'

if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    log "installing Debian's chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q chromium chromium-driver >/dev/null
fi

VENV=$ROOT/target/browser-venv
if ! "$VENV/bin/python" -c 'import playwright.sync_api' 2>/dev/null; then
    log "installing $PLAYWRIGHT_SPEC into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PLAYWRIGHT_SPEC"
fi

NPM_DIR=$ROOT/target/browser-npm
AXE_JS=$NPM_DIR/node_modules/axe-core/axe.min.js
if [[ ! -f "$AXE_JS" ]]; then
    log "installing $AXE_SPEC into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "$AXE_SPEC" >/dev/null
fi

if [[ -z "${FLOWSNAP_BIN:-}" ]]; then
    cargo build --quiet --bin flowsnap
    FLOWSNAP_BIN=$ROOT/target/debug/flowsnap
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec "$VENV/bin/python" tests/browser/console_test.py "$FLOWSNAP_BIN" "$AXE_JS"
