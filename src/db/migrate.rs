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
const VERSIONS_AND_AUDIT: &str = "
ALTER TABLE snapshots ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
UPDATE snapshots SET created_at = updated_at;
-- The public id of the user whose request made the last change; NULL for the command line.
ALTER TABLE snapshots ADD COLUMN updated_by TEXT;

-- Every accepted change of a step's snapshot. Keyed to the flow, not to the step, so that the
-- versions of a step that a graph change drops stay (and show again if the step comes back),
-- while a flow's versions go with the flow. (generation, revision) is the version id and grows
-- with every change of a step: ordered by it, newest first, is the history.
CREATE TABLE snapshot_versions (
    pk            INTEGER PRIMARY KEY,
    flow_pk       INTEGER NOT NULL REFERENCES flows(pk) ON DELETE CASCADE,
    step_id       TEXT    NOT NULL,
    generation    INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    operation     TEXT    NOT NULL
                  CHECK (operation IN ('create', 'update', 'delete', 'restore', 'import')),
    -- Compact JSON text; NULL exactly for a delete.
    value         TEXT    CHECK ((operation = 'delete') = (value IS NULL)),
    created_at    INTEGER NOT NULL,
    created_by    TEXT,
    restored_from TEXT
);
CREATE UNIQUE INDEX snapshot_versions_by_step
    ON snapshot_versions (flow_pk, step_id, generation, revision);

INSERT INTO snapshot_versions (flow_pk, step_id, generation, revision, operation, value, created_at)
    SELECT flow_pk, step_id, generation, revision, 'import', value, updated_at FROM snapshots;

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
