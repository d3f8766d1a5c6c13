#!/usr/bin/env python3
"""The flowsnap benchmark of issue 6. Started by benches/run.sh (which installs wrk and builds the
release binary first); every setting is an environment variable, listed in benches/README.md.

What it does:
 1. starts `flowsnap serve` on a fresh database in a temporary folder (synchronous=FULL, log
    level warn), seeds the small data set over HTTP and checks the rows against seed_sql's;
 2. runs each scenario with 16 and 64 keep-alive connections: a sequential pre-warm of the
    connections, a short wrk warm-up, then the measured wrk run, checking that every single
    connection got answers; reads the server's peak RSS (VmHWM, reset before each run);
    after each block, the PATCH on a second server with history_max_versions = 0 whose
    database is a copy of the small one without its history (each step keeps only the version
    that holds its current value), then the PATCH with history again (issue 11: history 10
    against history 0, side by side);
 3. builds the large database (a million snapshots, their versions and audit events) straight
    into SQLite, measures its size by content (dbstat), restarts the server on it and runs
    /healthz, GET one snapshot and PATCH there;
 4. prints the table and writes it to bench-out/latest.md.

Exit status: 0 when every request succeeded and every connection made progress; 2 when some
request failed or some connection made no progress (the table is written all the same); 1 when
the benchmark itself could not run.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import queue
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
import seed  # noqa: E402


def env_num(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


QUICK = os.environ.get("BENCH_QUICK") == "1"
DURATION = env_num("BENCH_DURATION", 2 if QUICK else 10)
WARMUP = env_num("BENCH_WARMUP", 1 if QUICK else 2)
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16 64").split()]
WORKERS = int(env_num("BENCH_WORKERS", 16))
SMALL_WORKSPACES = int(env_num("BENCH_SMALL_WORKSPACES", 5))
SMALL_FLOWS = int(env_num("BENCH_SMALL_FLOWS", 100 if QUICK else 300))
LARGE_WORKSPACES = int(env_num("BENCH_LARGE_WORKSPACES", 20))
LARGE_FLOWS = int(env_num("BENCH_LARGE_FLOWS", 5000 if QUICK else 100_000))
LARGE = os.environ.get("BENCH_LARGE", "1") != "0"
LARGE_DB = os.environ.get("BENCH_LARGE_DB", "")  # reuse/keep the large database at this path
TIMEOUT = os.environ.get("BENCH_TIMEOUT", "5s")
PREWARM = os.environ.get("BENCH_PREWARM", "1") != "0"
KEEP = os.environ.get("BENCH_KEEP") == "1"
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "target", "release", "flowsnap"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench-out", "latest.md"))
LUA = os.path.join(HERE, "wrk", "bench.lua")
SCENARIOS = os.environ.get("BENCH_SCENARIOS",
                           "healthz get_one get_list get_flow patch versions audit postdelete").split()
# The PATCH again on a second server whose database is a copy of the small one taken right after
# seeding, with FLOWSNAP_HISTORY_MAX_VERSIONS=0 (no versions), measured like the rest.
NOHIST = os.environ.get("BENCH_NOHIST", "1") != "0"
NOHIST_SCENARIOS = ["healthz", "patch"]
HISTORY_TARGET = 0.90  # PATCH with history 10 at least 0.90 of PATCH with history 0
VERSIONS_PAGE = 10
LARGE_SCENARIOS = ["healthz", "get_one", "patch"]

TITLES = {
    "healthz": "GET /healthz",
    "get_one": "GET one snapshot",
    "get_list": "GET all snapshots of a flow (10)",
    "get_flow": "GET /v2/flows/{id}",
    "patch": "PATCH one snapshot",
    "versions": "GET a step's versions (page of 10)",
    "audit": "GET a workspace's audit log (page of 50)",
    "postdelete": "POST+DELETE a snapshot",
}
# Figures of the README before snapshot versions and the audit log (schema version 2): the ratio
# to /healthz at 64 connections, to compare with (issue 11: within 5 %).
BEFORE_HISTORY = {("get_one", 64): (0.61, "median of six full runs, 0.55-0.66"),
                  ("get_list", 64): (0.33, "one full run")}
# Targets of issue 6: (scenario, connections) -> minimum ratio to /healthz.
RATIO_TARGETS = {("get_one", 64): 0.60, ("patch", 64): 0.20}
RSS_TARGET_MB = 64
LARGE_TARGET = 0.90  # the 1M database within 10% of the small one

LOG_T0 = time.time()


def log(msg: str) -> None:
    print(f"[bench {time.time() - LOG_T0:6.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# the server


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_env() -> dict:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("FLOWSNAP_") or k == "RUST_LOG":
            del env[k]
    env["FLOWSNAP_SYNCHRONOUS"] = "full"
    env["FLOWSNAP_LOG_LEVEL"] = "warn"
    return env


class Server:
    def __init__(self, db: str, workdir: str, name: str, history: int | None = None,
                 extra_env: dict | None = None):
        self.db = db
        self.history = history
        self.port = free_port()
        self.stderr_path = os.path.join(workdir, f"server-{name}.stderr")
        self.stderr = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen(
            [BIN, "--db", db, "serve", "--listen", f"127.0.0.1:{self.port}", "--workers", str(WORKERS)],
            env=dict(server_env(), **({} if history is None else {"FLOWSNAP_HISTORY_MAX_VERSIONS": str(history)}),
                     **(extra_env or {})),
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.pid = self.proc.pid
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start ({self.proc.returncode}): {self.log_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b'"status":"ok"' in s.recv(4096):
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not answer /healthz within 60 s")

    def log_text(self) -> str:
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def first_key(self) -> str:
        """The key printed on the line after "shown only now" (first non-empty line)."""
        lines = self.log_text().splitlines()
        for i, line in enumerate(lines):
            if "shown only now" in line:
                for nxt in lines[i + 1:]:
                    if nxt.strip():
                        return nxt.strip()
        raise RuntimeError("the server printed no API key (was the database not fresh?)")

    def status(self) -> dict:
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
        return out

    def kb(self, field: str) -> int:
        return int(self.status()[field].split()[0])

    def reset_peak(self) -> bool:
        """Resets VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> tuple[int | None, float]:
        t = time.time()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.flush()
        return self.proc.returncode, time.time() - t


class Sampler:
    """Samples the server's VmRSS (and its anonymous and file-backed parts) and thread count
    every 50 ms while a run lasts."""

    def __init__(self, server: Server):
        self.server = server
        self.max_rss_kb = 0
        self.max_anon_kb = 0
        self.max_file_kb = 0
        self.max_threads = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                st = self.server.status()
                self.max_rss_kb = max(self.max_rss_kb, int(st["VmRSS"].split()[0]))
                self.max_anon_kb = max(self.max_anon_kb, int(st["RssAnon"].split()[0]))
                self.max_file_kb = max(self.max_file_kb, int(st["RssFile"].split()[0]))
                self.max_threads = max(self.max_threads, int(st["Threads"]))
            except (OSError, KeyError, ValueError):
                pass
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._t.join()


# ---------------------------------------------------------------------------------------------
# connections


def prewarm(port: int, n: int) -> dict:
    """Opens n keep-alive connections one at a time, each answered before the next one opens, then
    closes them all. Why: tiny_http 0.12 serves each connection on a thread of its task pool for
    the connection's whole keep-alive life; when connections arrive together, the pool counts
    threads that were already woken as idle and queues the new connections instead of starting
    threads for them, and those stay unread until some other connection closes. After this
    pre-warm the pool has n idle threads (they linger 5 s), so wrk's burst of n connections all
    find a thread. Returns how long the slowest first answer took."""
    socks, slowest = [], 0.0
    try:
        for _ in range(n):
            t = time.time()
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b'"status":"ok"' not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("pre-warm: the server closed a connection")
                data += chunk
            slowest = max(slowest, time.time() - t)
            socks.append(s)
    except socket.timeout:
        raise RuntimeError(f"pre-warm: connection {len(socks) + 1} of {n} got no answer in 10 s")
    finally:
        for s in socks:
            s.close()
    return {"connections": n, "slowest_first_answer_ms": round(slowest * 1000, 2)}


def run_wrk(mode: str, port: int, n: int, seconds: float, auth: str, targets: str | None,
            bodies: str | None, workdir: str, tag: str) -> dict:
    result = os.path.join(workdir, f"wrk-{tag}.json")
    if os.path.exists(result):
        os.remove(result)
    env = dict(os.environ, BENCH_MODE=mode, BENCH_AUTH=auth, BENCH_RESULT=result)
    if targets:
        env["BENCH_TARGETS"] = split_targets(targets, n)
    if bodies:
        env["BENCH_BODIES"] = bodies
    dur = f"{max(1, round(seconds))}s"
    cmd = ["wrk", "-t", str(n), "-c", str(n), "-d", dur, "--timeout", TIMEOUT, "-s", LUA,
           f"http://127.0.0.1:{port}"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0 or not os.path.exists(result):
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stdout[-1500:]} {p.stderr[-1500:]}")
    with open(result) as f:
        r = json.load(f)
    r["wrk_stdout"] = p.stdout
    ok = [int(x) for x in r["per_conn_ok"]]
    fail = [int(x) for x in r["per_conn_fail"]]
    e = r["errors"]
    r["socket_errors"] = e["connect"] + e["read"] + e["write"] + e["timeout"]
    # wrk counts every non-2xx/3xx answer; the script counts them per connection only when it
    # reads the answers (postdelete, or BENCH_RESPONSES=1).
    r["non_2xx"] = max(sum(fail), e["status"])
    r["failed"] = r["non_2xx"] + r["socket_errors"]
    answered = [a + b for a, b in zip(ok, fail)]
    r["stalled_connections"] = [i for i, a in enumerate(answered) if a == 0]
    r["conn_min"] = min(answered) if answered else 0
    r["conn_max"] = max(answered) if answered else 0
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def split_targets(path: str, n: int) -> str:
    """Deals the flow ids of `path` to n files PREFIX.0 .. PREFIX.(n-1): connection i gets lines
    i, i+n, i+2n, ... so the connections' flows are disjoint and together cover the list.
    Returns PREFIX."""
    prefix = f"{path}.split{n}"
    if not os.path.exists(f"{prefix}.{n - 1}"):
        with open(path) as f:
            ids = [line.strip() for line in f if line.strip()]
        if len(ids) < n:
            raise RuntimeError(f"{path} has {len(ids)} flow ids, fewer than the {n} connections")
        for i in range(n):
            write_lines(f"{prefix}.{i}", ids[i::n])
    return prefix


def cleanup_scratch(port: int, auth: str, flows: list[str]) -> None:
    """Deletes step_10's snapshot of the scratch flows (a run may stop between POST and DELETE)."""
    api = seed.Api(port, auth)
    try:
        for f in flows:
            api.call("DELETE", f"/v2/flows/{f}/snapshots/step_10", ok=(204, 404))
    finally:
        api.close()


def measure(server: Server, mode: str, n: int, auth: str, targets: str | None, bodies: str | None,
            scratch: list[str], workdir: str, db_label: str) -> dict:
    tag = f"{db_label}-{mode}-{n}"
    pre = prewarm(server.port, n + 4) if PREWARM else None
    if mode == "postdelete":
        cleanup_scratch(server.port, auth, scratch)
    warm = None
    if WARMUP > 0:
        warm = run_wrk(mode, server.port, n, WARMUP, auth, targets, bodies, workdir, tag + "-warmup")
        if mode == "postdelete":
            cleanup_scratch(server.port, auth, scratch)
    peak_reset = server.reset_peak()
    sampler = Sampler(server)
    r = run_wrk(mode, server.port, n, DURATION, auth, targets, bodies, workdir, tag)
    sampler.stop()
    hwm_kb = server.kb("VmHWM") if server.alive() else 0
    r["rss_mb"] = (hwm_kb if peak_reset else sampler.max_rss_kb) / 1024
    r["rss_source"] = "VmHWM" if peak_reset else "sampled VmRSS"
    r["sampled_rss_mb"] = sampler.max_rss_kb / 1024
    # Mapped database pages (read_mmap_bytes) are file-backed: the OS page cache, counted once per
    # read connection's mapping, not the server's own memory.
    r["rss_anon_mb"] = sampler.max_anon_kb / 1024
    r["rss_file_mb"] = sampler.max_file_kb / 1024
    r["threads"] = sampler.max_threads
    r["prewarm"] = pre
    r["warmup"] = None if warm is None else {
        "rps": round(warm["rps"]), "failed": warm["failed"], "stalled": warm["stalled_connections"],
        "statuses": warm["fail_statuses"], "first": warm["first_failures"][:3]}
    r["server_alive"] = server.alive()
    r["db"] = db_label
    r["mode"] = mode
    r["n"] = n
    msg = (f"{db_label:5} {mode:10} c={n:3}: {r['rps']:8.0f} req/s  p50 {r['latency_us']['p50'] / 1000:6.2f} ms  "
           f"p99 {r['latency_us']['p99'] / 1000:7.2f} ms  rss {r['rss_mb']:5.1f} MB  threads {r['threads']}  "
           f"failed {r['failed']}  conns answered {n - len(r['stalled_connections'])}/{n} "
           f"(min {r['conn_min']}, max {r['conn_max']} responses)")
    if warm and (warm["failed"] or warm["stalled_connections"]):
        msg += f"  [warm-up: failed {warm['failed']}, stalled {len(warm['stalled_connections'])}]"
    log(msg)
    for f in r["first_failures"][:3]:
        log(f"    failure: {f}")
    if not server.alive():
        raise RuntimeError(f"the server died during {tag}: {server.log_text()[-3000:]}")
    return r


def measure_bracketed(results: dict, extra: list, modes: list[str], run) -> None:
    """Measures /healthz, then each other scenario followed by /healthz again, and gives each
    scenario the mean of the /healthz runs just before and just after it as its ceiling
    (`ceiling_rps`). On this shared machine the ceiling drifts by 10-20 % within a run; a ceiling
    measured next to the scenario keeps that drift out of the ratio. `run(mode)` measures one
    scenario. The first /healthz run is the table's /healthz row (its `ceiling_runs` lists them
    all); the others go to `extra` (they count for failures and stalled connections)."""
    if "healthz" not in modes:
        for mode in modes:
            results[mode] = run(mode)
        return
    first = before = run("healthz")
    runs = [first["rps"]]
    for mode in modes:
        if mode == "healthz":
            continue
        r = run(mode)
        after = run("healthz")
        extra.append(after)
        runs.append(after["rps"])
        r["ceiling_rps"] = (before["rps"] + after["rps"]) / 2
        results[mode] = r
        before = after
    first["ceiling_runs"] = runs
    first["ceiling_rps"] = first["rps"]
    results["healthz"] = first


METRICS_ROUNDS = int(env_num("BENCH_METRICS_ROUNDS", 2))
METRICS_TARGET = 0.97  # issue 14: GET one snapshot at 64 connections with /metrics on vs off


def metrics_ratio(server: Server, auth: str, targets: str, bodies: str, workdir: str) -> str:
    """GET one snapshot at the most connections, on `server` (metrics on, the default) and on a
    second server with `metrics = false` over a copy of its database, alternately, one run each
    per round: the ratio of the means is the cost of counting (issue 14). Returns a note."""
    import sqlite3
    copy = os.path.join(workdir, "small-nometrics.db")
    src, dst = sqlite3.connect(server.db), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    off = Server(copy, workdir, "nometrics", extra_env={"FLOWSNAP_METRICS": "false"})
    n = max(CONNECTIONS)
    on_rps, off_rps = [], []
    try:
        for i in range(METRICS_ROUNDS):
            for srv, out, label in ((server, on_rps, "metrics-on"), (off, off_rps, "metrics-off")):
                r = measure(srv, "get_one", n, auth, targets, bodies, [], workdir, f"{label}{i}")
                if r["failed"] or r["stalled_connections"]:
                    raise RuntimeError(f"{label}: failed requests or stalled connections")
                out.append(r["rps"])
    finally:
        off.stop()
    on, offm = sum(on_rps) / len(on_rps), sum(off_rps) / len(off_rps)
    ratio = on / offm if offm else 0.0
    verdict = "met" if ratio >= METRICS_TARGET else "NOT met"
    return (f"- /metrics cost: GET one snapshot at {n} connections, metrics on {on:.0f} req/s vs "
            f"`metrics = false` {offm:.0f} req/s (means of {METRICS_ROUNDS} alternating runs each: on "
            f"{', '.join(f'{x:.0f}' for x in on_rps)}; off {', '.join(f'{x:.0f}' for x in off_rps)}): "
            f"ratio {ratio:.3f}, target >= {METRICS_TARGET} {verdict}")


def size_probe(port: int, auth: str, values: dict) -> str:
    """One keep-alive connection, sequential GETs of a snapshot with a small value and of one with
    a value over 1 KB: their median latencies side by side. A gap of ~40 ms points at a response
    written in two TCP segments with Nagle's algorithm on, the second waiting for the client's
    delayed ACK."""
    small = next((k for k, v in values.items() if len(v) < 400), None)
    big = next((k for k, v in values.items() if len(v) > 1500), None)
    if not small or not big:
        return "- size probe: skipped (no suitable snapshot)"
    api = seed.Api(port, auth)
    out = []
    try:
        for (fid, step), label in ((small, "value < 400 B"), (big, "value > 1500 B")):
            times = []
            for _ in range(21):
                t = time.perf_counter()
                api.call("GET", f"/v2/flows/{fid}/snapshots/{step}")
                times.append(time.perf_counter() - t)
            times.sort()
            out.append((label, times[len(times) // 2] * 1000))
    finally:
        api.close()
    text = ", ".join(f"{label}: {ms:.2f} ms" for label, ms in out)
    flag = ""
    if out[1][1] > 20 * max(out[0][1], 0.5):
        flag = (" -> **large responses stall**: the response leaves in two writes (tiny_http's "
                "1 KiB BufWriter) without TCP_NODELAY, so the second waits for the client's delayed ACK")
    return f"- size probe (one keep-alive connection, sequential GET one snapshot, median of 21): {text}{flag}"


def versions_per_step(db: str, flow_ids: list[str]) -> dict[tuple[str, str], int]:
    """How many versions each step of these flows has (read-only, beside the running server): the
    rows in the slots of its step history (pk h * 1024 .. h * 1024 + 1023), 0 without one. With
    history_max_versions >= 1, as on the server this is used for, the API lists them all (the
    newest being the current value)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT f.id, st.step_id, coalesce((SELECT count(*) FROM snapshot_versions v "
                           f"WHERE v.pk BETWEEN h.pk * {seed.SLOTS} AND h.pk * {seed.SLOTS} + {seed.SLOTS - 1}), 0) "
                           "FROM steps st JOIN flows f ON f.pk = st.flow_pk "
                           "LEFT JOIN step_histories h ON h.flow_pk = st.flow_pk AND h.step_id = st.step_id"
                           ).fetchall()
    finally:
        con.close()
    want = set(flow_ids)
    return {(f, step): n for f, step, n in rows if f in want}


def ensure_history(server: "Server", auth: str, flow_ids: list[str], bodies_list: list[str],
                   want: int = VERSIONS_PAGE) -> str:
    """Makes every step of the flows hold at least `want` versions (PATCHes over HTTP, before the
    versions scenario, which reads a page of `want`); returns a note on what was there."""
    counts = versions_per_step(server.db, flow_ids)
    short = [(k, want - n) for k, n in counts.items() if n < want]
    before = (min(counts.values()), max(counts.values())) if counts else (0, 0)
    if short:
        jobs = [k for k, missing in short for _ in range(missing)]
        pool = seed.open_pool(server.port, auth, 4)
        free: queue.Queue = queue.Queue()
        for a in pool:
            free.put(a)

        def patch(i_job):
            i, (fid, step) = i_job
            a = free.get()
            try:
                a.call("PATCH", f"/v2/flows/{fid}/snapshots/{step}",
                       {"data": {"type": "snapshot", "id": step,
                                 "attributes": {"snapshot": json.loads(bodies_list[i % len(bodies_list)])}}})
            finally:
                free.put(a)

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(patch, enumerate(jobs)))
        for a in pool:
            a.close()
        counts = versions_per_step(server.db, flow_ids)
    after = (min(counts.values()), max(counts.values())) if counts else (0, 0)
    return (f"- versions scenario: {len(counts)} steps held {before[0]}..{before[1]} versions each when the scenario "
            f"came; {len(short)} steps topped up to {want} over HTTP; then {after[0]}..{after[1]}")


def audit_events_per_workspace(db: str, workspace_ids: list[str]) -> tuple[int, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        n = [con.execute("SELECT count(*) FROM audit_events WHERE workspace_id = ?", (w,)).fetchone()[0]
             for w in workspace_ids]
    finally:
        con.close()
    return min(n), max(n)


def copy_without_history(src: str, dst: str) -> None:
    """A copy of the database as a server with history_max_versions = 0 would have written it:
    the same rows, each step keeping only the slot of its current value (a server with history 0
    keeps one slot a step, the value itself, and lists no versions); the step_histories rows and
    the audit events stay (they do not depend on the setting). Right after the HTTP seeding every
    step has just its `create` version, which is its current value, so nothing goes."""
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    d = sqlite3.connect(dst, isolation_level=None)
    try:
        s.backup(d)
        # No VACUUM: every table keeps the original's pages; the pages of the versions that go
        # are on the free list, which the server's writes then reuse.
        d.execute("DELETE FROM snapshot_versions WHERE pk NOT IN (SELECT value_pk FROM snapshots)")
        d.execute("PRAGMA journal_mode = WAL")
    finally:
        s.close()
        d.close()


def fmt_mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def storage_note(label: str, st: dict, per_million: bool = True) -> str:
    """One line on a database's size by content (seed.storage); scaled to a million snapshots
    for the bulk-seeded database (whose history and audit log are in proportion to its
    snapshots), not for the small one (whose PATCH runs grew both far beyond)."""
    text = (f"- {label} database file: {fmt_mib(st['file'])} for {st['snapshots']} snapshots, {st['versions']} versions "
            f"(the current values among them), {st['events']} audit events; snapshot_versions table "
            f"{fmt_mib(st['versions_table'])}, of which history (the {st['history_versions']} versions beyond each "
            f"step's current value: their value bytes plus, per row, the table's mean overhead per row) "
            f"{fmt_mib(st['history'])} and the {st['current_versions']} current values {fmt_mib(st['current_bytes'])}; "
            f"audit log {fmt_mib(st['audit'])}; the rest {fmt_mib(st['without_history_or_audit'])}, the current "
            f"values and step_histories ({fmt_mib(st['step_histories_bytes'])}) included.")
    if per_million and st["snapshots"]:
        m = 1e6 / st["snapshots"]
        text += (f" Per million snapshots: {st['file'] * m / 2**30:.2f} GiB as is, "
                 f"{st['without_history'] * m / 2**30:.2f} GiB without the history, "
                 f"{st['without_history_or_audit'] * m / 2**30:.2f} GiB without history or audit log.")
    if st["versions"]:
        text += (f" Per version: {st['versions_table'] / st['versions']:.0f} B on disk for a mean value of "
                 f"{st['version_value_bytes'] / st['versions']:.0f} B (overhead {st['version_overhead']:.0f} B: "
                 f"the row header, the other columns, free space in pages and overflow pages).")
    if st["events"]:
        text += f" Per audit event: {st['event_bytes']:.0f} B with its index entry."
    return text


def write_lines(path: str, lines: list[str]) -> str:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# report


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def build_report(small: dict, large: dict, meta: dict) -> tuple[str, bool]:
    """Markdown: the main table, the 1M-database table, targets, details. Returns (text, clean)."""
    out = []
    clean = True
    out.append("# flowsnap benchmark (issues 6 and 11)\n")
    out.append(f"- date: {meta['date']}; commit {meta['commit']} ({meta['binary']}); `benches/run.sh`")
    out.append(f"- machine: {meta['cpus']} cores ({meta['cpu_model']}), {meta['mem_gb']:.0f} GiB; "
               f"load average before {meta['load_before']}, after {meta['load_after']}. **Shared machine**: other "
               f"jobs (Rust builds) ran at the same time, so figures are noisy; wrk runs on the same 2 cores as the server.")
    out.append(f"- server: `flowsnap serve --workers {WORKERS}`, FLOWSNAP_SYNCHRONOUS=full, FLOWSNAP_LOG_LEVEL=warn; "
               f"small database: {meta['small_desc']}")
    out.append(f"- each run: {DURATION:g} s measured after a {WARMUP:g} s warm-up; wrk with one thread per "
               f"connection (`-t N -c N`), keep-alive; connections pre-warmed one at a time "
               f"({'on' if PREWARM else 'OFF'}); latency = wrk's, per request; peak RSS = server VmHWM, reset before each run; "
               f"\"vs /healthz\" = the scenario's req/s over the mean of the /healthz runs just before and just after it "
               f"(the ceiling drifts within a run on this shared machine; every /healthz run is listed in the details)")
    out.append("")
    out.append("| scenario | conns | req/s | p50 | p99 | peak RSS | vs /healthz | target | failed | conns answered |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for n in CONNECTIONS:
        base = small.get(("healthz", n))
        for mode in SCENARIOS:
            r = small.get((mode, n))
            if not r:
                continue
            ratio = ratio_of(r, base)
            target = ""
            if (mode, n) in RATIO_TARGETS:
                t = RATIO_TARGETS[(mode, n)]
                target = f">= {t:.2f}: {'met' if ratio >= t else '**MISSED**'}"
            out.append(row(r, ratio, target))
            clean &= r["failed"] == 0 and not r["stalled_connections"]
    nohist = meta.get("nohist") or {}
    if nohist:
        out.append("")
        out.append("History on and off, side by side: the same PATCH on a second server "
                   "(FLOWSNAP_HISTORY_MAX_VERSIONS=0) whose database is a copy of the small one taken right "
                   "after seeding, without its history (each step keeps only the version that holds its current value), between two PATCH runs with the default history (10): "
                   "the block's PATCH and one more right after; each run over the /healthz runs just before and "
                   "after it. \"history 10 / history 0\" = the mean of the two history-10 ratios over the history-0 ratio")
        out.append("")
        out.append("| scenario | history_max_versions | conns | req/s | p50 | p99 | peak RSS | vs /healthz | history 10 / history 0 | target | failed | conns answered |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        again = meta.get("hist_again") or {}
        for n in CONNECTIONS:
            for label, r in (("10", small.get(("patch", n))), ("0", nohist.get(("patch", n))),
                             ("10 (again)", again.get(n))):
                if not r:
                    continue
                ratio = ratio_of(r, None)
                rel, target = "", ""
                if label == "10 (again)" and ("patch", n) in nohist:
                    rel_v = history_ratio(small, nohist, again, n)
                    rel = f"{rel_v:.2f}"
                    if n == 64:
                        target = f">= {HISTORY_TARGET:.2f}: {'met' if rel_v >= HISTORY_TARGET else '**MISSED**'}"
                cells = [TITLES["patch"], label, str(n), f"{r['rps']:.0f}", fmt_ms(r["latency_us"]["p50"]),
                         fmt_ms(r["latency_us"]["p99"]), f"{r['rss_mb']:.1f} MB", f"{ratio:.2f}", rel, target,
                         str(r["failed"]), f"{r['n'] - len(r['stalled_connections'])}/{r['n']}"]
                out.append("| " + " | ".join(cells) + " |")
                clean &= r["failed"] == 0 and not r["stalled_connections"]
    if large:
        out.append("")
        out.append(f"Large database: {meta['large_desc']}")
        out.append("")
        out.append(f"| scenario ({meta['large_label']} DB) | conns | req/s | p50 | p99 | peak RSS | vs /healthz | vs small DB (req/s) | target | failed | conns answered |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for n in CONNECTIONS:
            base = large.get(("healthz", n))
            for mode in LARGE_SCENARIOS:
                r = large.get((mode, n))
                if not r:
                    continue
                ratio = ratio_of(r, base)
                s = small.get((mode, n))
                vs_small = r["rps"] / s["rps"] if s else float("nan")
                target = ""
                if mode != "healthz" and s:
                    target = f">= {LARGE_TARGET:.2f}: {'met' if vs_small >= LARGE_TARGET else '**MISSED**'}"
                out.append(row(r, ratio, target, vs_small))
                clean &= r["failed"] == 0 and not r["stalled_connections"]
    for r in meta.get("extra_runs", []):
        clean &= r["failed"] == 0 and not r["stalled_connections"]
    # targets summary
    allr = (list(small.values()) + list(nohist.values()) + list((meta.get("hist_again") or {}).values())
            + list(large.values()) + meta.get("extra_runs", []))
    peak = max((r["rss_mb"] for r in allr), default=0)
    failed = sum(r["failed"] for r in allr)
    stalled = sum(len(r["stalled_connections"]) for r in allr)
    warm_stalled = sum(len(r["warmup"]["stalled"]) for r in allr if r.get("warmup"))
    out.append("")
    out.append("Targets:")
    for (mode, n), t in RATIO_TARGETS.items():
        r, b = small.get((mode, n)), small.get(("healthz", n))
        if r and b:
            v = ratio_of(r, b)
            out.append(f"- {TITLES[mode]} @{n} >= {t:.2f} of /healthz: {v:.2f} ({'met' if v >= t else 'MISSED'})")
    again = meta.get("hist_again") or {}
    for n in CONNECTIONS:
        if ("patch", n) in nohist and ("patch", n) in small:
            v = history_ratio(small, nohist, again, n)
            hist_rps = [small[("patch", n)]["rps"]] + ([again[n]["rps"]] if n in again else [])
            raw = sum(hist_rps) / len(hist_rps) / nohist[("patch", n)]["rps"]
            tgt = f" >= {HISTORY_TARGET:.2f} ({'met' if v >= HISTORY_TARGET else 'MISSED'})" if n == 64 else ""
            out.append(f"- PATCH @{n} with history_max_versions 10 / with 0, each over its own /healthz: {v:.2f}{tgt}; "
                       f"in plain req/s {raw:.2f}")
    for (mode, n), (before, how) in BEFORE_HISTORY.items():
        r, b = small.get((mode, n)), small.get(("healthz", n))
        if r and b:
            v = ratio_of(r, b)
            out.append(f"- {TITLES[mode]} @{n} vs /healthz: {v:.2f}; before versions and the audit log {before:.2f} "
                       f"({how}): {v / before:.2f} of it")
    if large:
        for mode in LARGE_SCENARIOS[1:]:
            for n in CONNECTIONS:
                r, s = large.get((mode, n)), small.get((mode, n))
                if r and s:
                    v = r["rps"] / s["rps"]
                    out.append(f"- {meta['large_label']} DB {TITLES[mode]} @{n} within 10% of small (req/s): {v:.2f} ({'met' if v >= LARGE_TARGET else 'MISSED'})")
    anon = max((r.get("rss_anon_mb", 0) for r in allr), default=0)
    filed = max((r.get("rss_file_mb", 0) for r in allr), default=0)
    out.append(f"- peak anonymous RSS (the server's own memory) < {RSS_TARGET_MB} MB: {anon:.1f} MB "
               f"({'met' if anon < RSS_TARGET_MB else 'MISSED'}); peak RSS {peak:.1f} MB, file-backed "
               f"peak {filed:.1f} MB (sampled; with read_mmap_bytes the mapped database pages are the OS "
               f"page cache, counted once per read connection)")
    out.append(f"- zero failed requests: {failed} failed ({'met' if failed == 0 else 'MISSED'})")
    out.append(f"- every connection made progress in every measured run: "
               f"{'yes' if stalled == 0 else f'NO, {stalled} connection(s) got no answer'}"
               f" (warm-up runs: {'all progressed' if warm_stalled == 0 else f'{warm_stalled} stalled'})")
    out.append("")
    out.append("Details (per run: wrk socket errors connect/read/write/timeout, non-2xx, responses per "
               "connection min..max, peak server threads, pre-warm slowest first answer):")
    out.append("")
    for r in allr:
        e = r["errors"]
        d = (f"- {r['db']} {r['mode']}{' (again)' if r.get('again') else ''} c={r['n']}: socket errors {e['connect']}/{e['read']}/{e['write']}/{e['timeout']}, "
             f"non-2xx {r['non_2xx']}{' ' + ','.join(r['fail_statuses']) if r['fail_statuses'] else ''}, "
             f"per connection {r['conn_min']}..{r['conn_max']}, threads {r['threads']}")
        if r.get("prewarm"):
            d += f", pre-warm {r['prewarm']['slowest_first_answer_ms']} ms"
        if r.get("warmup"):
            w = r["warmup"]
            d += f", warm-up {w['rps']} req/s failed {w['failed']} stalled {len(w['stalled'])}"
        if r["first_failures"]:
            d += f"; first failure: {r['first_failures'][0][:200]}"
        out.append(d)
    for label, res in (("small", small), ("small without history", nohist), ("large", large)):
        for n in CONNECTIONS:
            h = res.get(("healthz", n))
            if h and h.get("ceiling_runs"):
                runs = ", ".join(f"{x:.0f}" for x in h["ceiling_runs"])
                out.append(f"- {label} /healthz runs at c={n}, in order, one before the first scenario and one "
                           f"after each: {runs} req/s")
    for line in meta.get("notes", []):
        out.append(line)
    return "\n".join(out) + "\n", clean


def history_ratio(small: dict, nohist: dict, again: dict, n: int) -> float:
    """PATCH with history over PATCH without, each over the ceiling measured beside it; the
    history side is the mean of the block's PATCH and the one run right after the other server's."""
    hist = [ratio_of(small[("patch", n)], small.get(("healthz", n)))]
    if n in again:
        hist.append(ratio_of(again[n], None))
    return (sum(hist) / len(hist)) / ratio_of(nohist[("patch", n)], nohist.get(("healthz", n)))


def ratio_of(r: dict, base: dict | None) -> float:
    """A scenario's requests/s against its ceiling: the mean of the /healthz runs just before and
    just after it (see measure_bracketed), else the block's /healthz run."""
    ceiling = r.get("ceiling_rps") or (base["rps"] if base else None)
    return r["rps"] / ceiling if ceiling else float("nan")


def row(r: dict, ratio: float, target: str, vs_small: float | None = None) -> str:
    cells = [TITLES[r["mode"]], str(r["n"]), f"{r['rps']:.0f}", fmt_ms(r["latency_us"]["p50"]),
             fmt_ms(r["latency_us"]["p99"]), f"{r['rss_mb']:.1f} MB", f"{ratio:.2f}"]
    if vs_small is not None:
        cells.append(f"{vs_small:.2f}")
    cells += [target, str(r["failed"]), f"{r['n'] - len(r['stalled_connections'])}/{r['n']}"]
    return "| " + " | ".join(cells) + " |"


def machine_meta() -> dict:
    cpu_model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "?"
    except OSError:
        commit = "?"
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "mem_gb": mem_gb, "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def server_log_notes(name: str, server: Server) -> list[str]:
    text = server.log_text()
    bad = [l for l in text.splitlines() if re.search(r"\b(WARN|ERROR)\b", l)]
    if not bad:
        return [f"- {name} server log: no warning or error"]
    return [f"- {name} server log: {len(bad)} warning/error lines, first: `{bad[0][:200]}`"]


# ---------------------------------------------------------------------------------------------


def main() -> int:
    global BIN
    if not os.path.exists(BIN):
        log(f"no binary at {BIN}: run benches/run.sh (it builds it)")
        return 1
    if shutil.which("wrk") is None:
        log("wrk is not installed: run benches/run.sh (it installs it)")
        return 1
    max_conn = max(CONNECTIONS)
    workdir = tempfile.mkdtemp(prefix="flowsnap-bench-")
    # Run a private copy: another build may replace target/release/flowsnap while this runs.
    built = datetime.datetime.fromtimestamp(os.path.getmtime(BIN), datetime.timezone.utc)
    copy = os.path.join(workdir, "flowsnap")
    shutil.copy2(BIN, copy)
    with open(copy, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    BIN = copy
    log(f"work folder {workdir}; runs of {DURATION:g} s after {WARMUP:g} s warm-up; connections {CONNECTIONS}")
    meta = machine_meta()
    meta["binary"] = f"binary built {built:%H:%M:%S} UTC, sha256 {digest}"
    meta["load_before"] = loadavg()
    meta["notes"] = []
    meta["extra_runs"] = []
    small, large, nohist, hist_again = {}, {}, {}, {}
    meta["nohist"] = nohist
    meta["hist_again"] = hist_again
    servers = []
    try:
        # ---- small database, seeded over HTTP
        db = os.path.join(workdir, "small.db")
        server = Server(db, workdir, "small")
        servers.append(server)
        rss_start = server.kb("VmRSS") / 1024
        key = server.first_key()
        auth = seed.basic_auth("admin@example.com", key)
        seeded = seed.seed_http(server.port, auth, SMALL_WORKSPACES, SMALL_FLOWS, max_conn, log=log)
        rss_seeded = server.kb("VmRSS") / 1024
        meta["notes"].append(f"- small server RSS: {rss_start:.1f} MB idle after start, {rss_seeded:.1f} MB after "
                             f"the HTTP seeding (before the first measured run)")
        probe = size_probe(server.port, auth, seeded["values"])
        log(probe[2:])
        meta["notes"].append(probe)
        if os.environ.get("BENCH_SKIP_SEED_CHECK") == "1":
            # A binary of another schema version (an A/B against an older flowsnap, small
            # database only): its rows are not seed_sql's.
            log("BENCH_SKIP_SEED_CHECK=1: the rows are not compared with seed.py's bulk writer")
        else:
            problems = seed.check_against_server(db, seeded)
            if problems:
                raise RuntimeError("the bulk seeder would not write what the server writes:\n" + "\n".join(problems))
            log("rows written by the server match seed.py's bulk writer")
        n_snap = SMALL_FLOWS * seed.STEPS + max_conn * (seed.STEPS - 1)
        meta["small_desc"] = (f"{SMALL_WORKSPACES} workspaces, {SMALL_FLOWS + max_conn} flows of 10 steps, "
                              f"{n_snap} snapshots of 200 B to 5 KB (log-uniform, mean ~1.5 KB), seeded over HTTP")
        full = write_lines(os.path.join(workdir, "small-flows.txt"), seeded["full"])
        scratch = write_lines(os.path.join(workdir, "small-scratch.txt"), seeded["scratch"])
        body_list = seed.bodies(64, 99)
        bodies = write_lines(os.path.join(workdir, "bodies.txt"), body_list)
        # The audit scenario's targets are the workspaces, repeated so every connection has some.
        ws_ids = seeded["workspaces"]
        wsfile = write_lines(os.path.join(workdir, "small-workspaces.txt"),
                             [ws_ids[i % len(ws_ids)] for i in range(max(max_conn, len(ws_ids)))])
        nserver = None
        if NOHIST and "patch" in SCENARIOS:
            ndb = os.path.join(workdir, "small-nohistory.db")
            copy_without_history(db, ndb)
            nserver = Server(ndb, workdir, "nohistory", history=0)
            servers.append(nserver)
            # One authenticated request first, so that its credentials are remembered: otherwise
            # the first burst of the warm-up waits for argon2 and part of it gets 429.
            api = seed.Api(nserver.port, auth)
            api.call("GET", "/v2/users/me")
            api.close()
            log("second small server: a copy of the seeded database without history (current values only), "
                "history_max_versions = 0")

        def state_note(mode: str, n: int) -> None:
            if mode == "versions":
                note = ensure_history(server, auth, seeded["full"], body_list)
                meta["notes"].append(note.replace("- versions scenario:", f"- versions scenario c={n}:"))
                log(note[2:])
            elif mode == "audit":
                lo, hi = audit_events_per_workspace(db, ws_ids)
                note = f"- audit scenario c={n}: {lo}..{hi} events per workspace (the page's total counts them)"
                meta["notes"].append(note)
                log(note[2:])

        for n in CONNECTIONS:
            def run_small(mode, n=n):
                state_note(mode, n)
                targets = {"postdelete": scratch, "healthz": None, "audit": wsfile}.get(mode, full)
                return measure(server, mode, n, auth, targets, bodies, seeded["scratch"], workdir, "small")
            block = {}
            measure_bracketed(block, meta["extra_runs"], SCENARIOS, run_small)
            for mode, r in block.items():
                small[(mode, n)] = r
            if nserver:
                def run_nohist(mode, n=n):
                    return measure(nserver, mode, n, auth, None if mode == "healthz" else full, bodies, [],
                                   workdir, "nohist")
                block = {}
                measure_bracketed(block, meta["extra_runs"], NOHIST_SCENARIOS, run_nohist)
                for mode, r in block.items():
                    nohist[(mode, n)] = r
                # A, B, A: the PATCH with history once more, right after the one without, so that
                # drift over the run does not favour either. Its ceiling: the /healthz run just
                # before it (on the other server: the same binary and HTTP layer, no database)
                # and one just after it.
                again = run_small("patch")
                after = run_small("healthz")
                meta["extra_runs"].append(after)
                again["ceiling_rps"] = (block["healthz"]["ceiling_runs"][-1] + after["rps"]) / 2
                again["again"] = True
                hist_again[n] = again
        if METRICS_ROUNDS > 0:
            note = metrics_ratio(server, auth, full, bodies, workdir)
            log(note[2:])
            meta["notes"].append(note)
        code, took = server.stop()
        meta["notes"].append(f"- small server: SIGTERM -> exit {code} in {took:.1f} s")
        meta["notes"] += server_log_notes("small", server)
        if os.environ.get("BENCH_SKIP_SEED_CHECK") != "1":  # seed.storage reads this schema's tables
            meta["small_storage"] = seed.storage(db)
            meta["notes"].append(storage_note("small (after the runs: history as the server keeps it)",
                                              meta["small_storage"], per_million=False))
        if nserver:
            code, took = nserver.stop()
            meta["notes"].append(f"- small server without history: SIGTERM -> exit {code} in {took:.1f} s")
            meta["notes"] += server_log_notes("small without history", nserver)
            meta["notes"].append(storage_note("small without history (after the runs)", seed.storage(nserver.db),
                                              per_million=False))

        # ---- large database, seeded straight into SQLite
        if LARGE:
            ldb = LARGE_DB or os.path.join(workdir, "large.db")
            keyfile = ldb + ".bench-key.json"
            if LARGE_DB and os.path.exists(ldb) and os.path.exists(keyfile):
                with open(keyfile) as f:
                    info = json.load(f)
                log(f"reusing the large database {ldb} ({info['flows']} flows)")
            else:
                for suffix in ("", "-wal", "-shm", ".bench-key.json"):
                    if os.path.exists(ldb + suffix):
                        os.remove(ldb + suffix)
                env = server_env()
                subprocess.run([BIN, "--db", ldb, "migrate"], env=env, check=True, capture_output=True)
                made = subprocess.run([BIN, "--db", ldb, "user", "create", "--email", "bench@example.com",
                                       "--tenant-admin"], env=env, check=True, capture_output=True, text=True)
                user = json.loads(made.stdout)
                res = seed.seed_sql(ldb, "bench@example.com", LARGE_WORKSPACES, LARGE_FLOWS, log=log)
                info = {"key": user["api_key"], "flows": LARGE_FLOWS, "snapshots": res["snapshots"],
                        "versions": res["versions"], "events": res["events"], "flow_ids": res["full"]}
                with open(keyfile, "w") as f:
                    json.dump(info, f)
            lauth = seed.basic_auth("bench@example.com", info["key"])
            n = info["snapshots"]
            meta["large_label"] = f"{n / 1e6:g}M-snapshot" if n >= 1e6 else f"{n / 1e3:g}k-snapshot"
            t = time.time()
            meta["large_storage"] = lst = seed.storage(ldb)
            log(f"large database storage read by dbstat in {time.time() - t:.0f} s")
            meta["notes"].append(storage_note(f"{meta['large_label']} (as bulk-seeded, before the runs)", lst))
            meta["large_desc"] = (f"{LARGE_WORKSPACES} workspaces, {info['flows']} flows of 10 steps, "
                                  f"{info['snapshots']} snapshots of 200 B to 5 KB, {lst['versions']} versions "
                                  f"(3 on a tenth of the steps, 1 on the others), {lst['events']} audit events, "
                                  f"written straight into SQLite ({os.path.getsize(ldb) / 2**20:.0f} MiB file, of which "
                                  f"history beyond the current values {lst['history'] / 2**20:.0f} MiB); reads and "
                                  f"writes spread over every flow")
            lserver = Server(ldb, workdir, "large")
            servers.append(lserver)
            # Sanity: the server reads the bulk-written rows as its own.
            api = seed.Api(lserver.port, lauth)
            fid = info["flow_ids"][len(info["flow_ids"]) // 2]
            _, doc = api.call("GET", f"/v2/flows/{fid}/snapshots")
            _, fdoc = api.call("GET", f"/v2/flows/{fid}")
            api.close()
            if len(doc["data"]) != seed.STEPS or len(fdoc["data"]["attributes"]["graph"]["nodes"]) != seed.STEPS:
                raise RuntimeError(f"the server does not see the bulk-written flow {fid} as expected")
            lfull = write_lines(os.path.join(workdir, "large-flows.txt"), info["flow_ids"])
            for n in CONNECTIONS:
                def run_large(mode, n=n):
                    targets = None if mode == "healthz" else lfull
                    return measure(lserver, mode, n, lauth, targets, bodies, [], workdir, "large")
                block = {}
                measure_bracketed(block, meta["extra_runs"], LARGE_SCENARIOS, run_large)
                for mode, r in block.items():
                    large[(mode, n)] = r
            code, took = lserver.stop()
            meta["notes"].append(f"- large server: SIGTERM -> exit {code} in {took:.1f} s")
            meta["notes"] += server_log_notes("large", lserver)
    except Exception as e:  # the benchmark could not finish: say why, keep what was measured
        log(f"ERROR: {e}")
        for s in servers:
            s.stop()
        if small or large:
            meta["load_after"] = loadavg()
            meta.setdefault("small_desc", "?")
            meta.setdefault("large_desc", "?")
            meta.setdefault("large_label", "large")
            meta["notes"].append(f"- **the benchmark stopped early**: {str(e)[:500]}")
            text, _ = build_report(small, large, meta)
            print(text)
        log(f"work folder kept for inspection: {workdir}")
        return 1
    meta["load_after"] = loadavg()
    text, clean = build_report(small, large, meta)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print()
    print(text)
    log(f"table written to {OUT}")
    if KEEP:
        log(f"work folder kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if not clean:
        log("SOME REQUESTS FAILED or some connection made no progress: see the table")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
