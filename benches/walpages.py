#!/usr/bin/env python3
"""Pages a snapshot PATCH writes to the WAL, with and without history (issue 11).

Replays the statements of a PATCH in the storage layout of schema version 3 (src/db/snapshots.rs
`replace`, versions::record, audit::record: the read of the snapshot and its current value, the
read of the step's slots, the version written into a slot of the step's ring, over the oldest
one when the ring is full, else into the lowest free one, the snapshot's update with its new
value_pk, the audit event) on copies of a benchmark database, in groups of G PATCHes per commit
as the writer thread commits them, with automatic checkpoints off, and counts the WAL's frames.
Two variants: history 10 (a ring of 10 slots a step) as the server has it by default, and
history 0 (a ring of one slot, the current value; the copy's other versions deleted first).
Standard library only; takes a few seconds.

Usage: benches/walpages.py DB      (e.g. the small.db of a run kept with BENCH_KEEP=1)
"""

import os
import random
import sqlite3
import sys
import tempfile

K = 2000  # PATCHes per variant
SLOTS = 1024  # rows per step history: slots h * SLOTS .. h * SLOTS + SLOTS - 1 (src/db/versions.rs)


def record(c: sqlite3.Connection, history: int, keep: int, gen: int, rev: int, value: str, user: str) -> int:
    """versions::record for a version with a value: returns the slot's pk."""
    base = history * SLOTS
    slots = [pk for (pk,) in c.execute("SELECT pk FROM snapshot_versions WHERE pk BETWEEN ? AND ? "
                                       "ORDER BY generation DESC, revision DESC", (base, base + SLOTS - 1))]
    ring = max(keep, 1)
    stay, go = slots[:ring - 1], slots[ring - 1:]
    reused = next((pk for pk in go if pk - base < ring), None)
    target = reused if reused is not None else next(pk for pk in range(base, base + ring) if pk not in stay)
    for pk in go:
        if pk != target:
            c.execute("DELETE FROM snapshot_versions WHERE pk = ?", (pk,))
    if reused is not None:
        c.execute("UPDATE snapshot_versions SET generation = ?, revision = ?, operation = 'update', created_at = 1, "
                  "created_by = ?, restored_from = NULL, value = ? WHERE pk = ?", (gen, rev, user, value, target))
    else:
        c.execute("INSERT INTO snapshot_versions (pk, generation, revision, operation, created_at, created_by, "
                  "restored_from, value) VALUES (?, ?, ?, 'update', 1, ?, NULL, ?)", (target, gen, rev, user, value))
    return target


def run(src: str, workdir: str, keep: int, group: int) -> float:
    dst = os.path.join(workdir, f"wal-{keep}-{group}.db")
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    d = sqlite3.connect(dst)
    s.backup(d)
    s.close()
    if keep == 0:
        # As benches/bench.py's copy_without_history: each step keeps its current value's slot.
        d.execute("DELETE FROM snapshot_versions WHERE pk NOT IN (SELECT value_pk FROM snapshots)")
        d.commit()
    d.close()
    c = sqlite3.connect(dst, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA wal_autocheckpoint = 0")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = c.execute("PRAGMA page_size").fetchone()[0]
    steps = c.execute("SELECT s.flow_pk, s.step_id, s.generation, f.id "
                      "FROM snapshots s JOIN flows f ON f.pk = s.flow_pk").fetchall()
    rng = random.Random(1)
    values = ['"' + "x" * rng.randint(200, 3000) + '"' for _ in range(64)]
    user = "u" * 24
    for i in range(0, K, group):
        c.execute("BEGIN IMMEDIATE")
        for j in range(group):
            fpk, step, gen, fid = steps[rng.randrange(len(steps))]
            cur_rev, value_pk, _ = c.execute(
                "SELECT s.revision, s.value_pk, v.value FROM snapshots s "
                "LEFT JOIN snapshot_versions v ON v.pk = s.value_pk "
                "WHERE s.flow_pk = ? AND s.step_id = ?", (fpk, step)).fetchone()
            r = cur_rev + 1
            v = values[(i + j) % len(values)]
            pk = record(c, value_pk // SLOTS, keep, gen, r, v, user)
            c.execute("UPDATE snapshots SET revision = ?, updated_at = ?, updated_by = ?, value_pk = ? "
                      "WHERE flow_pk = ? AND step_id = ?", (r, 1, user, pk, fpk, step))
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
        print("| PATCHes per commit | history 10 | history 0 |")
        print("|---:|---:|---:|")
        for group in (1, 8, 32):
            cells = [f"{run(sys.argv[1], workdir, keep, group):.2f}" for keep in (10, 0)]
            print(f"| {group} | " + " | ".join(cells) + " |")
        print("(WAL pages per PATCH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
