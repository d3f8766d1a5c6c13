#!/usr/bin/env bash
# The flowsnap benchmark (issue 6): installs wrk if missing, builds the release binary, then runs
# benches/bench.py, which starts the server on fresh databases, seeds them, measures and writes
# bench-out/latest.md. Settings are environment variables (see benches/README.md), e.g.
#
#   benches/run.sh                      # full run: 10 s per measurement, 1M-snapshot database
#   BENCH_QUICK=1 benches/run.sh        # quick run: 2 s per measurement, 50k-snapshot "large" db
#
# Exit status: 0 all requests succeeded on every connection; 2 some request failed or some
# connection made no progress (table still written); 1 the benchmark could not run.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "[bench] installing wrk from Debian packages" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    if ! $SUDO apt-get install -y wrk >/dev/null 2>&1; then
        $SUDO apt-get update
        $SUDO apt-get install -y wrk
    fi
fi
command -v python3 >/dev/null 2>&1 || { echo "[bench] python3 is needed" >&2; exit 1; }

if [ -z "${BENCH_BIN:-}" ]; then
    echo "[bench] cargo build --release" >&2
    cargo build --release --quiet
fi

exec python3 benches/bench.py "$@"
