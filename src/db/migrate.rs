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
];

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
