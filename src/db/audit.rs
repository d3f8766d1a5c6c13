//! The `audit_events` table (spec section 10): one event per accepted request or command, written
//! in the transaction of the change it records. An event names who (the user, the request id),
//! what (the action and its target) and where (the workspace); never a value, a key or a hash.

use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// Every action an event may carry (`filter[action]` accepts exactly these).
pub const ACTIONS: &[&str] = &[
    "user.create",
    "user.delete",
    "user.rotate_key",
    "workspace.create",
    "workspace.update",
    "workspace.delete",
    "member.add",
    "member.update",
    "member.remove",
    "flow.create",
    "flow.update",
    "flow.delete",
    "flow.start",
    "flow.stop",
    "snapshot.create",
    "snapshot.update",
    "snapshot.delete",
    "snapshot.restore",
    "fixture.import",
    "fixture.reset",
];

/// Expired events removed by one purge: bounded, so that no write group pays for a big purge.
pub const PURGE_BATCH: i64 = 500;

/// What an event is about.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    User(&'a str),
    Workspace(&'a str),
    /// A membership, named by the member's user id.
    Member(&'a str),
    Flow(&'a str),
    Snapshot {
        step_id: &'a str,
        flow_id: &'a str,
    },
    Fixture,
}

impl Target<'_> {
    fn parts(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match *self {
            Target::User(id) => ("user", Some(id), None),
            Target::Workspace(id) => ("workspace", Some(id), None),
            Target::Member(id) => ("member", Some(id), None),
            Target::Flow(id) => ("flow", Some(id), Some(id)),
            Target::Snapshot { step_id, flow_id } => ("snapshot", Some(step_id), Some(flow_id)),
            Target::Fixture => ("fixture", None, None),
        }
    }
}

/// An event about to be written.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub action: &'a str,
    /// The user whose request made the change; `None` for the command line.
    pub user_id: Option<&'a str>,
    /// `None` for user and fixture events.
    pub workspace_id: Option<&'a str>,
    pub target: Target<'a>,
    /// Snapshot events only: the version the change recorded (the ETag after it, unquoted).
    pub version_id: Option<&'a str>,
}

/// Appends one event, stamped with the current request's id (none for the command line) and the
/// time; returns its id.
pub fn record(conn: &Connection, e: &NewEvent) -> Result<i64> {
    debug_assert!(ACTIONS.contains(&e.action), "unknown action {}", e.action);
    let request_id = crate::reqlog::current().map(crate::reqlog::format);
    let (target_type, target_id, flow_id) = e.target.parts();
    conn.prepare_cached(
        "INSERT INTO audit_events (created_at, action, user_id, request_id, workspace_id,
                                   target_type, target_id, flow_id, version_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        crate::util::now_ms(),
        e.action,
        e.user_id,
        request_id,
        e.workspace_id,
        target_type,
        target_id,
        flow_id,
        e.version_id
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub created_at: i64,
    pub action: String,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    pub workspace_id: Option<String>,
    pub target_type: String,
    pub target_id: Option<String>,
    pub flow_id: Option<String>,
    pub version_id: Option<String>,
}

const COLUMNS: &str = "id, created_at, action, user_id, request_id, workspace_id, target_type, \
                       target_id, flow_id, version_id";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        created_at: r.get(1)?,
        action: r.get(2)?,
        user_id: r.get(3)?,
        request_id: r.get(4)?,
        workspace_id: r.get(5)?,
        target_type: r.get(6)?,
        target_id: r.get(7)?,
        flow_id: r.get(8)?,
        version_id: r.get(9)?,
    })
}

/// What a list asks for; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub workspace_id: Option<String>,
    pub action: Option<String>,
    pub flow_id: Option<String>,
    pub user_id: Option<String>,
}

/// A page of events, newest first, and how many match.
pub fn list(conn: &Connection, f: &Filter, offset: i64, limit: i64) -> Result<(Vec<Event>, i64)> {
    // Only the filters given are in the statement (at most 16 texts, each cached), so that a
    // workspace's list is read from `audit_by_workspace`.
    let given = [
        ("workspace_id", &f.workspace_id),
        ("action", &f.action),
        ("flow_id", &f.flow_id),
        ("user_id", &f.user_id),
    ];
    let mut filter = String::from("1");
    let mut values: Vec<&str> = Vec::new();
    for (column, value) in given {
        if let Some(v) = value {
            values.push(v);
            filter.push_str(&format!(" AND {column} = ?{}", values.len()));
        }
    }
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM audit_events WHERE {filter}"))?
        .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
    let n = values.len();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {filter} ORDER BY id DESC LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    ))?;
    let mut bound: Vec<rusqlite::types::Value> = values
        .iter()
        .map(|v| rusqlite::types::Value::Text(v.to_string()))
        .collect();
    bound.push(limit.into());
    bound.push(offset.into());
    let rows = st
        .query_map(rusqlite::params_from_iter(bound), row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Event>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_events WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

/// Removes at most `PURGE_BATCH` events older than `before_ms`, oldest first. Ids grow with time,
/// so the oldest are the lowest ids: this reads at most `PURGE_BATCH` rows whatever the table holds.
pub fn purge(conn: &Connection, before_ms: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM audit_events WHERE id IN (
                 SELECT id FROM audit_events ORDER BY id LIMIT ?2) AND created_at < ?1",
        )?
        .execute(params![before_ms, PURGE_BATCH])?)
}
