// The API client: every call sends the Authorization header itself (never URL credentials and
// never `credentials: 'include'`), so a wrong key is an ordinary 401 answer that the console
// shows, and the browser never opens its own password dialog.

const STORE = 'flowsnap.console.credentials';
// A call that gets no answer in this time fails with an error instead of holding the console.
const TIMEOUT_MS = 30_000;

export function credentials() {
  try {
    const c = JSON.parse(sessionStorage.getItem(STORE) || 'null');
    return c && typeof c.email === 'string' && typeof c.key === 'string' ? c : null;
  } catch {
    return null;
  }
}

export function remember(email, key, user) {
  sessionStorage.setItem(STORE, JSON.stringify({ email, key, user }));
}

export function forget() {
  sessionStorage.removeItem(STORE);
}

function basic(email, key) {
  const bytes = new TextEncoder().encode(`${email}:${key}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

/** An answer of the API that is not a success: status and the error document's `detail`. */
export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `The server answered ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

/** Calls the API. Resolves to `{status, text, etag, json()}` for 2xx and 304; rejects with
 * `ApiError` for every other status (with the API's `detail`) and for network failures
 * (status 0). `json()` parses a copy of the body with JSON.parse: use it for ids, names, times,
 * never for snapshot values (see json.js). */
// One call at a time: the browser then reuses one keep-alive connection instead of opening
// several at once, which flowsnap's HTTP layer may leave unread while other connections stay
// open (README, "The HTTP layer's limits"). Calls on loopback take milliseconds.
let line = Promise.resolve();
export function api(method, path, options) {
  const run = line.then(() => call(method, path, options));
  line = run.catch(() => {});
  return run;
}

async function call(method, path, { body, headers = {}, creds } = {}) {
  const c = creds || credentials();
  const h = { Accept: 'application/json', ...headers };
  if (c) h.Authorization = basic(c.email, c.key);
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers: h, body, cache: 'no-store', credentials: 'omit', redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    if (e.name === 'TimeoutError') {
      throw new ApiError(0, 'No answer', `The server did not answer within ${TIMEOUT_MS / 1000} s. Try again; if it keeps happening, check the server's log.`);
    }
    throw new ApiError(0, 'Network error', `The server could not be reached (${e.message}). Is flowsnap still running?`);
  }
  const text = await res.text();
  if (!res.ok) {
    let title = res.statusText;
    let detail = '';
    try {
      const err = JSON.parse(text).errors[0];
      title = err.title || title;
      detail = err.detail || '';
    } catch {
      detail = text.slice(0, 300);
    }
    throw new ApiError(res.status, title, detail);
  }
  let parsed;
  return {
    status: res.status,
    text,
    etag: res.headers.get('ETag'),
    json() {
      if (parsed === undefined) parsed = text ? JSON.parse(text) : null;
      return parsed;
    },
  };
}

/** Fetches every page of a paged list (at most `maxPages` of 100). */
export async function all(path, maxPages = 20) {
  const out = [];
  const sep = path.includes('?') ? '&' : '?';
  for (let page = 1; page <= maxPages; page++) {
    const r = (await api('GET', `${path}${sep}page[size]=100&page[number]=${page}`)).json();
    out.push(...r.data);
    if (page >= (r.meta.total_pages || 0)) break;
  }
  return out;
}

export const enc = encodeURIComponent;
