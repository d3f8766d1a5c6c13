// A step's snapshot: its exact value, create, edit (validated before sending), delete, the
// conflict view on 412, and its versions with a line diff and Restore.
//
// Values are handled as JSON text only: read with json.js from the response text, written by
// string assembly into the write document, never through JSON.parse/JSON.stringify.

import { api, enc, ApiError } from './api.js';
import { h, fill, time, bytes, errorBox, notice, loading, table, code, confirmDialog, announce } from './ui.js';
import { parse, at, raw, plain, pretty, validate, compact, utf8Bytes } from './json.js';
import { diffLines } from './diff.js';
import { people, who, workspaceName, statusBadge, cannotEdit } from './pages.js';

const base = (flowId, step) => `/v2/flows/${enc(flowId)}/snapshots/${enc(step)}`;

/** The snapshot document's parts from the response text: `{raw, etag, meta}`. */
function readSnapshot(res) {
  const tree = parse(res.text);
  const data = at(tree, 'data');
  const metaNode = at(data, 'meta');
  const meta = metaNode ? plain(res.text, metaNode) : {};
  return { raw: raw(res.text, at(data, 'attributes', 'snapshot')), etag: res.etag || meta.etag, meta };
}

/** The current snapshot, or null when the step has none (404). */
async function current(flowId, step) {
  try {
    return readSnapshot(await api('GET', base(flowId, step)));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && /has no snapshot/i.test(err.detail || '')) return null;
    throw err;
  }
}

function writeDoc(step, text) {
  return '{"data":{"type":"snapshot","id":' + JSON.stringify(step) + ',"attributes":{"snapshot":' + text + '}}}';
}

async function loadFlow(ctx, flowId, step) {
  const flow = (await api('GET', `/v2/flows/${enc(flowId)}`)).json().data;
  const wsId = flow.relationships?.workspace?.data?.id;
  const [wsName, map] = await Promise.all([workspaceName(wsId), people(wsId)]);
  const node = (flow.attributes.graph?.nodes || []).find((n) => n.id === step);
  return { flow, wsId, wsName, map, node };
}

function metaLine(s, map) {
  const m = s.meta || {};
  const parts = [];
  if (m.revision !== undefined) parts.push(h('span', null, `Revision ${m.revision}`));
  parts.push(h('span', null, bytes(m.size_bytes ?? utf8Bytes(compact(s.raw)))));
  if (m.updated_at) parts.push(h('span', null, 'changed ', time(m.updated_at), ' by ', who(map, m.updated_by)));
  if (s.etag) parts.push(h('span', null, 'ETag ', h('code', null, s.etag)));
  return h('p', { class: 'meta' }, parts);
}

export async function snapshotPage(ctx, flowId, step) {
  ctx.title(`Step ${step}`);
  fill(ctx.main, h('h1', null, `Step ${step}`), loading('the snapshot'));
  const { flow, wsId, wsName, map, node } = await loadFlow(ctx, flowId, step);
  if (!ctx.live()) return;
  const fa = flow.attributes;
  ctx.title(`Step ${step} of ${fa.name}`);
  ctx.crumbs([['Workspaces', '#/'], [wsName, `#/workspaces/${enc(wsId)}`], [fa.name, `#/flows/${enc(flowId)}`], [step, location.hash]]);
  if (!node) {
    fill(ctx.main, h('h1', null, `Step ${step}`), notice('error', `Flow “${fa.name}” has no step ${step}: `, h('a', { href: `#/flows/${enc(flowId)}` }, 'see its steps'), '.'));
    return;
  }
  const running = fa.status === 'active';
  const denied = cannotEdit(wsId);
  let snap = await current(flowId, step);
  if (!ctx.live()) return;

  const valueArea = h('section', { 'aria-labelledby': 'value-title' });
  const versionsArea = h('section', { 'aria-labelledby': 'versions-title' });
  const reasonId = 'running-reason';
  fill(
    ctx.main,
    h('div', { class: 'title-row' }, h('h1', null, `Step ${step}`), statusBadge(fa.status)),
    h('p', { class: 'muted' }, node.name ? `${node.name} · ` : '', h('code', null, node.command), ' in flow ', h('a', { href: `#/flows/${enc(flowId)}` }, fa.name)),
    running
      ? notice('warn', h('p', { id: reasonId }, h('strong', null, 'The flow is running: '), 'its snapshots cannot be created, changed, deleted or restored until it is stopped (on the ', h('a', { href: `#/flows/${enc(flowId)}` }, 'flow page'), ').'))
      : null,
    denied ? notice('warn', h('p', { id: 'role-reason' }, denied)) : null,
    valueArea,
    versionsArea,
  );
  const disabledAttrs = running ? { disabled: true, 'aria-describedby': reasonId } : denied ? { disabled: true, 'aria-describedby': 'role-reason' } : {};

  const view = () => {
    if (!snap) return create();
    fill(
      valueArea,
      h('h2', { id: 'value-title' }, 'Value'),
      metaLine(snap, map),
      code(`Snapshot value of step ${step}`, pretty(snap.raw)),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: () => edit(pretty(snap.raw)), ...disabledAttrs }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: remove, ...disabledAttrs }, 'Delete'),
      ),
    );
  };

  // The editor, for a new snapshot (`creating`) or an edit of the current one.
  const editor = (title, text, creating, intro) => {
    const area = h('textarea', { id: 'editor', rows: String(Math.min(30, Math.max(6, text.split('\n').length + 1))), spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'editor-help editor-error', ...disabledAttrs });
    area.value = text;
    const err = h('div', { id: 'editor-error', 'aria-live': 'polite' });
    const msg = h('div');
    const save = h('button', { type: 'submit', class: 'primary', ...disabledAttrs }, creating ? 'Create snapshot' : 'Save');
    const check = () => {
      const e = validate(area.value);
      area.setAttribute('aria-invalid', e ? 'true' : 'false');
      fill(err, e ? h('p', { class: 'field-error' }, `Not valid JSON: ${e.message}.`) : null);
      return e;
    };
    let timer;
    area.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    });
    const format = h('button', { type: 'button', ...disabledAttrs }, 'Format');
    format.addEventListener('click', () => {
      if (!check()) area.value = pretty(area.value);
    });
    const form = h(
      'form',
      { class: 'editor', 'aria-labelledby': 'value-title' },
      intro,
      h('label', { for: 'editor' }, creating ? 'New snapshot value (JSON)' : 'Snapshot value (JSON)'),
      h('p', { id: 'editor-help', class: 'muted small' }, 'Any JSON value: object, array, string, number, true, false or null. Numbers are kept exactly as typed.'),
      area,
      err,
      msg,
      h('div', { class: 'actions' }, save, format, creating ? null : h('button', { type: 'button', onclick: view }, 'Cancel')),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const bad = check();
      if (bad) {
        area.focus();
        try {
          area.setSelectionRange(bad.pos, bad.pos + 1);
        } catch {
          // ignore
        }
        return;
      }
      save.disabled = true;
      save.setAttribute('aria-busy', 'true');
      fill(msg, loading(creating ? 'creating the snapshot' : 'saving'));
      const text = area.value;
      try {
        await write(text, creating ? { 'If-None-Match': '*' } : { 'If-Match': snap.etag }, creating);
      } catch (err2) {
        save.disabled = false;
        save.removeAttribute('aria-busy');
        if (err2 instanceof ApiError && err2.status === 412) {
          await conflict(text, creating ? 'create' : 'save');
          return;
        }
        fill(msg, errorBox(err2, creating ? 'The snapshot was not created' : 'The snapshot was not saved'));
      }
    });
    fill(valueArea, h('h2', { id: 'value-title' }, title), creating ? null : metaLine(snap, map), form);
    area.focus();
  };

  const edit = (text) => editor('Edit the value', text, false, null);
  const create = (text = '{}') =>
    editor('Value', text, true, notice('empty', h('p', null, h('strong', null, 'No snapshot yet: create one. '), 'Type the JSON value the step should find at its next run, then press “Create snapshot”.')));

  // POST (create) or PATCH (edit) with the given precondition; on success, shows the new value.
  const write = async (text, headers, creating) => {
    const res = creating
      ? await api('POST', `/v2/flows/${enc(flowId)}/snapshots`, { body: writeDoc(step, text), headers })
      : await api('PATCH', base(flowId, step), { body: writeDoc(step, text), headers });
    snap = readSnapshot(res);
    view();
    announce(creating ? 'Snapshot created' : `Saved${snap.meta.revision ? `: revision ${snap.meta.revision}` : ''}`);
    const saved = h('div', { class: 'notice ok', role: 'status' }, creating ? 'Snapshot created.' : 'Saved.');
    valueArea.insertBefore(saved, valueArea.children[1] || null);
    // Keyboard users continue from the value's first action (Edit).
    valueArea.querySelector('button')?.focus();
    loadVersions();
  };

  // A 412: someone else changed (or created, or deleted) the snapshot. Theirs beside yours.
  const conflict = async (mine, what) => {
    let theirs;
    try {
      theirs = await current(flowId, step);
    } catch (err) {
      fill(valueArea, errorBox(err, 'The newer value could not be loaded'));
      return;
    }
    const intro =
      what === 'delete'
        ? 'The snapshot changed after you loaded it, so it was not deleted.'
        : `The snapshot changed after you loaded it, so your ${what === 'create' ? 'new value was not created' : 'edit was not saved'}.`;
    const reload = h('button', { type: 'button' }, 'Reload theirs');
    reload.addEventListener('click', () => {
      snap = theirs;
      if (snap) view();
      else create(mine ?? '{}');
      announce('Showing the newer value');
    });
    const overwriteLabel = what === 'delete' ? 'Delete theirs' : theirs ? 'Overwrite with mine' : 'Create with mine';
    const overwrite = h('button', { type: 'button', class: 'danger', ...disabledAttrs }, overwriteLabel);
    const msg = h('div');
    overwrite.addEventListener('click', async () => {
      overwrite.disabled = true;
      fill(msg, loading('writing'));
      try {
        if (what === 'delete') {
          if (theirs) await api('DELETE', base(flowId, step), { headers: { 'If-Match': theirs.etag } });
          snap = null;
          create();
          announce('Snapshot deleted');
          loadVersions();
        } else if (theirs) {
          snap = theirs;
          await write(mine, { 'If-Match': theirs.etag }, false);
        } else {
          await write(mine, { 'If-None-Match': '*' }, true);
        }
      } catch (err) {
        overwrite.disabled = false;
        if (err instanceof ApiError && err.status === 412) {
          await conflict(mine, what);
          return;
        }
        fill(msg, errorBox(err, 'Not written'));
      }
    });
    const theirsBox = theirs
      ? [metaLine(theirs, map), code('Their value (saved now)', pretty(theirs.raw))]
      : [h('p', null, 'The snapshot has been deleted.')];
    const mineBox = what === 'delete' ? [h('p', null, 'You asked to delete the snapshot.')] : [code('Your value (not saved)', pretty(mine))];
    fill(
      valueArea,
      h('h2', { id: 'value-title' }, 'Conflict: the snapshot changed'),
      h('div', { class: 'notice warn', role: 'alert' }, h('strong', null, 'Someone else changed this snapshot. '), intro, ' Compare the two values, then keep theirs or write yours over it.'),
      h(
        'div',
        { class: 'compare' },
        h('div', null, h('h3', null, theirs ? `Theirs (revision ${theirs.meta.revision ?? '?'})` : 'Theirs'), theirsBox),
        h('div', null, h('h3', null, 'Yours'), mineBox),
      ),
      msg,
      h('div', { class: 'actions' }, reload, overwrite),
    );
    reload.focus();
  };

  async function remove() {
    const ok = await confirmDialog(`Delete the snapshot of step ${step}?`, `The step will start its next run without state. The deleted value stays in the versions, from where it can be restored.`, 'Delete snapshot');
    if (!ok) return;
    try {
      await api('DELETE', base(flowId, step), { headers: { 'If-Match': snap.etag } });
      snap = null;
      create();
      announce('Snapshot deleted');
      valueArea.insertBefore(h('div', { class: 'notice ok', role: 'status' }, 'Snapshot deleted.'), valueArea.children[1] || null);
      loadVersions();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) return conflict(null, 'delete');
      valueArea.appendChild(errorBox(err, 'The snapshot was not deleted'));
    }
  }

  async function loadVersions() {
    fill(versionsArea, h('h2', { id: 'versions-title' }, 'Versions'), loading('the versions'));
    let r;
    try {
      r = await api('GET', `${base(flowId, step)}/versions?page[size]=20`);
    } catch (err) {
      fill(versionsArea, h('h2', { id: 'versions-title' }, 'Versions'), errorBox(err, 'The versions could not be loaded'));
      return;
    }
    const doc = r.json();
    if (!doc.data.length) {
      fill(versionsArea, h('h2', { id: 'versions-title' }, 'Versions'), notice('empty', 'No versions yet: every create, edit, delete and restore of this step is recorded here.'));
      return;
    }
    const rows = doc.data.map((v) =>
      h(
        'tr',
        null,
        h('td', null, h('a', { href: `#/flows/${enc(flowId)}/steps/${enc(step)}/versions/${enc(v.id)}`, 'aria-label': `Version ${v.id}` }, v.id)),
        h('td', null, v.attributes.operation),
        h('td', null, v.attributes.operation === 'delete' ? '—' : bytes(v.attributes.size_bytes)),
        h('td', null, time(v.attributes.created_at)),
        h('td', null, who(map, v.attributes.created_by)),
        h('td', null, v.attributes.restored_from || '—'),
      ),
    );
    fill(
      versionsArea,
      h('h2', { id: 'versions-title' }, 'Versions'),
      h('p', { class: 'muted' }, `Newest first; ${doc.meta.total} kept. Open one to see its value, compare it with the current value and restore it.`),
      table('Versions, newest first', ['Version', 'Operation', 'Size', 'When', 'By', 'Restored from'], rows),
    );
  }

  view();
  await loadVersions();
}

export async function versionPage(ctx, flowId, step, versionId) {
  ctx.title(`Version ${versionId}`);
  fill(ctx.main, h('h1', null, `Version ${versionId} of step ${step}`), loading('the version'));
  const [{ flow, wsId, wsName, map }, vres, snap] = await Promise.all([
    loadFlow(ctx, flowId, step),
    api('GET', `${base(flowId, step)}/versions/${enc(versionId)}`),
    current(flowId, step),
  ]);
  if (!ctx.live()) return;
  const fa = flow.attributes;
  ctx.title(`Version ${versionId} of step ${step}`);
  const stepHref = `#/flows/${enc(flowId)}/steps/${enc(step)}`;
  ctx.crumbs([['Workspaces', '#/'], [wsName, `#/workspaces/${enc(wsId)}`], [fa.name, `#/flows/${enc(flowId)}`], [step, stepHref], [`Version ${versionId}`, location.hash]]);
  const tree = parse(vres.text);
  const attrs = at(tree, 'data', 'attributes');
  const op = plain(vres.text, at(attrs, 'operation'));
  const valueNode = at(attrs, 'snapshot');
  const vraw = valueNode ? raw(vres.text, valueNode) : null;
  const info = (name) => plain(vres.text, at(attrs, name));
  const running = fa.status === 'active';
  const reasons = [];
  const denied = cannotEdit(wsId);
  if (denied) reasons.push(denied);
  if (running) reasons.push('The flow is running: stop it to restore.');
  if (op === 'delete') reasons.push('This version records a delete: it has no value to restore.');
  const msg = h('div');
  const restore = h('button', { type: 'button', class: 'primary', disabled: reasons.length > 0, 'aria-describedby': reasons.length ? 'restore-reason' : null }, `Restore version ${versionId}`);
  restore.addEventListener('click', async () => {
    restore.disabled = true;
    fill(msg, loading('restoring'));
    try {
      const headers = snap ? { 'If-Match': snap.etag } : { 'If-None-Match': '*' };
      const res = await api('POST', `${base(flowId, step)}/versions/${enc(versionId)}/restore`, { headers });
      const now = readSnapshot(res);
      announce(`Restored version ${versionId}${now.meta.revision ? `: the snapshot is now revision ${now.meta.revision}` : ''}`);
      ctx.go(stepHref);
    } catch (err) {
      restore.disabled = false;
      if (err instanceof ApiError && err.status === 412) {
        fill(msg, notice('warn', h('p', null, h('strong', null, 'The snapshot changed since this page was loaded, so nothing was restored. '), 'Look at the new difference below and restore again if you still want to. '), h('button', { type: 'button', onclick: () => ctx.go(location.hash) }, 'Reload the comparison')));
      } else {
        fill(msg, errorBox(err, 'Not restored'));
      }
    }
  });
  const left = snap ? pretty(snap.raw) : '';
  const right = vraw !== null ? pretty(vraw) : '';
  const lines = diffLines(left, right);
  const changed = lines.filter((l) => l.op !== ' ').length;
  const diffView = h(
    'pre',
    { class: 'code diff', tabindex: '0', role: 'region', 'aria-label': `Line diff from the current value to version ${versionId}` },
    lines.map((l) => h('span', { class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'same' }, h('span', { class: 'sign', 'aria-hidden': 'true' }, l.op === ' ' ? '  ' : l.op + ' '), h('span', { class: 'visually-hidden' }, l.op === '+' ? 'added: ' : l.op === '-' ? 'removed: ' : ''), l.line + '\n')),
  );
  fill(
    ctx.main,
    h('h1', null, `Version ${versionId} of step ${step}`),
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Operation'), h('dd', null, op),
      h('dt', null, 'When'), h('dd', null, time(info('created_at'))),
      h('dt', null, 'By'), h('dd', null, who(map, info('created_by'))),
      h('dt', null, 'Size'), h('dd', null, bytes(info('size_bytes'))),
      h('dt', null, 'Restored from'), h('dd', null, info('restored_from') || '—'),
    ),
    reasons.length ? notice('warn', h('p', { id: 'restore-reason' }, reasons.join(' '))) : null,
    msg,
    h('div', { class: 'actions' }, restore, h('a', { href: stepHref, class: 'button' }, 'Back to the step')),
    h('h2', null, 'Value of this version'),
    vraw !== null ? code(`Value of version ${versionId}`, pretty(vraw)) : notice('empty', 'This version records a delete: it has no value.'),
    h('h2', null, 'Difference from the current value'),
    h('p', { class: 'muted' }, snap ? `Lines marked − are in the current value (revision ${snap.meta.revision ?? '?'}), lines marked + in version ${versionId}; ${changed ? `${changed} line${changed === 1 ? '' : 's'} differ` : 'the two are the same'}.` : 'The step has no snapshot now: every line of the version is new.'),
    diffView,
  );
}
