#!/usr/bin/env python3
"""Pages a snapshot PATCH writes to the WAL, with and without history (issue 11).

Replays the statements of a PATCH (src/db/snapshots.rs `replace`, versions::record,
audit::record: the snapshot update, the version insert, the prune of the step's oldest version,
the audit event) on copies of a benchmark database, in groups of G PATCHes per commit as the
writer thread commits them, with automatic checkpoints off, and counts the WAL's frames. Three
variants: history 10 as the server has it, history 10 pruned only on every 10th write of a step,
history 0 (the copy's versions deleted first). Standard library only; takes a few seconds.

Usage: benches/walpages.py DB      (e.g. the small.db of a run kept with BENCH_KEEP=1)
"""

import os
import random
import sqlite3
import sys
import tempfile

K = 2000  # PATCHes per variant


def run(src: str, workdir: str, keep: int, group: int, lazy: bool = False) -> float:
    dst = os.path.join(workdir, f"wal-{keep}-{group}-{lazy}.db")
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    d = sqlite3.connect(dst)
    s.backup(d)
    s.close()
    if keep == 0:
        d.execute("DELETE FROM snapshot_versions")
        d.commit()
    d.close()
    c = sqlite3.connect(dst, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA wal_autocheckpoint = 0")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = c.execute("PRAGMA page_size").fetchone()[0]
    steps = c.execute("SELECT s.flow_pk, s.step_id, s.generation, s.revision, f.id "
                      "FROM snapshots s JOIN flows f ON f.pk = s.flow_pk").fetchall()
    rng = random.Random(1)
    values = ['"' + "x" * rng.randint(200, 3000) + '"' for _ in range(64)]
    rev = {(fpk, step): r for fpk, step, _, r, _ in steps}
    user = "u" * 24
    for i in range(0, K, group):
        c.execute("BEGIN IMMEDIATE")
        for j in range(group):
            fpk, step, gen, _, fid = steps[rng.randrange(len(steps))]
            r = rev[(fpk, step)] + 1
            rev[(fpk, step)] = r
            v = values[(i + j) % len(values)]
            c.execute("SELECT value FROM snapshots WHERE flow_pk = ? AND step_id = ?", (fpk, step)).fetchone()
            c.execute("UPDATE snapshots SET value = ?, revision = ?, updated_at = ?, updated_by = ? "
                      "WHERE flow_pk = ? AND step_id = ?", (v, r, 1, user, fpk, step))
            if keep:
                c.execute("INSERT INTO snapshot_versions (flow_pk, step_id, generation, revision, operation, value, "
                          "created_at, created_by, restored_from) VALUES (?, ?, ?, ?, 'update', ?, 1, ?, NULL)",
                          (fpk, step, gen, r, v, user))
            if not (lazy and r % keep):
                c.execute("DELETE FROM snapshot_versions WHERE pk IN (SELECT pk FROM snapshot_versions "
                          "WHERE flow_pk = ? AND step_id = ? ORDER BY generation DESC, revision DESC "
                          "LIMIT -1 OFFSET ?)", (fpk, step, keep))
            c.execute("INSERT INTO audit_events (created_at, action, user_id, request_id, workspace_id, target_type, "
                      "target_id, flow_id, version_id) VALUES (1, 'snapshot.update', ?, '0123456789abcdef', ?, "
                      "'snapshot', ?, ?, ?)", (user, "w" * 24, step, fid, f"{gen}-{r}"))
        c.execute("COMMIT")
    frames = (os.path.getsize(dst + "-wal") - 32) / (page + 24)
    c.close()
    return frames / K


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 1
    with tempfile.TemporaryDirectory(prefix="flowsnap-walpages-") as workdir:
        print("| PATCHes per commit | history 10 | history 10, pruned every 10th write of a step | history 0 |")
        print("|---:|---:|---:|---:|")
        for group in (1, 8, 32):
            cells = [f"{run(sys.argv[1], workdir, keep, group, lazy):.2f}"
                     for keep, lazy in ((10, False), (10, True), (0, False))]
            print(f"| {group} | " + " | ".join(cells) + " |")
        print("(WAL pages per PATCH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
