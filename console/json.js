// JSON as text. Snapshot values are never turned into JavaScript numbers: a value like
// 12345678901234567890123 would be rounded by JSON.parse. Everything here works on the text:
// a tokenizer that follows the JSON grammar (RFC 8259), a parser that builds a tree whose leaves
// keep their raw text and every node its position, and a printer that re-indents tokens.

export class JsonError extends Error {
  constructor(message, text, pos) {
    const { line, column } = where(text, pos);
    super(`${message} at line ${line}, column ${column}`);
    this.line = line;
    this.column = column;
    this.pos = pos;
  }
}

function where(text, pos) {
  let line = 1;
  let start = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: pos - start + 1 };
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

function describe(ch) {
  if (ch === undefined) return 'the end of the text';
  const code = ch.charCodeAt(0);
  if (code < 0x20) return `control character U+${code.toString(16).padStart(4, '0').toUpperCase()}`;
  return `"${ch}"`;
}

/** Splits JSON text into tokens `{k, s, e}` (kind, start, end); `k` is one of `{ } [ ] : ,`,
 * `str`, `num`, `lit`. Throws `JsonError` on anything that is not a JSON token. */
export function tokenize(text) {
  const out = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (WS.has(c)) {
      i++;
      continue;
    }
    const ch = text[i];
    if ('{}[]:,'.includes(ch)) {
      out.push({ k: ch, s: i, e: i + 1 });
      i++;
    } else if (ch === '"') {
      const s = i;
      i++;
      for (;;) {
        if (i >= n) throw new JsonError('Unterminated string', text, s);
        const d = text.charCodeAt(i);
        if (d === 0x22) break;
        if (d < 0x20) throw new JsonError(`Unescaped ${describe(text[i])} in a string`, text, i);
        if (d === 0x5c) {
          const esc = text[i + 1];
          if (esc === 'u') {
            if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
              throw new JsonError('Bad \\u escape (four hex digits expected)', text, i);
            }
            i += 6;
          } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) {
            i += 2;
          } else {
            throw new JsonError(`Bad escape \\${esc === undefined ? '' : esc} in a string`, text, i);
          }
        } else {
          i++;
        }
      }
      i++;
      out.push({ k: 'str', s, e: i });
    } else if (ch === '-' || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) throw new JsonError(`Bad number`, text, i);
      const e = i + m[0].length;
      const next = text[e];
      if (next !== undefined && /[0-9A-Za-z.+\-]/.test(next)) {
        throw new JsonError(`Bad number ${text.slice(i, e + 1)}`, text, i);
      }
      out.push({ k: 'num', s: i, e });
      i = e;
    } else {
      let lit = null;
      for (const w of ['true', 'false', 'null']) {
        if (text.startsWith(w, i)) lit = w;
      }
      if (lit === null || /[0-9A-Za-z_]/.test(text[i + lit.length] || '')) {
        const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 40));
        throw new JsonError(
          word ? `Unexpected word "${word[0]}" (strings need double quotes)` : `Unexpected ${describe(ch)}`,
          text,
          i,
        );
      }
      out.push({ k: 'lit', s: i, e: i + lit.length });
      i += lit.length;
    }
  }
  return out;
}

/** Parses JSON text into a tree: `{type: 'object', members: [{key, value}]}`,
 * `{type: 'array', items}`, or a leaf `{type: 'string'|'number'|'literal'}`; every node has `s`
 * and `e` (its text is `text.slice(s, e)`), a member's `key` is the decoded key. Iterative, so
 * deep values do not overflow the stack. Throws `JsonError`. */
export function parse(text) {
  const toks = tokenize(text);
  let i = 0;
  const stack = [];
  let root = null;
  const end = () => (i < toks.length ? toks[i].s : text.length);
  const unexpected = (what) => {
    const t = toks[i];
    const got = t ? (t.k.length === 1 ? `"${t.k}"` : text.slice(t.s, Math.min(t.e, t.s + 20))) : 'the end of the text';
    return new JsonError(`Expected ${what} but found ${got}`, text, end());
  };
  const attach = (node) => {
    const top = stack[stack.length - 1];
    if (!top) root = node;
    else if (top.type === 'array') top.items.push(node);
    else top.members[top.members.length - 1].value = node;
  };
  // A value is expected at toks[i]
  const value = () => {
    const t = toks[i];
    if (!t) throw unexpected('a value');
    if (t.k === '{' || t.k === '[') {
      const node = t.k === '{' ? { type: 'object', members: [], s: t.s, e: -1 } : { type: 'array', items: [], s: t.s, e: -1 };
      attach(node);
      stack.push(node);
      i++;
      return true; // opened a container
    }
    const type = { str: 'string', num: 'number', lit: 'literal' }[t.k];
    if (!type) throw unexpected('a value');
    attach({ type, s: t.s, e: t.e });
    i++;
    return false;
  };
  const key = () => {
    const t = toks[i];
    if (!t || t.k !== 'str') throw unexpected('a member name in double quotes');
    const top = stack[stack.length - 1];
    top.members.push({ key: JSON.parse(text.slice(t.s, t.e)), keyS: t.s, value: null });
    i++;
    if (!toks[i] || toks[i].k !== ':') throw unexpected('":" after the member name');
    i++;
  };
  let opened = value();
  for (;;) {
    const top = stack[stack.length - 1];
    if (!top) break;
    const closer = top.type === 'object' ? '}' : ']';
    if (opened) {
      opened = false;
      if (toks[i] && toks[i].k === closer) {
        top.e = toks[i].e;
        stack.pop();
        i++;
        continue;
      }
      if (top.type === 'object') key();
      opened = value();
      continue;
    }
    const t = toks[i];
    if (t && t.k === ',') {
      i++;
      if (top.type === 'object') key();
      opened = value();
    } else if (t && t.k === closer) {
      top.e = t.e;
      stack.pop();
      i++;
    } else {
      throw unexpected(`"," or "${closer}"`);
    }
  }
  if (i < toks.length) throw new JsonError('Unexpected text after the value', text, toks[i].s);
  return root;
}

/** Null when `text` is one JSON value, else the `JsonError`. */
export function validate(text) {
  try {
    parse(text);
    return null;
  } catch (e) {
    if (e instanceof JsonError) return e;
    throw e;
  }
}

/** The node at a path of member names and array indexes, or undefined. */
export function at(node, ...path) {
  for (const p of path) {
    if (!node) return undefined;
    if (node.type === 'object') {
      const m = node.members.find((x) => x.key === p);
      node = m && m.value;
    } else if (node.type === 'array' && typeof p === 'number') {
      node = node.items[p];
    } else {
      return undefined;
    }
  }
  return node;
}

/** The raw text of a node. */
export function raw(text, node) {
  return text.slice(node.s, node.e);
}

/** The JavaScript value of a leaf or small node (for ids, names, times: never for values). */
export function plain(text, node) {
  return node ? JSON.parse(raw(text, node)) : undefined;
}

/** Re-indents JSON text token by token: numbers and strings keep their exact text. */
export function pretty(text, indent = '  ') {
  const toks = tokenize(text);
  let out = '';
  let depth = 0;
  for (let j = 0; j < toks.length; j++) {
    const t = toks[j];
    const k = t.k;
    if (k === '{' || k === '[') {
      const next = toks[j + 1];
      if (next && next.k === (k === '{' ? '}' : ']')) {
        out += k + next.k;
        j++;
        continue;
      }
      depth++;
      out += k + '\n' + indent.repeat(depth);
    } else if (k === '}' || k === ']') {
      depth--;
      out += '\n' + indent.repeat(depth) + k;
    } else if (k === ',') {
      out += ',\n' + indent.repeat(depth);
    } else if (k === ':') {
      out += ': ';
    } else {
      out += text.slice(t.s, t.e);
    }
  }
  return out;
}

/** The compact text of a JSON value (the form the server counts in `size_bytes`). */
export function compact(text) {
  return tokenize(text)
    .map((t) => text.slice(t.s, t.e))
    .join('');
}

/** The UTF-8 size of a string, in bytes. */
export function utf8Bytes(s) {
  return new TextEncoder().encode(s).length;
}
