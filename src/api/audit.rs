//! The audit log (spec section 10): `GET /v2/workspaces/{id}/audit` (owner, admin or
//! tenant-admin), `GET /v2/audit` (tenant-admin) and `GET /v2/audit/{id}`.
//! Events are written by the changes themselves (see `super::audit_event`); this module reads.

use super::Ctx;
use crate::access::{require, Perm};
use crate::db::audit::{self as store, Event, Filter, ACTIONS};
use crate::db::workspaces;
use crate::error::{Error, Result};
use crate::util::iso_ms;
use rouille::Response;
use serde_json::{json, Map, Value};

fn resource(e: &Event) -> Value {
    let id = e.id.to_string();
    let mut target = Map::new();
    target.insert("type".into(), json!(e.target_type));
    target.insert("id".into(), json!(e.target_id));
    if e.target_type == "snapshot" {
        target.insert("flow_id".into(), json!(e.flow_id));
    }
    let mut attributes = Map::new();
    attributes.insert("action".into(), json!(e.action));
    attributes.insert("created_at".into(), json!(iso_ms(e.created_at)));
    attributes.insert("user_id".into(), json!(e.user_id));
    attributes.insert("request_id".into(), json!(e.request_id));
    attributes.insert("workspace_id".into(), json!(e.workspace_id));
    attributes.insert("target".into(), Value::Object(target));
    if e.target_type == "snapshot" {
        attributes.insert("version_id".into(), json!(e.version_id));
    }
    json!({"id": id, "type": "audit-event", "links": {"self": format!("/v2/audit/{id}")},
           "attributes": attributes})
}

/// The filters of the query; `filter[action]` must name an action.
fn filter(ctx: &Ctx, workspace_id: Option<String>) -> Result<Filter> {
    let action = ctx.param("filter[action]").map(str::to_string);
    if let Some(a) = &action {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(Error::bad_request(format!(
                "filter[action] must be one of {}; not {a:?}",
                ACTIONS.join(", ")
            )));
        }
    }
    let text = |name: &str| ctx.param(name).map(str::to_string);
    Ok(Filter {
        workspace_id,
        action,
        flow_id: text("filter[flow_id]"),
        user_id: text("filter[user_id]"),
    })
}

fn list_of(ctx: &Ctx, f: Filter) -> Result<Response> {
    let page = ctx.page()?;
    let (events, total) = ctx
        .app
        .store
        .read(|c| store::list(c, &f, page.offset(), page.size))?;
    Ok(ctx.collection(events.iter().map(resource).collect(), page, total))
}

/// `GET /v2/workspaces/{id}/audit`.
pub fn workspace(ctx: &Ctx, id: &str) -> Result<Response> {
    let pk = ctx.who.pk;
    let (w, role) = ctx.app.store.read(|c| workspaces::require(c, id, pk))?;
    require(&ctx.who, role, Perm::AuditRead, &w.id)?;
    let f = filter(ctx, Some(w.id))?;
    list_of(ctx, f)
}

fn only_admin() -> Error {
    Error::forbidden(
        "Only a tenant-admin may read the audit log of the whole server; owners and admins of a \
         workspace read theirs at GET /v2/workspaces/WORKSPACE_ID/audit",
    )
}

/// `GET /v2/audit`.
pub fn list(ctx: &Ctx) -> Result<Response> {
    if !ctx.who.tenant_admin {
        return Err(only_admin());
    }
    let f = filter(ctx, ctx.param("filter[workspace_id]").map(str::to_string))?;
    list_of(ctx, f)
}

/// `GET /v2/audit/{id}`: a tenant-admin, or a caller with `workspaces.workspace.edit` in the
/// event's workspace.
pub fn get(ctx: &Ctx, id: &str) -> Result<Response> {
    let not_found = || Error::not_found(format!("Audit event {id} not found"));
    let n: i64 = match id.parse() {
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(not_found()),
    };
    let pk = ctx.who.pk;
    let (event, role) = ctx.app.store.read(|c| {
        let Some(e) = store::get(c, n)? else {
            return Ok((None, None));
        };
        let role = match &e.workspace_id {
            Some(w) => workspaces::by_id_with_role(c, w, pk)?.and_then(|(_, role)| role),
            None => None,
        };
        Ok((Some(e), role))
    })?;
    let event = event.ok_or_else(not_found)?;
    if !ctx.who.tenant_admin {
        match &event.workspace_id {
            Some(w) => require(&ctx.who, role, Perm::AuditRead, w)?,
            None => return Err(only_admin()),
        }
    }
    Ok(super::json_response(
        200,
        &json!({"data": resource(&event), "meta": {}}),
    ))
}
