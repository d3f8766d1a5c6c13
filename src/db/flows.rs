//! The `flows` and `steps` tables. A flow's graph is kept as JSON text (for the document) and as
//! rows of `steps` (for lookups), both written in the same transaction.

use crate::access::Role;
use crate::db::snapshots::Change;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::util;
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};

#[derive(Debug, Clone)]
pub struct Flow {
    pub pk: i64,
    pub id: String,
    pub workspace_pk: i64,
    pub workspace_id: String,
    pub creator_id: String,
    pub name: String,
    pub description: Option<String>,
    pub flow_type: String,
    pub status: String,
    pub default_mapper_type: String,
    pub cron: Option<String>,
    pub graph: String,
    pub nodes_config: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_start_time: Option<i64>,
    pub last_stop_time: Option<i64>,
}

impl Flow {
    pub fn running(&self) -> bool {
        self.status == "active"
    }
}

pub(crate) const COLUMNS: &str =
    "f.pk, f.id, f.workspace_pk, w.id, f.creator_id, f.name, f.description, f.type, \
     f.status, f.default_mapper_type, f.cron, f.graph, f.nodes_config, f.created_at, f.updated_at, \
     f.last_start_time, f.last_stop_time";

pub(crate) fn from_row(r: &Row) -> rusqlite::Result<Flow> {
    Ok(Flow {
        pk: r.get(0)?,
        id: r.get(1)?,
        workspace_pk: r.get(2)?,
        workspace_id: r.get(3)?,
        creator_id: r.get(4)?,
        name: r.get(5)?,
        description: r.get(6)?,
        flow_type: r.get(7)?,
        status: r.get(8)?,
        default_mapper_type: r.get(9)?,
        cron: r.get(10)?,
        graph: r.get(11)?,
        nodes_config: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        last_start_time: r.get(15)?,
        last_stop_time: r.get(16)?,
    })
}

/// The flow and the role `user_pk` holds in its workspace.
pub fn by_id_with_role(
    conn: &Connection,
    id: &str,
    user_pk: i64,
) -> Result<Option<(Flow, Option<Role>)>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, m.role FROM flows f JOIN workspaces w ON w.pk = f.workspace_pk
         LEFT JOIN members m ON m.workspace_pk = f.workspace_pk AND m.user_pk = ?2
         WHERE f.id = ?1"
    ))?;
    Ok(st
        .query_row(params![id, user_pk], |r| {
            let role: Option<String> = r.get(17)?;
            Ok((from_row(r)?, role.as_deref().and_then(Role::parse)))
        })
        .optional()?)
}

/// The flow or a 404 naming it.
pub fn require(conn: &Connection, id: &str, user_pk: i64) -> Result<(Flow, Option<Role>)> {
    by_id_with_role(conn, id, user_pk)?
        .ok_or_else(|| Error::not_found(format!("Flow {id} not found")))
}

/// The few columns the snapshot and runtime paths need, with the caller's role.
#[derive(Debug, Clone)]
pub struct FlowHead {
    pub pk: i64,
    pub workspace_id: String,
    pub running: bool,
    pub role: Option<Role>,
}

pub fn head(conn: &Connection, id: &str, user_pk: i64) -> Result<FlowHead> {
    let mut st = conn.prepare_cached(
        "SELECT f.pk, w.id, f.status, m.role FROM flows f INDEXED BY flows_head
         JOIN workspaces w ON w.pk = f.workspace_pk
         LEFT JOIN members m ON m.workspace_pk = f.workspace_pk AND m.user_pk = ?2
         WHERE f.id = ?1",
    )?;
    st.query_row(params![id, user_pk], |r| {
        let status: String = r.get(2)?;
        let role: Option<String> = r.get(3)?;
        Ok(FlowHead {
            pk: r.get(0)?,
            workspace_id: r.get(1)?,
            running: status == "active",
            role: role.as_deref().and_then(Role::parse),
        })
    })
    .optional()?
    .ok_or_else(|| Error::not_found(format!("Flow {id} not found")))
}

/// How `list` orders flows; the public id breaks ties so the order is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Created,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub workspace_pk: i64,
    pub status: Option<String>,
    pub flow_type: Option<String>,
    pub search: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// One page of a workspace's flows and the exact total.
///
/// SQLite's `LIKE` and `COLLATE NOCASE` fold only ASCII letters, so a search, or a sort by name,
/// is done here with Unicode lower-casing (`Ü` finds `ü`, `éab` sorts before `Ébc`) over the
/// workspace's flows, and only the rows of the requested page are then read in full. Every other
/// list is one SQL query.
pub fn list(conn: &Connection, q: &ListQuery) -> Result<(Vec<Flow>, i64)> {
    if q.search.is_some() || q.sort == Sort::Name {
        return list_folded(conn, q);
    }
    let filter =
        "f.workspace_pk = ?1 AND (?2 IS NULL OR f.status = ?2) AND (?3 IS NULL OR f.type = ?3)";
    let args: [&dyn ToSql; 3] = [&q.workspace_pk, &q.status, &q.flow_type];
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM flows f WHERE {filter}"))?
        .query_row(&args[..], |r| r.get(0))?;
    let dir = if q.descending { "DESC" } else { "ASC" };
    let order = match q.sort {
        // (A sort by name never gets here: see `list_folded`.)
        Sort::Created | Sort::Name => format!("f.pk {dir}"),
        Sort::CreatedAt => format!("f.created_at {dir}, f.id"),
        Sort::UpdatedAt => format!("f.updated_at {dir}, f.id"),
    };
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM flows f JOIN workspaces w ON w.pk = f.workspace_pk
         WHERE {filter} ORDER BY {order} LIMIT ?4 OFFSET ?5"
    ))?;
    let all: [&dyn ToSql; 5] = [args[0], args[1], args[2], &q.limit, &q.offset];
    let rows = st.query_map(&all[..], from_row)?;
    Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
}

/// Case-insensitive form of a text, for search and sort.
fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// What `list_folded` sorts and filters on.
struct ListKey {
    pk: i64,
    id: String,
    name: String,
    created_at: i64,
    updated_at: i64,
}

fn list_folded(conn: &Connection, q: &ListQuery) -> Result<(Vec<Flow>, i64)> {
    let needle = q.search.as_deref().map(fold);
    let mut keys: Vec<ListKey> = Vec::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT f.pk, f.id, f.name, f.description, f.created_at, f.updated_at FROM flows f
             WHERE f.workspace_pk = ?1 AND (?2 IS NULL OR f.status = ?2)
               AND (?3 IS NULL OR f.type = ?3)",
        )?;
        let mut rows = st.query(params![q.workspace_pk, q.status, q.flow_type])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(2)?;
            let name = fold(&name);
            if let Some(n) = &needle {
                let description: Option<String> = r.get(3)?;
                let found = name.contains(n.as_str())
                    || description.is_some_and(|d| fold(&d).contains(n.as_str()));
                if !found {
                    continue;
                }
            }
            keys.push(ListKey {
                pk: r.get(0)?,
                id: r.get(1)?,
                name,
                created_at: r.get(4)?,
                updated_at: r.get(5)?,
            });
        }
    }
    // The same orders as the SQL path: the key, then the public id (creation order: the pk).
    keys.sort_by(|a, b| {
        let primary = match q.sort {
            Sort::Created => a.pk.cmp(&b.pk),
            Sort::Name => a.name.cmp(&b.name),
            Sort::CreatedAt => a.created_at.cmp(&b.created_at),
            Sort::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        };
        let primary = if q.descending {
            primary.reverse()
        } else {
            primary
        };
        primary.then_with(|| a.id.cmp(&b.id))
    });
    let total = keys.len() as i64;
    let offset = usize::try_from(q.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(q.limit).unwrap_or(0);
    let page: Vec<i64> = keys.iter().skip(offset).take(limit).map(|k| k.pk).collect();
    let mut flows = Vec::with_capacity(page.len());
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM flows f JOIN workspaces w ON w.pk = f.workspace_pk WHERE f.pk = ?1"
    ))?;
    for pk in page {
        flows.push(st.query_row([pk], from_row)?);
    }
    Ok((flows, total))
}

pub struct NewFlow {
    pub name: String,
    pub description: Option<String>,
    pub flow_type: String,
    pub default_mapper_type: String,
    pub cron: Option<String>,
    pub graph: Graph,
    pub nodes_config: String,
}

pub fn insert(
    conn: &Connection,
    workspace_pk: i64,
    creator_id: &str,
    f: &NewFlow,
) -> Result<String> {
    let id = util::new_id();
    let now = util::now_ms();
    conn.execute(
        "INSERT INTO flows (id, workspace_pk, creator_id, name, description, type, status,
                            default_mapper_type, cron, graph, nodes_config, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'inactive', ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            id,
            workspace_pk,
            creator_id,
            f.name,
            f.description,
            f.flow_type,
            f.default_mapper_type,
            f.cron,
            f.graph.json,
            f.nodes_config,
            now
        ],
    )?;
    replace_steps(conn, conn.last_insert_rowid(), &f.graph.step_ids, None)?;
    Ok(id)
}

/// Makes the `steps` rows of a flow exactly `step_ids`, in order. Steps that are gone take their
/// snapshots with them (foreign key cascade), each recorded as a `delete` version made by
/// `change`; steps that stay keep theirs.
fn replace_steps(
    conn: &Connection,
    flow_pk: i64,
    step_ids: &[String],
    change: Option<&Change>,
) -> Result<()> {
    // Steps that stay are first moved out of the way of the new positions.
    conn.execute(
        "UPDATE steps SET position = -1 - position WHERE flow_pk = ?1",
        [flow_pk],
    )?;
    {
        let mut upsert = conn.prepare_cached(
            "INSERT INTO steps (flow_pk, step_id, position) VALUES (?1, ?2, ?3)
             ON CONFLICT (flow_pk, step_id) DO UPDATE SET position = excluded.position",
        )?;
        for (i, step) in step_ids.iter().enumerate() {
            upsert.execute(params![flow_pk, step, i as i64])?;
        }
    }
    if let Some(change) = change {
        crate::db::snapshots::record_dropped(conn, flow_pk, change)?;
    }
    conn.execute(
        "DELETE FROM steps WHERE flow_pk = ?1 AND position < 0",
        [flow_pk],
    )?;
    Ok(())
}

/// A partial update; `None` leaves an attribute as it is.
#[derive(Default)]
pub struct FlowPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub flow_type: Option<String>,
    pub default_mapper_type: Option<String>,
    pub cron: Option<Option<String>>,
    pub graph: Option<Graph>,
    pub nodes_config: Option<String>,
}

/// Applies a patch. Changing `graph` or `type` of a running flow is 409; sending them unchanged is
/// not a change.
pub fn update(conn: &Connection, flow: &Flow, p: FlowPatch, change: &Change) -> Result<()> {
    // Only a running flow refuses a changed graph: comparing (two parses) is needed only then.
    let graph_changes = flow.running()
        && p.graph
            .as_ref()
            .is_some_and(|g| crate::graph::differs(&flow.graph, &g.json));
    let type_changes = p.flow_type.as_ref().is_some_and(|t| *t != flow.flow_type);
    if flow.running() && (graph_changes || type_changes) {
        let what = if graph_changes { "graph" } else { "type" };
        return Err(Error::conflict(format!(
            "Flow {} is running; its {what} cannot change. Stop the flow first",
            flow.id
        )));
    }
    conn.execute(
        "UPDATE flows SET name = ?1, description = ?2, type = ?3, default_mapper_type = ?4, cron = ?5,
                          graph = ?6, nodes_config = ?7, updated_at = ?8 WHERE pk = ?9",
        params![
            p.name.as_ref().unwrap_or(&flow.name),
            p.description.as_ref().unwrap_or(&flow.description),
            p.flow_type.as_ref().unwrap_or(&flow.flow_type),
            p.default_mapper_type.as_ref().unwrap_or(&flow.default_mapper_type),
            p.cron.as_ref().unwrap_or(&flow.cron),
            p.graph.as_ref().map(|g| &g.json).unwrap_or(&flow.graph),
            p.nodes_config.as_ref().unwrap_or(&flow.nodes_config),
            util::now_ms(),
            flow.pk
        ],
    )?;
    if let Some(g) = &p.graph {
        replace_steps(conn, flow.pk, &g.step_ids, Some(change))?;
    }
    Ok(())
}

/// Deletes the flow; its steps and snapshots go with it (foreign key cascade).
pub fn delete(conn: &Connection, pk: i64) -> Result<()> {
    conn.execute("DELETE FROM flows WHERE pk = ?1", [pk])?;
    Ok(())
}

/// Starts (`active = true`) or stops the flow; already in that state is 409.
pub fn set_running(conn: &Connection, flow: &Flow, active: bool) -> Result<()> {
    if flow.running() == active {
        return Err(Error::conflict(if active {
            format!(
                "Flow {} is already active; stop it before starting it again",
                flow.id
            )
        } else {
            format!("Flow {} is already inactive", flow.id)
        }));
    }
    let now = util::now_ms();
    if active {
        conn.execute(
            "UPDATE flows SET status = 'active', last_start_time = ?1, updated_at = ?1 WHERE pk = ?2",
            params![now, flow.pk],
        )?;
    } else {
        conn.execute(
            "UPDATE flows SET status = 'inactive', last_stop_time = ?1, updated_at = ?1 WHERE pk = ?2",
            params![now, flow.pk],
        )?;
    }
    Ok(())
}
