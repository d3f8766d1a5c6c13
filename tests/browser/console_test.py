#!/usr/bin/env python3
"""The console in a real browser: headless Debian Chromium driven by Playwright for Python.

    tests/browser/console_test.py BIN AXE_JS

Starts `BIN serve` on 127.0.0.1 port 0 with a fresh temporary database (with `--demo` when the
binary has it), seeds what the checks need through the API, then walks the console as a person
would, finding everything by its label or role: signs in (a wrong key first), opens a workspace,
a flow and a step, checks that 12345678901234567890123 is shown and saved exactly, edits a value,
provokes a 412 from a second client and resolves it both ways, restores a version and looks at the
diff, checks that names and values holding <img src=x onerror=...> are shown as text and run
nothing, measures the 1,000-step flow page, runs axe-core on every page, and checks that the page
asked no other origin and logged no console error. Screenshots go to docs/screenshots/.

Prints one line per check and closes with `browser: N passed, M failed`; exits 1 on a failure.
Figures (page weight, render times, axe findings) go to target/browser-report.json.
"""
import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from urllib.parse import urlparse

from playwright.sync_api import expect, sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/flowsnap")
AXE = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target/browser-npm/node_modules/axe-core/axe.min.js")
SHOTS = os.path.join(ROOT, "docs/screenshots")
REPORT = os.path.join(ROOT, "target/browser-report.json")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BIG = "12345678901234567890123"
XSS = "<img src=x onerror=window.__xss=1>"
TIMEOUT_MS = 15_000
report = {"checks": {}, "axe": {}, "timings_ms": {}}


# --- the server -----------------------------------------------------------------------------
class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="flowsnap-browser-")
        helptext = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
        self.demo = "--demo" in helptext
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSNAP_")}
        env["FLOWSNAP_LOG_LEVEL"] = "info"
        args = [BIN, "serve", "--listen", "127.0.0.1:0"]
        if self.demo:
            args.append("--demo")
        else:
            args = [BIN, "--db", os.path.join(self.dir, "flowsnap.db")] + args[1:]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.stderr = []
        self.url = None
        ready = threading.Event()

        def read_out():
            for line in self.proc.stdout:
                line = line.strip()
                if line.startswith("{") and '"url"' in line:
                    self.url = json.loads(line)["url"]
                    ready.set()

        def read_err():
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip("\n"))
                m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
                if m and not self.url:
                    self.url = m.group(1)
                    ready.set()

        threading.Thread(target=read_out, daemon=True).start()
        threading.Thread(target=read_err, daemon=True).start()
        if not ready.wait(30):
            self.stop()
            sys.exit("the server did not become ready:\n" + "\n".join(self.stderr))
        # The stderr lines before readiness (the admin key) come from another reader thread.
        deadline = time.time() + 10
        while self.find_admin_key() is None and time.time() < deadline:
            time.sleep(0.05)
        self.key = self.admin_key()
        self.host, self.port = urlparse(self.url).hostname, urlparse(self.url).port

    def admin_key(self):
        key = self.find_admin_key()
        if key is None:
            self.stop()
            sys.exit("no admin key on the server's stderr:\n" + "\n".join(self.stderr))
        return key

    def find_admin_key(self):
        text = "\n".join(self.stderr)
        m = re.search(r"shown only now:\s*\n\s*\n\s*(\S+)", text)
        if m:
            return ("admin@example.com", m.group(1))
        # --demo prints each demo user as "flowsnap demo: EMAIL KEY", a tenant-admin marked.
        m = re.search(r"flowsnap demo: (\S+@\S+) (\S+)\s+\(tenant-admin\)", text)
        if m:
            return (m.group(1), m.group(2))
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def basic(email, key):
    return "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()


class Client:
    """A second client: speaks to the API directly (raw text in and out)."""

    def __init__(self, server, email, key):
        self.server, self.auth = server, basic(email, key)
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        h = {"Authorization": self.auth}
        if body is not None:
            h["Content-Type"] = "application/json"
            if not isinstance(body, str):
                body = json.dumps(body)
        h.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
            try:
                self.conn.request(method, path, body=body.encode() if body else None, headers=h)
                r = self.conn.getresponse()
                text = r.read().decode()
                return r.status, dict(r.getheaders()), text
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise

    def ok(self, method, path, body=None, headers=None, expect_status=(200, 201, 202, 204)):
        status, hdrs, text = self.call(method, path, body, headers)
        if status not in expect_status:
            raise AssertionError(f"{method} {path} -> {status}: {text}")
        return hdrs, (json.loads(text) if text else None), text

    def workspace(self, name):
        return self.ok("POST", "/v2/workspaces", {"data": {"type": "workspace", "attributes": {"name": name}}})[1]["data"]["id"]

    def flow(self, ws, name, nodes, description=""):
        graph = {"nodes": nodes, "edges": [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:])]}
        doc = {"data": {"type": "flow", "attributes": {"name": name, "type": "ordinary", "description": description, "graph": graph},
                        "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}
        return self.ok("POST", "/v2/flows", doc)[1]["data"]["id"]

    def snapshot(self, flow, step, value_text):
        body = '{"data":{"type":"snapshot","id":%s,"attributes":{"snapshot":%s}}}' % (json.dumps(step), value_text)
        self.ok("POST", f"/v2/flows/{flow}/snapshots", body)

    def patch(self, flow, step, value_text, etag=None):
        body = '{"data":{"type":"snapshot","id":%s,"attributes":{"snapshot":%s}}}' % (json.dumps(step), value_text)
        return self.ok("PATCH", f"/v2/flows/{flow}/snapshots/{step}", body, {"If-Match": etag} if etag else None)

    def value_text(self, flow, step):
        """The stored value as the server's raw text, with its ETag."""
        status, hdrs, text = self.call("GET", f"/v2/flows/{flow}/snapshots/{step}")
        if status == 404:
            return None, None
        assert status == 200, text
        key = '"attributes":{"snapshot":'
        start = text.index(key) + len(key)
        _, end = json.JSONDecoder().raw_decode(text, start)
        return text[start:end], hdrs.get("ETag")


def node(i, name=None, command="elasticio/code:run@2.0.0"):
    n = {"id": f"step_{i}", "command": command}
    if name:
        n["name"] = name
    return n


def seed(server):
    admin = Client(server, *server.key)
    s = {"admin": admin}
    s["ws"] = admin.workspace("Console test")
    s["orders"] = admin.flow(s["ws"], "Orders sync", [
        node(1, "Poll new orders", "elasticio/shopify:getOrdersPolling@1.2.0"),
        node(2, XSS, "elasticio/jsonata:transform@1.0.0"),
        node(3, "Dedupe", "elasticio/dedup:deduplicate@1.0.0"),
    ], description="Polls orders, transforms them, drops duplicates")
    admin.snapshot(s["orders"], "step_1", '{"last_id":1,"ratio":0.1}')
    admin.patch(s["orders"], "step_1", '{"last_id":%s,"ratio":0.1,"cursor":"2026-11-27T10:23:58.123Z"}' % BIG)
    admin.snapshot(s["orders"], "step_2", '{"note":%s,"seen":["a","b"]}' % json.dumps(XSS))
    s["xssflow"] = admin.flow(s["ws"], XSS, [node(1, "only step")])
    # A running flow: writes are disabled with the reason.
    s["running"] = admin.flow(s["ws"], "Webhook intake", [node(1, "Receive webhook", "elasticio/webhook:receive@1.0.0")])
    admin.snapshot(s["running"], "step_1", '{"count":7}')
    admin.ok("POST", f"/v2/flows/{s['running']}/start")
    # Many flows, for search and paging.
    for i in range(25):
        admin.flow(s["ws"], f"Batch job {i:02d}", [node(1)])
    # 1,000 steps, every one with a snapshot; one of them 5 KB.
    big_nodes = [node(i, f"Step number {i}") for i in range(1, 1001)]
    s["big"] = admin.flow(s["ws"], "Thousand steps", big_nodes)
    started = time.time()
    for i in range(1, 1001):
        admin.snapshot(s["big"], f"step_{i}", '{"position":%d,"token":"page-%d"}' % (i, i))
    report["timings_ms"]["seed_1000_snapshots"] = round((time.time() - started) * 1000)
    items = ",".join('{"id":%d,"sku":"SKU-%06d","qty":%d}' % (i, i, i % 7) for i in range(1, 200))
    five_kb = '{"items":[%s]}' % items
    five_kb = five_kb[:5000].rsplit(",{", 1)[0] + "]}"
    json.loads(five_kb)
    s["five_kb_size"] = len(five_kb)
    admin.patch(s["big"], "step_2", five_kb)
    # A guest, who may read the workspace but not its audit log.
    uid = admin.ok("POST", "/v2/users", {"data": {"type": "user", "attributes": {
        "first_name": "Gail", "last_name": "Guest", "email": "guest@example.com", "password": "guest-pass-1"}}})[1]["data"]["id"]
    c = Client(server, "guest@example.com", "guest-pass-1")
    key = c.ok("POST", f"/v2/users/{uid}/api-key")[1]["data"]["attributes"]["api_key"]
    admin.ok("POST", f"/v2/workspaces/{s['ws']}/members", {"data": {"type": "member", "id": uid, "attributes": {"roles": ["guest"]}}})
    s["guest"] = ("guest@example.com", key)
    return s


# --- checks ---------------------------------------------------------------------------------
results = []


class Skip(Exception):
    """A check that this binary cannot run (reported, not counted as passed)."""


def check(name):
    def deco(fn):
        results.append((name, fn))
        return fn
    return deco


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, name), full_page=False)


def axe_selftest(page):
    """axe finds a violation that is there: an unlabelled input, added and removed by the test."""
    ids = page.evaluate("""async () => {
        const probe = document.createElement('div');
        probe.id = 'axe-probe';
        probe.appendChild(document.createElement('input'));
        document.body.appendChild(probe);
        try {
            const r = await axe.run('#axe-probe', {runOnly: ['label']});
            return r.violations.map(v => v.id);
        } finally { probe.remove(); }
    }""")
    assert ids == ["label"], ids


def axe(page, label):
    """Runs axe-core (injected by the test, not part of the console); fails on serious ones."""
    page.wait_for_function("() => !document.querySelector('main[aria-busy]')")
    res = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
                                        targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    report["axe"][label] = res
    serious = [v for v in res if v["impact"] in ("serious", "critical")]
    assert not serious, f"axe on {label}: {json.dumps(serious, indent=1)}"


def run(server, s):
    base = server.url + "/"
    origin = server.url
    foreign, console_errors, page_errors, dialogs = [], [], [], []
    with open(AXE) as f:
        axe_src = f.read()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])

        def new_page(**kw):
            ctx = browser.new_context(viewport=kw.pop("viewport", {"width": 1280, "height": 860}), **kw)
            ctx.add_init_script(axe_src)  # test-only; init scripts are not subject to the page's CSP
            page = ctx.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda r: None if r.url.startswith(origin + "/") or r.url.startswith("data:") else foreign.append(r.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            return page

        page = new_page()
        st = {}

        @check("a wrong key shows the console's own error, no browser dialog")
        def _():
            page.goto(base)
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            axe_selftest(page)
            axe(page, "sign-in")
            page.get_by_label("E-mail").fill(server.key[0])
            page.get_by_label("API key").fill("not-the-key")
            page.get_by_role("button", name="Sign in").click()
            alert = page.get_by_role("alert")
            expect(alert).to_contain_text("Sign-in failed")
            expect(alert).to_contain_text("401")
            assert not dialogs, dialogs
            expect(page.get_by_label("API key")).to_be_focused()

        @check("sign in by keyboard; the credentials stay out of the URL and cookies")
        def _():
            page.get_by_label("E-mail").focus()
            page.keyboard.press("Control+A")
            page.keyboard.type(server.key[0])
            page.keyboard.press("Tab")
            expect(page.get_by_label("API key")).to_be_focused()
            # Focus is visible: the focused field has an outline drawn by :focus-visible.
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("none", ""), outline
            page.keyboard.type(server.key[1])
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Workspaces", level=1)).to_be_visible()
            assert server.key[1] not in page.url
            assert page.context.cookies() == []
            stored = page.evaluate("() => sessionStorage.getItem('flowsnap.console.credentials')")
            assert server.key[1] in stored
            assert page.evaluate("() => localStorage.length") == 0
            axe(page, "workspaces")

        @check("workspace: search, status filter and paging")
        def _():
            page.get_by_role("link", name="Console test").click()
            expect(page.get_by_role("heading", name="Console test", level=1)).to_be_visible()
            expect(page.get_by_text("29 flows")).to_be_visible()
            page.get_by_role("link", name="Next page").click()
            expect(page.get_by_text("Page 2 of 2")).to_be_visible()
            page.get_by_label("Search flows").fill("orders")
            page.get_by_role("button", name="Apply").click()
            expect(page.get_by_text("1 flow matching")).to_be_visible()
            expect(page.get_by_role("link", name="Orders sync")).to_be_visible()
            page.get_by_label("Search flows").fill("")
            page.get_by_label("Status").select_option("active")
            page.get_by_role("button", name="Apply").click()
            expect(page.get_by_text("1 flow.")).to_be_visible()
            expect(page.get_by_role("link", name="Webhook intake")).to_be_visible()
            page.get_by_label("Search flows").fill("no such flow at all")
            page.get_by_label("Status").select_option("")
            page.get_by_role("button", name="Apply").click()
            expect(page.get_by_text("No flow matches")).to_be_visible()
            axe(page, "flows (empty state)")
            page.get_by_role("link", name="show every flow").click()
            expect(page.get_by_text("29 flows")).to_be_visible()
            axe(page, "flows")

        @check("the demo data set: a running flow, history, a number a double would round, markup as text")
        def _():
            if not server.demo:
                raise Skip("this binary has no serve --demo")
            page.goto(base + "#/")
            page.get_by_role("link", name="Sales Operations").click()
            expect(page.get_by_role("heading", name="Sales Operations", level=1)).to_be_visible()
            running = page.get_by_role("row").filter(has_text="Salesforce contacts to CRM")
            expect(running.get_by_text("Running")).to_be_visible()
            page.get_by_role("link", name="Shop orders webhook").click()
            expect(page.get_by_role("heading", name="Shop orders webhook", level=1)).to_be_visible()
            axe(page, "demo flow")
            shot(page, "flow.png")
            page.get_by_role("link", name="counter", exact=True).click()
            value = page.get_by_role("region", name="Snapshot value of step counter")
            expect(value).to_contain_text(f'"revenue_cents": {BIG}')
            expect(page.get_by_role("region", name="Versions, newest first").locator("tbody tr")).not_to_have_count(0)
            page.get_by_role("link", name="Workspaces").first.click()
            page.get_by_role("link", name="Marketing Automation").click()
            page.get_by_role("link", name="<img src=x onerror=alert(1)> campaign tracker").click()
            expect(page.get_by_role("heading", name="<img src=x onerror=alert(1)> campaign tracker", level=1)).to_be_visible()
            page.get_by_role("link", name="track", exact=True).click()
            expect(page.get_by_role("region", name="Snapshot value of step track")).to_contain_text("<script>alert(document.cookie)</script>")
            assert page.locator('img[src="x"]').count() == 0
            assert not dialogs, dialogs

        @check("flow page: steps in graph order with snapshot size, revision, time and author")
        def _():
            page.goto(base + f"#/workspaces/{s['ws']}")
            page.get_by_label("Search flows").fill("sync")
            page.keyboard.press("Enter")
            page.get_by_role("link", name="Orders sync").click()
            expect(page.get_by_role("heading", name="Orders sync", level=1)).to_be_visible()
            rows = page.get_by_role("region", name="Steps in graph order").locator("tbody tr")
            expect(rows).to_have_count(3)
            assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == ["step_1", "step_2", "step_3"]
            expect(rows.nth(0)).to_contain_text(" B")
            expect(rows.nth(2)).to_contain_text("none")
            expect(page.get_by_role("button", name="Start flow")).to_be_visible()
            axe(page, "flow")
            if not server.demo:
                shot(page, "flow.png")

        @check("names holding <img onerror> are shown as text and run nothing")
        def _():
            expect(page.get_by_role("cell", name=XSS, exact=True)).to_be_visible()
            assert page.locator('img[src="x"]').count() == 0
            assert page.evaluate("() => window.__xss") is None
            page.goto(base + f"#/flows/{s['xssflow']}")
            expect(page.get_by_role("heading", name=XSS, level=1)).to_be_visible()
            assert page.locator('img[src="x"]').count() == 0
            page.goto(base + f"#/flows/{s['orders']}/steps/step_2")
            expect(page.get_by_role("region", name="Snapshot value of step step_2")).to_contain_text(json.dumps(XSS))
            assert page.locator('img[src="x"]').count() == 0
            assert page.evaluate("() => window.__xss") is None

        @check(f"step page shows {BIG} exactly (deep link)")
        def _():
            page.goto(base + f"#/flows/{s['orders']}/steps/step_1")
            value = page.get_by_role("region", name="Snapshot value of step step_1")
            expect(value).to_contain_text(f'"last_id": {BIG}')
            expect(value).to_contain_text('"ratio": 0.1')
            expect(page.get_by_text("Revision 2")).to_be_visible()
            axe(page, "snapshot")

        @check("invalid JSON is refused before anything is sent")
        def _():
            writes = []
            page.on("request", lambda r: writes.append(r.method) if r.method in ("PATCH", "POST", "DELETE") else None)
            page.get_by_role("button", name="Edit").click()
            editor = page.get_by_label("Snapshot value (JSON)")
            editor.fill('{"last_id": 1,}')
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_text("Not valid JSON")).to_be_visible()
            expect(editor).to_have_attribute("aria-invalid", "true")
            assert writes == [], writes
            _, etag = s["admin"].value_text(s["orders"], "step_1")
            assert etag.endswith('-2"'), etag

        @check("an edit is saved exactly, with If-Match")
        def _():
            sent = []
            page.on("request", lambda r: sent.append((r.method, r.headers.get("if-match"), r.post_data)) if r.method == "PATCH" else None)
            editor = page.get_by_label("Snapshot value (JSON)")
            mine = '{\n  "last_id": %s4,\n  "ratio": 0.1,\n  "cursor": "2026-11-28T00:00:00.000Z"\n}' % BIG[:-1]
            editor.fill(mine)
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
            text, etag = s["admin"].value_text(s["orders"], "step_1")
            assert text == '{"last_id":%s4,"ratio":0.1,"cursor":"2026-11-28T00:00:00.000Z"}' % BIG[:-1], text
            assert sent and sent[-1][1] and sent[-1][1].endswith('-2"'), sent
            expect(page.get_by_role("region", name="Snapshot value of step step_1")).to_contain_text(BIG[:-1] + "4")
            st["etag"] = etag

        @check("a 412 from a second client shows theirs beside mine; overwrite keeps mine")
        def _():
            page.get_by_role("button", name="Edit").click()
            editor = page.get_by_label("Snapshot value (JSON)")
            editor.fill('{"last_id": %s, "ratio": 0.1, "who": "browser"}' % BIG)
            s["admin"].patch(s["orders"], "step_1", '{"last_id":777,"who":"second client"}', st["etag"])
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("heading", name="Conflict: the snapshot changed")).to_be_visible()
            expect(page.get_by_role("region", name="Their value (saved now)")).to_contain_text('"who": "second client"')
            expect(page.get_by_role("region", name="Your value (not saved)")).to_contain_text(f'"last_id": {BIG}')
            axe(page, "conflict")
            shot(page, "conflict.png")
            page.get_by_role("button", name="Overwrite with mine").click()
            expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
            text, _ = s["admin"].value_text(s["orders"], "step_1")
            assert text == '{"last_id":%s,"ratio":0.1,"who":"browser"}' % BIG, text

        @check("a 412 resolved by reloading theirs keeps theirs")
        def _():
            _, etag = s["admin"].value_text(s["orders"], "step_1")
            page.get_by_role("button", name="Edit").click()
            page.get_by_label("Snapshot value (JSON)").fill('{"mine": true}')
            s["admin"].patch(s["orders"], "step_1", '{"last_id":%s,"ratio":0.1,"who":"second client again"}' % BIG, etag)
            page.get_by_role("button", name="Save").click()
            page.get_by_role("button", name="Reload theirs").click()
            expect(page.get_by_role("region", name="Snapshot value of step step_1")).to_contain_text("second client again")
            text, _ = s["admin"].value_text(s["orders"], "step_1")
            assert "second client again" in text and "mine" not in text, text

        @check("versions: a version's value, the diff against the current value, Restore")
        def _():
            versions = page.get_by_role("region", name="Versions, newest first")
            expect(versions).to_be_visible()
            rows = versions.locator("tbody tr")
            n = rows.count()
            assert n >= 5, n
            # The oldest version: the first create, {"last_id":1,"ratio":0.1}.
            last = rows.nth(n - 1)
            vid = last.locator("td").first.inner_text()
            expect(last).to_contain_text("create")
            last.get_by_role("link").click()
            expect(page.get_by_role("heading", name=f"Version {vid} of step step_1")).to_be_visible()
            expect(page.get_by_role("region", name=f"Value of version {vid}")).to_contain_text('"last_id": 1,')
            diff = page.get_by_role("region", name=re.compile("Line diff from the current value"))
            expect(diff.locator(".del")).not_to_have_count(0)
            expect(diff.locator(".add").filter(has_text='"last_id": 1,')).to_have_count(1)
            expect(diff.locator(".del").filter(has_text=f'"last_id": {BIG}')).to_have_count(1)
            axe(page, "version diff")
            shot(page, "versions-diff.png")
            page.get_by_role("button", name=f"Restore version {vid}").click()
            expect(page.get_by_role("heading", name="Step step_1", level=1)).to_be_visible()
            expect(page.get_by_role("region", name="Snapshot value of step step_1")).to_contain_text('"last_id": 1,')
            text, _ = s["admin"].value_text(s["orders"], "step_1")
            assert text == '{"last_id":1,"ratio":0.1}', text
            expect(page.get_by_role("region", name="Versions, newest first").locator("tbody tr").first).to_contain_text("restore")

        @check("delete asks first, then the empty state offers to create one")
        def _():
            page.goto(base + f"#/flows/{s['orders']}/steps/step_3")
            expect(page.get_by_text("No snapshot yet: create one")).to_be_visible()
            axe(page, "snapshot (empty state)")
            page.get_by_label("New snapshot value (JSON)").fill('{"seen": ["a1", "b2"], "n": %s}' % BIG)
            page.get_by_role("button", name="Create snapshot").click()
            expect(page.get_by_role("status").filter(has_text="Snapshot created")).to_be_visible()
            text, _ = s["admin"].value_text(s["orders"], "step_3")
            assert text == '{"seen":["a1","b2"],"n":%s}' % BIG, text
            page.get_by_role("button", name="Delete").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text("Delete the snapshot of step step_3?")
            axe(page, "delete dialog")
            dialog.get_by_role("button", name="Cancel").click()
            assert s["admin"].value_text(s["orders"], "step_3")[0] is not None
            page.get_by_role("button", name="Delete").click()
            page.get_by_role("dialog").get_by_role("button", name="Delete snapshot").click()
            expect(page.get_by_text("No snapshot yet: create one")).to_be_visible()
            assert s["admin"].value_text(s["orders"], "step_3")[0] is None

        @check("writes are disabled with the reason while the flow runs")
        def _():
            page.goto(base + f"#/flows/{s['running']}/steps/step_1")
            expect(page.get_by_text("The flow is running:")).to_be_visible()
            edit = page.get_by_role("button", name="Edit")
            expect(edit).to_be_disabled()
            assert edit.get_attribute("aria-describedby") == "running-reason"
            expect(page.get_by_role("button", name="Delete")).to_be_disabled()
            page.goto(base + f"#/flows/{s['running']}")
            page.get_by_role("button", name="Stop flow").click()
            expect(page.get_by_role("button", name="Start flow")).to_be_visible()
            page.get_by_role("link", name="step_1").click()
            expect(page.get_by_role("button", name="Edit")).to_be_enabled()

        @check("audit log: shown to an owner, refused in words to a guest; a guest cannot edit")
        def _():
            page.goto(base + f"#/workspaces/{s['ws']}/audit")
            table = page.get_by_role("region", name="Audit events, newest first")
            expect(table).to_be_visible()
            expect(table).to_contain_text("snapshot.restore")
            axe(page, "audit")
            guest = new_page()
            guest.goto(base + f"#/workspaces/{s['ws']}/audit")
            guest.get_by_label("E-mail").fill(s["guest"][0])
            guest.get_by_label("API key").fill(s["guest"][1])
            guest.get_by_role("button", name="Sign in").click()
            expect(guest.get_by_text("You may not read this workspace’s audit log")).to_be_visible()
            # A guest reads snapshots; the write buttons say why they are off.
            guest.goto(base + f"#/flows/{s['orders']}/steps/step_1")
            expect(guest.get_by_role("region", name="Snapshot value of step step_1")).to_be_visible()
            expect(guest.get_by_text("Your role in this workspace is guest")).to_be_visible()
            expect(guest.get_by_role("button", name="Edit")).to_be_disabled()
            axe(guest, "snapshot (guest)")
            guest.get_by_role("button", name="Sign out").click()
            expect(guest.get_by_role("heading", name="Sign in")).to_be_visible()
            assert guest.evaluate("() => sessionStorage.length") == 0
            guest.context.close()

        @check("1,000 steps and a 5 KB snapshot render without freezing the page")
        def _():
            page.goto(base + "#/")
            expect(page.get_by_role("heading", name="Workspaces", level=1)).to_be_visible()
            # Timed in the page, to the frame: from the hash change to 1,000 rows in the DOM, and
            # the longest task the main thread ran meanwhile (a frozen page is one long task).
            page.evaluate("""() => {
                window.__long = [];
                new PerformanceObserver(l => window.__long.push(...l.getEntries().map(e => e.duration)))
                    .observe({type: 'longtask'});
            }""")
            timed = """([hash, selector, want]) => new Promise(resolve => {
                window.__long = [];
                const t0 = performance.now();
                location.hash = hash;
                const tick = () => {
                    const el = document.querySelectorAll(selector);
                    if (want(el)) requestAnimationFrame(() => resolve({ms: performance.now() - t0,
                        longest: Math.max(0, ...window.__long)}));
                    else requestAnimationFrame(tick);
                };
                requestAnimationFrame(tick);
            })"""
            r = page.evaluate(timed.replace("want(el)", "el.length === 1000"), [f"#/flows/{s['big']}", "main tbody tr", None])
            rows = page.get_by_role("region", name="Steps in graph order").locator("tbody tr")
            expect(rows).to_have_count(1000)
            page.wait_for_function("() => document.querySelector('main').dataset.renderMs")
            report["timings_ms"]["flow_1000_steps_shown"] = round(r["ms"])
            report["timings_ms"]["flow_1000_steps_longest_task"] = round(r["longest"])
            report["timings_ms"]["flow_1000_steps_request_to_paint"] = int(page.locator("main").get_attribute("data-render-ms"))
            # Bounds for a shared CI machine; on a quiet one it takes about 0.4 s (README).
            assert r["ms"] < 10_000 and r["longest"] < 3000, r
            r = page.evaluate(timed.replace("want(el)", "el.length === 1 && el[0].textContent.includes('SKU-000001')"),
                              [f"#/flows/{s['big']}/steps/step_2", "main pre.code", None])
            expect(page.get_by_role("region", name="Snapshot value of step step_2")).to_contain_text('"sku": "SKU-000001"')
            report["timings_ms"]["snapshot_5kb_shown"] = round(r["ms"])
            report["timings_ms"]["snapshot_5kb_longest_task"] = round(r["longest"])
            assert r["ms"] < 5000, r
            report["five_kb_snapshot_bytes"] = s["five_kb_size"]

        @check("phone width and dark scheme: readable, nothing wider than the screen")
        def _():
            phone = new_page(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True)
            phone.goto(base)
            phone.get_by_label("E-mail").fill(server.key[0])
            phone.get_by_label("API key").fill(server.key[1])
            phone.get_by_role("button", name="Sign in").click()
            expect(phone.get_by_role("heading", name="Workspaces", level=1)).to_be_visible()
            phone.goto(base + f"#/flows/{s['orders']}/steps/step_1")
            expect(phone.get_by_role("region", name="Snapshot value of step step_1")).to_be_visible()
            wide = phone.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert wide <= 1, f"the page is {wide}px wider than the screen"
            bg = phone.evaluate("() => getComputedStyle(document.body).backgroundColor")
            assert bg == "rgb(15, 18, 22)", bg
            axe(phone, "snapshot (phone, dark)")
            shot(phone, "phone-dark.png")
            phone.context.close()

        @check("no request to another origin, no console error, no page error")
        def _():
            assert not foreign, foreign
            assert not page_errors, page_errors
            # Chromium logs every non-2xx fetch as "Failed to load resource"; the test provoked
            # exactly these statuses on purpose (wrong key, no snapshot yet, conflicts, guest).
            expected = re.compile(r"^Failed to load resource: the server responded with a status of (401|403|404|412) ")
            unexpected = [m for m in console_errors if not expected.match(m)]
            report["provoked_console_lines"] = len(console_errors) - len(unexpected)
            assert not unexpected, unexpected

        passed = failed = skipped = 0
        for name, fn in results:
            t = time.perf_counter()
            try:
                fn()
                passed += 1
                report["checks"][name] = "passed"
                print(f"ok     {name} ({time.perf_counter() - t:.1f}s)", flush=True)
            except Skip as e:
                skipped += 1
                report["checks"][name] = f"skipped: {e}"
                print(f"skip   {name}: {e}", flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
                failed += 1
                report["checks"][name] = f"FAILED: {e}"
                print(f"FAILED {name}: {e}", flush=True)
                traceback.print_exc()
                try:
                    shot(page, f"failed-{passed + failed}.png") if os.environ.get("SHOT_FAILURES") else None
                except Exception:  # noqa: BLE001
                    pass
        browser.close()
    return passed, failed, skipped


def page_weight(server):
    c = Client(server, *server.key)
    status, hdrs, html = c.call("GET", "/")
    total = len(html.encode())
    for src in re.findall(r'(?:src|href)="(/console/[^"]+)"', html):
        if src.endswith(".js") or src.endswith(".css"):
            pass
    # Every module the page loads, following imports.
    seen, todo = set(), re.findall(r'(?:src|href)="(/console/[^"]+)"', html)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        _, _, body = c.call("GET", path)
        total += len(body.encode())
        for imp in re.findall(r"from '\./([\w.]+)'", body):
            todo.append(path.rsplit("/", 1)[0] + "/" + imp)
    return total, len(seen)


def main():
    started = time.time()
    server = Server()
    try:
        s = seed(server)
        report["demo"] = server.demo
        report["page_weight_bytes"], report["page_files"] = page_weight(server)
        passed, failed, skipped = run(server, s)
    finally:
        server.stop()
    report["seconds"] = round(time.time() - started, 1)
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    with open(REPORT, "w") as f:
        json.dump(report, f, indent=1)
    print(f"page weight {report['page_weight_bytes']} bytes in {report['page_files'] + 1} files; "
          f"timings (ms) {json.dumps(report['timings_ms'])}; "
          f"axe findings (any impact) {sum(len(v) for v in report['axe'].values())}; {report['seconds']}s")
    print(f"browser: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
