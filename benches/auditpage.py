#!/usr/bin/env python3
"""Time of one page of 50 audit events (GET /v2/workspaces/{id}/audit), sequential on one
keep-alive connection, on a fresh database whose workspace holds ~2 000 events; /healthz beside it.
An A/B tool for the page's CPU cost: run it for two binaries in turn.

Usage: benches/auditpage.py BINARY      (e.g. target/release/flowsnap)
"""
import base64, http.client, json, os, re, subprocess, sys, tempfile, time, socket
def start(binary, db):
    p = subprocess.Popen([binary, "--db", db, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, FLOWSNAP_LOG_LEVEL="warn"))
    line = p.stdout.readline()
    url = json.loads(line)["url"]
    return p, int(url.rsplit(":", 1)[1])
def main():
    d = tempfile.mkdtemp(); db = os.path.join(d, "a.db")
    p, port = start(sys.argv[1], db)
    err = ""
    t0 = time.time()
    while "API key" not in err and time.time() - t0 < 5:
        err += p.stderr.readline()
    key = re.search(r"\n\s+([0-9a-f]{40})", err + p.stderr.readline() + p.stderr.readline()).group(1)
    auth = "Basic " + base64.b64encode(f"admin@example.com:{key}".encode()).decode()
    c = http.client.HTTPConnection("127.0.0.1", port)
    def call(m, path, body=None):
        h = {"Authorization": auth, "Content-Type": "application/json"}
        c.request(m, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse(); return r.status, r.read()
    _, b = call("POST", "/v2/workspaces", {"data": {"type": "workspace", "attributes": {"name": "Audit bench"}}})
    ws = json.loads(b)["data"]["id"]
    g = {"nodes": [{"id": "s1", "command": "a/b:c@1"}], "edges": []}
    _, b = call("POST", "/v2/flows", {"data": {"type": "flow", "attributes": {"name": "F", "type": "ordinary", "graph": g},
                                              "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}})
    fid = json.loads(b)["data"]["id"]
    call("POST", f"/v2/flows/{fid}/snapshots", {"data": {"type": "snapshot", "id": "s1", "attributes": {"snapshot": 0}}})
    for i in range(2000):
        call("PATCH", f"/v2/flows/{fid}/snapshots/s1", {"data": {"type": "snapshot", "id": "s1", "attributes": {"snapshot": i}}})
    for _ in range(50):
        call("GET", f"/v2/workspaces/{ws}/audit")
    n = 400; t = time.perf_counter()
    for _ in range(n):
        s, _ = call("GET", f"/v2/workspaces/{ws}/audit")
        assert s == 200
    per = (time.perf_counter() - t) / n * 1000
    t = time.perf_counter()
    for _ in range(n):
        call("GET", "/healthz")
    hz = (time.perf_counter() - t) / n * 1000
    print(f"{sys.argv[1]}: audit page of 50 {per:.3f} ms, /healthz {hz:.3f} ms")
    p.terminate(); p.wait()
main()
