#!/usr/bin/env bash
# What authentication costs: the time of an authenticated GET /v2/users/me whose credentials the
# server has not verified yet (cold: one argon2id verification) against the same request once
# they are remembered (warm: one indexed read), on one keep-alive-free curl each.
#
#   scripts/auth-cost.sh            # 15 rounds, release build
#   ROUNDS=50 scripts/auth-cost.sh
#
# Each round issues a new API key with `flowsnap user rotate-key` (another process, as an operator
# would), so the first request with it is cold.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-15}"
cargo build --release --quiet --bin flowsnap
BIN=target/release/flowsnap
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
FLOWSNAP_LOG_LEVEL=info "$BIN" --db "$WORK/a.db" serve --listen 127.0.0.1:0 2>"$WORK/log" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/log" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/log" | head -1)
cold=(); warm=()
for _ in $(seq "$ROUNDS"); do
    KEY=$(FLOWSNAP_LOG_LEVEL=warn "$BIN" --db "$WORK/a.db" user rotate-key --email admin@example.com |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
    t() { curl -s -o /dev/null -w '%{time_total}\n' -u "admin@example.com:$KEY" "http://$ADDR/v2/users/me"; }
    cold+=("$(t)")
    for _ in 1 2 3; do warm+=("$(t)"); done
done
python3 - "${cold[*]}" "${warm[*]}" <<'PY'
import statistics, sys
cold = [float(x) * 1000 for x in sys.argv[1].split()]
warm = [float(x) * 1000 for x in sys.argv[2].split()]
print(f"GET /v2/users/me, median of {len(cold)} cold and {len(warm)} warm requests:")
print(f"  cold (argon2id verification): {statistics.median(cold):.2f} ms")
print(f"  warm (remembered):            {statistics.median(warm):.2f} ms")
print(f"  ratio cold/warm:              {statistics.median(cold) / statistics.median(warm):.0f}x")
PY
