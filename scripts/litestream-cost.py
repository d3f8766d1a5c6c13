#!/usr/bin/env python3
"""What Litestream costs in PATCH throughput (issue 14): one short wrk run side by side.

    cargo build --release && scripts/litestream-install.sh && scripts/litestream-cost.py

Two fresh servers, one after the other, same data and same wrk run (benches/wrk/bench.lua, mode
``patch``: each connection PATCHes the 10 steps of its own flows with 1 KB values):

* ``without``: flowsnap's defaults (it checkpoints itself, wal_autocheckpoint_pages = 1000);
* ``with``: wal_autocheckpoint_pages = 0 and ``litestream replicate`` with docs/litestream.yml
  (paths replaced) shipping to a file replica on the same disk, started before the load.

Environment: LS_COST_SECONDS (default 10), LS_COST_CONNECTIONS (default 8), LITESTREAM (binary;
default target/litestream-venv/bin/litestream), FLOWSNAP_BIN (default target/release/flowsnap),
LS_COST_KEEP=1 (keep the temporary directories: databases, logs).
Only the Python standard library is used.
"""

import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLOWSNAP_BIN", os.path.join(ROOT, "target/release/flowsnap"))
LITESTREAM = os.environ.get("LITESTREAM") or os.path.join(
    ROOT, "target/litestream-venv/bin/litestream"
)
SECONDS = int(os.environ.get("LS_COST_SECONDS", "10"))
CONNS = int(os.environ.get("LS_COST_CONNECTIONS", "8"))
FLOWS_PER_CONN = 2


def start_server(d, env_extra):
    env = dict(os.environ, FLOWSNAP_LOG_LEVEL="warn", **env_extra)
    env.pop("RUST_LOG", None)
    log = open(os.path.join(d, "server.log"), "w+")
    p = subprocess.Popen(
        [BIN, "--db", os.path.join(d, "flowsnap.db"), "serve", "--listen", "127.0.0.1:0",
         "--workers", "32"],
        env=dict(env, FLOWSNAP_LOG_LEVEL="info"), stderr=subprocess.PIPE, text=True,
    )
    key, addr, next_is_key = None, None, False
    for line in p.stderr:
        log.write(line)
        if next_is_key and line.strip():
            key, next_is_key = line.strip(), False
        if "shown only now" in line:
            next_is_key = True
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            addr = m.group(1)
            break
    # Keep draining stderr so the server never blocks on it.
    import threading
    threading.Thread(target=lambda: [log.write(l) for l in p.stderr], daemon=True).start()
    return p, addr, key


def call(addr, auth, method, path, body=None):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": auth}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read()
    c.close()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {text[:300]!r}")
    return json.loads(text) if text else None


def seed(addr, auth):
    ws = call(addr, auth, "POST", "/v2/workspaces",
              {"data": {"type": "workspace", "attributes": {"name": "cost"}}})["data"]["id"]
    steps = [f"step_{k}" for k in range(1, 11)]
    graph = {"nodes": [{"id": s, "command": "elasticio/test:x@1.0.0", "name": s, "fields": {}}
                       for s in steps],
             "edges": [{"source": a, "target": b} for a, b in zip(steps, steps[1:])]}
    flows = []
    for i in range(CONNS * FLOWS_PER_CONN):
        f = call(addr, auth, "POST", "/v2/flows", {"data": {
            "type": "flow", "attributes": {"name": f"f{i}", "type": "ordinary", "graph": graph},
            "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}})
        fid = f["data"]["id"]
        for s in steps:
            call(addr, auth, "POST", f"/v2/flows/{fid}/snapshots", {"data": {
                "type": "snapshot", "id": s, "attributes": {"snapshot": {"seed": 0}}}})
        flows.append(fid)
    return flows


def run_wrk(d, addr, auth, flows):
    targets = os.path.join(d, "targets")
    for i in range(CONNS):
        with open(f"{targets}.{i}", "w") as f:
            f.write("\n".join(flows[i::CONNS]) + "\n")
    bodies = os.path.join(d, "bodies")
    with open(bodies, "w") as f:
        for n in range(20):
            f.write(json.dumps({"n": n, "pad": "p" * 1000}, separators=(",", ":")) + "\n")
    env = dict(os.environ, BENCH_MODE="patch", BENCH_AUTH=auth, BENCH_TARGETS=targets,
               BENCH_BODIES=bodies, BENCH_RESULT=os.path.join(d, "wrk.json"))
    out = subprocess.run(
        ["wrk", f"-t{CONNS}", f"-c{CONNS}", f"-d{SECONDS}s", "--timeout", "5s",
         "-s", os.path.join(ROOT, "benches/wrk/bench.lua"), f"http://{addr}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, int(errors.group(1)) if errors else 0, out


def one(name, with_litestream):
    d = tempfile.mkdtemp(prefix=f"flowsnap-lscost-{name}-")
    env = {"FLOWSNAP_WAL_AUTOCHECKPOINT_PAGES": "0"} if with_litestream else {}
    server, addr, key = start_server(d, env)
    ls = None
    try:
        auth = "Basic " + base64.b64encode(f"admin@example.com:{key}".encode()).decode()
        flows = seed(addr, auth)
        if with_litestream:
            with open(os.path.join(ROOT, "docs/litestream.yml")) as f:
                cfg = f.read()
            cfg = cfg.replace("/var/lib/flowsnap/flowsnap.db", os.path.join(d, "flowsnap.db"))
            cfg = cfg.replace("/var/backups/flowsnap-replica", os.path.join(d, "replica"))
            with open(os.path.join(d, "litestream.yml"), "w") as f:
                f.write(cfg)
            lslog = open(os.path.join(d, "litestream.log"), "w")
            ls = subprocess.Popen([LITESTREAM, "replicate", "-config",
                                   os.path.join(d, "litestream.yml")],
                                  stdout=lslog, stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while "snapshot complete" not in open(os.path.join(d, "litestream.log")).read():
                if time.time() > deadline:
                    sys.exit("litestream took no first snapshot")
                time.sleep(0.1)
        rate, errors, _ = run_wrk(d, addr, auth, flows)
        wal = os.path.getsize(os.path.join(d, "flowsnap.db-wal"))
        ls_errors = 0
        if ls:
            ls.terminate()
            ls.wait(timeout=60)
            ls_errors = open(os.path.join(d, "litestream.log")).read().count("level=ERROR")
        return rate, errors, wal, ls_errors
    finally:
        if ls and ls.poll() is None:
            ls.kill()
        server.terminate()
        server.wait(timeout=30)
        if os.environ.get("LS_COST_KEEP") == "1":
            print(f"kept {d}", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


def main():
    for tool in (BIN, LITESTREAM):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing (cargo build --release; scripts/litestream-install.sh)")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing (apt-get install -y wrk)")
    without = one("without", False)
    with_ls = one("with", True)
    print(f"PATCH, wrk -t{CONNS} -c{CONNS} -d{SECONDS}s, 1 KB values, synchronous = full")
    print(f"  without Litestream: {without[0]:8.0f} req/s  non-2xx {without[1]}  "
          f"WAL at the end {without[2] / 1e6:.1f} MB")
    print(f"  with Litestream:    {with_ls[0]:8.0f} req/s  non-2xx {with_ls[1]}  "
          f"WAL at the end {with_ls[2] / 1e6:.1f} MB  Litestream errors {with_ls[3]}")
    print(f"  ratio with/without: {with_ls[0] / without[0]:.3f}")


if __name__ == "__main__":
    main()
