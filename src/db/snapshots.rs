//! The `snapshots` table and the rules of section 6, each checked inside the caller's write
//! transaction in the order the spec lists them.

use crate::db::flows::FlowHead;
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
}

impl Snapshot {
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
        "SELECT s.value, s.revision, s.generation FROM steps st
         LEFT JOIN snapshots s ON s.flow_pk = st.flow_pk AND s.step_id = st.step_id
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
         CASE WHEN s.value IS NULL THEN \
         EXISTS(SELECT 1 FROM steps t WHERE t.flow_pk=f.pk AND t.step_id=?3)ELSE 1 END,\
         s.value,s.revision,s.generation \
         FROM users u LEFT JOIN flows f INDEXED BY flows_head ON f.id=?1 \
         LEFT JOIN members m ON m.workspace_pk=f.workspace_pk AND m.user_pk=u.pk \
         LEFT JOIN snapshots s ON s.flow_pk=f.pk AND s.step_id=?3 \
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

/// Every snapshot of the flow, in graph order.
pub fn list(conn: &Connection, flow_pk: i64) -> Result<Vec<Snapshot>> {
    let mut st = conn.prepare_cached(
        "SELECT s.step_id, s.value, s.revision, s.generation FROM steps st
         JOIN snapshots s ON s.flow_pk = st.flow_pk AND s.step_id = st.step_id
         WHERE st.flow_pk = ?1 ORDER BY st.position",
    )?;
    let rows = st.query_map([flow_pk], |r| {
        Ok(Snapshot {
            step_id: r.get(0)?,
            value: r.get(1)?,
            revision: r.get(2)?,
            generation: r.get(3)?,
        })
    })?;
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
pub fn create(
    conn: &Connection,
    flow: &FlowHead,
    flow_id: &str,
    step_id: &str,
    value: String,
    pre: &Precondition,
    max_bytes: usize,
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
    let generation: i64 = conn
        .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'snapshot_generation' RETURNING value")?
        .query_row([], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO snapshots (flow_pk, step_id, value, revision, generation, updated_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5)",
    )?
    .execute(params![flow.pk, step_id, value, generation, util::now_ms()])?;
    Ok(Snapshot {
        step_id: step_id.to_string(),
        value,
        revision: 1,
        generation,
    })
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
) -> Result<Snapshot> {
    let current = current.ok_or_else(|| step_not_found(step_id))?;
    if flow.running {
        return Err(running(flow_id));
    }
    let current = current.ok_or_else(|| no_snapshot(step_id))?;
    pre.check(&current)?;
    check_size(&value, max_bytes)?;
    let revision = current.revision + 1;
    conn.prepare_cached(
        "UPDATE snapshots SET value = ?1, revision = ?2, updated_at = ?3 WHERE flow_pk = ?4 AND step_id = ?5",
    )?
    .execute(params![value, revision, util::now_ms(), flow.pk, step_id])?;
    Ok(Snapshot {
        value,
        revision,
        ..current
    })
}

/// DELETE: step not in the flow 404; flow running 409; no snapshot 404; If-Match 412.
/// `current` is the step's state as `lookup` read it in this transaction.
pub fn delete(
    conn: &Connection,
    flow: &FlowHead,
    flow_id: &str,
    step_id: &str,
    current: Option<Option<Snapshot>>,
    pre: &Precondition,
) -> Result<()> {
    let current = current.ok_or_else(|| step_not_found(step_id))?;
    if flow.running {
        return Err(running(flow_id));
    }
    let current = current.ok_or_else(|| no_snapshot(step_id))?;
    pre.check(&current)?;
    conn.prepare_cached("DELETE FROM snapshots WHERE flow_pk = ?1 AND step_id = ?2")?
        .execute(params![flow.pk, step_id])?;
    Ok(())
}
