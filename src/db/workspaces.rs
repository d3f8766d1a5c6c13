//! The `workspaces`, `members` and `contracts` tables.

use crate::access::Role;
use crate::error::{Error, Result};
use crate::util;
use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct Workspace {
    pub pk: i64,
    pub id: String,
    pub name: String,
    pub contract_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "w.pk, w.id, w.name, c.id, w.created_at, w.updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        pk: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        contract_id: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

fn role_of(s: Option<String>) -> Option<Role> {
    s.as_deref().and_then(Role::parse)
}

/// The workspace and the role `user_pk` holds in it (None: not a member).
pub fn by_id_with_role(
    conn: &Connection,
    id: &str,
    user_pk: i64,
) -> Result<Option<(Workspace, Option<Role>)>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, m.role FROM workspaces w JOIN contracts c ON c.pk = w.contract_pk
         LEFT JOIN members m ON m.workspace_pk = w.pk AND m.user_pk = ?2
         WHERE w.id = ?1"
    ))?;
    Ok(st
        .query_row(params![id, user_pk], |r| {
            Ok((from_row(r)?, role_of(r.get(6)?)))
        })
        .optional()?)
}

/// The workspace or a 404 naming it.
pub fn require(conn: &Connection, id: &str, user_pk: i64) -> Result<(Workspace, Option<Role>)> {
    by_id_with_role(conn, id, user_pk)?
        .ok_or_else(|| Error::not_found(format!("Workspace {id} not found")))
}

/// One page of the workspaces `user_pk` is a member of (every workspace when `all`), with the
/// exact total, in creation order.
pub fn list(
    conn: &Connection,
    user_pk: i64,
    all: bool,
    contract_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Workspace>, i64)> {
    let filter =
        "(?1 OR EXISTS (SELECT 1 FROM members m WHERE m.workspace_pk = w.pk AND m.user_pk = ?2))
                  AND (?3 IS NULL OR c.id = ?3)";
    let total: i64 = conn
        .prepare_cached(&format!(
        "SELECT count(*) FROM workspaces w JOIN contracts c ON c.pk = w.contract_pk WHERE {filter}"
    ))?
        .query_row(params![all, user_pk, contract_id], |r| r.get(0))?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM workspaces w JOIN contracts c ON c.pk = w.contract_pk
         WHERE {filter} ORDER BY w.pk LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = st.query_map(params![all, user_pk, contract_id, limit, offset], from_row)?;
    Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
}

/// The built-in contract `(pk, id, name)`.
pub fn contract(conn: &Connection) -> Result<(i64, String, String)> {
    Ok(conn.query_row(
        "SELECT pk, id, name FROM contracts ORDER BY pk LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

/// Creates a workspace in the built-in contract with `owner_pk` as its owner.
pub fn insert(conn: &Connection, name: &str, owner_pk: i64) -> Result<Workspace> {
    let (contract_pk, _, _) = contract(conn)?;
    let id = util::new_id();
    let now = util::now_ms();
    conn.execute(
        "INSERT INTO workspaces (id, contract_pk, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id, contract_pk, name, now],
    )?;
    let pk = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO members (workspace_pk, user_pk, role, added_at) VALUES (?1, ?2, 'owner', ?3)",
        params![pk, owner_pk, now],
    )?;
    by_id_with_role(conn, &id, owner_pk)?
        .map(|(w, _)| w)
        .ok_or_else(|| Error::internal("inserted workspace vanished"))
}

pub fn rename(conn: &Connection, pk: i64, name: &str) -> Result<()> {
    conn.execute(
        "UPDATE workspaces SET name = ?1, updated_at = ?2 WHERE pk = ?3",
        params![name, util::now_ms(), pk],
    )?;
    Ok(())
}

/// Deletes the workspace; foreign keys cascade to members, flows, steps and snapshots.
pub fn delete(conn: &Connection, pk: i64) -> Result<()> {
    conn.execute("DELETE FROM workspaces WHERE pk = ?1", [pk])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: String,
    pub user_pk: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: Role,
}

const MEMBER_COLUMNS: &str = "u.id, u.pk, u.first_name, u.last_name, u.email, m.role";

fn member_from_row(r: &Row) -> rusqlite::Result<Member> {
    let role: String = r.get(5)?;
    Ok(Member {
        user_id: r.get(0)?,
        user_pk: r.get(1)?,
        first_name: r.get(2)?,
        last_name: r.get(3)?,
        email: r.get(4)?,
        role: Role::parse(&role).unwrap_or(Role::Guest),
    })
}

/// Ids of every member, in the order they joined.
pub fn member_ids(conn: &Connection, ws_pk: i64) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT u.id FROM members m JOIN users u ON u.pk = m.user_pk WHERE m.workspace_pk = ?1
         ORDER BY m.added_at, u.pk",
    )?;
    let rows = st.query_map([ws_pk], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

pub fn members(
    conn: &Connection,
    ws_pk: i64,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Member>, i64)> {
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM members WHERE workspace_pk = ?1",
        [ws_pk],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN users u ON u.pk = m.user_pk
         WHERE m.workspace_pk = ?1 ORDER BY m.added_at, u.pk LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = st.query_map(params![ws_pk, limit, offset], member_from_row)?;
    Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
}

pub fn member(conn: &Connection, ws_pk: i64, user_id: &str) -> Result<Option<Member>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN users u ON u.pk = m.user_pk
         WHERE m.workspace_pk = ?1 AND u.id = ?2"
    ))?;
    Ok(st
        .query_row(params![ws_pk, user_id], member_from_row)
        .optional()?)
}

fn owner_count(conn: &Connection, ws_pk: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM members WHERE workspace_pk = ?1 AND role = 'owner'",
        [ws_pk],
        |r| r.get(0),
    )?)
}

/// Adds a member: unknown user 404, already a member 409.
pub fn add_member(conn: &Connection, ws: &Workspace, user_id: &str, role: Role) -> Result<Member> {
    let user_pk: i64 = conn
        .query_row("SELECT pk FROM users WHERE id = ?1", [user_id], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| Error::not_found(format!("User {user_id} not found")))?;
    if member(conn, ws.pk, user_id)?.is_some() {
        return Err(Error::conflict(format!(
            "User {user_id} is already a member of workspace {}; change its roles with PATCH instead",
            ws.id
        )));
    }
    conn.execute(
        "INSERT INTO members (workspace_pk, user_pk, role, added_at) VALUES (?1, ?2, ?3, ?4)",
        params![ws.pk, user_pk, role.as_str(), util::now_ms()],
    )?;
    member(conn, ws.pk, user_id)?.ok_or_else(|| Error::internal("inserted member vanished"))
}

fn require_member(conn: &Connection, ws: &Workspace, user_id: &str) -> Result<Member> {
    member(conn, ws.pk, user_id)?.ok_or_else(|| {
        Error::not_found(format!(
            "User {user_id} is not a member of workspace {}",
            ws.id
        ))
    })
}

fn last_owner_error(ws: &Workspace, user_id: &str, what: &str) -> Error {
    Error::conflict(format!(
        "User {user_id} is the last owner of workspace {}; {what} would leave it without an \
         owner. Make another member owner first",
        ws.id
    ))
}

/// Changes a member's role; demoting the last owner is 409.
pub fn set_role(conn: &Connection, ws: &Workspace, user_id: &str, role: Role) -> Result<Member> {
    let m = require_member(conn, ws, user_id)?;
    if m.role == Role::Owner && role != Role::Owner && owner_count(conn, ws.pk)? <= 1 {
        return Err(last_owner_error(ws, user_id, "demoting it"));
    }
    conn.execute(
        "UPDATE members SET role = ?1 WHERE workspace_pk = ?2 AND user_pk = ?3",
        params![role.as_str(), ws.pk, m.user_pk],
    )?;
    Ok(Member { role, ..m })
}

/// Removes a member; removing the last owner is 409.
pub fn remove_member(conn: &Connection, ws: &Workspace, user_id: &str) -> Result<()> {
    let m = require_member(conn, ws, user_id)?;
    if m.role == Role::Owner && owner_count(conn, ws.pk)? <= 1 {
        return Err(last_owner_error(ws, user_id, "removing it"));
    }
    conn.execute(
        "DELETE FROM members WHERE workspace_pk = ?1 AND user_pk = ?2",
        params![ws.pk, m.user_pk],
    )?;
    Ok(())
}
