// The console's shell: the hash router (deep links like #/flows/ID/steps/step_1, never
// credentials), sign-in and sign-out, the header and the breadcrumb.

import { api, credentials, remember, forget, ApiError } from './api.js';
import { h, fill, errorBox, announce } from './ui.js';
import { workspacesPage, flowsPage, flowPage, auditPage } from './pages.js';
import { snapshotPage, versionPage } from './snapshot.js';

const ROUTES = [
  [/^\/workspaces\/([^/]+)\/audit$/, auditPage],
  [/^\/workspaces\/([^/]+)$/, flowsPage],
  [/^\/(?:workspaces)?$/, workspacesPage],
  [/^\/flows\/([^/]+)$/, flowPage],
  [/^\/flows\/([^/]+)\/steps\/([^/]+)$/, snapshotPage],
  [/^\/flows\/([^/]+)\/steps\/([^/]+)\/versions\/([^/]+)$/, versionPage],
];

const AFTER = 'flowsnap.console.after';
let seq = 0;

function parseHash() {
  let hash = location.hash.replace(/^#/, '');
  if (!hash.startsWith('/')) hash = '/';
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  return { path: path.length > 1 ? path.replace(/\/$/, '') : path, query };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function header() {
  const who = document.getElementById('who');
  const c = credentials();
  if (!c) {
    fill(who);
    return;
  }
  fill(
    who,
    h('span', { class: 'muted' }, 'Signed in as '),
    h('strong', null, c.email),
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'),
  );
}

function signOut() {
  forget();
  sessionStorage.removeItem(AFTER);
  header();
  go('#/signin');
  announce('Signed out');
}

function crumbs(list) {
  const nav = document.getElementById('crumbs');
  if (!list || !list.length) {
    nav.hidden = true;
    fill(nav);
    return;
  }
  nav.hidden = false;
  const items = list.map(([label, href], i) => {
    const last = i === list.length - 1;
    return h('li', null, last ? h('span', { 'aria-current': 'page' }, label) : h('a', { href }, label));
  });
  fill(nav, h('ol', null, items));
}

function signInPage(ctx) {
  ctx.title('Sign in');
  crumbs([]);
  const email = h('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'username', required: true, spellcheck: 'false' });
  const key = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'current-password', required: true, spellcheck: 'false' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const msg = h('div', { id: 'signin-msg' });
  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-title', novalidate: true },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Use your flowsnap e-mail and API key. They stay in this browser tab only and are sent with each request to this server.'),
    h('div', { class: 'field' }, h('label', { for: 'email' }, 'E-mail'), email),
    h('div', { class: 'field' }, h('label', { for: 'key' }, 'API key'), key),
    msg,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const creds = { email: email.value.trim(), key: key.value };
    if (!creds.email || !creds.key) {
      fill(msg, errorBox({ detail: 'Enter both your e-mail and your API key.' }, 'Sign-in needs both fields'));
      (creds.email ? key : email).focus();
      return;
    }
    button.disabled = true;
    fill(msg, h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Signing in…'));
    try {
      const me = (await api('GET', '/v2/users/me', { creds })).json().data;
      remember(creds.email, creds.key, { id: me.id, email: me.attributes.email });
      header();
      const after = sessionStorage.getItem(AFTER);
      sessionStorage.removeItem(AFTER);
      announce(`Signed in as ${creds.email}`);
      go(after && after !== '#/signin' ? after : '#/');
    } catch (err) {
      button.disabled = false;
      const prefix = err.status === 401 ? 'Sign-in failed: the e-mail or API key is wrong' : 'Sign-in failed';
      fill(msg, errorBox(err, prefix));
      key.focus();
      key.select();
    }
  });
  fill(ctx.main, form);
  email.focus();
}

async function route() {
  const my = ++seq;
  const { path, query } = parseHash();
  const main = document.getElementById('main');
  delete main.dataset.renderMs;
  const ctx = {
    main,
    query,
    live: () => my === seq,
    title: (t) => {
      document.title = `${t} · flowsnap console`;
    },
    crumbs,
    go,
    // An error of the API while loading a page: a 401 sends the person back to sign-in.
    fail(err, what) {
      if (my !== seq) return;
      if (err instanceof ApiError && err.status === 401) {
        forget();
        header();
        sessionStorage.setItem(AFTER, location.hash);
        go('#/signin');
        setTimeout(() => announce('Your credentials were refused; sign in again.'), 100);
        return;
      }
      main.removeAttribute('aria-busy');
      fill(main, h('h1', null, what), errorBox(err));
    },
  };
  header();
  if (path === '/signin') return signInPage(ctx);
  if (!credentials()) {
    sessionStorage.setItem(AFTER, location.hash || '#/');
    return signInPage(ctx);
  }
  for (const [re, page] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      main.setAttribute('aria-busy', 'true');
      try {
        // A malformed escape in a hand-typed link (`%E0`) is this page's error, not a stuck page.
        const args = m.slice(1).map((s) => decodeURIComponent(s));
        await page(ctx, ...args);
      } catch (err) {
        ctx.fail(err, 'This page could not be loaded');
      }
      if (my === seq) main.removeAttribute('aria-busy');
      return;
    }
  }
  ctx.title('Not found');
  crumbs([['Workspaces', '#/']]);
  fill(main, h('h1', null, 'No such page'), h('p', null, 'The address ', h('code', null, location.hash), ' names no page of the console. ', h('a', { href: '#/' }, 'Go to the workspaces.')));
}

let lastPath = null;
window.addEventListener('hashchange', () => {
  const { path } = parseHash();
  // Moving focus to the new page's heading only when the page changes (not for a new query).
  const moved = path !== lastPath;
  lastPath = path;
  route().then(() => {
    if (moved) {
      const h1 = document.querySelector('main h1');
      if (h1 && !document.activeElement?.closest('main form')) {
        h1.setAttribute('tabindex', '-1');
        h1.focus({ preventScroll: false });
      }
    }
  });
});
lastPath = parseHash().path;
route();
