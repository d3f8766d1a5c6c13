#!/usr/bin/env bash
# Contract fuzzing: runs schemathesis against a live flowsnap, driven by docs/openapi.json.
#
#   scripts/fuzz-contract.sh
#
# 1. installs schemathesis from PyPI into a venv under target/ when it is missing;
# 2. builds flowsnap (debug profile by default: it shares its dependencies with `cargo test`);
# 3. starts it on a fresh temporary database on 127.0.0.1 (port 0: the OS picks a free port) and
#    reads the first tenant-admin's API key from its standard error;
# 4. seeds real resources (workspaces, users, flows with steps, snapshots and their versions, audit
#    events) and hands their ids to
#    schemathesis (fixed path/query parameter values in its config, and a before_call hook for
#    ids inside request bodies), so that generated requests reach real resources;
# 5. runs schemathesis with Basic auth and the checks not_a_server_error, status_code_conformance,
#    content_type_conformance and response_schema_conformance;
# 6. stops the server and exits non-zero when anything failed.
#
# Environment:
#   FUZZ_EXAMPLES   test cases per operation in the fuzzing phase (default 25: a CI-sized run)
#   FUZZ_PHASES     schemathesis phases (default examples,coverage,fuzzing,stateful)
#   FUZZ_WORKERS    concurrent schemathesis workers (default 1; see the note at step 5)
#   FUZZ_MAX_TIME   time budget in seconds for schemathesis (default: none)
#   FUZZ_SEED       random seed, for reproducing a run (default: random)
#   FUZZ_PROFILE    cargo profile: debug (default) or release
#   FUZZ_KEEP       1 keeps the temporary directory (database, server log, config, reports)
#   SCHEMATHESIS    a schemathesis executable to use instead of the venv's
#   FUZZ_EXTRA_ARGS extra arguments for `schemathesis run` (word-split)
#   FUZZ_OPENAPI    the OpenAPI document to test against (default docs/openapi.json, which the
#                   server must also serve at GET /v2/openapi.json)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STARTED=$(date +%s)

EXAMPLES=${FUZZ_EXAMPLES:-25}
PHASES=${FUZZ_PHASES:-examples,coverage,fuzzing,stateful}
WORKERS=${FUZZ_WORKERS:-1}
PROFILE=${FUZZ_PROFILE:-debug}
OPENAPI=${FUZZ_OPENAPI:-$ROOT/docs/openapi.json}

log() { echo "fuzz-contract: $*" >&2; }

# --- 1. schemathesis ---------------------------------------------------------------------------
VENV=$ROOT/target/fuzz-venv
if [[ -n "${SCHEMATHESIS:-}" ]]; then
    ST=$SCHEMATHESIS
elif [[ -x "$VENV/bin/schemathesis" ]]; then
    ST=$VENV/bin/schemathesis
else
    # The generated configuration (hooks, per-operation parameters) is schemathesis 4's format.
    SPEC='schemathesis>=4.30,<5'
    if python3 -m venv "$VENV" 2>/dev/null; then
        log "installing $SPEC into $VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SPEC"
        ST=$VENV/bin/schemathesis
    else
        log "python3 -m venv is unavailable; installing $SPEC into the user site"
        rm -rf "$VENV"
        python3 -m pip install --quiet --disable-pip-version-check --user "$SPEC"
        ST=$(python3 -m site --user-base)/bin/schemathesis
    fi
fi
PY=python3
log "$("$ST" --version 2>/dev/null || echo "schemathesis (version unknown)")"

# --- 2. build ----------------------------------------------------------------------------------
if [[ "$PROFILE" == release ]]; then
    cargo build --release --quiet --bin flowsnap
    BIN=$ROOT/target/release/flowsnap
else
    cargo build --quiet --bin flowsnap
    BIN=$ROOT/target/debug/flowsnap
fi

# --- 3. server ---------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowsnap-fuzz.XXXXXX")
SERVER_PID=
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${FUZZ_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
        log "kept $WORK (server.log, schemathesis.toml, reports)"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Environment settings of the developer's shell must not change the server under test.
while IFS= read -r var; do unset "$var"; done < <(env | grep -o '^FLOWSNAP_[A-Z_]*' || true)
# Every restore adds a version to its step: with the default retention (10 per step) the version
# the restore is pinned to would be pruned after a few calls, and the rest of the run would only
# see its 404. The largest retention keeps every pinned version for the whole run.
FLOWSNAP_HISTORY_MAX_VERSIONS=1000 RUST_LOG=info "$BIN" --db "$WORK/fuzz.db" serve --listen 127.0.0.1:0 --workers 16 \
    >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!

KEY= BASE=
for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server exited at start:"; cat "$WORK/server.log" >&2; exit 1
    fi
    # The key is printed once, on the first non-empty line after "shown only now".
    KEY=$(awk '/shown only now/ {f=1; next} f && NF {print $1; exit}' "$WORK/server.log")
    BASE=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/server.log" | head -n1 || true)
    [[ -n "$KEY" && -n "$BASE" ]] && break
    sleep 0.1
done
if [[ -z "$KEY" || -z "$BASE" ]]; then
    log "no admin key or address in the server's output:"; cat "$WORK/server.log" >&2; exit 1
fi
ADMIN=admin@example.com
log "server $BASE (pid $SERVER_PID), database $WORK/fuzz.db"

# --- 4. seed -----------------------------------------------------------------------------------
# Resources are split by what may destroy them, so that one fuzzed DELETE does not leave every
# later request facing a 404: the main workspace and flow take reads and edits, a second flow
# holds the snapshots (it is never started), a third the restores (never started either), and
# separate victims take the deletes.
"$PY" - "$BASE" "$ADMIN" "$KEY" "$WORK/schemathesis.toml" "$WORK/hooks.py" <<'PYEOF'
import base64, json, os, sys, urllib.request, urllib.error

base, email, key, out, hooks_path = sys.argv[1:6]
auth = "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()

def call(method, path, body=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": auth, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status not in expect:
        sys.exit(f"seeding: {method} {path} -> {status}: {text}")
    return json.loads(text) if text else None

def workspace(name):
    return call("POST", "/v2/workspaces", {"data": {"type": "workspace", "attributes": {"name": name}}})["data"]["id"]

def user(first):
    return call("POST", "/v2/users", {"data": {"type": "user", "attributes": {
        "first_name": first, "last_name": "Fuzz", "email": f"{first.lower()}@fuzz.example",
        "password": "fuzz-pass-1"}}})["data"]["id"]

def flow(ws, name, steps):
    nodes = [{"id": s, "command": f"elasticio/component:{s}Action@1.0.0", "name": s,
              "fields": {"n": i}} for i, s in enumerate(steps)]
    edges = [{"source": a, "target": b, "config": {}} for a, b in zip(steps, steps[1:])]
    return call("POST", "/v2/flows", {"data": {"type": "flow", "attributes": {
        "name": name, "type": "ordinary", "description": "seeded for contract fuzzing",
        "graph": {"nodes": nodes, "edges": edges}},
        "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}})["data"]["id"]

def snapshot(fid, step, value):
    call("POST", f"/v2/flows/{fid}/snapshots",
         {"data": {"type": "snapshot", "id": step, "attributes": {"snapshot": value}}})

me = call("GET", "/v2/users/me")["data"]["id"]
contract = call("GET", "/v2/contracts")["data"][0]["id"]
ws_main, ws_victim = workspace("fuzz main"), workspace("fuzz victim")
member, user_victim, joiner = user("Member"), user("Victim"), user("Joiner")
call("POST", f"/v2/workspaces/{ws_main}/members",
     {"data": {"type": "member", "id": member, "attributes": {"roles": ["integrator"]}}})
steps = ["step_1", "step_2", "step_3"]
flow_main = flow(ws_main, "fuzz main flow", steps)
flow_snap = flow(ws_main, "fuzz snapshot flow", steps)
flow_victim = flow(ws_main, "fuzz victim flow", steps)
flow(ws_victim, "fuzz other flow", steps)
snapshot(flow_snap, "step_1", {"cursor": 12345678901234567890123, "ratio": 0.1, "list": [1, "two", None]})
snapshot(flow_snap, "step_2", None)
snapshot(flow_snap, "step_3", [1, 2, 3])
snapshot(flow_main, "step_1", "a string")
flow_restore = flow(ws_main, "fuzz restore flow", steps)
snapshot(flow_restore, "step_1", {"restored": True, "n": 1})

def update(fid, step, value):
    call("PATCH", f"/v2/flows/{fid}/snapshots/{step}",
         {"data": {"type": "snapshot", "id": step, "attributes": {"snapshot": value}}})

def versions(fid, step):
    return call("GET", f"/v2/flows/{fid}/snapshots/{step}/versions")["data"]

# Histories: step_1 of the snapshot flow gets an update (its versions: create, update; nothing
# else writes it); step_1 of the restore flow too, and the restores copy its create version, which
# has a value.
update(flow_snap, "step_1", {"cursor": 12345678901234567890124, "ratio": 0.2, "list": [1, "two", None]})
version_read = versions(flow_snap, "step_1")[0]["id"]
update(flow_restore, "step_1", {"restored": False, "n": 2})
version_restore = next(v["id"] for v in versions(flow_restore, "step_1")
                       if v["attributes"]["operation"] == "create")
# An audit event of the main workspace (the newest: the last PATCH above).
event = call("GET", f"/v2/audit?filter%5Bworkspace_id%5D={ws_main}&page%5Bsize%5D=1")["data"][0]["id"]

def q(s):
    return json.dumps(s)

# Path and query parameters get fixed values, in every phase: otherwise the coverage phase's body
# mutations would all end at the 404 of a made-up id instead of reaching the body checks.
def fixed(key, value):
    return f"{q(key)} = {q(value)}\n"

def operation(name, params):
    return f"\n[[operations]]\ninclude-name = {q(name)}\n[operations.parameters]\n" + "".join(params)

toml = "# Generated by scripts/fuzz-contract.sh for one run.\n"
toml += f"hooks = {q(hooks_path)}\n\n"
toml += "[parameters]\n"
toml += fixed("path.user_id", member)
toml += fixed("path.contract_id", contract)
toml += fixed("path.workspace_id", ws_main)
toml += fixed("query.workspace_id", ws_main)
toml += fixed("query.contract_id", contract)
toml += fixed("path.flow_id", flow_main)
toml += fixed("path.event_id", event)
toml += operation("DELETE /v2/workspaces/{workspace_id}", [fixed("path.workspace_id", ws_victim)])
# A new key for the admin whose key the run uses would lock the run out: the user-id paths only
# ever get the seeded member, and the delete its own victim.
toml += operation("DELETE /v2/users/{user_id}", [fixed("path.user_id", user_victim)])
toml += operation("DELETE /v2/flows/{flow_id}", [fixed("path.flow_id", flow_victim)])
# The snapshot calls work on their own flow, which is never started: reads on step_1, PATCH on
# step_2, DELETE and POST (which re-creates what DELETE removed) on step_3.
toml += operation("GET /v2/flows/{flow_id}/snapshots", [fixed("path.flow_id", flow_snap)])
toml += operation("POST /v2/flows/{flow_id}/snapshots", [fixed("path.flow_id", flow_snap)])
for name in ["GET /v2/flows/{flow_id}/snapshots/{step_id}", "GET /v1/tasks/{flow_id}/steps/{step_id}"]:
    toml += operation(name, [fixed("path.flow_id", flow_snap), fixed("path.step_id", "step_1")])
toml += operation("PATCH /v2/flows/{flow_id}/snapshots/{step_id}",
                  [fixed("path.flow_id", flow_snap), fixed("path.step_id", "step_2")])
toml += operation("DELETE /v2/flows/{flow_id}/snapshots/{step_id}",
                  [fixed("path.flow_id", flow_snap), fixed("path.step_id", "step_3")])
# The history reads see step_1 of the snapshot flow, its update version; the restores copy the
# create version of step_1 of the restore flow back into its snapshot.
toml += operation("GET /v2/flows/{flow_id}/snapshots/{step_id}/versions",
                  [fixed("path.flow_id", flow_snap), fixed("path.step_id", "step_1")])
toml += operation("GET /v2/flows/{flow_id}/snapshots/{step_id}/versions/{version_id}",
                  [fixed("path.flow_id", flow_snap), fixed("path.step_id", "step_1"),
                   fixed("path.version_id", version_read)])
toml += operation("POST /v2/flows/{flow_id}/snapshots/{step_id}/versions/{version_id}/restore",
                  [fixed("path.flow_id", flow_restore), fixed("path.step_id", "step_1"),
                   fixed("path.version_id", version_restore)])

# Ids inside request bodies: a hook replaces every well-formed id that the generator made up with
# the seeded resource (ill-formed ones are kept: they test the refusals).
body_ids = {
    "POST /v2/flows": [(["data", "relationships", "workspace", "data", "id"], "hex", ws_main)],
    "PATCH /v2/flows/{flow_id}": [(["data", "id"], "hex", flow_main)],
    "PATCH /v2/workspaces/{workspace_id}": [(["data", "id"], "hex", ws_main)],
    "POST /v2/workspaces": [(["data", "relationships", "contract", "data", "id"], "hex", contract)],
    "POST /v2/workspaces/{workspace_id}/members": [(["data", "id"], "hex", joiner)],
    "PATCH /v2/workspaces/{workspace_id}/members/{user_id}": [(["data", "id"], "hex", member)],
    "POST /v2/flows/{flow_id}/snapshots": [(["data", "id"], "step", "step_3")],
    "PATCH /v2/flows/{flow_id}/snapshots/{step_id}": [(["data", "id"], "step", "step_2")],
}
hooks = f"""# Generated by scripts/fuzz-contract.sh for one run.
import re
import schemathesis

PATTERNS = {{"hex": re.compile(r"^[0-9a-f]{{24}}$"), "step": re.compile(r"^[A-Za-z0-9_-]{{1,64}}$")}}
BODY_IDS = {json.dumps(body_ids)}
ASCII_HEADERS = {os.environ.get("FUZZ_NON_ASCII_HEADERS") != "1"}


@schemathesis.hook
def before_call(context, case, kwargs):
    if ASCII_HEADERS and case.headers:
        # The HTTP layer drops a request whose header value has a byte above 0x7F without any
        # response (reported; see step 5 of scripts/fuzz-contract.sh): such values are escaped.
        for name, value in list(case.headers.items()):
            if isinstance(value, str) and not value.isascii():
                case.headers[name] = value.encode("ascii", "backslashreplace").decode("ascii")
    rules = BODY_IDS.get(f"{{case.operation.method.upper()}} {{case.operation.path}}")
    if not rules or not isinstance(case.body, dict):
        return
    for path, kind, value in rules:
        node = case.body
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        leaf = node.get(path[-1]) if isinstance(node, dict) else None
        if isinstance(leaf, str) and PATTERNS[kind].match(leaf):
            node[path[-1]] = value
"""
with open(hooks_path, "w") as f:
    f.write(hooks)
with open(out, "w") as f:
    f.write(toml)
print(f"seeded: workspaces {ws_main} {ws_victim}; flows {flow_main} {flow_snap} {flow_victim} "
      f"{flow_restore}; users {member} {user_victim} {joiner}; versions {version_read} "
      f"{version_restore}; audit event {event}", file=sys.stderr)
PYEOF

# --- 5. schemathesis ---------------------------------------------------------------------------
# Notes:
# - One worker by default: with several, hypothesis (under CPython 3.11) sometimes dies in the
#   coverage phase with "SystemError: AST constructor recursion depth mismatch", a race in ast.parse
#   across threads. FUZZ_WORKERS=4 is faster where that does not happen.
# - A header value with a byte above 0x7F (obs-text, which RFC 9110 allows) makes the server close
#   the connection without any response (its HTTP layer, tiny_http, refuses non-ASCII headers).
#   Until that is fixed the hook escapes such values; FUZZ_NON_ASCII_HEADERS=1 sends them as drawn.
# The document under test is the file; the server must serve the same document.
SERVED_SAME=$("$PY" - "$BASE/v2/openapi.json" "$ROOT/docs/openapi.json" <<'PYEOF'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r:
    served = json.load(r)
with open(sys.argv[2]) as f:
    print("yes" if json.load(f) == served else "no")
PYEOF
)
ARGS=(--no-color --config-file "$WORK/schemathesis.toml" run "$OPENAPI" --url "$BASE"
    --auth "$ADMIN:$KEY"
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
    --phases "$PHASES"
    --max-examples "$EXAMPLES"
    --workers "$WORKERS"
    --request-timeout 10
    --suppress-health-check all
    --report junit,ndjson --report-dir "$WORK/reports")
[[ -n "${FUZZ_SEED:-}" ]] && ARGS+=(--seed "$FUZZ_SEED")
[[ -n "${FUZZ_MAX_TIME:-}" ]] && ARGS+=(--max-time "$FUZZ_MAX_TIME")
# shellcheck disable=SC2206
[[ -n "${FUZZ_EXTRA_ARGS:-}" ]] && ARGS+=(${FUZZ_EXTRA_ARGS})

log "$ST ${ARGS[*]//$KEY/***}"
set +e
"$ST" "${ARGS[@]}"
RC=$?
set -e

# --- 6. summary --------------------------------------------------------------------------------
if grep -qE '^\[[^]]* ERROR |panicked' "$WORK/server.log"; then
    log "the server logged errors:"
    grep -E '^\[[^]]* ERROR |panicked' "$WORK/server.log" | head -n 20 >&2
    [[ $RC -eq 0 ]] && RC=1
fi
if [[ "$SERVED_SAME" != yes && -z "${FUZZ_OPENAPI:-}" ]]; then
    log "GET /v2/openapi.json does not serve docs/openapi.json (a stale binary?)"
    [[ $RC -eq 0 ]] && RC=1
fi
CASES=$("$PY" - "$WORK/reports" <<'PYEOF'
import glob, json, sys
n = 0
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    with open(path) as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            # Every ScenarioFinished event carries the cases it ran, keyed by case id.
            for k, v in ev.items():
                if k == "ScenarioFinished":
                    n += len(v.get("recorder", {}).get("cases", {}))
print(n)
PYEOF
)
REQUESTS=$(grep -c '\] [A-Z]* .* -> [0-9]\{3\} in ' "$WORK/server.log" || true)
ELAPSED=$(( $(date +%s) - STARTED ))
if [[ $RC -eq 0 ]]; then VERDICT=passed; else VERDICT="FAILED (exit $RC)"; fi
echo "fuzz-contract: $VERDICT: $CASES cases, $REQUESTS requests served, ${ELAPSED}s (examples per operation $EXAMPLES, phases $PHASES)"
exit $RC
