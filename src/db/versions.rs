//! The `step_histories` and `snapshot_versions` tables (spec section 9): every accepted change of
//! a step's snapshot, written by the transaction that makes the change, and pruned by it to the
//! newest `keep`.
//!
//! A step's versions live in a ring of slots, rows `history * SLOTS + 0 .. keep - 1`, and the
//! newest is also the step's current value (`snapshots.value_pk` names it): a value is stored
//! once, and a change writes its version over the slot of the version it pushes out, in place.
//! With `keep == 0` the ring has one slot, the current value, and the API shows no versions.
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

/// Rows per step history: the slots of step history `h` are `h * SLOTS ..= h * SLOTS + SLOTS - 1`.
/// Part of the file format: schema 3 (its trigger in `migrate.rs`), `flowsnap check` and the
/// statements below spell it as 1024.
pub const SLOTS: i64 = 1024;
const _: () = assert!(MAX_KEEP as i64 <= SLOTS);

/// A version about to be written.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
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

/// The step's history, made on its first version.
pub fn history_pk(conn: &Connection, flow_pk: i64, step_id: &str) -> Result<i64> {
    if let Some(pk) = find_history(conn, flow_pk, step_id)? {
        return Ok(pk);
    }
    conn.prepare_cached("INSERT INTO step_histories (flow_pk, step_id) VALUES (?1, ?2)")?
        .execute(params![flow_pk, step_id])?;
    Ok(conn.last_insert_rowid())
}

/// The history a stored snapshot's value belongs to.
pub fn history_of(value_pk: i64) -> i64 {
    value_pk.div_euclid(SLOTS)
}

/// Writes the version into a slot of history `history` and removes the versions beyond the
/// newest `keep` (at least the newest one stays: it is the current value), in the caller's
/// transaction. Returns the slot's row, `None` for a delete that nothing keeps (`keep == 0`).
pub fn record(conn: &Connection, history: i64, v: &NewVersion, keep: u32) -> Result<Option<i64>> {
    debug_assert_eq!(v.value.is_none(), v.operation == Operation::Delete);
    let base = history * SLOTS;
    // The step's slots, newest first: at most keep (+ what an earlier, larger setting left)
    // rows, read in key order and sorted here (no SQL sorter for a handful of rows).
    let mut slots: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT pk, generation, revision FROM snapshot_versions WHERE pk BETWEEN ?1 AND ?1 + 1023",
        )?
        .query_map([base], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    slots.sort_unstable_by_key(|&(_, g, r)| std::cmp::Reverse((g, r)));
    let slots: Vec<i64> = slots.into_iter().map(|(pk, _, _)| pk).collect();
    let remove = |pks: &[i64]| -> Result<()> {
        let mut st = conn.prepare_cached("DELETE FROM snapshot_versions WHERE pk = ?1")?;
        for pk in pks {
            st.execute([pk])?;
        }
        Ok(())
    };
    if keep == 0 && v.value.is_none() {
        remove(&slots)?;
        return Ok(None);
    }
    let ring = i64::from(keep.max(1));
    // The newest ring - 1 stay; the new version takes the place of one that goes (in place: the
    // page it dirties is the one that version leaves), else a free slot of the ring.
    let (stay, go) = slots.split_at(slots.len().min(ring as usize - 1));
    let reused = go.iter().copied().find(|pk| pk - base < ring);
    let target = match reused {
        Some(pk) => pk,
        None => (base..base + ring)
            .find(|pk| !stay.contains(pk))
            .ok_or_else(|| Error::internal("a step's history has no free slot"))?,
    };
    let others: Vec<i64> = go.iter().copied().filter(|&pk| pk != target).collect();
    remove(&others)?;
    let values = params![
        target,
        v.generation,
        v.revision,
        v.operation.as_str(),
        v.created_at,
        v.created_by,
        v.restored_from,
        v.value
    ];
    if reused.is_some() {
        conn.prepare_cached(
            "UPDATE snapshot_versions SET generation = ?2, revision = ?3, operation = ?4,
                    created_at = ?5, created_by = ?6, restored_from = ?7, value = ?8
             WHERE pk = ?1",
        )?
        .execute(values)?;
    } else {
        conn.prepare_cached(
            "INSERT INTO snapshot_versions (pk, generation, revision, operation, created_at,
                                            created_by, restored_from, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(values)?;
    }
    Ok(Some(target))
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

/// The step's history, `None` when it never had a version.
fn find_history(conn: &Connection, flow_pk: i64, step_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT pk FROM step_histories WHERE flow_pk = ?1 AND step_id = ?2")?
        .query_row(params![flow_pk, step_id], |r| r.get(0))
        .optional()?)
}

/// A page of the step's newest `keep` versions, newest first, and how many there are. (A ring
/// that a larger earlier setting left is cut to `keep` by the step's next change; until then
/// only its newest `keep` show. With `keep == 0` none do.)
pub fn list(
    conn: &Connection,
    flow_pk: i64,
    step_id: &str,
    keep: u32,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Version>, i64)> {
    let Some(history) = find_history(conn, flow_pk, step_id)?.filter(|_| keep > 0) else {
        return Ok((Vec::new(), 0));
    };
    let base = history * SLOTS;
    let stored: i64 = conn
        .prepare_cached("SELECT count(*) FROM snapshot_versions WHERE pk BETWEEN ?1 AND ?1 + 1023")?
        .query_row([base], |r| r.get(0))?;
    let total = stored.min(i64::from(keep));
    let limit = limit.min(total - offset).max(0);
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM snapshot_versions WHERE pk BETWEEN ?1 AND ?1 + 1023
         ORDER BY generation DESC, revision DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = st
        .query_map(params![base, limit, offset], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// One of the step's newest `keep` versions by its id; `None` when the step has no such version
/// (never had, or pruned).
pub fn get(
    conn: &Connection,
    flow_pk: i64,
    step_id: &str,
    version_id: &str,
    keep: u32,
) -> Result<Option<Version>> {
    let Some((generation, revision)) = parse_id(version_id) else {
        return Ok(None);
    };
    let Some(history) = find_history(conn, flow_pk, step_id)?.filter(|_| keep > 0) else {
        return Ok(None);
    };
    // Among the newest `keep`: fewer than `keep` versions of the step are newer than it.
    let v = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM snapshot_versions v
             WHERE pk BETWEEN ?1 AND ?1 + 1023 AND generation = ?2 AND revision = ?3
               AND (SELECT count(*) FROM snapshot_versions n
                    WHERE n.pk BETWEEN ?1 AND ?1 + 1023
                      AND (n.generation, n.revision) > (v.generation, v.revision)) < ?4"
        ))?
        .query_row(params![history * SLOTS, generation, revision, keep], row)
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
