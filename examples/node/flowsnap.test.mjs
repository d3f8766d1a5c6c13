// A test suite that starts its own flowsnap from a fixture, resets it before each test and stops
// it at the end. Node's built-in test runner only: `node --test examples/node/flowsnap.test.mjs`.
//
// The binary: $FLOWSNAP_BIN, else target/debug/flowsnap (what `cargo build` or `cargo test` made).
import { test, before, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.FLOWSNAP_BIN ?? path.join(here, '..', '..', 'target', 'debug', 'flowsnap');
const fixture = path.join(here, '..', 'fixture.json');
const FLOW = '65f0c0ffee00000000005678';
const AUTH = 'Basic ' + Buffer.from('dev@example.com:test-key-not-secret').toString('base64');

let server; // { child, url, database }

/** Starts `flowsnap serve --ephemeral --fixture ... --listen 127.0.0.1:0` and reads its one
 *  readiness line, {"url": ..., "database": ...}, from stdout. */
function startFlowsnap() {
  const child = spawn(bin, ['serve', '--ephemeral', '--fixture', fixture, '--listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flowsnap exited (${code}) before it was ready:\n${log}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      const { url, database } = JSON.parse(line);
      resolve({ child, url, database });
    });
  });
}

/** One API call as the fixture's tenant-admin; returns the response. */
function api(method, path, body) {
  return fetch(server.url + path, {
    method,
    headers: { Authorization: AUTH, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}

before(async () => { server = await startFlowsnap(); });

// Every test starts from exactly the fixture: ids, keys and values as the file says.
beforeEach(async () => {
  const res = await api('POST', '/_flowsnap/reset');
  assert.equal(res.status, 204);
});

after(async () => {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
  assert.equal(existsSync(server.database), false, 'the ephemeral database is removed at exit');
});

test('the fixture is there, values exactly as written', async () => {
  const res = await api('GET', `/v2/flows/${FLOW}/snapshots/step_1`);
  assert.equal(res.status, 200);
  // Read the text: JSON.parse would round 12345678901234567890123 to a double.
  assert.match(await res.text(), /"snapshot":\{"last_id":12345678901234567890123\}/);
  const versions = await (await api('GET', `/v2/flows/${FLOW}/snapshots/step_1/versions`)).json();
  assert.deepEqual(versions.data.map((v) => v.attributes.operation), ['import', 'import', 'import']);
});

test('a test may change anything', async () => {
  const patch = await api('PATCH', `/v2/flows/${FLOW}/snapshots/step_1`,
    { data: { type: 'snapshot', attributes: { snapshot: { last_id: 7 } } } });
  assert.equal(patch.status, 200);
  assert.equal((await api('POST', `/v2/flows/${FLOW}/start`)).status, 202);
  const flow = await (await api('GET', `/v2/flows/${FLOW}`)).json();
  assert.equal(flow.data.attributes.status, 'active');
});

test('and the next one starts from the fixture again', async () => {
  const flow = await (await api('GET', `/v2/flows/${FLOW}`)).json();
  assert.equal(flow.data.attributes.status, 'inactive');
  const res = await api('GET', `/v2/flows/${FLOW}/snapshots/step_1`);
  assert.match(await res.text(), /"last_id":12345678901234567890123/);
});
