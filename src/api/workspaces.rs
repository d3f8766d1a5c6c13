//! `/v2/workspaces` and their members (spec section 4).

use super::doc::{parse_write, relationship_id, req_str, roles};
use super::{audit_event, json_response, no_content, Ctx};
use crate::access::{require, Perm, Role};
use crate::db::audit::Target;
use crate::db::workspaces::{self as store, Member, Workspace};
use crate::error::{Error, Result};
use crate::util::iso_ms;
use rouille::Response;
use serde_json::{json, Value};

pub fn resource(w: &Workspace, member_ids: &[String]) -> Value {
    let members: Vec<Value> = member_ids
        .iter()
        .map(|id| json!({"id": id, "type": "member"}))
        .collect();
    json!({
        "id": w.id,
        "type": "workspace",
        "links": {"self": format!("/v2/workspaces/{}", w.id)},
        "attributes": {"name": w.name, "created_at": iso_ms(w.created_at), "updated_at": iso_ms(w.updated_at)},
        "relationships": {
            "contract": {"data": {"id": w.contract_id, "type": "contract"}, "links": {"self": format!("/v2/contracts/{}", w.contract_id)}},
            "members": {"data": members, "links": {"self": format!("/v2/workspaces/{}/members", w.id)}},
        }
    })
}

fn member_resource(ws_id: &str, m: &Member) -> Value {
    json!({
        "id": m.user_id,
        "type": "member",
        "links": {"self": format!("/v2/workspaces/{ws_id}/members/{}", m.user_id)},
        "attributes": {"first_name": m.first_name, "last_name": m.last_name, "email": m.email, "roles": [m.role.as_str()]},
    })
}

fn name_attr(attrs: &serde_json::Map<String, Value>) -> Result<String> {
    let name = req_str(attrs, "name")?;
    if !crate::rules::workspace_name_ok(&name) {
        return Err(Error::invalid(
            "/data/attributes/name",
            format!("workspace name {name:?} must be 3 to 40 characters of letters, digits, space, `-` and `_`"),
        ));
    }
    Ok(name)
}

/// The workspace document, read once: 404 when it is gone, 403 when the caller may not read it.
fn single(ctx: &Ctx, status: u16, id: &str) -> Result<Response> {
    let pk = ctx.who.pk;
    let (w, ids) = ctx.app.store.read(|c| {
        let (w, role) = store::require(c, id, pk)?;
        require(&ctx.who, role, Perm::Read, &w.id)?;
        let ids = store::member_ids(c, w.pk)?;
        Ok((w, ids))
    })?;
    Ok(json_response(
        status,
        &json!({"data": resource(&w, &ids), "meta": {}}),
    ))
}

/// Loads the workspace and checks `perm` for the caller, in one read: 404, then 403.
fn authorized(ctx: &Ctx, id: &str, perm: Perm) -> Result<Workspace> {
    let pk = ctx.who.pk;
    let (w, role) = ctx.app.store.read(|c| store::require(c, id, pk))?;
    require(&ctx.who, role, perm, &w.id)?;
    Ok(w)
}

/// Runs `f` in a write transaction once the workspace exists (404) and the caller holds `perm`
/// (403). Bodies are read before, but their errors are reported by `f`, after those checks.
fn write<T: Send + 'static>(
    ctx: &Ctx,
    id: &str,
    perm: Perm,
    f: impl FnOnce(&rusqlite::Connection, &Workspace) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (who, id) = (ctx.who.clone(), id.to_string());
    ctx.app.store.write(move |c| {
        let (w, role) = store::require(c, &id, who.pk)?;
        require(&who, role, perm, &w.id)?;
        f(c, &w)
    })
}

pub fn list(ctx: &Ctx) -> Result<Response> {
    let page = ctx.page()?;
    let contract = ctx.param("contract_id").map(str::to_string);
    let (pk, all) = (ctx.who.pk, ctx.who.tenant_admin);
    let (list, total) = ctx.app.store.read(|c| {
        let (ws, total) = store::list(c, pk, all, contract.as_deref(), page.offset(), page.size)?;
        let mut out = Vec::with_capacity(ws.len());
        for w in ws {
            let ids = store::member_ids(c, w.pk)?;
            out.push(resource(&w, &ids));
        }
        Ok((out, total))
    })?;
    Ok(ctx.collection(list, page, total))
}

pub fn get(ctx: &Ctx, id: &str) -> Result<Response> {
    single(ctx, 200, id)
}

pub fn create(ctx: &Ctx) -> Result<Response> {
    let doc = parse_write(ctx.body()?, "workspace", None)?;
    let name = name_attr(&doc.attributes)?;
    let contract = relationship_id(&doc.relationships, "contract")?;
    let (owner, owner_id) = (ctx.who.pk, ctx.who.id.clone());
    let w = ctx.app.store.write(move |c| {
        // The caller may have been deleted since it authenticated.
        if crate::db::users::by_pk(c, owner)?.is_none() {
            return Err(crate::auth::unauthorized());
        }
        if let Some(cid) = contract {
            let (_, id, _) = store::contract(c)?;
            if cid != id {
                return Err(Error::not_found(format!("Contract {cid} not found"))
                    .with_pointer("/data/relationships/contract/data/id"));
            }
        }
        let w = store::insert(c, &name, owner)?;
        audit_event(
            c,
            &owner_id,
            "workspace.create",
            Some(&w.id),
            Target::Workspace(&w.id),
        )?;
        Ok(w)
    })?;
    single(ctx, 201, &w.id)
}

pub fn update(ctx: &Ctx, id: &str) -> Result<Response> {
    let input = ctx
        .body()
        .and_then(|b| parse_write(b, "workspace", Some(id)))
        .and_then(|doc| match doc.attributes.get("name") {
            Some(_) => name_attr(&doc.attributes).map(Some),
            None => Ok(None),
        });
    let who = ctx.who.id.clone();
    write(ctx, id, Perm::WorkspaceEdit, move |c, w| {
        if let Some(n) = input? {
            store::rename(c, w.pk, &n)?;
        }
        audit_event(
            c,
            &who,
            "workspace.update",
            Some(&w.id),
            Target::Workspace(&w.id),
        )
    })?;
    single(ctx, 200, id)
}

pub fn delete(ctx: &Ctx, id: &str) -> Result<Response> {
    let who = ctx.who.id.clone();
    write(ctx, id, Perm::WorkspaceEdit, move |c, w| {
        store::delete(c, w.pk)?;
        audit_event(
            c,
            &who,
            "workspace.delete",
            Some(&w.id),
            Target::Workspace(&w.id),
        )
    })?;
    Ok(no_content())
}

pub fn members(ctx: &Ctx, id: &str) -> Result<Response> {
    let w = authorized(ctx, id, Perm::Read)?;
    let page = ctx.page()?;
    let (list, total) = ctx
        .app
        .store
        .read(|c| store::members(c, w.pk, page.offset(), page.size))?;
    Ok(ctx.collection(
        list.iter().map(|m| member_resource(&w.id, m)).collect(),
        page,
        total,
    ))
}

pub fn member(ctx: &Ctx, id: &str, user_id: &str) -> Result<Response> {
    let w = authorized(ctx, id, Perm::Read)?;
    let m = ctx
        .app
        .store
        .read(|c| store::member(c, w.pk, user_id))?
        .ok_or_else(|| {
            Error::not_found(format!("User {user_id} is not a member of workspace {id}"))
        })?;
    Ok(json_response(
        200,
        &json!({"data": member_resource(&w.id, &m), "meta": {}}),
    ))
}

pub fn add_member(ctx: &Ctx, id: &str) -> Result<Response> {
    let input = ctx
        .body()
        .and_then(|b| parse_write(b, "member", None))
        .and_then(|doc| {
            let user_id = doc.id.ok_or_else(|| {
                Error::invalid(
                    "/data/id",
                    "`data.id` is required: the id of the user to add",
                )
            })?;
            Ok((user_id, roles(&doc.attributes)?))
        });
    let who = ctx.who.id.clone();
    let (m, ws_id) = write(ctx, id, Perm::WorkspaceEdit, move |c, w| {
        let (user_id, role): (String, Role) = input?;
        let m = store::add_member(c, w, &user_id, role)?;
        audit_event(
            c,
            &who,
            "member.add",
            Some(&w.id),
            Target::Member(&m.user_id),
        )?;
        Ok((m, w.id.clone()))
    })?;
    Ok(json_response(
        200,
        &json!({"data": member_resource(&ws_id, &m), "meta": {}}),
    ))
}

pub fn update_member(ctx: &Ctx, id: &str, user_id: &str) -> Result<Response> {
    let input = ctx
        .body()
        .and_then(|b| parse_write(b, "member", Some(user_id)))
        .and_then(|doc| roles(&doc.attributes));
    let (uid, who) = (user_id.to_string(), ctx.who.id.clone());
    let (m, ws_id) = write(ctx, id, Perm::WorkspaceEdit, move |c, w| {
        let m = store::set_role(c, w, &uid, input?)?;
        audit_event(
            c,
            &who,
            "member.update",
            Some(&w.id),
            Target::Member(&m.user_id),
        )?;
        Ok((m, w.id.clone()))
    })?;
    Ok(json_response(
        200,
        &json!({"data": member_resource(&ws_id, &m), "meta": {}}),
    ))
}

pub fn remove_member(ctx: &Ctx, id: &str, user_id: &str) -> Result<Response> {
    let (uid, who) = (user_id.to_string(), ctx.who.id.clone());
    write(ctx, id, Perm::WorkspaceEdit, move |c, w| {
        store::remove_member(c, w, &uid)?;
        audit_event(c, &who, "member.remove", Some(&w.id), Target::Member(&uid))
    })?;
    Ok(no_content())
}
