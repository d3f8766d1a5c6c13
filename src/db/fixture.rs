//! The SQL of fixture loads and exports (spec section 11): rows written with the ids and times a
//! fixture file gives, and the rows an export reads. The rules are checked by `fixture::load`
//! inside the same write transaction.

use crate::access::Role;
use crate::db::flows::{self, Flow};
use crate::db::workspaces;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// True when the database holds no user and no workspace (what `serve --fixture` loads into).
pub fn is_empty(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM workspaces)",
        [],
        |r| r.get(0),
    )?;
    Ok(n == 0)
}

/// The pk of the user with this public id.
pub fn user_pk_by_id(conn: &Connection, id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT pk FROM users WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// The pk and public id of the user with this e-mail (any letter case).
pub fn user_by_email(conn: &Connection, email: &str) -> Result<Option<(i64, String)>> {
    Ok(conn
        .prepare_cached("SELECT pk, id FROM users WHERE email = ?1")?
        .query_row([email], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn workspace_exists(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM workspaces WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn flow_exists(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM flows WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub struct UserRow<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub tenant_admin: bool,
    pub api_key_hash: &'a str,
    pub password_hash: Option<&'a str>,
    pub registered: i64,
}

pub fn insert_user(conn: &Connection, u: &UserRow) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO users (id, email, first_name, last_name, tenant_admin, registered,
                            api_key_hash, password_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        u.id,
        u.email,
        u.first_name,
        u.last_name,
        u.tenant_admin,
        u.registered,
        u.api_key_hash,
        u.password_hash
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A workspace in the built-in contract.
pub fn insert_workspace(
    conn: &Connection,
    id: &str,
    name: &str,
    created_at: i64,
    updated_at: i64,
) -> Result<i64> {
    let (contract_pk, _, _) = workspaces::contract(conn)?;
    conn.prepare_cached(
        "INSERT INTO workspaces (id, contract_pk, name, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, contract_pk, name, created_at, updated_at])?;
    Ok(conn.last_insert_rowid())
}

/// False when the user is a member already.
pub fn insert_member(
    conn: &Connection,
    ws_pk: i64,
    user_pk: i64,
    role: Role,
    added_at: i64,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO members (workspace_pk, user_pk, role, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![ws_pk, user_pk, role.as_str(), added_at])?;
    Ok(n == 1)
}

pub struct FlowRow<'a> {
    pub id: &'a str,
    pub workspace_pk: i64,
    pub creator_id: &'a str,
    pub flow: &'a flows::NewFlow,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_start_time: Option<i64>,
    pub last_stop_time: Option<i64>,
}

/// A flow and its steps; returns its pk.
pub fn insert_flow(conn: &Connection, f: &FlowRow) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO flows (id, workspace_pk, creator_id, name, description, type, status,
                            default_mapper_type, cron, graph, nodes_config, created_at, updated_at,
                            last_start_time, last_stop_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        f.id,
        f.workspace_pk,
        f.creator_id,
        f.flow.name,
        f.flow.description,
        f.flow.flow_type,
        if f.active { "active" } else { "inactive" },
        f.flow.default_mapper_type,
        f.flow.cron,
        f.flow.graph.json,
        f.flow.nodes_config,
        f.created_at,
        f.updated_at,
        f.last_start_time,
        f.last_stop_time
    ])?;
    let pk = conn.last_insert_rowid();
    let mut st =
        conn.prepare_cached("INSERT INTO steps (flow_pk, step_id, position) VALUES (?1, ?2, ?3)")?;
    for (i, step) in f.flow.graph.step_ids.iter().enumerate() {
        st.execute(params![pk, step, i as i64])?;
    }
    Ok(pk)
}

/// A member as an export writes it.
pub struct MemberRow {
    pub user_id: String,
    pub user_pk: i64,
    pub role: String,
    pub added_at: i64,
}

/// A workspace's members in the order the API lists them.
pub fn members(conn: &Connection, ws_pk: i64) -> Result<Vec<MemberRow>> {
    let mut st = conn.prepare_cached(
        "SELECT u.id, u.pk, m.role, m.added_at FROM members m JOIN users u ON u.pk = m.user_pk
         WHERE m.workspace_pk = ?1 ORDER BY m.added_at, u.pk",
    )?;
    let rows = st.query_map([ws_pk], |r| {
        Ok(MemberRow {
            user_id: r.get(0)?,
            user_pk: r.get(1)?,
            role: r.get(2)?,
            added_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Calls `f` with each flow of the workspace in creation order, one row at a time.
pub fn for_each_flow(
    conn: &Connection,
    ws_pk: i64,
    mut f: impl FnMut(&Flow) -> Result<()>,
) -> Result<()> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {} FROM flows f JOIN workspaces w ON w.pk = f.workspace_pk
         WHERE f.workspace_pk = ?1 ORDER BY f.pk",
        flows::COLUMNS
    ))?;
    let mut rows = st.query([ws_pk])?;
    while let Some(r) = rows.next()? {
        f(&flows::from_row(r)?)?;
    }
    Ok(())
}
