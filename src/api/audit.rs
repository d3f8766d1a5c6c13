//! The audit log (spec section 10): `GET /v2/workspaces/{id}/audit` (owner, admin or
//! tenant-admin), `GET /v2/audit` (tenant-admin) and `GET /v2/audit/{id}`.
//! Events are written by the changes themselves (see `super::audit_event`); this module reads.

use super::Ctx;
use crate::access::{require, Perm};
use crate::db::audit::{self as store, Event, Filter, ACTIONS};
use crate::db::workspaces;
use crate::error::{Error, Result};
use crate::util::{iso_ms, json_str};
use rouille::Response;

/// The event's resource object as JSON text: built by appending, since a page holds up to 100
/// of them (through `serde_json` values each cost about 25 us).
fn resource(e: &Event) -> String {
    use std::fmt::Write;
    let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), json_str);
    let mut out = String::with_capacity(400);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"{{"id":"{id}","type":"audit-event","links":{{"self":"/v2/audit/{id}"}},"attributes":{{"action":{},"created_at":"{}","user_id":{},"request_id":{},"workspace_id":{},"target":{{"type":{},"id":{}"#,
        json_str(&e.action),
        iso_ms(e.created_at),
        opt(&e.user_id),
        opt(&e.request_id),
        opt(&e.workspace_id),
        json_str(&e.target_type),
        opt(&e.target_id),
        id = e.id,
    );
    if e.target_type == "snapshot" {
        let _ = write!(
            out,
            r#","flow_id":{}}},"version_id":{}}}}}"#,
            opt(&e.flow_id),
            opt(&e.version_id)
        );
    } else {
        out.push_str("}}}");
    }
    out
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
    Ok(ctx.collection_raw(events.iter().map(resource).collect(), page, total))
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
        // Canonical decimal only: one URL per event.
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0') => n,
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
    Ok(super::raw_json_response(
        200,
        format!(r#"{{"data":{},"meta":{{}}}}"#, resource(&event)),
    ))
}
