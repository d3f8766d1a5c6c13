//! Schema versions. `schema.sql` is version 1; each later version appends one migration here
//! (`schema.sql` plus these is the whole schema).
//! The version applied is recorded in `PRAGMA user_version`, so a database made by any earlier
//! version upgrades in order, and one made by a newer flowsnap is refused instead of damaged.

use crate::error::{Error, Result};
use crate::util;
use rusqlite::Connection;

/// Migration `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    // 2: the columns every request naming a flow reads (its pk, workspace and status), in an
    // index by public id, so the lookup does not fetch the flow's row with its graph: one random
    // page read fewer per request when the database is larger than memory.
    FLOWS_HEAD,
    // 3: snapshot metadata, versions and the audit log (spec sections 9 and 10).
    VERSIONS_AND_AUDIT,
];

/// Version 3. Existing snapshots get their creation time (the best known: their last change) and
/// their current value as their first version, recorded as an `import`.
///
/// A value is stored once: as the newest version of its step, in a ring of slots kept per step
/// (`history_max_versions` of them, at least one). `snapshots.value_pk` names the slot that holds
/// the current value. A change writes its version over the step's oldest slot when the ring is
/// full, so the page it dirties is the one that the version it pushes out leaves, and history
/// costs no page that a change without history would not write (spec section 9, issue 11).
const VERSIONS_AND_AUDIT: &str = "
-- A step's history: keyed to the flow, not to the step, so that the versions of a step that a
-- graph change drops stay (and show again if the step comes back), while a flow's versions go
-- with the flow.
CREATE TABLE step_histories (
    pk      INTEGER PRIMARY KEY,
    flow_pk INTEGER NOT NULL REFERENCES flows(pk) ON DELETE CASCADE,
    step_id TEXT    NOT NULL,
    UNIQUE (flow_pk, step_id)
);

-- Every accepted change of a step's snapshot that is kept: the step's slots are the rows
-- step_histories.pk * 1024 + 0 .. 1023 (no index needed, and one step's versions sit together).
-- (generation, revision) is the version id and grows with every change of a step: ordered by
-- it, newest first, is the history.
CREATE TABLE snapshot_versions (
    pk            INTEGER PRIMARY KEY,
    generation    INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    operation     TEXT    NOT NULL
                  CHECK (operation IN ('create', 'update', 'delete', 'restore', 'import')),
    created_at    INTEGER NOT NULL,
    created_by    TEXT,
    restored_from TEXT,
    -- Compact JSON text; NULL exactly for a delete. Last, so that reading the other columns
    -- never reads a long value's overflow pages.
    value         TEXT    CHECK ((operation = 'delete') = (value IS NULL))
);
CREATE TRIGGER step_histories_versions_go AFTER DELETE ON step_histories BEGIN
    DELETE FROM snapshot_versions WHERE pk BETWEEN old.pk * 1024 AND old.pk * 1024 + 1023;
END;

-- A snapshot is now its metadata and the row of its value: small rows, kept in the order of
-- their key (flow, step), so that finding one is one B-tree descent (no separate unique index).
CREATE TABLE snapshots_v3 (
    flow_pk    INTEGER NOT NULL,
    step_id    TEXT    NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    -- Database-wide counter taken at creation: with the revision it makes an ETag that never
    -- repeats for a step, even after a delete and a re-create.
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- The public id of the user whose request made the last change; NULL for the command line.
    updated_by TEXT,
    -- The snapshot_versions row that holds the current value.
    value_pk   INTEGER NOT NULL,
    PRIMARY KEY (flow_pk, step_id),
    FOREIGN KEY (flow_pk, step_id) REFERENCES steps (flow_pk, step_id) ON DELETE CASCADE
) WITHOUT ROWID;

INSERT INTO step_histories (flow_pk, step_id) SELECT flow_pk, step_id FROM snapshots ORDER BY pk;
INSERT INTO snapshot_versions (pk, generation, revision, operation, created_at, value)
    SELECT h.pk * 1024, s.generation, s.revision, 'import', s.updated_at, s.value
    FROM snapshots s JOIN step_histories h ON h.flow_pk = s.flow_pk AND h.step_id = s.step_id;
-- The best creation time known for an existing snapshot is its last change.
INSERT INTO snapshots_v3 (flow_pk, step_id, revision, generation, created_at, updated_at,
                          updated_by, value_pk)
    SELECT s.flow_pk, s.step_id, s.revision, s.generation, s.updated_at, s.updated_at, NULL,
           h.pk * 1024
    FROM snapshots s JOIN step_histories h ON h.flow_pk = s.flow_pk AND h.step_id = s.step_id;
DROP TABLE snapshots;
ALTER TABLE snapshots_v3 RENAME TO snapshots;

-- One row per accepted change (spec section 10). AUTOINCREMENT: an id is never reused, also
-- after retention removed the newest rows' predecessors, so ids grow with time.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   INTEGER NOT NULL,
    action       TEXT    NOT NULL,
    user_id      TEXT,
    request_id   TEXT,
    workspace_id TEXT,
    target_type  TEXT    NOT NULL,
    target_id    TEXT,
    -- The flow an event concerns (a flow's or a snapshot's event), for filter[flow_id].
    flow_id      TEXT,
    version_id   TEXT
);
CREATE INDEX audit_by_workspace ON audit_events (workspace_id, id);
";

/// The index the flow-head lookups name (`INDEXED BY flows_head`): without it they cannot even
/// be prepared, so it is also made again on every open of a database that lacks it.
const FLOWS_HEAD: &str =
    "CREATE INDEX IF NOT EXISTS flows_head ON flows (id, workspace_pk, status);";

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Name of the one built-in contract every workspace belongs to.
pub const CONTRACT_NAME: &str = "Default contract";

pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = migrate_in_tx(conn);
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result
}

fn migrate_in_tx(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 0 {
        return Err(Error::internal(format!(
            "the database has schema version {version}, which no flowsnap writes; it is not a \
             flowsnap database or it was changed by hand"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(Error::internal(format!(
            "the database has schema version {version}, newer than this flowsnap understands \
             ({SCHEMA_VERSION}); run a newer flowsnap"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        log::info!("migrating database schema to version {}", i + 1);
        conn.execute_batch(sql)?;
        conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    conn.execute_batch(FLOWS_HEAD)?;
    conn.execute(
        "INSERT INTO contracts (id, name, created_at) SELECT ?1, ?2, ?3
         WHERE NOT EXISTS (SELECT 1 FROM contracts)",
        rusqlite::params![util::new_id(), CONTRACT_NAME, util::now_ms()],
    )?;
    Ok(())
}
