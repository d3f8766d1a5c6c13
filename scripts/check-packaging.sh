#!/usr/bin/env bash
# Checks the packaging (issue 14.6) as far as this machine allows; run by .ci/run.
#
# 1. docs/flowsnap.service: `systemd-analyze verify` (any warning fails) and
#    `systemd-analyze security --offline=yes` (exposure at most 2.0). Installs the Debian
#    `systemd` package when systemd-analyze is missing. Starting the unit needs a running systemd
#    (PID 1), which a CI container does not have: the unit is verified, not run.
# 2. Dockerfile: builds the image when a Docker engine answers. Without one (these machines),
#    checks what the image would do by doing it here: every COPY source exists and is not
#    excluded by .dockerignore; the binary runs as PID 1 (a new PID namespace) as the image's
#    non-root uid 10001 with the image's environment and a 0750 "volume" directory; the
#    HEALTHCHECK command, as written in the Dockerfile, passes against it; SIGTERM to PID 1 ends
#    it with exit code 0.
#
#   scripts/check-packaging.sh          (FLOWSNAP_BIN=path to use a built binary;
#                                        PACKAGING_BUILD=1 also builds from the COPY sources)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { echo "check-packaging: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

if [[ -z "${FLOWSNAP_BIN:-}" ]]; then
    cargo build --quiet
    FLOWSNAP_BIN=$ROOT/target/debug/flowsnap
fi
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill -KILL "$SERVER_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# --- 1. systemd unit --------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    log "installing the systemd package (for systemd-analyze)"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq systemd >/dev/null
fi
# verify wants ExecStart= to exist: point it at the binary just built.
sed "s|/usr/local/bin/flowsnap|$FLOWSNAP_BIN|g" docs/flowsnap.service > "$TMP/flowsnap.service"
if ! out=$(systemd-analyze verify "$TMP/flowsnap.service" 2>&1) || [[ -n "$out" ]]; then
    fail "systemd-analyze verify docs/flowsnap.service: $out"
fi
log "systemd-analyze verify docs/flowsnap.service: no warnings"
exposure=$(systemd-analyze security --offline=yes "$TMP/flowsnap.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for flowsnap.service: \([0-9.]*\).*/\1/p')
[[ -n "$exposure" ]] || fail "systemd-analyze security gave no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure is above 2.0"
log "systemd-analyze security --offline=yes: exposure $exposure (0 best, 10 worst)"

# --- 2. Dockerfile ----------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
    log "a Docker engine answers: building the image"
    docker build -q -t flowsnap:check . >/dev/null
    log "docker build: ok"
else
    log "no Docker engine here: the image is not built; checking its steps locally"
fi
# COPY sources of the build stage exist and are in the build context.
grep -E '^COPY ' Dockerfile | grep -v -- '--from=' | while read -r _ args; do
    read -ra parts <<<"$args"
    for src in "${parts[@]:0:${#parts[@]}-1}"; do
        [[ -e "$src" ]] || fail "Dockerfile copies $src, which does not exist"
        top=${src%%/*}
        if grep -qxF "$top" .dockerignore || grep -qxF "$src" .dockerignore; then
            fail "Dockerfile copies $src, which .dockerignore excludes"
        fi
    done
done
log "every COPY source exists and is in the build context"
# PACKAGING_BUILD=1: the build stage's release build from exactly what its COPY lines take
# (offline, reusing target/ for the dependencies; a few minutes, so not in CI).
if [[ "${PACKAGING_BUILD:-}" == 1 ]]; then
    CTX=$TMP/context
    mkdir -p "$CTX"
    grep -E '^COPY ' Dockerfile | grep -v -- '--from=' | while read -r _ args; do
        read -ra parts <<<"$args"
        dest=${parts[-1]}
        for src in "${parts[@]:0:${#parts[@]}-1}"; do
            case "$dest" in
                ./) cp -a "$src" "$CTX/" ;;
                *) mkdir -p "$CTX/$(dirname "$dest")" && cp -a "$src" "$CTX/$dest" ;;
            esac
        done
    done
    (cd "$CTX" && CARGO_TARGET_DIR=$ROOT/target cargo build --release --locked --offline --quiet) \
        || fail "the build stage does not build from its COPY sources"
    log "the build stage builds from exactly its COPY sources"
fi

# The runtime stage, done here: uid 10001, a 0750 volume directory it owns, the image's
# environment (but loopback instead of 0.0.0.0: no other address on this machine), PID 1.
VOL=$TMP/var-lib-flowsnap
mkdir -p "$VOL" && chown 10001:10001 "$VOL" && chmod 0750 "$VOL"
chmod o+rx "$TMP"
cp "$FLOWSNAP_BIN" "$TMP/flowsnap" && chmod 0755 "$TMP/flowsnap"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_image() {
    env -i PATH=/usr/bin:/bin FLOWSNAP_DB="$VOL/flowsnap.db" FLOWSNAP_LISTEN="127.0.0.1:$PORT" \
        setpriv --reuid=10001 --regid=10001 --clear-groups "$@"
}
(cd "$VOL" && exec unshare --pid --fork --kill-child \
    env -i PATH=/usr/bin:/bin FLOWSNAP_DB="$VOL/flowsnap.db" FLOWSNAP_LISTEN="127.0.0.1:$PORT" \
    setpriv --reuid=10001 --regid=10001 --clear-groups "$TMP/flowsnap" serve) \
    2>"$TMP/server.log" &
UNSHARE_PID=$!
for _ in $(seq 1 200); do
    grep -q "listening on" "$TMP/server.log" 2>/dev/null && break
    sleep 0.05
done
grep -q "listening on" "$TMP/server.log" || fail "the server did not start: $(cat "$TMP/server.log")"
SERVER_PID=$(pgrep -P "$UNSHARE_PID" -f "flowsnap serve" || true)
[[ -n "$SERVER_PID" ]] || fail "cannot find the server process"
nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$SERVER_PID/status")
[[ "$nspid" == 1 ]] || fail "the server is PID $nspid in its namespace, not 1"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$SERVER_PID/status")
[[ "$uid" == 10001 ]] || fail "the server runs as uid $uid"
owner=$(stat -c %u "$VOL/flowsnap.db")
[[ "$owner" == 10001 ]] || fail "the database is owned by uid $owner"
log "flowsnap serve runs as PID 1, uid 10001; the database was created on the volume"

# The HEALTHCHECK command exactly as the Dockerfile writes it.
hc=$(sed -n '/^HEALTHCHECK/,/CMD/p' Dockerfile | sed -n 's/.*CMD \(\[.*\]\).*/\1/p')
[[ -n "$hc" ]] || fail "no HEALTHCHECK CMD in the Dockerfile"
mapfile -t hc_args < <(python3 -c 'import json,sys; [print(a) for a in json.loads(sys.argv[1])]' "$hc")
hc_args[0]=${hc_args[0]/\/usr\/local\/bin\/flowsnap/$TMP/flowsnap}
as_image "${hc_args[@]}" >/dev/null || fail "the HEALTHCHECK command failed against a running server"
log "HEALTHCHECK ${hc} passes"

# SIGTERM to PID 1.
kill -TERM "$SERVER_PID"
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$SERVER_PID" 2>/dev/null && fail "PID 1 did not exit within 15 s of SIGTERM"
status=0
wait "$UNSHARE_PID" || status=$?
SERVER_PID=""
[[ $status -eq 0 ]] || fail "PID 1 exited with status $status after SIGTERM: $(tail -n 5 "$TMP/server.log")"
grep -q "stopped" "$TMP/server.log" || fail "no clean stop in the log: $(tail -n 5 "$TMP/server.log")"
as_image "$TMP/flowsnap" healthcheck >/dev/null 2>&1 && fail "HEALTHCHECK passes with the server gone"
log "SIGTERM to PID 1: clean stop, exit code 0; HEALTHCHECK then fails as it should"
log "ok"
