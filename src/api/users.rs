//! `/v2/users`: the caller, the user list (tenant-admin), user creation and deletion, and API-key
//! rotation (spec section 3).

use super::doc::{parse_write, req_str};
use super::{audit_event, json_response, no_content, Ctx};
use crate::auth::{unauthorized, Proof};
use crate::db::audit::Target;
use crate::db::users::{self, NewUser, User};
use crate::error::{Error, Result};
use crate::util::{email_ok, iso_ms, new_api_key, password_ok};
use rouille::Response;
use serde_json::{json, Value};

pub fn resource(u: &User) -> Value {
    json!({
        "id": u.id,
        "type": "user",
        "links": {"self": format!("/v2/users/{}", u.id)},
        "attributes": {
            "first_name": u.first_name,
            "last_name": u.last_name,
            "email": u.email,
            "registered": iso_ms(u.registered),
            "last_login": u.last_login.map(iso_ms),
        }
    })
}

fn single(status: u16, u: &User) -> Response {
    json_response(status, &json!({"data": resource(u), "meta": {}}))
}

fn user_not_found(id: &str) -> Error {
    Error::not_found(format!("User {id} not found"))
}

fn only_admin(what: &str) -> Error {
    Error::forbidden(format!("Only a tenant-admin may {what}"))
}

pub fn me(ctx: &Ctx) -> Result<Response> {
    let pk = ctx.who.pk;
    let u = ctx
        .app
        .store
        .read(|c| users::by_pk(c, pk))?
        .ok_or_else(|| user_not_found(&ctx.who.id))?;
    Ok(single(200, &u))
}

pub fn list(ctx: &Ctx) -> Result<Response> {
    if !ctx.who.tenant_admin {
        return Err(only_admin("list users; GET /v2/users/me returns your own"));
    }
    let page = ctx.page()?;
    let (list, total) = ctx
        .app
        .store
        .read(|c| Ok((users::list(c, page.offset(), page.size)?, users::count(c)?)))?;
    Ok(ctx.collection(list.iter().map(resource).collect(), page, total))
}

/// The user at `id`: 404 when there is none, 403 unless it is the caller or the caller is a
/// tenant-admin.
fn visible_user(ctx: &Ctx, id: &str, what: &str) -> Result<User> {
    let u = ctx
        .app
        .store
        .read(|c| users::by_id(c, id))?
        .ok_or_else(|| user_not_found(id))?;
    if u.pk != ctx.who.pk && !ctx.who.tenant_admin {
        return Err(Error::forbidden(format!(
            "Only the user itself or a tenant-admin may {what} user {id}"
        )));
    }
    Ok(u)
}

pub fn get(ctx: &Ctx, id: &str) -> Result<Response> {
    let u = visible_user(ctx, id, "read")?;
    Ok(single(200, &u))
}

fn name_attr(attrs: &serde_json::Map<String, Value>, name: &str) -> Result<String> {
    let v = req_str(attrs, name)?;
    if !crate::rules::person_name_ok(&v) {
        return Err(Error::invalid(
            &format!("/data/attributes/{name}"),
            format!("`{name}` must be at most 100 characters, without control characters"),
        ));
    }
    Ok(v)
}

pub fn create(ctx: &Ctx) -> Result<Response> {
    if !ctx.who.tenant_admin {
        return Err(only_admin("create users"));
    }
    let doc = parse_write(ctx.body()?, "user", None)?;
    let a = &doc.attributes;
    let first_name = name_attr(a, "first_name")?;
    let last_name = name_attr(a, "last_name")?;
    let email = req_str(a, "email")?;
    if !email_ok(&email) {
        return Err(Error::invalid(
            "/data/attributes/email",
            format!("{email:?} is not an e-mail address that can sign in: local@domain, at most 254 characters, without spaces or colons"),
        ));
    }
    let password = req_str(a, "password")?;
    if !password_ok(&password) {
        return Err(Error::invalid(
            "/data/attributes/password",
            "`password` must be 8 to 1024 bytes and contain a letter, a digit and another symbol",
        ));
    }
    let password_hash = ctx.app.auth.hash(&password)?;
    // The user gets a key nobody knows; it asks for its own with POST /v2/users/{id}/api-key.
    let api_key_hash = ctx.app.auth.hash(&new_api_key())?;
    let who = ctx.who.id.clone();
    let u = ctx.app.store.write(move |c| {
        let u = users::insert(
            c,
            &NewUser {
                email: &email,
                first_name: &first_name,
                last_name: &last_name,
                tenant_admin: false,
                api_key_hash: &api_key_hash,
                password_hash: Some(&password_hash),
            },
        )?;
        audit_event(c, &who, "user.create", None, Target::User(&u.id))?;
        Ok(u)
    })?;
    Ok(single(201, &u))
}

pub fn delete(ctx: &Ctx, id: &str) -> Result<Response> {
    ctx.app
        .store
        .read(|c| users::by_id(c, id))?
        .ok_or_else(|| user_not_found(id))?;
    if !ctx.who.tenant_admin {
        return Err(only_admin("delete users"));
    }
    let (id_owned, who) = (id.to_string(), ctx.who.id.clone());
    let pk = ctx.app.store.write(move |c| {
        let u = users::by_id(c, &id_owned)?.ok_or_else(|| user_not_found(&id_owned))?;
        users::delete(c, &u)?;
        audit_event(c, &who, "user.delete", None, Target::User(&u.id))?;
        Ok(u.pk)
    })?;
    ctx.app.auth.forget_user(pk);
    Ok(no_content())
}

/// `proof` is what the caller authenticated with; it is confirmed again in the transaction that
/// replaces the key, so that of two rotations with the same key only the first is applied.
pub fn rotate_key(ctx: &Ctx, id: &str, proof: Proof) -> Result<Response> {
    visible_user(ctx, id, "issue an API key for")?;
    let key = new_api_key();
    let hash = ctx.app.auth.hash(&key)?;
    let (id_owned, who) = (id.to_string(), ctx.who.id.clone());
    let caller = ctx.who.pk;
    let pk = ctx.app.store.write(move |c| {
        if users::if_hash_is(c, caller, proof.password, &proof.hash)?.is_none() {
            // The caller's key was replaced (or the user deleted) since it was checked.
            return Err(unauthorized());
        }
        let u = users::by_id(c, &id_owned)?.ok_or_else(|| user_not_found(&id_owned))?;
        users::set_api_key_hash(c, u.pk, &hash)?;
        audit_event(c, &who, "user.rotate_key", None, Target::User(&u.id))?;
        Ok(u.pk)
    })?;
    ctx.app.auth.forget_user(pk);
    Ok(json_response(
        201,
        &json!({"data": {"type": "api-key", "id": id, "attributes": {"api_key": key}}, "meta": {}}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rule() {
        assert!(password_ok("abcd123!"));
        assert!(!password_ok("abc12!"));
        assert!(!password_ok("abcdefg!"));
        assert!(!password_ok("abcdefg1"));
        assert!(!password_ok("12345678!"));
        assert!(password_ok(&format!("a1!{}", "x".repeat(1021))));
        assert!(
            !password_ok(&format!("a1!{}", "x".repeat(1022))),
            "over 1024 bytes"
        );
    }

    #[test]
    fn email_rule() {
        assert!(email_ok("a@b.c"));
        assert!(!email_ok("ab.c"));
        assert!(!email_ok("a b@c"));
        assert!(!email_ok("@c"));
        assert!(!email_ok("a:b@c.d"), "HTTP Basic could not carry it");
    }
}
