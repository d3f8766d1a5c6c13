//! The `users` table.

use crate::error::{Error, Result};
use crate::util;
use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct User {
    pub pk: i64,
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub tenant_admin: bool,
    pub registered: i64,
    pub last_login: Option<i64>,
    pub api_key_hash: String,
    pub password_hash: Option<String>,
}

const COLUMNS: &str =
    "pk, id, email, first_name, last_name, tenant_admin, registered, last_login, \
                       api_key_hash, password_hash";

fn from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        pk: r.get(0)?,
        id: r.get(1)?,
        email: r.get(2)?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        tenant_admin: r.get(5)?,
        registered: r.get(6)?,
        last_login: r.get(7)?,
        api_key_hash: r.get(8)?,
        password_hash: r.get(9)?,
    })
}

pub fn by_pk(conn: &Connection, pk: i64) -> Result<Option<User>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE pk = ?1"))?;
    Ok(st.query_row([pk], from_row).optional()?)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<User>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?;
    Ok(st.query_row([id], from_row).optional()?)
}

/// The caller behind a remembered verification, only if its stored API-key hash (or, with
/// `password`, its password hash) is still `hash`: the one indexed read that makes a rotation or
/// deletion by any process end the remembered verification. Returns (id, email, tenant_admin).
pub fn if_hash_is(
    conn: &Connection,
    pk: i64,
    password: bool,
    hash: &str,
) -> Result<Option<(String, String, bool)>> {
    let sql = if password {
        "SELECT id, email, tenant_admin FROM users WHERE pk = ?1 AND password_hash = ?2"
    } else {
        "SELECT id, email, tenant_admin FROM users WHERE pk = ?1 AND api_key_hash = ?2"
    };
    let mut st = conn.prepare_cached(sql)?;
    Ok(st
        .query_row(params![pk, hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// E-mail comparison is case-insensitive (the column is `COLLATE NOCASE`).
pub fn by_email(conn: &Connection, email: &str) -> Result<Option<User>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email = ?1"))?;
    Ok(st.query_row([email], from_row).optional()?)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// One page of users in creation order.
pub fn list(conn: &Connection, offset: i64, limit: i64) -> Result<Vec<User>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY pk LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = st.query_map([limit, offset], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub tenant_admin: bool,
    pub api_key_hash: &'a str,
    pub password_hash: Option<&'a str>,
}

/// Inserts a user; a taken e-mail (in any letter case) is a conflict.
pub fn insert(conn: &Connection, u: &NewUser) -> Result<User> {
    if by_email(conn, u.email)?.is_some() {
        return Err(
            Error::conflict(format!("A user with e-mail {} already exists", u.email))
                .with_pointer("/data/attributes/email"),
        );
    }
    let id = util::new_id();
    let now = util::now_ms();
    conn.prepare_cached(
        "INSERT INTO users (id, email, first_name, last_name, tenant_admin, registered,
                            api_key_hash, password_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        u.email,
        u.first_name,
        u.last_name,
        u.tenant_admin,
        now,
        u.api_key_hash,
        u.password_hash
    ])?;
    by_id(conn, &id)?.ok_or_else(|| Error::internal("inserted user vanished"))
}

pub fn set_api_key_hash(conn: &Connection, pk: i64, hash: &str) -> Result<()> {
    conn.prepare_cached("UPDATE users SET api_key_hash = ?1 WHERE pk = ?2")?
        .execute(params![hash, pk])?;
    Ok(())
}

pub fn touch_login(conn: &Connection, pk: i64, at_ms: i64) -> Result<()> {
    conn.prepare_cached("UPDATE users SET last_login = ?1 WHERE pk = ?2")?
        .execute(params![at_ms, pk])?;
    Ok(())
}

/// Deletes a user: memberships go, workspaces left with no member go with everything in them.
/// Refused (409) when the user is the last owner of a workspace that keeps other members, or the
/// last tenant-admin.
pub fn delete(conn: &Connection, user: &User) -> Result<()> {
    if user.tenant_admin {
        let admins: i64 = conn.query_row(
            "SELECT count(*) FROM users WHERE tenant_admin = 1",
            [],
            |r| r.get(0),
        )?;
        if admins <= 1 {
            return Err(Error::conflict(format!(
                "User {} is the last tenant-admin; make another user tenant-admin first",
                user.id
            )));
        }
    }
    let blocked: Option<String> = conn
        .query_row(
            "SELECT w.id FROM members m JOIN workspaces w ON w.pk = m.workspace_pk
             WHERE m.user_pk = ?1 AND m.role = 'owner'
               AND NOT EXISTS (SELECT 1 FROM members o WHERE o.workspace_pk = m.workspace_pk
                               AND o.role = 'owner' AND o.user_pk != ?1)
               AND EXISTS (SELECT 1 FROM members o WHERE o.workspace_pk = m.workspace_pk
                           AND o.user_pk != ?1)
             LIMIT 1",
            [user.pk],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(ws) = blocked {
        return Err(Error::conflict(format!(
            "User {} is the last owner of workspace {ws}, which has other members; make another \
             member owner first",
            user.id
        )));
    }
    conn.execute(
        "DELETE FROM workspaces WHERE pk IN (
             SELECT m.workspace_pk FROM members m WHERE m.user_pk = ?1
             AND NOT EXISTS (SELECT 1 FROM members o WHERE o.workspace_pk = m.workspace_pk
                             AND o.user_pk != ?1))",
        [user.pk],
    )?;
    conn.execute("DELETE FROM users WHERE pk = ?1", [user.pk])?;
    Ok(())
}
