"""A unittest suite that starts its own flowsnap from a fixture and resets it before each test.

    python3 -m unittest discover -s examples/python

The binary: $FLOWSNAP_BIN, else target/debug/flowsnap (what `cargo build` or `cargo test` made).
"""
import base64
import json
import os
import subprocess
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("FLOWSNAP_BIN", os.path.join(HERE, "..", "..", "target", "debug", "flowsnap"))
FIXTURE = os.path.join(HERE, "..", "fixture.json")
FLOW = "65f0c0ffee00000000005678"
AUTH = "Basic " + base64.b64encode(b"dev@example.com:test-key-not-secret").decode()


class FlowsnapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen(
            [BIN, "serve", "--ephemeral", "--fixture", FIXTURE, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready = json.loads(cls.proc.stdout.readline())  # {"url": ..., "database": ...}
        cls.url, cls.database = ready["url"], ready["database"]

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=20)
        assert not os.path.exists(cls.database), "the ephemeral database is removed at exit"

    def api(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body else None)
        req.add_header("Authorization", AUTH)
        if body:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as res:
                return res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def setUp(self):
        status, _ = self.api("POST", "/_flowsnap/reset")
        self.assertEqual(status, 204)

    def test_values_exactly_as_written(self):
        status, text = self.api("GET", f"/v2/flows/{FLOW}/snapshots/step_1")
        self.assertEqual(status, 200)
        self.assertIn('"last_id":12345678901234567890123', text)

    def test_changes_are_undone_by_the_reset(self):
        body = {"data": {"type": "snapshot", "attributes": {"snapshot": {"last_id": 7}}}}
        self.assertEqual(self.api("PATCH", f"/v2/flows/{FLOW}/snapshots/step_1", body)[0], 200)
        self.setUp()
        self.assertIn("12345678901234567890123", self.api("GET", f"/v2/flows/{FLOW}/snapshots/step_1")[1])


if __name__ == "__main__":
    unittest.main()
