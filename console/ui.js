// DOM helpers. Every value and name goes into the page as text (text nodes, `textContent`,
// attributes): nothing here parses markup.

/** Creates an element: `h('a', {href: '#/x', class: 'c', onclick: f}, 'text', child, ...)`.
 * Strings and numbers become text nodes; null, undefined and false are skipped. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A time as a `<time>` in the reader's locale, the exact ISO text in its title. */
let dateFormat;
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  // One formatter for every cell: toLocaleString builds a new one on each call (slow for 1,000 rows).
  dateFormat ||= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const text = Number.isNaN(d.getTime()) ? iso : dateFormat.format(d);
  return h('time', { datetime: iso, title: iso }, text);
}

export function bytes(n) {
  if (n === undefined || n === null) return '—';
  if (n < 1024) return `${n} B`;
  return `${(n / 1024).toFixed(1)} KB`;
}

/** An error box (role=alert) with the API's title and detail. */
export function errorBox(err, prefix) {
  const status = err && err.status ? ` (HTTP ${err.status})` : '';
  return h(
    'div',
    { class: 'notice error', role: 'alert' },
    h('strong', null, (prefix || (err && err.title) || 'Error') + status + ': '),
    err && (err.detail || err.message) ? err.detail || err.message : 'Something went wrong.',
  );
}

export function notice(kind, ...children) {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

export function loading(what) {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `Loading ${what}…`);
}

/** A table in a focusable, labelled scroll region (keyboard users can scroll it too). */
export function table(label, head, rows, widths) {
  return h(
    'div',
    { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' },
    h(
      'table',
      widths ? { class: 'fixed' } : null,
      h('caption', { class: 'visually-hidden' }, label),
      // Fixed column widths: the browser lays out a long table from its first row only.
      widths ? h('colgroup', null, widths.map((w) => h('col', { class: `w${w}` }))) : null,
      h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows),
    ),
  );
}

/** A block of code text in a focusable, labelled region. */
export function code(label, text, cls = '') {
  return h('pre', { class: `code ${cls}`, tabindex: '0', role: 'region', 'aria-label': label }, h('code', null, text));
}

/** Asks for confirmation in a modal `<dialog>`; resolves to true for the confirming button. */
export function confirmDialog(title, body, confirmLabel) {
  return new Promise((resolve) => {
    const yes = h('button', { type: 'button', class: 'danger', value: 'yes' }, confirmLabel);
    const no = h('button', { type: 'button', value: 'no' }, 'Cancel');
    const heading = h('h2', { id: 'dialog-title' }, title);
    const dlg = h('dialog', { 'aria-labelledby': 'dialog-title' }, heading, h('p', null, body), h('div', { class: 'actions' }, yes, no));
    const done = (answer) => {
      dlg.close();
      dlg.remove();
      resolve(answer);
    };
    yes.addEventListener('click', () => done(true));
    no.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    no.focus();
  });
}

/** Announces a message in the page's live region. */
export function announce(text) {
  const live = document.getElementById('live');
  if (live) {
    live.textContent = '';
    setTimeout(() => {
      live.textContent = text;
    }, 50);
  }
}
