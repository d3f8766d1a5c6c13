"""Data set of the benchmark (issue 6): workspaces, flows of ten steps, snapshots of 200 B to 5 KB.

Two ways to put it in a database:

* ``seed_http``: through the API, for the small database (a few hundred flows).
* ``seed_sql``: straight into SQLite, for the large one (a million snapshots), into a database that
  ``flowsnap migrate`` created, writing the rows exactly as the server's own code does
  (src/db/workspaces.rs, flows.rs, snapshots.rs and graph.rs): random 24-hex ids, times in
  milliseconds, the graph kept as compact JSON with edge ids ``SOURCE:TARGET`` in front of the
  other edge members, one ``steps`` row per node, one ``snapshots`` row per step with a
  generation taken from ``counters.snapshot_generation`` (its ``created_at`` and ``updated_by``
  as schema version 3 has them), the step's versions (src/db/versions.rs: the ``create`` version
  of revision 1 for every step, and on a tenth of the steps two ``update`` versions more,
  revisions 2 and 3, the snapshot then being revision 3) and the audit events the API would have
  recorded (``workspace.create``, ``flow.create``, ``snapshot.create``, ``snapshot.update``;
  src/db/audit.rs) with no request id, since no request made them.

  Storage layout of schema version 3 (src/db/migrate.rs): a value is stored once, as the newest
  version of its step. Each step that has a version has one ``step_histories`` row (pk in
  insertion order here); its versions are the ``snapshot_versions`` rows with pk
  ``history.pk * 1024 + slot``, written in order into slots 0, 1, 2 (version i in slot i - 1:
  the lowest free slots, as the server writes them while a step holds fewer than its
  ``max(history_max_versions, 1)`` slots); ``snapshots.value_pk`` is the pk of the newest one,
  which holds the current value (``snapshots`` has no ``value`` column).

``check_against_server`` compares what the server stored for HTTP-seeded rows with what
``seed_sql`` would have written for the same input, so the two paths cannot drift apart silently.

Only the Python 3.11 standard library is used.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import random
import sqlite3
import queue
import time
from concurrent.futures import ThreadPoolExecutor

STEPS = 10
MIN_SNAPSHOT = 200
MAX_SNAPSHOT = 5000  # the server's limit is 5120 bytes of compact JSON

COMMANDS = [
    "elasticio/http:httpRequestAction@latest",
    "elasticio/jsonata:jsonataMap@1.0.3",
    "elasticio/salesforce:lookupObjects@2.4.0",
    "elasticio/mongodb:upsert@1.1.0",
    "elasticio/splitter:split@latest",
    "elasticio/email:send@1.2.1",
]


def compact(value) -> str:
    """Compact JSON as serde_json writes it (the data here is ASCII, so the texts are equal)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_id() -> str:
    """24 lowercase hex characters, like util::new_id."""
    return os.urandom(12).hex()


def now_ms() -> int:
    return int(time.time() * 1000)


def graph_doc(flow_no: int) -> dict:
    """The graph a client sends: nodes step_1..step_10 in a chain."""
    nodes = []
    for k in range(1, STEPS + 1):
        nodes.append({
            "id": f"step_{k}",
            "command": COMMANDS[(flow_no + k) % len(COMMANDS)],
            "name": f"Step {k}",
            "description": f"Step {k} of flow {flow_no}",
            "fields": {
                "url": f"https://api.example.com/v1/items/{flow_no}/{k}",
                "method": "POST" if k % 2 else "GET",
                "retries": k % 4,
                "expression": "$.items[status='open'].{\"id\": id, \"total\": price * qty}",
            },
        })
    edges = [{"source": f"step_{k}", "target": f"step_{k + 1}", "config": {"mapper": {"id": "$.id"}}}
             for k in range(1, STEPS)]
    return {"nodes": nodes, "edges": edges}


def stored_graph(doc: dict) -> str:
    """The graph text the server stores for `doc` (graph::validate): the members in the order
    sent, `edges` replaced in place by the edges with `id` first and the sent `id` dropped."""
    out = {}
    for k, v in doc.items():
        if k == "edges":
            v = [dict([("id", f"{e['source']}:{e['target']}")] +
                      [(ek, ev) for ek, ev in e.items() if ek != "id"]) for e in v]
        out[k] = v
    if "edges" not in out:
        out["edges"] = []
    return compact(out)


def snapshot_size(rng: random.Random) -> int:
    """Log-uniform between 200 and 5000 bytes: most snapshots are small, some near the limit."""
    return int(math.exp(rng.uniform(math.log(MIN_SNAPSHOT), math.log(MAX_SNAPSHOT))))


def snapshot_value(size: int, seq: int, rng: random.Random) -> dict:
    """A plausible step state (a cursor, some ids seen, a few counters) of about `size` bytes."""
    v = {
        "cursor": f"2026-11-{1 + seq % 28:02d}T{seq % 24:02d}:{seq % 60:02d}:00.000Z",
        "seq": seq,
        "lastId": f"{rng.getrandbits(48):012x}",
        "page": {"number": seq % 97, "size": 50, "done": seq % 3 == 0},
        "rate": round(rng.random() * 100, 3),
        "seen": [],
    }
    base = len(compact(v))
    while base < size - 40:
        item = f"{rng.getrandbits(64):016x}"
        v["seen"].append(item)
        base += len(item) + 3
    pad = max(0, size - len(compact(v)) - len(',"note":""'))
    v["note"] = "x" * pad
    return v


def value_pool(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` compact snapshot texts split around their `seq` number: prefix + str(seq) + suffix.
    Lets the bulk loader make a million distinct values without a million json.dumps calls."""
    rng = random.Random(seed)
    pool = []
    marker = 987654321987
    for _ in range(n):
        text = compact(snapshot_value(snapshot_size(rng), marker, rng))
        prefix, suffix = text.split(f'"seq":{marker}', 1)
        pool.append((prefix + '"seq":', suffix))
    return pool


def bodies(n: int, seed: int) -> list[str]:
    """Snapshot values for the write scenarios, one compact text each."""
    rng = random.Random(seed)
    return [compact(snapshot_value(snapshot_size(rng), i, rng)) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# HTTP seeding


class Api:
    """One keep-alive connection. `open_pool` opens several one at a time (see below)."""

    def __init__(self, port: int, auth: str, timeout: float = 60.0):
        self.port = port
        self.auth = auth
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body=None, ok=(200, 201, 202, 204)):
        headers = {"Authorization": self.auth}
        data = None
        if body is not None:
            data = compact(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status not in ok:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {raw[:300]!r}")
        return resp.status, (json.loads(raw) if raw else None)

    def close(self):
        self.conn.close()


def basic_auth(email: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()


def open_pool(port: int, auth: str, n: int) -> list[Api]:
    """Opens `n` connections one at a time, each answered before the next opens: tiny_http 0.12
    can leave connections that arrive together unread (see benches/README.md)."""
    pool = []
    for _ in range(n):
        a = Api(port, auth)
        a.call("GET", "/healthz")
        pool.append(a)
    return pool


def seed_http(port: int, auth: str, n_workspaces: int, n_flows: int, n_scratch: int,
              seed: int = 6, parallel: int = 8, log=print) -> dict:
    """Creates the small data set through the API.

    `n_flows` flows get a snapshot on each of their ten steps; `n_scratch` more flows get one on
    step_1..step_9 only, so that the POST+DELETE scenario has a free step_10 per connection.
    Returns the ids and the values sent (for check_against_server)."""
    rng = random.Random(seed)
    pool = open_pool(port, auth, parallel)
    free: queue.Queue[Api] = queue.Queue()
    for a in pool:
        free.put(a)

    def call(*args):
        a = free.get()
        try:
            return a.call(*args)
        finally:
            free.put(a)

    t0 = time.time()
    workspaces = []
    for w in range(n_workspaces):
        _, doc = pool[0].call("POST", "/v2/workspaces", {"data": {"type": "workspace", "attributes": {"name": f"Bench workspace {w + 1}"}}})
        workspaces.append(doc["data"]["id"])

    total = n_flows + n_scratch
    graphs = {}

    def make_flow(i: int):
        g = graph_doc(i)
        ws = workspaces[i % len(workspaces)]
        body = {"data": {"type": "flow", "attributes": {
            "name": f"Bench flow {i + 1}", "description": f"Benchmark flow {i + 1}, ten steps",
            "type": "ordinary", "graph": g},
            "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}
        _, doc = call("POST", "/v2/flows", body)
        return doc["data"]["id"], g

    with ThreadPoolExecutor(parallel) as ex:
        made = list(ex.map(make_flow, range(total)))
    flow_ids = [fid for fid, _ in made]
    for fid, g in made:
        graphs[fid] = g
    full, scratch = flow_ids[:n_flows], flow_ids[n_flows:]

    jobs = []
    for fid in full:
        jobs += [(fid, k) for k in range(1, STEPS + 1)]
    for fid in scratch:
        jobs += [(fid, k) for k in range(1, STEPS)]
    sizes = [snapshot_size(rng) for _ in jobs]
    values = {}

    def make_snapshot(job):
        (fid, k), size, seq = job
        v = snapshot_value(size, seq, random.Random(seq))
        call("POST", f"/v2/flows/{fid}/snapshots",
                   {"data": {"type": "snapshot", "id": f"step_{k}", "attributes": {"snapshot": v}}})
        return (fid, f"step_{k}"), compact(v)

    with ThreadPoolExecutor(parallel) as ex:
        for key, text in ex.map(make_snapshot, [(j, s, n) for n, (j, s) in enumerate(zip(jobs, sizes))]):
            values[key] = text
    for a in pool:
        a.close()
    log(f"seeded over HTTP: {len(workspaces)} workspaces, {total} flows, {len(jobs)} snapshots "
        f"in {time.time() - t0:.1f} s")
    return {"workspaces": workspaces, "full": full, "scratch": scratch, "graphs": graphs,
            "values": values}


# The columns seed_sql writes in the tables of schema version 3 (src/db/migrate.rs); the check
# below fails when the server's schema has a column more or less, so the two cannot drift apart.
SNAPSHOT_COLUMNS = ["flow_pk", "step_id", "revision", "generation", "created_at", "updated_at",
                    "updated_by", "value_pk"]
HISTORY_COLUMNS = ["pk", "flow_pk", "step_id"]
VERSION_COLUMNS = ["pk", "generation", "revision", "operation", "created_at", "created_by",
                   "restored_from", "value"]
# Rows per step history: the slots of step_histories row h are snapshot_versions pk
# h * SLOTS .. h * SLOTS + SLOTS - 1 (src/db/versions.rs).
SLOTS = 1024
AUDIT_COLUMNS = ["id", "created_at", "action", "user_id", "request_id", "workspace_id", "target_type",
                 "target_id", "flow_id", "version_id"]


def check_against_server(db_path: str, seeded: dict, samples: int = 20,
                         email: str = "admin@example.com") -> list[str]:
    """Compares rows the server wrote with what seed_sql writes for the same input: flows, steps,
    snapshots (with created_at/updated_by), each snapshot's step history, its one version (the
    `create` in the history's slot 0, which `snapshots.value_pk` names and which holds the value
    sent) and the audit events of the flows and snapshots. Run right after seed_http, before any
    other change."""
    problems = []
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for table, want in (("snapshots", SNAPSHOT_COLUMNS), ("step_histories", HISTORY_COLUMNS),
                            ("snapshot_versions", VERSION_COLUMNS), ("audit_events", AUDIT_COLUMNS)):
            have = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            if have != want:
                problems.append(f"table {table}: columns {have}, seed.py writes {want}")
        user_id = con.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0]
        for ws in seeded["workspaces"]:
            ev = con.execute("SELECT action, user_id, workspace_id, target_type, target_id, flow_id, version_id, "
                             "request_id IS NOT NULL FROM audit_events WHERE target_type = 'workspace' "
                             "AND target_id = ?", (ws,)).fetchall()
            if ev != [("workspace.create", user_id, ws, "workspace", ws, None, None, 1)]:
                problems.append(f"workspace {ws}: audit events {ev}")
        for fid in list(seeded["graphs"])[:samples]:
            row = con.execute("SELECT f.pk, f.graph, f.nodes_config, f.type, f.status, f.default_mapper_type, "
                              "f.cron, f.creator_id, w.id FROM flows f JOIN workspaces w ON w.pk = f.workspace_pk "
                              "WHERE f.id = ?", (fid,)).fetchone()
            if row is None:
                problems.append(f"flow {fid} missing")
                continue
            pk, graph, nodes_config, ftype, status, mapper, cron, creator, ws = row
            want = stored_graph(seeded["graphs"][fid])
            if graph != want:
                problems.append(f"flow {fid}: stored graph differs from seed.stored_graph\n  server: {graph[:200]}\n  seed:   {want[:200]}")
            if (nodes_config, ftype, status, mapper, cron, creator) != ("{}", "ordinary", "inactive", "jsonata", None, user_id):
                problems.append(f"flow {fid}: columns {(nodes_config, ftype, status, mapper, cron, creator)}")
            steps = con.execute("SELECT step_id, position FROM steps WHERE flow_pk = ? ORDER BY position", (pk,)).fetchall()
            if steps != [(f"step_{k}", k - 1) for k in range(1, STEPS + 1)]:
                problems.append(f"flow {fid}: steps {steps}")
            ev = con.execute("SELECT action, user_id, workspace_id, target_type, target_id, flow_id, version_id, "
                             "request_id IS NOT NULL FROM audit_events WHERE target_type = 'flow' AND flow_id = ?",
                             (fid,)).fetchall()
            if ev != [("flow.create", user_id, ws, "flow", fid, fid, None, 1)]:
                problems.append(f"flow {fid}: audit events {ev}")
        for (fid, step), text in list(seeded["values"].items())[:samples * 5]:
            # The value is read where the server reads it: the version that value_pk names.
            row = con.execute("SELECT v.value, s.revision, s.generation, s.created_at, s.updated_at, s.updated_by, "
                              "s.value_pk, f.pk, w.id FROM snapshots s JOIN flows f ON f.pk = s.flow_pk "
                              "JOIN workspaces w ON w.pk = f.workspace_pk "
                              "LEFT JOIN snapshot_versions v ON v.pk = s.value_pk "
                              "WHERE f.id = ? AND s.step_id = ?", (fid, step)).fetchone()
            if row is None or row[0] != text or row[1] != 1:
                problems.append(f"snapshot {fid}/{step}: stored {str(row)[:120]} != sent {text[:80]}")
                continue
            value, revision, gen, created_at, updated_at, updated_by, value_pk, fpk, ws = row
            if created_at != updated_at or updated_by != user_id:
                problems.append(f"snapshot {fid}/{step}: created_at {created_at}, updated_at {updated_at}, "
                                f"updated_by {updated_by} (seed.py writes created_at = updated_at and the user's id)")
            hist = con.execute("SELECT pk FROM step_histories WHERE flow_pk = ? AND step_id = ?",
                               (fpk, step)).fetchall()
            if len(hist) != 1:
                problems.append(f"snapshot {fid}/{step}: step_histories rows {hist} (seed.py writes one)")
                continue
            base = hist[0][0] * SLOTS
            if value_pk != base:
                problems.append(f"snapshot {fid}/{step}: value_pk {value_pk}, seed.py writes {base} "
                                f"(slot 0 of step history {hist[0][0]}: its only version)")
            vs = con.execute("SELECT pk, generation, revision, operation, value, created_at, created_by, restored_from "
                             "FROM snapshot_versions WHERE pk BETWEEN ? AND ? ORDER BY pk",
                             (base, base + SLOTS - 1)).fetchall()
            if vs != [(base, gen, 1, "create", text, updated_at, user_id, None)]:
                problems.append(f"snapshot {fid}/{step}: versions {str(vs)[:300]}, seed.py writes "
                                f"{[(base, gen, 1, 'create', text[:40] + '...', updated_at, user_id, None)]}")
            ev = con.execute("SELECT action, user_id, workspace_id, target_type, target_id, flow_id, version_id, "
                             "request_id IS NOT NULL FROM audit_events WHERE target_type = 'snapshot' "
                             "AND flow_id = ? AND target_id = ?", (fid, step)).fetchall()
            if ev != [("snapshot.create", user_id, ws, "snapshot", step, fid, f"{gen}-1", 1)]:
                problems.append(f"snapshot {fid}/{step}: audit events {ev}")
        gen = con.execute("SELECT value FROM counters WHERE name = 'snapshot_generation'").fetchone()[0]
        n = con.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        if gen < n:
            problems.append(f"counters.snapshot_generation {gen} < {n} snapshots")
        nv = con.execute("SELECT count(*) FROM snapshot_versions").fetchone()[0]
        if nv != n:
            problems.append(f"{nv} versions for {n} snapshots (one 'create' version each expected)")
        nh = con.execute("SELECT count(*) FROM step_histories").fetchone()[0]
        if nh != n:
            problems.append(f"{nh} step_histories rows for {n} snapshots (one each expected)")
        stray = con.execute(f"SELECT count(*) FROM snapshot_versions WHERE pk / {SLOTS} NOT IN "
                            "(SELECT pk FROM step_histories)").fetchone()[0]
        dangling = con.execute("SELECT count(*) FROM snapshots WHERE value_pk NOT IN "
                               "(SELECT pk FROM snapshot_versions)").fetchone()[0]
        if stray or dangling:
            problems.append(f"{stray} versions outside every step history's slots, {dangling} snapshots "
                            f"whose value_pk names no version")
    finally:
        con.close()
    return problems


# ---------------------------------------------------------------------------------------------
# Bulk seeding straight into SQLite


HISTORY_EVERY = 10     # one step in HISTORY_EVERY has HISTORY_VERSIONS versions, the others one
HISTORY_VERSIONS = 3


def seed_sql(db_path: str, email: str, n_workspaces: int, n_flows: int, seed: int = 7,
             log=print) -> dict:
    """Writes `n_flows` flows of ten steps, each step with a snapshot, into a migrated database
    whose user `email` exists (made by `flowsnap user create`). The user owns every workspace and
    made every change. Step `step_K` with K - 1 == flow number mod 10 (a tenth of the steps, one
    per flow) has three versions (created, then updated twice: the snapshot is revision 3); every
    other step has its `create` version. Audit events as the API would have written them.

    Layout of schema version 3: one `step_histories` row per step (pks consecutive, in the order
    the steps are written); the step's versions in its slots in order of writing (revision r in
    slot r - 1, pk = history pk * 1024 + r - 1; three slots fit any history_max_versions >= 3,
    the default being 10); `snapshots.value_pk` = the pk of the newest version, which holds the
    current value (no copy of it in `snapshots`)."""
    t0 = time.time()
    rng = random.Random(seed)
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA journal_mode = OFF")  # bulk load; set back to WAL (as the server has it) below
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -262144")
    con.execute("PRAGMA foreign_keys = OFF")  # rows are written consistent; checked below
    user_pk, user_id = con.execute("SELECT pk, id FROM users WHERE email = ?", (email,)).fetchone()
    contract_pk = con.execute("SELECT pk FROM contracts ORDER BY pk LIMIT 1").fetchone()[0]
    now = now_ms()
    # Creation times spread over the last 80 days: within the default audit_retention_days (90),
    # so that the server's purge finds nothing to remove while the benchmark runs.
    start = now - 80 * 86_400_000

    con.execute("BEGIN")
    workspaces = []
    events = []
    for w in range(n_workspaces):
        t = start + w
        ws_id = new_id()
        cur = con.execute("INSERT INTO workspaces (id, contract_pk, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                          (ws_id, contract_pk, f"Bench workspace {w + 1}", t, t))
        ws_pk = cur.lastrowid
        con.execute("INSERT INTO members (workspace_pk, user_pk, role, added_at) VALUES (?, ?, 'owner', ?)",
                    (ws_pk, user_pk, t))
        workspaces.append((ws_pk, ws_id))
        events.append((t, "workspace.create", user_id, None, ws_id, "workspace", ws_id, None, None))
    con.executemany(INSERT_EVENT, events)
    con.execute("COMMIT")

    first_pk = (con.execute("SELECT coalesce(max(pk), 0) FROM flows").fetchone()[0]) + 1
    history_pk = con.execute("SELECT coalesce(max(pk), 0) FROM step_histories").fetchone()[0]
    generation = con.execute("SELECT value FROM counters WHERE name = 'snapshot_generation'").fetchone()[0]
    pool = value_pool(4096, seed)
    flow_ids = []
    batch = 5000
    step_names = [f"step_{k}" for k in range(1, STEPS + 1)]
    n_versions = 0
    for b0 in range(0, n_flows, batch):
        con.execute("BEGIN")
        flows, steps, histories, snaps, versions, events = [], [], [], [], [], []
        for i in range(b0, min(n_flows, b0 + batch)):
            pk = first_pk + i
            fid = new_id()
            flow_ids.append(fid)
            ws_pk, ws_id = workspaces[i % n_workspaces]
            created = start + int((now - start) * i / max(1, n_flows))
            flows.append((pk, fid, ws_pk, user_id, f"Bench flow {i + 1}",
                          f"Benchmark flow {i + 1}, ten steps", "ordinary", "inactive", "jsonata",
                          None, stored_graph(graph_doc(i)), "{}", created, created, None, None))
            events.append((created, "flow.create", user_id, None, ws_id, "flow", fid, fid, None))
            for pos, step in enumerate(step_names):
                steps.append((pk, step, pos))
                generation += 1
                history_pk += 1
                histories.append((history_pk, pk, step))
                revisions = HISTORY_VERSIONS if pos == i % HISTORY_EVERY else 1
                for rev in range(1, revisions + 1):
                    prefix, suffix = pool[rng.randrange(len(pool))]
                    value = prefix + str(generation) + suffix
                    t = created + (rev - 1) * 20_000  # changed every 20 s after its creation
                    # Version `rev` in slot rev - 1: the lowest free one when it was written.
                    versions.append((history_pk * SLOTS + rev - 1, generation, rev,
                                     "create" if rev == 1 else "update", t, user_id, None, value))
                    events.append((t, "snapshot.create" if rev == 1 else "snapshot.update", user_id, None,
                                   ws_id, "snapshot", step, fid, f"{generation}-{rev}"))
                # The current value is the newest version's (slot revisions - 1).
                snaps.append((pk, step, revisions, generation, t, created, user_id,
                              history_pk * SLOTS + revisions - 1))
        n_versions += len(versions)
        con.executemany("INSERT INTO flows (pk, id, workspace_pk, creator_id, name, description, type, status, "
                        "default_mapper_type, cron, graph, nodes_config, created_at, updated_at, "
                        "last_start_time, last_stop_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", flows)
        con.executemany("INSERT INTO steps (flow_pk, step_id, position) VALUES (?,?,?)", steps)
        con.executemany("INSERT INTO step_histories (pk, flow_pk, step_id) VALUES (?,?,?)", histories)
        con.executemany("INSERT INTO snapshots (flow_pk, step_id, revision, generation, updated_at, "
                        "created_at, updated_by, value_pk) VALUES (?,?,?,?,?,?,?,?)", snaps)
        con.executemany("INSERT INTO snapshot_versions (pk, generation, revision, operation, created_at, "
                        "created_by, restored_from, value) VALUES (?,?,?,?,?,?,?,?)", versions)
        con.executemany(INSERT_EVENT, events)
        con.execute("UPDATE counters SET value = ? WHERE name = 'snapshot_generation'", (generation,))
        con.execute("COMMIT")
        done = min(n_flows, b0 + batch)
        if done % 20000 == 0 or done == n_flows:
            log(f"  bulk seed: {done}/{n_flows} flows, {done * STEPS} snapshots, {n_versions} versions, "
                f"{time.time() - t0:.0f} s")
    bad = con.execute("PRAGMA foreign_key_check").fetchmany(5)
    if bad:
        raise RuntimeError(f"bulk seed broke a foreign key: {bad}")
    # value_pk is no foreign key: check that every snapshot's names a version.
    lost = con.execute("SELECT count(*) FROM snapshots s WHERE NOT EXISTS "
                       "(SELECT 1 FROM snapshot_versions v WHERE v.pk = s.value_pk)").fetchone()[0]
    if lost:
        raise RuntimeError(f"bulk seed: {lost} snapshots whose value_pk names no version")
    # No ANALYZE: the server never runs it, so the planner must see what it sees in production.
    back = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    n_snap = con.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    n_ver = con.execute("SELECT count(*) FROM snapshot_versions").fetchone()[0]
    n_ev = con.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    con.close()
    log(f"bulk-seeded {n_flows} flows, {n_snap} snapshots, {n_ver} versions, {n_ev} audit events "
        f"in {time.time() - t0:.0f} s (journal_mode back to {back}, {os.path.getsize(db_path) / 2**20:.0f} MiB)")
    return {"full": flow_ids, "snapshots": n_snap, "versions": n_ver, "events": n_ev,
            "workspaces": [w for _, w in workspaces]}


INSERT_EVENT = ("INSERT INTO audit_events (created_at, action, user_id, request_id, workspace_id, target_type, "
                "target_id, flow_id, version_id) VALUES (?,?,?,?,?,?,?,?,?)")


def storage(db_path: str) -> dict:
    """Bytes of the file by what they hold, from SQLite's dbstat table (every page of every
    B-tree): the snapshot history, the audit log (table and index), the rest; with the number of
    versions and the bytes of their values, so that the per-version overhead (row header, the
    other columns, page slack, overflow pages' waste) is measured, not guessed. Reads every page
    of the file.

    The history is the versions beyond each step's current value: the current value is itself a
    version (the row of snapshot_versions that snapshots.value_pk names), which a server with
    history_max_versions = 0 keeps too. dbstat counts a table's pages, not a row's, so the table's
    bytes are split by row: each row counts its value's bytes plus the table's mean overhead per
    row ((table bytes - all value bytes) / rows); history = the other rows' (non-current) value
    bytes + their number * that overhead = table bytes - the current rows' share. The
    step_histories table (one row per step that has a version, kept with history 0 too) counts
    with the rest."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        page = con.execute("PRAGMA page_size").fetchone()[0]
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        by_name = dict(con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
        n_ver, ver_value = con.execute("SELECT count(*), coalesce(sum(length(CAST(value AS BLOB))), 0) "
                                       "FROM snapshot_versions").fetchone()
        n_snap, n_cur, cur_value = con.execute(
            "SELECT count(*), count(v.pk), coalesce(sum(length(CAST(v.value AS BLOB))), 0) "
            "FROM snapshots s LEFT JOIN snapshot_versions v ON v.pk = s.value_pk").fetchone()
        n_hist = con.execute("SELECT count(*) FROM step_histories").fetchone()[0]
        n_ev = con.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    finally:
        con.close()
    table = by_name.get("snapshot_versions", 0)
    overhead = (table - ver_value) / n_ver if n_ver else 0.0
    current = cur_value + n_cur * overhead  # the current values' share of the table
    history = max(0, round(table - current))
    step_histories = sum(b for name, b in by_name.items()
                         if name == "step_histories" or name.startswith("sqlite_autoindex_step_histories"))
    audit = by_name.get("audit_events", 0) + by_name.get("audit_by_workspace", 0)
    total = page * pages
    return {"file": total, "history": history, "audit": audit, "without_history": total - history,
            "without_history_or_audit": total - history - audit,
            "versions_table": table, "current_bytes": round(current), "step_histories_bytes": step_histories,
            "step_histories": n_hist, "versions": n_ver, "current_versions": n_cur,
            "history_versions": n_ver - n_cur, "version_value_bytes": ver_value,
            "snapshots": n_snap, "snapshot_value_bytes": cur_value,
            "events": n_ev, "page_size": page,
            "version_overhead": overhead if n_ver else float("nan"),
            "event_bytes": audit / n_ev if n_ev else float("nan")}
