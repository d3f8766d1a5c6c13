//! `/v2/flows/{flow_id}/snapshots/{step_id}/versions`: a step's snapshot history (spec section 9).
//! The restore lives with the other snapshot writes (`snapshots::restore`).
//!
//! Reads: the flow (404), membership (403), the step in the flow (404), then the versions.
//! Values are the stored JSON text, copied into the document as they are.

use super::Ctx;
use crate::access::{require, Perm};
use crate::db::versions::{self as store, Version};
use crate::db::{flows, snapshots};
use crate::error::{Error, Result};
use crate::util::{is_id, iso_ms, json_str};
use rouille::Response;

/// The version's resource object as JSON text.
fn resource(flow_id: &str, step_id: &str, v: &Version) -> String {
    let id = v.id();
    let mut out = String::with_capacity(v.value.as_ref().map_or(0, String::len) + 400);
    // Flow ids are hex, step ids [A-Za-z0-9_-], version ids digits and `-`: safe in JSON strings.
    out.push_str(&format!(
        r#"{{"id":"{id}","type":"snapshot-version","links":{{"self":"/v2/flows/{flow_id}/snapshots/{step_id}/versions/{id}"}},"attributes":{{"operation":{}"#,
        json_str(&v.operation)
    ));
    if let Some(value) = &v.value {
        out.push_str(r#","snapshot":"#);
        out.push_str(value);
    }
    let opt = |s: &Option<String>| s.as_deref().map_or("null".to_string(), json_str);
    out.push_str(&format!(
        r#","size_bytes":{},"created_at":"{}","created_by":{},"restored_from":{}}}}}"#,
        v.value.as_ref().map_or(0, String::len),
        iso_ms(v.created_at),
        opt(&v.created_by),
        opt(&v.restored_from),
    ));
    out
}

/// The flow (404), the caller's membership (403) and the step (404), in the read transaction.
fn readable_step(ctx: &Ctx, c: &rusqlite::Connection, flow_id: &str, step_id: &str) -> Result<i64> {
    if !is_id(flow_id) {
        return Err(Error::not_found(format!("Flow {flow_id} not found")));
    }
    let head = flows::head(c, flow_id, ctx.who.pk)?;
    require(&ctx.who, head.role, Perm::Read, &head.workspace_id)?;
    if snapshots::step_snapshot(c, head.pk, step_id)?.is_none() {
        return Err(Error::not_found(format!(
            "Step {step_id} does not exist in this flow; versions belong to the steps of the \
             flow's graph"
        )));
    }
    Ok(head.pk)
}

/// `GET .../versions`: newest first, paged.
pub fn list(ctx: &Ctx, flow_id: &str, step_id: &str) -> Result<Response> {
    let page = ctx.page()?;
    let (versions, total) = ctx.app.store.read(|c| {
        let flow_pk = readable_step(ctx, c, flow_id, step_id)?;
        let keep = ctx.app.config.history_max_versions;
        store::list(c, flow_pk, step_id, keep, page.offset(), page.size)
    })?;
    let data = versions
        .iter()
        .map(|v| resource(flow_id, step_id, v))
        .collect();
    Ok(ctx.collection_raw(data, page, total))
}

/// `GET .../versions/{version_id}`.
pub fn get(ctx: &Ctx, flow_id: &str, step_id: &str, version_id: &str) -> Result<Response> {
    let v = ctx.app.store.read(|c| {
        let flow_pk = readable_step(ctx, c, flow_id, step_id)?;
        store::get(
            c,
            flow_pk,
            step_id,
            version_id,
            ctx.app.config.history_max_versions,
        )?
        .ok_or_else(|| store::not_found(step_id, version_id))
    })?;
    Ok(super::raw_json_response(
        200,
        format!(
            r#"{{"data":{},"meta":{{}}}}"#,
            resource(flow_id, step_id, &v)
        ),
    ))
}
