#!/usr/bin/env python3
"""Instructions per request, by scenario, counted by valgrind's callgrind (issue 6, item 4).

Why: requests/s on this shared 2-core machine move by 10-20 % between runs, too much to tell a
5 % change from noise. Instructions executed in user space do not depend on the neighbours, so
this script is the A/B tool for CPU work in the server's own code and the source of the profile
in the README. It does not count kernel time (socket calls, fsync) or waiting; benches/run.sh
measures those.

What it does: seeds a small database with the release binary (as bench.py does, over HTTP),
restarts the server under `valgrind --tool=callgrind` with 4 workers, warms each scenario up,
then for each scenario zeroes the counters, sends N requests one after another on one keep-alive
connection, and dumps. It prints instructions per request and each scenario's ratio to /healthz,
and leaves the dumps (callgrind.out.SCENARIO) in the output folder for callgrind_annotate.

Usage: benches/callgrind.py [N]      (N requests a scenario, default 500)
Env:   BENCH_BIN (default target/release/flowsnap), CG_OUT (default bench-out/callgrind)
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import seed  # noqa: E402

ROOT = os.path.dirname(HERE)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
OUT = os.environ.get("CG_OUT", os.path.join(ROOT, "bench-out", "callgrind"))
SCENARIOS = ["healthz", "get_one", "get_list", "get_flow", "patch"]


def log(msg: str) -> None:
    print(f"[callgrind] {msg}", file=sys.stderr, flush=True)


def requests_for(mode: str, flows: list[str], bodies: list[str], rng: random.Random):
    """(method, path, body) of the scenario, like benches/wrk/bench.lua."""
    if mode == "healthz":
        return "GET", "/healthz", None
    f = flows[rng.randrange(len(flows))]
    k = rng.randrange(1, 11)
    if mode == "get_one":
        return "GET", f"/v2/flows/{f}/snapshots/step_{k}", None
    if mode == "get_list":
        return "GET", f"/v2/flows/{f}/snapshots", None
    if mode == "get_flow":
        return "GET", f"/v2/flows/{f}", None
    doc = ('{"data":{"type":"snapshot","id":"step_%d","attributes":{"snapshot":%s}}}'
           % (k, bodies[rng.randrange(len(bodies))]))
    return "PATCH", f"/v2/flows/{f}/snapshots/step_{k}", doc


def run(conn: http.client.HTTPConnection, auth: str, mode: str, n: int, flows, bodies, seed_no: int) -> None:
    rng = random.Random(seed_no)
    for _ in range(n):
        method, path, body = requests_for(mode, flows, bodies, rng)
        headers = {} if mode == "healthz" else {"Authorization": auth}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status >= 300:
            raise RuntimeError(f"{mode}: {method} {path} -> {r.status}")


def totals(path: str) -> int:
    """The instruction total of a callgrind dump (its `totals:` or `summary:` line)."""
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:totals|summary):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError(f"no totals in {path}")


def main() -> int:
    if shutil.which("valgrind") is None:
        log("valgrind is not installed: apt-get install -y valgrind")
        return 1
    binary = os.environ.get("BENCH_BIN", os.path.join(ROOT, "target", "release", "flowsnap"))
    work = tempfile.mkdtemp(prefix="flowsnap-cg-")
    bench.BIN = binary
    bench.WORKERS = 4
    db = os.path.join(work, "small.db")
    log("seeding a small database over HTTP with the release binary")
    server = bench.Server(db, work, "seed")
    key = server.first_key()
    auth = seed.basic_auth("admin@example.com", key)
    seeded = seed.seed_http(server.port, auth, 2, 30, 4, log=lambda m: None)
    server.stop()
    flows = seeded["full"]
    bodies = seed.bodies(64, 99)

    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "callgrind.out.*")):
        os.remove(old)
    port = bench.free_port()
    raw = os.path.join(work, "cg.out")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={raw}", binary, "--db", db, "serve",
           "--listen", f"127.0.0.1:{port}", "--workers", "4"]
    log("starting the server under callgrind (slow: argon2 alone takes seconds)")
    proc = subprocess.Popen(cmd, env=bench.server_env(), stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "valgrind.stderr"), "w"))
    try:
        deadline = time.time() + 300
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                c.request("GET", "/healthz")
                c.getresponse().read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server under callgrind did not start")
                time.sleep(0.5)
        for mode in SCENARIOS:  # warm-up: caches, prepared statements, remembered credentials
            run(c, auth, mode, 30, flows, bodies, 1)
        results = {}
        for i, mode in enumerate(SCENARIOS):
            subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
            run(c, auth, mode, N, flows, bodies, 100 + i)
            before = set(glob.glob(raw + "*"))
            subprocess.run(["callgrind_control", f"--dump={mode}", str(proc.pid)], check=True,
                           capture_output=True)
            time.sleep(0.5)
            dumps = sorted(set(glob.glob(raw + "*")) - before, key=os.path.getmtime)
            if not dumps:
                raise RuntimeError(f"no dump for {mode}")
            total = sum(totals(d) for d in dumps)
            target = os.path.join(OUT, f"callgrind.out.{mode}")
            # One file per thread may be written; keep them all under the scenario's name.
            for j, d in enumerate(dumps):
                shutil.move(d, target if j == 0 else f"{target}.{j}")
            results[mode] = total / N
            log(f"{mode}: {total / N:,.0f} instructions/request")
        base = results["healthz"]
        print(f"| scenario | instructions/request | vs /healthz |\n|---|---:|---:|")
        for mode in SCENARIOS:
            print(f"| {mode} | {results[mode]:,.0f} | {results[mode] / base:.2f} |")
        print(f"\n{N} requests a scenario, one keep-alive connection, 4 workers; dumps in {OUT} "
              f"(callgrind_annotate {OUT}/callgrind.out.get_one)")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
