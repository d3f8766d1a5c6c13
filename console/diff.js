// A line diff: the longest common subsequence of two texts' lines, as a list of
// `{op: ' ' | '-' | '+', line}`. Values are at most a few thousand lines (a snapshot is limited to
// a few KB), so the plain O(n·m) table is fast enough; past `MAX_CELLS` the middle is shown as
// removed and added whole.

const MAX_CELLS = 4_000_000;

export function diffLines(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  // Common prefix and suffix first: most edits touch a few lines.
  let pre = 0;
  while (pre < x.length && pre < y.length && x[pre] === y[pre]) pre++;
  let suf = 0;
  while (suf < x.length - pre && suf < y.length - pre && x[x.length - 1 - suf] === y[y.length - 1 - suf]) suf++;
  const xs = x.slice(pre, x.length - suf);
  const ys = y.slice(pre, y.length - suf);
  const out = x.slice(0, pre).map((line) => ({ op: ' ', line }));
  const n = xs.length;
  const m = ys.length;
  if (n * m > MAX_CELLS) {
    for (const line of xs) out.push({ op: '-', line });
    for (const line of ys) out.push({ op: '+', line });
  } else {
    // lcs[i][j]: length of the LCS of xs[i..] and ys[j..]
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = xs[i] === ys[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (xs[i] === ys[j]) {
        out.push({ op: ' ', line: xs[i] });
        i++;
        j++;
      } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
        out.push({ op: '-', line: xs[i++] });
      } else {
        out.push({ op: '+', line: ys[j++] });
      }
    }
    while (i < n) out.push({ op: '-', line: xs[i++] });
    while (j < m) out.push({ op: '+', line: ys[j++] });
  }
  for (const line of x.slice(x.length - suf)) out.push({ op: ' ', line });
  return out;
}
