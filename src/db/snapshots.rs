//! The `snapshots` table and the rules of section 6, each checked inside the caller's write
//! transaction in the order the spec lists them.

use crate::db::flows::FlowHead;
use crate::db::versions::{self, NewVersion, Operation};
use crate::error::{Error, Result};
use crate::util;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub step_id: String,
    /// Compact JSON text, exactly the value the client sent.
    pub value: String,
    pub revision: i64,
    pub generation: i64,
    /// When this snapshot was created (a delete and a re-create start anew), ms.
    pub created_at: i64,
    pub updated_at: i64,
    /// The public id of the user whose request made the last change; `None`: the command line.
    pub updated_by: Option<String>,
    /// The `snapshot_versions` row that holds the value (the step's newest version).
    pub value_pk: i64,
}

/// Who makes a change and how many versions each step keeps: what every write that records a
/// version needs to know.
#[derive(Debug, Clone)]
pub struct Change {
    /// The public id of the user whose request makes the change; `None` for the command line.
    pub user_id: Option<String>,
    /// `history_max_versions`.
    pub keep: u32,
}

impl Change {
    fn version<'a>(
        &'a self,
        s: &'a Snapshot,
        operation: Operation,
        restored_from: Option<&'a str>,
    ) -> NewVersion<'a> {
        let deleted = operation == Operation::Delete;
        NewVersion {
            generation: s.generation,
            // A delete is recorded with the revision after the last one.
            revision: if deleted { s.revision + 1 } else { s.revision },
            operation,
            value: if deleted { None } else { Some(&s.value) },
            created_at: s.updated_at,
            created_by: self.user_id.as_deref(),
            restored_from,
        }
    }
}

impl Snapshot {
    /// The id of the version this snapshot's last change recorded: its ETag without quotes.
    pub fn version_id(&self) -> String {
        versions::id(self.generation, self.revision)
    }

    /// Strong ETag: the database-wide creation counter and the revision. It never repeats for a
    /// step, even after a delete and a re-create.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.generation, self.revision)
    }
}

/// What a client's precondition header asks of the current snapshot.
#[derive(Debug, Clone, Default)]
pub enum Precondition {
    #[default]
    None,
    /// `If-Match`: one of these ETags (or `*`: any snapshot).
    IfMatch(Vec<String>),
    /// `If-None-Match: *`: only when there is no snapshot.
    IfNoneMatchAny,
}

impl Precondition {
    fn check(&self, current: &Snapshot) -> Result<()> {
        if let Precondition::IfMatch(tags) = self {
            let etag = current.etag();
            if !tags.iter().any(|t| t == "*" || *t == etag) {
                return Err(Error::precondition(format!(
                    "If-Match does not match the snapshot's current ETag {etag}; nothing was \
                     changed. GET the snapshot again and retry with its ETag"
                )));
            }
        }
        Ok(())
    }
}

/// `None` when the step is not in the flow; `Some(None)` when it is but has no snapshot.
pub fn step_snapshot(
    conn: &Connection,
    flow_pk: i64,
    step_id: &str,
) -> Result<Option<Option<Snapshot>>> {
    let mut st = conn.prepare_cached(
        "SELECT v.value, s.revision, s.generation, s.created_at, s.updated_at, s.updated_by,
                s.value_pk
         FROM steps st
         LEFT JOIN snapshots s ON s.flow_pk = st.flow_pk AND s.step_id = st.step_id
         LEFT JOIN snapshot_versions v ON v.pk = s.value_pk
         WHERE st.flow_pk = ?1 AND st.step_id = ?2",
    )?;
    let row = st
        .query_row(params![flow_pk, step_id], |r| {
            let value: Option<String> = r.get(0)?;
            Ok(match value {
                None => None,
                Some(value) => Some(Snapshot {
                    step_id: step_id.to_string(),
                    value,
                    revision: r.get(1)?,
                    generation: r.get(2)?,
                    created_at: r.get(3)?,
                    updated_at: r.get(4)?,
                    updated_by: r.get(5)?,
                    value_pk: r.get(6)?,
                }),
            })
        })
        .optional()?;
    Ok(row)
}

fn step_not_found(step_id: &str) -> Error {
    Error::not_found(format!("Step {step_id} does not exist in this flow; snapshots belong to the steps of the flow's graph"))
}

fn no_snapshot(step_id: &str) -> Error {
    Error::not_found(format!(
        "Step {step_id} has no snapshot; create one with POST /v2/flows/FLOW_ID/snapshots"
    ))
}

fn running(flow_id: &str) -> Error {
    Error::conflict(format!(
        "Flow {flow_id} is running; snapshots are runtime data and cannot change while it runs. Stop the flow first"
    ))
}

/// A flow head and a step's state: `None` when the step is not in the flow, `Some(None)` when it
/// is but has no snapshot.
pub type Found = (FlowHead, Option<Option<Snapshot>>);

/// The caller, the flow (with the caller's role) and the step's snapshot, in one statement: the
/// hot path of every request naming a snapshot.
///
/// The caller is read by `user_pk`; with `api_key_hash`, only while that is still the user's
/// stored API-key hash (a remembered verification, confirmed by this same read). `Ok(None)`: no
/// such caller (the key was rotated or the user deleted). Otherwise whether the caller is a
/// tenant-admin, and `Err` 404 when the flow does not exist, or the flow head and the step's
/// state as `step_snapshot` gives it. The workspace's public id is read only `with_workspace_id`
/// (else it is empty): only a 403 for a role names it, and a read has no such 403 (any role may
/// read; a non-member's 403 names no workspace).
pub fn lookup(
    conn: &Connection,
    flow_id: &str,
    user_pk: i64,
    api_key_hash: Option<&str>,
    step_id: &str,
    with_workspace_id: bool,
) -> Result<Option<(bool, Result<Found>)>> {
    // Pages read matter on a database larger than memory: the flow is read from the covering
    // index `flows_head` (named, since the planner would take the unique index on `id` and then
    // fetch the flow's row), and the step's row only when there is no snapshot (a snapshot
    // implies its step, by the foreign key). The text is kept short: the statement cache hashes
    // it on every call.
    let mut st = conn.prepare_cached(
        "SELECT u.tenant_admin,f.pk,\
         CASE WHEN ?5 THEN(SELECT id FROM workspaces WHERE pk=f.workspace_pk)END,\
         f.status='active',m.role,\
         CASE WHEN s.flow_pk IS NULL THEN \
         EXISTS(SELECT 1 FROM steps t WHERE t.flow_pk=f.pk AND t.step_id=?3)ELSE 1 END,\
         v.value,s.revision,s.generation,s.created_at,s.updated_at,s.updated_by,s.value_pk \
         FROM users u LEFT JOIN flows f INDEXED BY flows_head ON f.id=?1 \
         LEFT JOIN members m ON m.workspace_pk=f.workspace_pk AND m.user_pk=u.pk \
         LEFT JOIN snapshots s ON s.flow_pk=f.pk AND s.step_id=?3 \
         LEFT JOIN snapshot_versions v ON v.pk=s.value_pk \
         WHERE u.pk=?2 AND(?4 IS NULL OR u.api_key_hash=?4)",
    )?;
    let row = st
        .query_row(
            params![flow_id, user_pk, step_id, api_key_hash, with_workspace_id],
            |r| {
                let tenant_admin: bool = r.get(0)?;
                let Some(pk) = r.get::<_, Option<i64>>(1)? else {
                    return Ok((tenant_admin, None));
                };
                let role = match r.get_ref(4)? {
                    rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(crate::access::Role::parse),
                    _ => None,
                };
                let head = FlowHead {
                    pk,
                    workspace_id: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    running: r.get(3)?,
                    role,
                };
                let step_exists: bool = r.get(5)?;
                let value: Option<String> = r.get(6)?;
                let snap = match (step_exists, value) {
                    (false, _) => None,
                    (true, None) => Some(None),
                    (true, Some(value)) => Some(Some(Snapshot {
                        step_id: step_id.to_string(),
                        value,
                        revision: r.get(7)?,
                        generation: r.get(8)?,
                        created_at: r.get(9)?,
                        updated_at: r.get(10)?,
                        updated_by: r.get(11)?,
                        value_pk: r.get(12)?,
                    })),
                };
                Ok((tenant_admin, Some((head, snap))))
            },
        )
        .optional()?;
    Ok(row.map(|(tenant_admin, found)| {
        let found = found.ok_or_else(|| Error::not_found(format!("Flow {flow_id} not found")));
        (tenant_admin, found)
    }))
}

/// The 404 for a missing step or snapshot, from a `step_snapshot` or `lookup` answer.
pub fn found(found: Option<Option<Snapshot>>, step_id: &str) -> Result<Snapshot> {
    found
        .ok_or_else(|| step_not_found(step_id))?
        .ok_or_else(|| no_snapshot(step_id))
}

/// A snapshot from a row of `SNAPSHOT_COLUMNS` (with `snapshot_versions v` joined at
/// `s.value_pk`).
fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Snapshot> {
    Ok(Snapshot {
        step_id: r.get(0)?,
        value: r.get(1)?,
        revision: r.get(2)?,
        generation: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        updated_by: r.get(6)?,
        value_pk: r.get(7)?,
    })
}

const SNAPSHOT_COLUMNS: &str = "s.step_id, v.value, s.revision, s.generation, s.created_at, \
     s.updated_at, s.updated_by, s.value_pk";

/// Every snapshot of the flow, in graph order.
pub fn list(conn: &Connection, flow_pk: i64) -> Result<Vec<Snapshot>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {SNAPSHOT_COLUMNS}
         FROM steps st
         JOIN snapshots s ON s.flow_pk = st.flow_pk AND s.step_id = st.step_id
         JOIN snapshot_versions v ON v.pk = s.value_pk
         WHERE st.flow_pk = ?1 ORDER BY st.position"
    ))?;
    let rows = st.query_map([flow_pk], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn check_size(value: &str, max_bytes: usize) -> Result<()> {
    if value.len() > max_bytes {
        return Err(Error::too_large(format!(
            "The snapshot is {} bytes of compact JSON; the limit (max_snapshot_bytes) is {max_bytes} bytes",
            value.len()
        ))
        .with_pointer("/data/attributes/snapshot"));
    }
    Ok(())
}

/// POST: step not in the flow 404; flow running 409; snapshot exists 409 (412 with
/// `If-None-Match: *`); too large 413.
#[allow(clippy::too_many_arguments)]
pub fn create(
    conn: &Connection,
    flow: &FlowHead,
    flow_id: &str,
    step_id: &str,
    value: String,
    pre: &Precondition,
    max_bytes: usize,
    change: &Change,
) -> Result<Snapshot> {
    let current = step_snapshot(conn, flow.pk, step_id)?.ok_or_else(|| step_not_found(step_id))?;
    if flow.running {
        return Err(running(flow_id));
    }
    if current.is_some() {
        return Err(match pre {
            Precondition::IfNoneMatchAny => Error::precondition(format!(
                "Step {step_id} already has a snapshot and the request carries If-None-Match: *; nothing was changed"
            )),
            _ => Error::conflict(format!(
                "Step {step_id} already has a snapshot; change it with PATCH /v2/flows/{flow_id}/snapshots/{step_id}"
            )),
        });
    }
    check_size(&value, max_bytes)?;
    insert(
        conn,
        flow.pk,
        step_id,
        value,
        change,
        Operation::Create,
        None,
    )
}

/// Writes a new snapshot (revision 1, a new generation) and its version.
fn insert(
    conn: &Connection,
    flow_pk: i64,
    step_id: &str,
    value: String,
    change: &Change,
    operation: Operation,
    restored_from: Option<&str>,
) -> Result<Snapshot> {
    let history = versions::history_pk(conn, flow_pk, step_id)?;
    let now = util::now_ms();
    let mut s = Snapshot {
        step_id: step_id.to_string(),
        value,
        revision: 1,
        generation: next_generation(conn)?,
        created_at: now,
        updated_at: now,
        updated_by: change.user_id.clone(),
        value_pk: 0,
    };
    s.value_pk = record_value(
        conn,
        history,
        &change.version(&s, operation, restored_from),
        change,
    )?;
    insert_row(conn, flow_pk, &s)?;
    Ok(s)
}

/// The `snapshots` row of `s`, whose value is already recorded at `s.value_pk` (also the fixture
/// loader's, after a snapshot's imported history).
pub fn insert_row(conn: &Connection, flow_pk: i64, s: &Snapshot) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO snapshots (flow_pk, step_id, revision, generation, updated_at, created_at,
                                updated_by, value_pk)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        flow_pk,
        s.step_id,
        s.revision,
        s.generation,
        s.updated_at,
        s.created_at,
        s.updated_by,
        s.value_pk
    ])?;
    Ok(())
}

/// The next value of the database-wide counter that a new snapshot's ETag starts with.
pub fn next_generation(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'snapshot_generation' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Records a version that carries a value (it becomes the current one) and returns its row.
fn record_value(conn: &Connection, history: i64, v: &NewVersion, change: &Change) -> Result<i64> {
    versions::record(conn, history, v, change.keep)?
        .ok_or_else(|| Error::internal("a version with a value was not stored"))
}

/// Replaces the value of an existing snapshot (its revision grows by one) and records the version.
fn replace(
    conn: &Connection,
    flow_pk: i64,
    current: Snapshot,
    value: String,
    change: &Change,
    operation: Operation,
    restored_from: Option<&str>,
) -> Result<Snapshot> {
    let history = versions::history_of(current.value_pk);
    let mut s = Snapshot {
        value,
        revision: current.revision + 1,
        updated_at: util::now_ms(),
        updated_by: change.user_id.clone(),
        ..current
    };
    s.value_pk = record_value(
        conn,
        history,
        &change.version(&s, operation, restored_from),
        change,
    )?;
    conn.prepare_cached(
        "UPDATE snapshots SET revision = ?1, updated_at = ?2, updated_by = ?3, value_pk = ?4
         WHERE flow_pk = ?5 AND step_id = ?6",
    )?
    .execute(params![
        s.revision,
        s.updated_at,
        s.updated_by,
        s.value_pk,
        flow_pk,
        s.step_id
    ])?;
    Ok(s)
}

/// PATCH: step not in the flow 404; flow running 409; no snapshot 404; If-Match 412; too large 413.
/// `current` is the step's state as `lookup` read it in this transaction.
#[allow(clippy::too_many_arguments)]
pub fn update(
    conn: &Connection,
    flow: &FlowHead,
    flow_id: &str,
    step_id: &str,
    current: Option<Option<Snapshot>>,
    value: String,
    pre: &Precondition,
    max_bytes: usize,
    change: &Change,
) -> Result<Snapshot> {
    let current = current.ok_or_else(|| step_not_found(step_id))?;
    if flow.running {
        return Err(running(flow_id));
    }
    let current = current.ok_or_else(|| no_snapshot(step_id))?;
    pre.check(&current)?;
    check_size(&value, max_bytes)?;
    replace(
        conn,
        flow.pk,
        current,
        value,
        change,
        Operation::Update,
        None,
    )
}

/// DELETE: step not in the flow 404; flow running 409; no snapshot 404; If-Match 412.
/// `current` is the step's state as `lookup` read it in this transaction. Returns the id of the
/// `delete` version.
pub fn delete(
    conn: &Connection,
    flow: &FlowHead,
    flow_id: &str,
    step_id: &str,
    current: Option<Option<Snapshot>>,
    pre: &Precondition,
    change: &Change,
) -> Result<String> {
    let current = current.ok_or_else(|| step_not_found(step_id))?;
    if flow.running {
        return Err(running(flow_id));
    }
    let current = current.ok_or_else(|| no_snapshot(step_id))?;
    pre.check(&current)?;
    remove(conn, flow.pk, current, change)
}

/// Deletes a snapshot and records the `delete` version; returns its id.
fn remove(conn: &Connection, flow_pk: i64, current: Snapshot, change: &Change) -> Result<String> {
    conn.prepare_cached("DELETE FROM snapshots WHERE flow_pk = ?1 AND step_id = ?2")?
        .execute(params![flow_pk, current.step_id])?;
    let s = Snapshot {
        updated_at: util::now_ms(),
        ..current
    };
    let v = change.version(&s, Operation::Delete, None);
    let id = versions::id(v.generation, v.revision);
    versions::record(conn, versions::history_of(s.value_pk), &v, change.keep)?;
    Ok(id)
}

/// Records a `delete` version for every snapshot of the flow's steps that are about to go (those
/// `flows::replace_steps` marked with a negative position): a graph change that drops a step
/// deletes its snapshot as a change like any other. The foreign key then removes the rows.
pub fn record_dropped(conn: &Connection, flow_pk: i64, change: &Change) -> Result<()> {
    let dropped: Vec<Snapshot> = {
        let mut st = conn.prepare_cached(&format!(
            "SELECT {SNAPSHOT_COLUMNS}
             FROM steps st JOIN snapshots s ON s.flow_pk = st.flow_pk AND s.step_id = st.step_id
             JOIN snapshot_versions v ON v.pk = s.value_pk
             WHERE st.flow_pk = ?1 AND st.position < 0"
        ))?;
        let rows = st.query_map([flow_pk], from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    for s in dropped {
        remove(conn, flow_pk, s, change)?;
    }
    Ok(())
}

/// Restore: step not in the flow 404; flow running 409; unknown version 404; a `delete` version
/// 409; If-Match 412 (If-None-Match: * 412 when there is a snapshot); too large 413. The
/// version's value becomes the snapshot, recorded as a `restore` version. Returns the snapshot and
/// whether it was created (the step had none).
#[allow(clippy::too_many_arguments)]
pub fn restore(
    conn: &Connection,
    flow: &FlowHead,
    flow_id: &str,
    step_id: &str,
    current: Option<Option<Snapshot>>,
    version_id: &str,
    pre: &Precondition,
    max_bytes: usize,
    change: &Change,
) -> Result<(Snapshot, bool)> {
    let current = current.ok_or_else(|| step_not_found(step_id))?;
    if flow.running {
        return Err(running(flow_id));
    }
    let version = versions::get(conn, flow.pk, step_id, version_id, change.keep)?
        .ok_or_else(|| versions::not_found(step_id, version_id))?;
    let restored_id = version.id();
    let Some(value) = version.value else {
        return Err(Error::conflict(format!(
            "Version {version_id} records a delete and has no value to restore; restore an earlier version (GET .../snapshots/{step_id}/versions lists them)"
        )));
    };
    match (&current, pre) {
        (Some(c), _) => {
            pre.check(c)?;
            if let Precondition::IfNoneMatchAny = pre {
                return Err(Error::precondition(format!(
                    "Step {step_id} has a snapshot and the request carries If-None-Match: *; nothing was changed"
                )));
            }
        }
        (None, Precondition::IfMatch(_)) => {
            return Err(Error::precondition(format!(
                "Step {step_id} has no snapshot, so If-Match cannot match; nothing was changed. Send the restore without If-Match (or with If-None-Match: *)"
            )))
        }
        (None, _) => {}
    }
    check_size(&value, max_bytes)?;
    let restored = Some(restored_id.as_str());
    Ok(match current {
        Some(c) => (
            replace(
                conn,
                flow.pk,
                c,
                value,
                change,
                Operation::Restore,
                restored,
            )?,
            false,
        ),
        None => (
            insert(
                conn,
                flow.pk,
                step_id,
                value,
                change,
                Operation::Restore,
                restored,
            )?,
            true,
        ),
    })
}
