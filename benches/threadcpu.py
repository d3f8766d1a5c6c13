#!/usr/bin/env python3
"""CPU per PATCH, by thread, with history 10 and history 0 side by side (issue 11).

Why: requests/s of one PATCH run move by 20-40 % on this shared machine, while CPU time per
request (user and kernel, from /proc/PID/task/*/stat) moves much less; and the writer thread is
the one that pays for a version (its SQL, the WAL pages it writes, the checkpoints it runs). This
is the tool that found the statement journals in temporary files (`temp_store`) and that compared
storage layouts before the ring of version slots was chosen.

What it does: seeds a small database over HTTP as bench.py does (5 workspaces, 300 flows of 10
steps, values of 200 B to 5 KB), copies it twice, then for ROUNDS rounds starts a server on each
copy (history_max_versions 10, then 0), warms it with WARM seconds of PATCH at 64 connections (so
that each step's ring of versions is full: a steady state), and measures SECONDS more. It prints
req/s, the server's CPU per PATCH, the writer thread's user and kernel time per PATCH, and WAL
pages per PATCH (meaningful only with FLOWSNAP_WAL_AUTOCHECKPOINT_PAGES=0 in XENV, since a
checkpoint restarts the WAL); at the end the ratio of the req/s sums.

Usage: benches/threadcpu.py [SECONDS]          (default 8)
Env:   BENCH_BIN (default target/release/flowsnap), ROUNDS (2), WARM (10),
       XENV="K=V K=V" extra server environment (e.g. FLOWSNAP_SYNCHRONOUS=normal),
       PERF=1 also records the writer thread with `perf record -g` into perf-HISTORY.data
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import seed  # noqa: E402

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
ROUNDS = int(os.environ.get("ROUNDS", "2"))
WARM = float(os.environ.get("WARM", "10"))
PAGE = 8192 + 24  # a WAL frame: the page and its header


def ticks(pid: int) -> dict[str, tuple[str, int, int]]:
    """Thread id -> (name, user ticks, system ticks)."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out[t] = (name, int(fields[11]), int(fields[12]))
    return out


def main() -> int:
    bench.BIN = os.environ.get("BENCH_BIN", os.path.join(os.path.dirname(HERE), "target", "release", "flowsnap"))
    work = tempfile.mkdtemp(prefix="flowsnap-threadcpu-")
    db = os.path.join(work, "small.db")
    s = bench.Server(db, work, "seed")
    auth = seed.basic_auth("admin@example.com", s.first_key())
    seeded = seed.seed_http(s.port, auth, 5, 300, 64, log=lambda m: None)
    flows = bench.write_lines(os.path.join(work, "flows.txt"), seeded["full"])
    bodies = bench.write_lines(os.path.join(work, "bodies.txt"), seed.bodies(64, 99))
    s.stop()
    extra = dict(a.split("=", 1) for a in os.environ.get("XENV", "").split() if a)
    hz = os.sysconf("SC_CLK_TCK")
    rps: dict[int, list[float]] = {10: [], 0: []}
    for _ in range(ROUNDS):
        for hist in (10, 0):
            path = os.path.join(work, f"history{hist}.db")
            if not os.path.exists(path):
                shutil.copy(db, path)
            srv = bench.Server(path, work, f"history{hist}", history=hist, extra_env=extra)
            seed.Api(srv.port, auth).call("GET", "/v2/users/me")  # remembered credentials
            bench.run_wrk("patch", srv.port, 64, WARM, auth, flows, bodies, work, f"warm{hist}")
            wal0 = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
            t0, c0 = ticks(srv.pid), time.time()
            if os.environ.get("PERF"):
                writer = next(t for t, v in t0.items() if v[0] == "flowsnap-writer")
                subprocess.Popen(["perf", "record", "-q", "-g", "-t", writer, "-o", f"perf-{hist}.data", "--",
                                  "sleep", str(max(1, SECS - 2))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            r = bench.run_wrk("patch", srv.port, 64, SECS, auth, flows, bodies, work, f"run{hist}")
            t1, elapsed = ticks(srv.pid), time.time() - c0
            wal1 = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
            srv.stop()
            us = lambda t: t / hz / r["requests"] * 1e6  # noqa: E731  ticks -> us per PATCH
            total = sum(v[1] + v[2] - sum(t0.get(t, ("", 0, 0))[1:]) for t, v in t1.items())
            writer = next(t for t, v in t1.items() if v[0] == "flowsnap-writer")
            wu, ws = t1[writer][1] - t0[writer][1], t1[writer][2] - t0[writer][2]
            rps[hist].append(r["rps"])
            print(f"history {hist:2d}: {r['rps']:6.0f} req/s; server CPU {total / hz / elapsed * 100:3.0f} %, "
                  f"{us(total):4.0f} us per PATCH; writer thread user {us(wu):3.0f} us, kernel {us(ws):3.0f} us per PATCH; "
                  f"WAL {(wal1 - wal0) / PAGE / r['requests']:.2f} pages per PATCH", flush=True)
    print(f"history 10 / history 0 (req/s, sums over {ROUNDS} rounds): {sum(rps[10]) / sum(rps[0]):.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
