#!/usr/bin/env python3
"""Fixture figures (issue 12): start-up to the readiness line, reset, import and export.

    cargo build --release && python3 benches/fixtures.py            # everything (a few minutes)
    python3 benches/fixtures.py startup reset                        # some of it

The binary: $FLOWSNAP_BIN, else target/release/flowsnap. Prints one line per figure and a JSON
summary at the end. What it measures:

  startup  exec to the readiness line on stdout, median of 10 starts, for `serve --demo` and for
           `serve --ephemeral --fixture` with a 100-flow, 1,000-snapshot fixture (3 users with
           plain API keys); with the split the server logs (argon2id hashing vs writing the rows)
  reset    POST /_flowsnap/reset on the 100-flow fixture, median of 50 (each after a few writes),
           and GET of one snapshot right after a reset against the same GET before any reset
           (median of the first 5 requests after each of the 50 resets vs 250 before)
  import   `flowsnap import` of 10,000 flows x 10 steps (100,000 snapshots) into a new database
  export   `flowsnap export --out` of that database, with its peak RSS (the export streams)
"""
import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLOWSNAP_BIN", os.path.join(ROOT, "target", "release", "flowsnap"))
ENV = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSNAP_") and k != "RUST_LOG"}
ENV["FLOWSNAP_LOG_LEVEL"] = "info"
ADMIN = ("dev@example.com", "bench-key-dev")
BIG = "12345678901234567890123"


def fixture(flows, steps, users=3):
    """A fixture with `flows` flows of `steps` steps, each step with a snapshot."""
    out = ['{"flowsnap_fixture": 1, "users": [']
    us = [f'{{"email": "{ADMIN[0]}", "tenant_admin": true, "api_key": "{ADMIN[1]}"}}']
    us += [f'{{"email": "user{i}@example.com", "api_key": "bench-key-{i}"}}' for i in range(1, users)]
    out.append(", ".join(us))
    out.append('], "workspaces": [{"name": "Bench", "members": [')
    out.append(", ".join([f'{{"email": "{ADMIN[0]}", "role": "owner"}}']
                         + [f'{{"email": "user{i}@example.com", "role": "integrator"}}' for i in range(1, users)]))
    out.append('], "flows": [')
    for f in range(flows):
        nodes = ", ".join(f'{{"id": "s{s}", "command": "elasticio/rest-api:httpRequestAction@2.0.11", '
                          f'"fields": {{"url": "https://api.example.com/items/{s}"}}}}' for s in range(steps))
        edges = ", ".join(f'{{"source": "s{s}", "target": "s{s + 1}"}}' for s in range(steps - 1))
        snaps = ", ".join(f'"s{s}": {{"cursor": "2026-11-30T10:{s:02d}:00.000Z", "seen": {f * steps + s}, '
                          f'"total": {BIG}, "token": "eyJvZmZzZXQiOj{f:06d}"}}' for s in range(steps))
        out.append(("," if f else "") + f'\n {{"name": "Flow {f}", "type": "ordinary", '
                   f'"graph": {{"nodes": [{nodes}], "edges": [{edges}]}}, "snapshots": {{{snaps}}}}}')
    out.append("]}]}\n")
    return "".join(out)


def run_measured(args):
    """Runs a command; returns (seconds, its peak RSS in MiB, stdout, stderr). The peak RSS is
    GNU time's (%M): a child forked from this Python would count this process's memory as its
    own until it execs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + args,
                           stdout=out, stderr=err, env=ENV)
        dt = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        o, e = out.read().decode(), err.read().decode()
        peak = int(rss.read().strip().splitlines()[-1]) / 1024
    if p.returncode != 0:
        sys.exit(f"{args}: exit {p.returncode}: {e[-2000:]}")
    return dt, peak, o, e


def start(args):
    """Starts `flowsnap serve ...` (its log into a temporary file: a pipe nobody reads would fill
    and stop the server); returns (process, seconds to the readiness line, url)."""
    log = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=log, env=ENV, text=True)
    line = p.stdout.readline()
    dt = time.perf_counter() - t0
    p.log = log
    if not line:
        p.wait()
        log.seek(0)
        sys.exit(f"flowsnap did not start: {log.read().decode()}")
    return p, dt, json.loads(line)["url"]


def stop(p):
    """Stops the server; returns its log."""
    p.terminate()
    p.wait(timeout=30)
    p.stdout.close()
    p.log.seek(0)
    text = p.log.read().decode()
    p.log.close()
    return text


def split_of(stderr):
    """The server's own account of a load: 'N argon2id hashes in X ms on T threads, rows in Y ms'."""
    for line in stderr.splitlines():
        if "argon2id hashes in" in line:
            return line.split(": ", 1)[-1].split("; ", 1)[-1]
    return ""


class Client:
    def __init__(self, url, user=ADMIN):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port))
        self.auth = "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()

    def call(self, method, path, body=None):
        headers = {"Authorization": self.auth}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, time.perf_counter() - t0, data


def ms(x):
    return round(x * 1000, 2)


def startup(tmp, results):
    small = os.path.join(tmp, "fixture-100.json")
    with open(small, "w") as f:
        f.write(fixture(100, 10))
    for name, args in [("demo", ["serve", "--demo", "--listen", "127.0.0.1:0"]),
                       ("100 flows, 1,000 snapshots", ["serve", "--ephemeral", "--fixture", small, "--listen", "127.0.0.1:0"])]:
        times, split = [], ""
        for _ in range(10):
            p, dt, _ = start(args)
            times.append(dt)
            split = split_of(stop(p))
        results[f"startup {name} median ms"] = ms(statistics.median(times))
        print(f"startup, {name}: median {ms(statistics.median(times))} ms of 10 "
              f"(min {ms(min(times))}, max {ms(max(times))}); last start: {split}")


def reset(tmp, results):
    small = os.path.join(tmp, "fixture-100.json")
    if not os.path.exists(small):
        with open(small, "w") as f:
            f.write(fixture(100, 10))
    p, _, url = start(["serve", "--ephemeral", "--fixture", small, "--listen", "127.0.0.1:0"])
    try:
        c = Client(url)
        flows = json.loads(c.call("GET", "/v2/flows?workspace_id=" + json.loads(
            c.call("GET", "/v2/workspaces")[2])["data"][0]["id"] + "&page[size]=100")[2])["data"]
        fid = flows[0]["id"]
        path = f"/v2/flows/{fid}/snapshots/s3"
        before = [c.call("GET", path)[1] for _ in range(250)]
        resets, after, later = [], [], []
        for i in range(50):
            for s in range(3):
                st, _, _ = c.call("PATCH", f"/v2/flows/{flows[i]['id']}/snapshots/s{s}",
                                  {"data": {"type": "snapshot", "attributes": {"snapshot": {"n": i}}}})
                assert st == 200, st
            st, dt, _ = c.call("POST", "/_flowsnap/reset")
            assert st == 204, st
            resets.append(dt)
            got = [c.call("GET", path)[1] for _ in range(40)]
            after += got[:5]
            later += got[20:]
        results["reset median ms"] = ms(statistics.median(resets))
        results["GET before resets median ms"] = ms(statistics.median(before))
        results["GET right after reset median ms"] = ms(statistics.median(after))
        results["GET 21st-40th after reset median ms"] = ms(statistics.median(later))
        print(f"reset, 100 flows: median {ms(statistics.median(resets))} ms of 50 "
              f"(min {ms(min(resets))}, max {ms(max(resets))}), each after 3 PATCHes")
        print(f"GET one snapshot: median {ms(statistics.median(before))} ms before any reset (250), "
              f"{ms(statistics.median(after))} ms in the first 5 requests after each reset (250), "
              f"{ms(statistics.median(later))} ms in the 21st to 40th (1,000); "
              f"worst first request after a reset {ms(max(after[0::5]))} ms")
    finally:
        stop(p)


def import_export(tmp, results):
    big = os.path.join(tmp, "fixture-10k.json")
    t0 = time.perf_counter()
    with open(big, "w") as f:
        f.write(fixture(10_000, 10))
    size = os.path.getsize(big) / 2**20
    print(f"(generated a {size:.1f} MiB fixture of 10,000 flows x 10 steps in {time.perf_counter() - t0:.1f} s)")
    db = os.path.join(tmp, "big.db")
    dt, rss, out, err = run_measured([BIN, "--db", db, "import", big])
    results["import 100k snapshots s"] = round(dt, 2)
    print(f"import, 10,000 flows x 10 steps: {dt:.2f} s, {out.strip()}; {split_of(err)}; "
          f"peak RSS {rss:.0f} MiB (the file is read into memory)")
    out_file = os.path.join(tmp, "export.json")
    dt, rss, _, _ = run_measured([BIN, "--db", db, "export", "--out", out_file])
    results["export 100k snapshots s"] = round(dt, 2)
    results["export peak RSS MiB"] = round(rss, 1)
    print(f"export, the same database: {dt:.2f} s, {os.path.getsize(out_file) / 2**20:.1f} MiB written, "
          f"peak RSS {rss:.1f} MiB")


def main():
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("GNU time (/usr/bin/time) is needed for the peak RSS: apt-get install time")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} is missing: cargo build --release (or set FLOWSNAP_BIN)")
    which = sys.argv[1:] or ["startup", "reset", "import"]
    tmp = tempfile.mkdtemp(prefix="flowsnap-bench-fixtures-")
    results = {"binary": BIN, "cores": os.cpu_count()}
    try:
        if "startup" in which:
            startup(tmp, results)
        if "reset" in which:
            reset(tmp, results)
        if "import" in which or "export" in which:
            import_export(tmp, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
