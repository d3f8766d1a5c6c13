#!/usr/bin/env bash
# Runs what the README shows test authors (issue 12), against target/debug/flowsnap (or
# $FLOWSNAP_BIN), and checks the fixture files against their JSON Schema:
#
#   scripts/check-examples.sh
#
# 1. the node:test example (examples/node/, Node's built-in runner; nothing from npm);
# 2. the Python unittest example (examples/python/);
# 3. docs/fixture.schema.json against the demo data set, the examples' fixture, and an export of
#    the demo (jsonschema from PyPI, in a venv under target/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { echo "check-examples: $*" >&2; }

export FLOWSNAP_BIN=${FLOWSNAP_BIN:-$ROOT/target/debug/flowsnap}
if [[ ! -x "$FLOWSNAP_BIN" ]]; then
    log "building flowsnap"
    cargo build --quiet
fi

# The README shows the node example in full: it must be the file CI runs.
python3 - <<'PY'
import sys
readme = open("README.md").read()
marker = "<!-- examples/node/flowsnap.test.mjs -->\n```js\n"
start = readme.index(marker) + len(marker)
shown = readme[start:readme.index("```\n", start)]
if shown != open("examples/node/flowsnap.test.mjs").read():
    sys.exit("check-examples: README.md's node:test example differs from examples/node/flowsnap.test.mjs")
PY

if ! command -v node >/dev/null 2>&1 && [[ "${CI:-}" == "true" ]] && command -v apt-get >/dev/null 2>&1; then
    log "node is missing: installing Debian's nodejs (the example needs node:test, Node 18 or later)"
    apt-get update -qq && apt-get install -y -qq nodejs >/dev/null
fi
if ! command -v node >/dev/null 2>&1; then
    log "node is not installed; the README's node:test example needs Node 18 or later"
    exit 1
fi
log "node --test examples/node/flowsnap.test.mjs (node $(node --version))"
node --test examples/node/flowsnap.test.mjs

log "python3 -m unittest (examples/python)"
python3 -m unittest discover -s examples/python

VENV=$ROOT/target/fixture-venv
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import jsonschema' 2>/dev/null; then
    log "installing jsonschema into $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        if [[ "${CI:-}" == "true" ]] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        fi
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'jsonschema>=4.18,<5'
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$FLOWSNAP_BIN" --db "$TMP/demo.db" import fixtures/demo.json >/dev/null
"$FLOWSNAP_BIN" --db "$TMP/demo.db" export --out "$TMP/export.json"
log "docs/fixture.schema.json against the fixtures"
"$VENV/bin/python" - fixtures/demo.json examples/fixture.json "$TMP/export.json" <<'PY'
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open("docs/fixture.schema.json"))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
bad = 0
for path in sys.argv[1:]:
    errors = list(v.iter_errors(json.load(open(path))))
    for e in errors:
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}", file=sys.stderr)
    bad += len(errors)
    print(f"{path}: {'valid' if not errors else f'{len(errors)} errors'}")
# The schema refuses what the loader refuses, at least for these.
for doc in [{"users": []}, {"flowsnap_fixture": 1, "colour": 1},
            {"flowsnap_fixture": 1, "users": [{"email": "a@b.c", "api_key": "k", "api_key_hash": "$argon2id$x"}]},
            {"flowsnap_fixture": 1, "workspaces": [{"name": "Team", "members": [{"email": "a@b.c", "role": "guest"}]}]}]:
    if v.is_valid(doc):
        print(f"the schema accepts what the loader refuses: {doc}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY
log "all examples pass"
