//! `/v2/flows/{flow_id}/snapshots`: the five snapshot endpoints (spec section 6 and
//! snapshots-api.md).
//!
//! Every write is one store transaction that checks, in order: the flow exists (404), the caller
//! is a member (403) with `workspaces.flow.edit` (403), the body (413/415/400), the document
//! (400/409), then the rules of the call (404, 409, 412, 413). The body is read before the
//! transaction, but its errors are reported only in their turn.
//!
//! Values are kept as compact JSON text and written into responses as they are, so numbers are
//! never rounded and object members keep their order.

use super::doc::parse_snapshot_write;
use super::{raw_json_response, Ctx};
use crate::access::{require, Perm};
use crate::db::flows;
use crate::db::snapshots::{self as store, Precondition, Snapshot};
use crate::error::{Error, Result};
use crate::util::{is_id, json_str};
use rouille::Response;

fn resource(flow_id: &str, s: &Snapshot) -> String {
    let id = json_str(&s.step_id);
    // Flow ids are hex and step ids are [A-Za-z0-9_-]: both are safe inside a JSON string.
    format!(
        r#"{{"id":{id},"type":"snapshot","links":{{"self":"/v2/flows/{flow_id}/snapshots/{}"}},"attributes":{{"snapshot":{}}}}}"#,
        s.step_id, s.value
    )
}

fn single(status: u16, flow_id: &str, s: &Snapshot) -> Response {
    raw_json_response(
        status,
        format!(r#"{{"data":{},"meta":{{}}}}"#, resource(flow_id, s)),
    )
    .with_additional_header("ETag", s.etag())
}

fn flow_not_found(id: &str) -> Error {
    Error::not_found(format!("Flow {id} not found"))
}

/// The step id and value of a write document: `data.attributes.snapshot` as compact JSON text,
/// exactly as written.
fn value_of(ctx: &Ctx, url_step: Option<&str>) -> Result<(String, String)> {
    let bytes = ctx.body_bytes()?;
    parse_snapshot_write(&bytes, url_step, ctx.app.config.max_json_depth)
}

/// `If-Match` / `If-None-Match: *` as a precondition.
fn precondition(ctx: &Ctx) -> Precondition {
    if let Some(v) = ctx.header("If-Match") {
        return Precondition::IfMatch(
            v.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        );
    }
    match ctx.header("If-None-Match") {
        Some(v) if v.trim() == "*" => Precondition::IfNoneMatchAny,
        _ => Precondition::None,
    }
}

/// Loads the flow head for reading: 404, then 403.
fn readable(ctx: &Ctx, c: &rusqlite::Connection, flow_id: &str) -> Result<flows::FlowHead> {
    if !is_id(flow_id) {
        return Err(flow_not_found(flow_id));
    }
    let head = flows::head(c, flow_id, ctx.who.pk)?;
    require(&ctx.who, head.role, Perm::Read, &head.workspace_id)?;
    Ok(head)
}

pub fn list(ctx: &Ctx, flow_id: &str) -> Result<Response> {
    let list = ctx.app.store.read(|c| {
        let head = readable(ctx, c, flow_id)?;
        store::list(c, head.pk)
    })?;
    let mut body =
        String::with_capacity(64 + list.iter().map(|s| s.value.len() + 128).sum::<usize>());
    body.push_str(r#"{"data":["#);
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&resource(flow_id, s));
    }
    body.push_str(r#"],"meta":{}}"#);
    Ok(raw_json_response(200, body))
}

pub fn get(ctx: &Ctx, flow_id: &str, step_id: &str) -> Result<Response> {
    if !is_id(flow_id) {
        return Err(flow_not_found(flow_id));
    }
    let (head, found) = ctx
        .app
        .store
        .read_one(|c| store::lookup(c, flow_id, ctx.who.pk, step_id))?;
    require(&ctx.who, head.role, Perm::Read, &head.workspace_id)?;
    Ok(single(200, flow_id, &store::found(found, step_id)?))
}

/// Runs a snapshot write: flow 404, membership and `workspaces.flow.edit` 403, then `f`.
fn write<T: Send + 'static>(
    ctx: &Ctx,
    flow_id: &str,
    f: impl FnOnce(&rusqlite::Connection, &flows::FlowHead) -> Result<T> + Send + 'static,
) -> Result<T> {
    if !is_id(flow_id) {
        return Err(flow_not_found(flow_id));
    }
    let (who, fid) = (ctx.who.clone(), flow_id.to_string());
    ctx.app.store.write(move |c| {
        let head = flows::head(c, &fid, who.pk)?;
        require(&who, head.role, Perm::FlowEdit, &head.workspace_id)?;
        f(c, &head)
    })
}

/// Like `write`, for a step named in the URL: the flow, the caller's role and the step's snapshot
/// are read in one statement, and `f` gets the step's state.
fn write_step<T: Send + 'static>(
    ctx: &Ctx,
    flow_id: &str,
    step_id: &str,
    f: impl FnOnce(&rusqlite::Connection, &flows::FlowHead, Option<Option<Snapshot>>) -> Result<T>
        + Send
        + 'static,
) -> Result<T> {
    if !is_id(flow_id) {
        return Err(flow_not_found(flow_id));
    }
    let (who, fid, step) = (ctx.who.clone(), flow_id.to_string(), step_id.to_string());
    ctx.app.store.write(move |c| {
        let (head, current) = store::lookup(c, &fid, who.pk, &step)?;
        require(&who, head.role, Perm::FlowEdit, &head.workspace_id)?;
        f(c, &head, current)
    })
}

pub fn create(ctx: &Ctx, flow_id: &str) -> Result<Response> {
    let input = value_of(ctx, None);
    let (pre, max, fid) = (
        precondition(ctx),
        ctx.app.config.max_snapshot_bytes,
        flow_id.to_string(),
    );
    let s = write(ctx, flow_id, move |c, head| {
        let (step, value) = input?;
        store::create(c, head, &fid, &step, value, &pre, max)
    })?;
    Ok(single(201, flow_id, &s))
}

pub fn update(ctx: &Ctx, flow_id: &str, step_id: &str) -> Result<Response> {
    let input = value_of(ctx, Some(step_id));
    let (pre, max, fid) = (
        precondition(ctx),
        ctx.app.config.max_snapshot_bytes,
        flow_id.to_string(),
    );
    let s = write_step(ctx, flow_id, step_id, move |c, head, current| {
        let (step, value) = input?;
        store::update(c, head, &fid, &step, current, value, &pre, max)
    })?;
    Ok(single(200, flow_id, &s))
}

pub fn delete(ctx: &Ctx, flow_id: &str, step_id: &str) -> Result<Response> {
    let (pre, fid, step) = (precondition(ctx), flow_id.to_string(), step_id.to_string());
    write_step(ctx, flow_id, step_id, move |c, head, current| {
        store::delete(c, head, &fid, &step, current, &pre)
    })?;
    Ok(super::no_content())
}
