//! The `snapshot_versions` table (spec section 9): every accepted change of a step's snapshot,
//! written by the transaction that makes the change, and pruned by it to the newest `keep`.
//!
//! A version's id is the snapshot's ETag after the change without quotes, `GENERATION-REVISION`;
//! both numbers only grow for a step (the generation is a database-wide counter taken at each
//! creation), so ordering by them is ordering by time.

use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// The most versions a step may keep (`history_max_versions` is refused above it): each holds a
/// copy of a value of up to `max_snapshot_bytes`.
pub const MAX_KEEP: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Restore,
    Import,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Restore => "restore",
            Operation::Import => "import",
        }
    }
}

/// A version about to be written.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub flow_pk: i64,
    pub step_id: &'a str,
    pub generation: i64,
    pub revision: i64,
    pub operation: Operation,
    /// Compact JSON text; `None` exactly for a delete.
    pub value: Option<&'a str>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Public id of the user whose request made the change; `None` for the command line.
    pub created_by: Option<&'a str>,
    /// The id of the version a restore copied.
    pub restored_from: Option<&'a str>,
}

/// A stored version.
#[derive(Debug, Clone)]
pub struct Version {
    pub generation: i64,
    pub revision: i64,
    pub operation: String,
    pub value: Option<String>,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub restored_from: Option<String>,
}

impl Version {
    pub fn id(&self) -> String {
        id(self.generation, self.revision)
    }
}

pub fn id(generation: i64, revision: i64) -> String {
    format!("{generation}-{revision}")
}

/// `GENERATION-REVISION` as numbers; `None` for anything that cannot be a version id (which is
/// then simply not found).
pub fn parse_id(s: &str) -> Option<(i64, i64)> {
    let (g, r) = s.split_once('-')?;
    // Canonical decimal only (no sign, no leading zero): one spelling per version.
    let digits = |t: &str| {
        !t.is_empty()
            && t.len() <= 18
            && t.bytes().all(|b| b.is_ascii_digit())
            && (t == "0" || !t.starts_with('0'))
    };
    if !digits(g) || !digits(r) {
        return None;
    }
    Some((g.parse().ok()?, r.parse().ok()?))
}

/// Inserts the version and removes the step's versions beyond the newest `keep`, in the caller's
/// transaction. `keep == 0` records nothing (and removes what an earlier setting kept).
pub fn record(conn: &Connection, v: &NewVersion, keep: u32) -> Result<()> {
    debug_assert_eq!(v.value.is_none(), v.operation == Operation::Delete);
    if keep > 0 {
        conn.prepare_cached(
            "INSERT INTO snapshot_versions (flow_pk, step_id, generation, revision, operation,
                                            value, created_at, created_by, restored_from)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            v.flow_pk,
            v.step_id,
            v.generation,
            v.revision,
            v.operation.as_str(),
            v.value,
            v.created_at,
            v.created_by,
            v.restored_from
        ])?;
    }
    // The step holds at most `keep` versions before this one was added, so this reads at most
    // keep + 1 index entries.
    // The newest version that is not kept, then every version up to it: two seeks in the
    // step's index range, no temporary list.
    conn.prepare_cached(
        "DELETE FROM snapshot_versions
         WHERE flow_pk = ?1 AND step_id = ?2 AND (generation, revision) <= (
             SELECT generation, revision FROM snapshot_versions
             WHERE flow_pk = ?1 AND step_id = ?2
             ORDER BY generation DESC, revision DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![v.flow_pk, v.step_id, keep])?;
    Ok(())
}

const COLUMNS: &str =
    "generation, revision, operation, value, created_at, created_by, restored_from";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Version> {
    Ok(Version {
        generation: r.get(0)?,
        revision: r.get(1)?,
        operation: r.get(2)?,
        value: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        restored_from: r.get(6)?,
    })
}

/// A page of the step's versions, newest first, and how many it has.
pub fn list(
    conn: &Connection,
    flow_pk: i64,
    step_id: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Version>, i64)> {
    let total: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM snapshot_versions WHERE flow_pk = ?1 AND step_id = ?2",
        )?
        .query_row(params![flow_pk, step_id], |r| r.get(0))?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM snapshot_versions WHERE flow_pk = ?1 AND step_id = ?2
         ORDER BY generation DESC, revision DESC LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = st
        .query_map(params![flow_pk, step_id, limit, offset], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// One version by its id; `None` when the step has no such version (never had, or pruned).
pub fn get(
    conn: &Connection,
    flow_pk: i64,
    step_id: &str,
    version_id: &str,
) -> Result<Option<Version>> {
    let Some((generation, revision)) = parse_id(version_id) else {
        return Ok(None);
    };
    let v = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM snapshot_versions
             WHERE flow_pk = ?1 AND step_id = ?2 AND generation = ?3 AND revision = ?4"
        ))?
        .query_row(params![flow_pk, step_id, generation, revision], row)
        .optional()?;
    Ok(v)
}

/// The 404 of a version that the step does not have.
pub fn not_found(step_id: &str, version_id: &str) -> Error {
    Error::not_found(format!(
        "Step {step_id} has no version {version_id} (it never existed, or it is older than the \
         newest history_max_versions versions kept); list them with GET .../snapshots/{step_id}/versions"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_ids_parse_only_when_well_formed() {
        assert_eq!(super::parse_id("7-3"), Some((7, 3)));
        for bad in [
            "7",
            "7-",
            "-3",
            "a-3",
            "7-3-1",
            "7--3",
            "+7-3",
            " 7-3",
            "1234567890123456789-1",
        ] {
            assert_eq!(super::parse_id(bad), None, "{bad}");
        }
        assert_eq!(super::id(7, 3), "7-3");
    }
}
