// Pages: workspaces, a workspace's flows, a flow with its steps, a workspace's audit log.

import { api, all, enc, ApiError, credentials } from './api.js';
import { h, fill, time, bytes, errorBox, notice, loading, table, announce } from './ui.js';
import { parse, at, raw, plain, compact, utf8Bytes } from './json.js';

const FLOWS_PER_PAGE = 20;
// A flow's steps table: rows shown at once, then rows added per frame.
const FIRST_ROWS = 100;
const MORE_ROWS = 150;

/** The workspace's members by user id (for "by whom"); empty when they cannot be read. */
const peopleCache = new Map();
const rolesCache = new Map();
export async function people(workspaceId) {
  if (peopleCache.has(workspaceId)) return peopleCache.get(workspaceId);
  const map = new Map();
  const roles = new Map();
  try {
    for (const m of await all(`/v2/workspaces/${enc(workspaceId)}/members`, 5)) {
      map.set(m.id, m.attributes.email);
      roles.set(m.id, (m.attributes.roles || [])[0]);
    }
  } catch {
    // Shown as ids instead; the API still decides every write.
    roles.set('?', 'unknown');
  }
  peopleCache.set(workspaceId, map);
  rolesCache.set(workspaceId, roles);
  return map;
}

/** Why the signed-in user may not change flows and snapshots of the workspace (section 4's
 * roles), or null when they may (or when it is not known: then the API decides). Call after
 * `people(workspaceId)`. */
export function cannotEdit(workspaceId) {
  const roles = rolesCache.get(workspaceId);
  const me = credentials()?.user?.id;
  if (!roles || !me || roles.has('?')) return null;
  const role = roles.get(me);
  if (role === undefined) return 'You are not a member of this workspace: you may read it, but only its members may change it.';
  if (role === 'guest') return 'Your role in this workspace is guest: you may read, but not change, its flows and snapshots.';
  return null;
}

export function who(map, id) {
  if (id === null) return h('span', { class: 'muted' }, 'command line or fixture');
  if (id === undefined) return h('span', { class: 'muted' }, '—');
  return map.get(id) || id;
}

export function statusBadge(status) {
  const running = status === 'active';
  return h('span', { class: `badge ${running ? 'on' : 'off'}` }, running ? 'Running' : 'Stopped');
}

const workspaceNames = new Map();
export async function workspaceName(id) {
  if (!workspaceNames.has(id)) {
    try {
      workspaceNames.set(id, (await api('GET', `/v2/workspaces/${enc(id)}`)).json().data.attributes.name);
    } catch {
      return 'Workspace';
    }
  }
  return workspaceNames.get(id);
}

function pager(label, page, totalPages, total, hrefFor) {
  if (totalPages <= 1) return null;
  return h(
    'nav',
    { class: 'pager', 'aria-label': label },
    page > 1 ? h('a', { href: hrefFor(page - 1), class: 'button' }, 'Previous page') : h('span', { class: 'button disabled', 'aria-disabled': 'true' }, 'Previous page'),
    h('span', null, `Page ${page} of ${totalPages} (${total} in all)`),
    page < totalPages ? h('a', { href: hrefFor(page + 1), class: 'button' }, 'Next page') : h('span', { class: 'button disabled', 'aria-disabled': 'true' }, 'Next page'),
  );
}

function pageNumber(query) {
  const n = Number(query.get('page') || '1');
  return Number.isInteger(n) && n > 0 ? n : 1;
}

export async function workspacesPage(ctx) {
  ctx.title('Workspaces');
  ctx.crumbs([['Workspaces', '#/']]);
  fill(ctx.main, h('h1', null, 'Workspaces'), loading('your workspaces'));
  const page = pageNumber(ctx.query);
  const r = (await api('GET', `/v2/workspaces?page[size]=50&page[number]=${page}`)).json();
  if (!ctx.live()) return;
  const rows = r.data.map((w) =>
    h('tr', null, h('td', null, h('a', { href: `#/workspaces/${enc(w.id)}` }, w.attributes.name)), h('td', null, h('code', null, w.id)), h('td', null, String((w.relationships?.members?.data || []).length || '—'))),
  );
  fill(
    ctx.main,
    h('h1', null, 'Workspaces'),
    r.meta.total === 0
      ? notice('empty', h('p', null, h('strong', null, 'No workspace yet. '), 'You are not a member of any workspace: ask a workspace owner to add you, or create one with ', h('code', null, 'POST /v2/workspaces'), '.'))
      : [
          h('p', { class: 'muted' }, `${r.meta.total} workspace${r.meta.total === 1 ? '' : 's'}. Open one to see its flows.`),
          table('Workspaces', ['Name', 'Id', 'Members'], rows),
          pager('Workspace pages', page, r.meta.total_pages, r.meta.total, (p) => `#/workspaces?page=${p}`),
        ],
  );
}

export async function flowsPage(ctx, wsId) {
  const q = ctx.query;
  const search = q.get('search') || '';
  const status = q.get('status') || '';
  const page = pageNumber(q);
  const name = await workspaceName(wsId);
  if (!ctx.live()) return;
  ctx.title(name);
  ctx.crumbs([['Workspaces', '#/'], [name, `#/workspaces/${enc(wsId)}`]]);
  const heading = h('h1', null, name);
  const searchBox = h('input', { id: 'flow-search', type: 'search', value: search, autocomplete: 'off' });
  const statusSel = h(
    'select',
    { id: 'flow-status' },
    [['', 'Any status'], ['active', 'Running'], ['inactive', 'Stopped']].map(([v, l]) => h('option', { value: v, selected: v === status }, l)),
  );
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Find flows' },
    h('div', { class: 'field' }, h('label', { for: 'flow-search' }, 'Search flows'), searchBox),
    h('div', { class: 'field' }, h('label', { for: 'flow-status' }, 'Status'), statusSel),
    h('button', { type: 'submit' }, 'Apply'),
  );
  const hrefFor = (p, s = search, st = status) => {
    const u = new URLSearchParams();
    if (s) u.set('search', s);
    if (st) u.set('status', st);
    if (p > 1) u.set('page', String(p));
    const qs = u.toString();
    return `#/workspaces/${enc(wsId)}${qs ? '?' + qs : ''}`;
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go(hrefFor(1, searchBox.value.trim(), statusSel.value));
  });
  const results = h('div', { id: 'flow-results' }, loading('flows'));
  fill(
    ctx.main,
    h('div', { class: 'title-row' }, heading, h('a', { href: `#/workspaces/${enc(wsId)}/audit`, class: 'button' }, 'Audit log')),
    form,
    results,
  );
  let path = `/v2/flows?workspace_id=${enc(wsId)}&sort=name&page[size]=${FLOWS_PER_PAGE}&page[number]=${page}`;
  if (search) path += `&search=${enc(search)}`;
  if (status) path += `&filter[status]=${enc(status)}`;
  let r;
  try {
    r = (await api('GET', path)).json();
  } catch (err) {
    if (ctx.live()) fill(results, errorBox(err, 'The flows could not be loaded'));
    return;
  }
  if (!ctx.live()) return;
  if (r.meta.total === 0) {
    const filtered = search || status;
    fill(
      results,
      notice(
        'empty',
        filtered
          ? h('p', null, h('strong', null, 'No flow matches. '), 'Try another search or status, or ', h('a', { href: hrefFor(1, '', '') }, 'show every flow'), '.')
          : h('p', null, h('strong', null, 'No flows in this workspace yet. '), 'Create one with ', h('code', null, 'POST /v2/flows'), ' (see the README); it will show up here.'),
      ),
    );
    return;
  }
  const rows = r.data.map((f) =>
    h(
      'tr',
      null,
      h('td', null, h('a', { href: `#/flows/${enc(f.id)}` }, f.attributes.name)),
      h('td', null, statusBadge(f.attributes.status)),
      h('td', null, String((f.attributes.graph?.nodes || []).length)),
      h('td', null, f.attributes.type),
      h('td', null, time(f.attributes.updated_at)),
    ),
  );
  fill(
    results,
    h('p', { class: 'muted', role: 'status' }, `${r.meta.total} flow${r.meta.total === 1 ? '' : 's'}${search ? ` matching “${search}”` : ''}.`),
    table('Flows', ['Name', 'Status', 'Steps', 'Type', 'Updated'], rows),
    pager('Flow pages', page, r.meta.total_pages, r.meta.total, (p) => hrefFor(p)),
  );
}

/** The snapshots of a flow, by step id: `{raw, size, meta}`, read from the list's text. */
export async function snapshotsOf(flowId) {
  const r = await api('GET', `/v2/flows/${enc(flowId)}/snapshots`);
  performance.mark('snapshots:received');
  const tree = parse(r.text);
  const out = new Map();
  for (const item of at(tree, 'data').items) {
    const id = plain(r.text, at(item, 'id'));
    const value = at(item, 'attributes', 'snapshot');
    const metaNode = at(item, 'meta');
    const meta = metaNode ? plain(r.text, metaNode) : {};
    const text = raw(r.text, value);
    out.set(id, { raw: text, size: meta.size_bytes ?? utf8Bytes(compact(text)), meta });
  }
  performance.mark('snapshots:read');
  return out;
}

export async function flowPage(ctx, flowId) {
  ctx.title('Flow');
  fill(ctx.main, h('h1', null, 'Flow'), loading('the flow and its steps'));
  const started = performance.now();
  performance.mark('flow:start');
  const [flowRes, snaps] = await Promise.all([api('GET', `/v2/flows/${enc(flowId)}`), snapshotsOf(flowId)]);
  performance.mark('flow:fetched');
  const flow = flowRes.json().data;
  const a = flow.attributes;
  const wsId = flow.relationships?.workspace?.data?.id;
  const [wsName, map] = await Promise.all([workspaceName(wsId), people(wsId)]);
  if (!ctx.live()) return;
  ctx.title(a.name);
  ctx.crumbs([['Workspaces', '#/'], [wsName, `#/workspaces/${enc(wsId)}`], [a.name, `#/flows/${enc(flowId)}`]]);
  const running = a.status === 'active';
  const msg = h('div', { id: 'flow-msg' });
  const denied = cannotEdit(wsId);
  const toggle = h('button', { type: 'button', class: running ? 'danger' : 'primary', disabled: !!denied, 'aria-describedby': denied ? 'role-reason' : null }, running ? 'Stop flow' : 'Start flow');
  toggle.addEventListener('click', async () => {
    toggle.disabled = true;
    fill(msg, loading(running ? 'stopping the flow' : 'starting the flow'));
    try {
      await api('POST', `/v2/flows/${enc(flowId)}/${running ? 'stop' : 'start'}`);
      announce(running ? 'The flow is stopped' : 'The flow is running');
      ctx.go(location.hash);
    } catch (err) {
      toggle.disabled = false;
      fill(msg, errorBox(err, running ? 'The flow could not be stopped' : 'The flow could not be started'));
    }
  });
  const nodes = a.graph?.nodes || [];
  const rows = nodes.map((n, i) => {
    const s = snaps.get(n.id);
    const m = s?.meta || {};
    return h(
      'tr',
      null,
      h('td', { class: 'num' }, String(i + 1)),
      h('td', null, h('a', { href: `#/flows/${enc(flowId)}/steps/${enc(n.id)}` }, n.id)),
      h('td', null, n.name || ''),
      h('td', null, h('code', null, n.command)),
      h('td', null, s ? bytes(s.size) : h('span', { class: 'muted' }, 'none')),
      h('td', { class: 'num' }, s && m.revision !== undefined ? String(m.revision) : '—'),
      h('td', null, s ? time(m.updated_at) : '—'),
      h('td', null, s ? who(map, m.updated_by) : '—'),
    );
  });
  performance.mark('flow:rows');
  const withSnap = nodes.filter((n) => snaps.has(n.id)).length;
  fill(
    ctx.main,
    h('div', { class: 'title-row' }, h('h1', null, a.name), statusBadge(a.status), toggle),
    denied ? notice('warn', h('p', { id: 'role-reason' }, denied)) : null,
    msg,
    a.description ? h('p', null, a.description) : null,
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Id'), h('dd', null, h('code', null, flow.id)),
      h('dt', null, 'Type'), h('dd', null, a.type),
      h('dt', null, 'Last start'), h('dd', null, time(a.last_start_time)),
      h('dt', null, 'Last stop'), h('dd', null, time(a.last_stop_time)),
    ),
    running ? notice('warn', 'This flow is running: its snapshots are read-only until it is stopped.') : null,
    h('h2', null, `Steps (${nodes.length}, ${withSnap} with a snapshot)`),
    nodes.length
      ? table('Steps in graph order', ['#', 'Step', 'Name', 'Component', 'Snapshot', 'Revision', 'Last change', 'By'], rows.slice(0, FIRST_ROWS), [4, 11, 16, 22, 9, 8, 16, 14])
      : notice('empty', 'This flow has no steps: add nodes to its graph with PATCH /v2/flows/{id}.'),
  );
  performance.mark('flow:filled');
  // A long flow's other rows follow in chunks, one per frame, so the page stays responsive.
  const tbody = ctx.main.querySelector('tbody');
  let next = FIRST_ROWS;
  const more = () => {
    if (!ctx.live()) return;
    if (next < rows.length) {
      const frag = document.createDocumentFragment();
      for (const r of rows.slice(next, next + MORE_ROWS)) frag.appendChild(r);
      tbody.appendChild(frag);
      next += MORE_ROWS;
      requestAnimationFrame(more);
      return;
    }
    // The time to a painted page: after the last rows' layout and paint.
    setTimeout(() => {
      ctx.main.dataset.renderMs = String(Math.round(performance.now() - started));
    }, 0);
  };
  requestAnimationFrame(more);
}

const ACTIONS = [
  'workspace.create', 'workspace.update', 'workspace.delete', 'member.add', 'member.update', 'member.remove',
  'flow.create', 'flow.update', 'flow.delete', 'flow.start', 'flow.stop',
  'snapshot.create', 'snapshot.update', 'snapshot.delete', 'snapshot.restore', 'fixture.import', 'fixture.reset',
];

export async function auditPage(ctx, wsId) {
  const name = await workspaceName(wsId);
  if (!ctx.live()) return;
  const title = `Audit log of ${name}`;
  ctx.title(title);
  ctx.crumbs([['Workspaces', '#/'], [name, `#/workspaces/${enc(wsId)}`], ['Audit log', `#/workspaces/${enc(wsId)}/audit`]]);
  const action = ctx.query.get('action') || '';
  const page = pageNumber(ctx.query);
  const sel = h('select', { id: 'audit-action' }, h('option', { value: '' }, 'Every action'), ACTIONS.map((x) => h('option', { value: x, selected: x === action }, x)));
  const hrefFor = (p, act = action) => {
    const u = new URLSearchParams();
    if (act) u.set('action', act);
    if (p > 1) u.set('page', String(p));
    const qs = u.toString();
    return `#/workspaces/${enc(wsId)}/audit${qs ? '?' + qs : ''}`;
  };
  const form = h('form', { class: 'filters', 'aria-label': 'Filter the audit log' }, h('div', { class: 'field' }, h('label', { for: 'audit-action' }, 'Action'), sel), h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go(hrefFor(1, sel.value));
  });
  const results = h('div', null, loading('the audit log'));
  fill(ctx.main, h('h1', null, title), form, results);
  let r;
  try {
    let path = `/v2/workspaces/${enc(wsId)}/audit?page[size]=50&page[number]=${page}`;
    if (action) path += `&filter[action]=${enc(action)}`;
    r = (await api('GET', path)).json();
  } catch (err) {
    if (!ctx.live()) return;
    if (err instanceof ApiError && err.status === 403) {
      form.remove();
      fill(results, notice('warn', h('p', null, h('strong', null, 'You may not read this workspace’s audit log. '), 'It is open to the workspace’s owners and admins and to tenant-admins. ', h('span', { class: 'muted' }, `(${err.detail})`))));
    } else {
      fill(results, errorBox(err, 'The audit log could not be loaded'));
    }
    return;
  }
  const map = await people(wsId);
  if (!ctx.live()) return;
  if (r.meta.total === 0) {
    fill(results, notice('empty', action ? 'No event with this action: choose “Every action”.' : 'No events yet: every change to this workspace, its members, flows and snapshots is recorded here.'));
    return;
  }
  const rows = r.data.map((ev) => {
    const x = ev.attributes;
    const t = x.target || {};
    let target = `${t.type} ${t.id ?? ''}`;
    if (t.type === 'flow') target = h('a', { href: `#/flows/${enc(t.id)}` }, `flow ${t.id}`);
    if (t.type === 'snapshot' && t.flow_id) target = h('a', { href: `#/flows/${enc(t.flow_id)}/steps/${enc(t.id)}` }, `snapshot ${t.id}`);
    return h(
      'tr',
      null,
      h('td', null, time(x.created_at)),
      h('td', null, h('code', null, x.action)),
      h('td', null, who(map, x.user_id)),
      h('td', null, target),
      h('td', null, x.version_id || '—'),
      h('td', null, x.request_id ? h('code', null, x.request_id) : '—'),
    );
  });
  fill(
    results,
    table('Audit events, newest first', ['When', 'Action', 'By', 'Target', 'Version', 'Request'], rows),
    pager('Audit log pages', page, r.meta.total_pages, r.meta.total, (p) => hrefFor(p)),
  );
}
