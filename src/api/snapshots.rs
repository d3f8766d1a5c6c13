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
use crate::access::{require, require_as, Perm};
use crate::auth::{unauthorized, Identity};
use crate::db::audit::{self, NewEvent, Target};
use crate::db::flows;
use crate::db::snapshots::{self as store, Change, Precondition, Snapshot};
use crate::db::users;
use crate::error::{Error, Result};
use crate::util::{is_id, iso_ms, json_str};
use rouille::Response;

/// Appends the snapshot's resource object. Built by appending to one buffer sized up front: the
/// value is most of the document, and `format!` would copy it through the formatter and grow the
/// string several times (it was 6% of a GET's CPU).
fn push_resource(out: &mut String, flow_id: &str, s: &Snapshot) {
    // Flow ids are hex and step ids are [A-Za-z0-9_-]: both are safe inside a JSON string.
    out.push_str(r#"{"id":"#);
    out.push_str(&json_str(&s.step_id));
    out.push_str(r#","type":"snapshot","links":{"self":"/v2/flows/"#);
    out.push_str(flow_id);
    out.push_str("/snapshots/");
    out.push_str(&s.step_id);
    out.push_str(r#""},"attributes":{"snapshot":"#);
    out.push_str(&s.value);
    push_meta(out, s);
    out.push('}');
}

/// The resource-level `meta` of section 9, after the attributes object (whose `}` it writes).
fn push_meta(out: &mut String, s: &Snapshot) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"}},"meta":{{"revision":{},"etag":"\"{}-{}\"","size_bytes":{},"created_at":"{}","updated_at":"{}","updated_by":"#,
        s.revision,
        s.generation,
        s.revision,
        s.value.len(),
        iso_ms(s.created_at),
        iso_ms(s.updated_at),
    );
    match &s.updated_by {
        // User ids are 24 hex characters: safe inside a JSON string.
        Some(id) => {
            out.push('"');
            out.push_str(id);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push('}');
}

/// Room for one resource object besides its value (with its `meta`).
const RESOURCE_OVERHEAD: usize = 360;

pub(super) fn single(status: u16, flow_id: &str, s: &Snapshot) -> Response {
    let mut body =
        String::with_capacity(s.value.len() + 2 * s.step_id.len() + RESOURCE_OVERHEAD + 32);
    body.push_str(r#"{"data":"#);
    push_resource(&mut body, flow_id, s);
    body.push_str(r#","meta":{}}"#);
    raw_json_response(status, body).with_additional_header("ETag", s.etag())
}

fn flow_not_found(id: &str) -> Error {
    Error::not_found(format!("Flow {id} not found"))
}

/// The step id and value of a write document: `data.attributes.snapshot` as compact JSON text,
/// exactly as written.
fn value_of<W>(ctx: &Ctx<W>, url_step: Option<&str>) -> Result<(String, String)> {
    let bytes = ctx.body_bytes()?;
    parse_snapshot_write(&bytes, url_step, ctx.app.config.max_json_depth)
}

/// `If-Match` / `If-None-Match: *` as a precondition.
fn precondition<W>(ctx: &Ctx<W>) -> Precondition {
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
    let mut body = String::with_capacity(
        32 + list
            .iter()
            .map(|s| s.value.len() + 2 * s.step_id.len() + RESOURCE_OVERHEAD)
            .sum::<usize>(),
    );
    body.push_str(r#"{"data":["#);
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        push_resource(&mut body, flow_id, s);
    }
    body.push_str(r#"],"meta":{}}"#);
    Ok(raw_json_response(200, body))
}

/// A snapshot request whose caller may still have to be confirmed (see `auth::Auth::identify`).
type IdCtx<'a> = Ctx<'a, Identity>;

/// The caller as the store reads it: user pk and, for remembered credentials, the API-key hash
/// that the request's own statement must still find.
fn caller(who: &Identity) -> (i64, Option<String>) {
    match who {
        Identity::Verified(p) => (p.pk, None),
        Identity::Remembered(c) => {
            debug_assert!(!c.password, "snapshot paths accept API keys only");
            (c.user_pk, Some(c.verified_hash.clone()))
        }
    }
}

/// Settles remembered credentials once the request's own read or write has run: `refuted`
/// (the caller was not found with that hash) forgets them and answers 401.
fn settle<T>(ctx: &IdCtx, refuted: bool, result: Result<T>) -> Result<T> {
    if let Identity::Remembered(claim) = &ctx.who {
        if refuted {
            return Err(ctx.app.auth.refuted(claim));
        }
    }
    result
}

/// The 404 of a malformed flow id, after the caller is confirmed (401 comes first).
fn malformed_flow_id(ctx: &IdCtx, flow_id: &str) -> Result<Response> {
    let (pk, hash) = caller(&ctx.who);
    let found = match &hash {
        None => true,
        Some(h) => ctx
            .app
            .store
            .read_one(|c| users::if_hash_is(c, pk, false, h))?
            .is_some(),
    };
    settle(ctx, !found, Err(flow_not_found(flow_id)))
}

pub fn get(ctx: &IdCtx, flow_id: &str, step_id: &str) -> Result<Response> {
    if !is_id(flow_id) {
        return malformed_flow_id(ctx, flow_id);
    }
    let (pk, hash) = caller(&ctx.who);
    let found = ctx
        .app
        .store
        .read_one(|c| store::lookup(c, flow_id, pk, hash.as_deref(), step_id, false))?;
    let Some((tenant_admin, found)) = found else {
        return settle(ctx, true, Err(unauthorized()));
    };
    let (head, found) = settle(ctx, false, found)?;
    require_as(tenant_admin, head.role, Perm::Read, &head.workspace_id)?;
    Ok(single(200, flow_id, &store::found(found, step_id)?))
}

/// Runs a snapshot write: the caller (401), the flow 404, membership and
/// `workspaces.flow.edit` 403, then `f`.
fn write<T: Send + 'static>(
    ctx: &IdCtx,
    flow_id: &str,
    f: impl FnOnce(&rusqlite::Connection, &flows::FlowHead) -> Result<T> + Send + 'static,
) -> Result<Option<T>> {
    let ((pk, hash), fid) = (caller(&ctx.who), flow_id.to_string());
    let verified_admin = matches!(&ctx.who, Identity::Verified(p) if p.tenant_admin);
    ctx.app.store.write(move |c| {
        // Remembered credentials are confirmed here, first; verified ones were just now.
        let tenant_admin = match &hash {
            None => verified_admin,
            Some(h) => match users::if_hash_is(c, pk, false, h)? {
                Some((_, _, tenant_admin)) => tenant_admin,
                None => return Ok(None),
            },
        };
        let head = flows::head(c, &fid, pk)?;
        require_as(tenant_admin, head.role, Perm::FlowEdit, &head.workspace_id)?;
        f(c, &head).map(Some)
    })
}

/// Like `write`, for a step named in the URL: the caller, the flow, the caller's role and the
/// step's snapshot are read in one statement, and `f` gets the step's state. `Ok(None)`: the
/// caller was not confirmed.
fn write_step<T: Send + 'static>(
    ctx: &IdCtx,
    flow_id: &str,
    step_id: &str,
    f: impl FnOnce(&rusqlite::Connection, &flows::FlowHead, Option<Option<Snapshot>>) -> Result<T>
        + Send
        + 'static,
) -> Result<Option<T>> {
    let ((pk, hash), fid, step) = (caller(&ctx.who), flow_id.to_string(), step_id.to_string());
    ctx.app.store.write(move |c| {
        let Some((tenant_admin, found)) = store::lookup(c, &fid, pk, hash.as_deref(), &step, true)?
        else {
            return Ok(None);
        };
        let (head, current) = found?;
        require_as(tenant_admin, head.role, Perm::FlowEdit, &head.workspace_id)?;
        f(c, &head, current).map(Some)
    })
}

/// The answer of a write: 401 when the caller was not confirmed, else the write's own.
fn settled<T>(ctx: &IdCtx, result: Result<Option<T>>) -> Result<T> {
    match result {
        Ok(None) => settle(ctx, true, Err(unauthorized())),
        Ok(Some(v)) => settle(ctx, false, Ok(v)),
        Err(e) => settle(ctx, false, Err(e)),
    }
}

pub fn create(ctx: &IdCtx, flow_id: &str) -> Result<Response> {
    if !is_id(flow_id) {
        return malformed_flow_id(ctx, flow_id);
    }
    let input = value_of(ctx, None);
    let (pre, max, fid, change) = (
        precondition(ctx),
        ctx.app.config.max_snapshot_bytes,
        flow_id.to_string(),
        change(ctx),
    );
    let s = settled(
        ctx,
        write(ctx, flow_id, move |c, head| {
            let (step, value) = input?;
            let s = store::create(c, head, &fid, &step, value, &pre, max, &change)?;
            event(
                c,
                "snapshot.create",
                &change,
                head,
                &fid,
                &step,
                &s.version_id(),
            )?;
            Ok(s)
        }),
    )?;
    Ok(single(201, flow_id, &s))
}

pub fn update(ctx: &IdCtx, flow_id: &str, step_id: &str) -> Result<Response> {
    if !is_id(flow_id) {
        return malformed_flow_id(ctx, flow_id);
    }
    let input = value_of(ctx, Some(step_id));
    let (pre, max, fid, change) = (
        precondition(ctx),
        ctx.app.config.max_snapshot_bytes,
        flow_id.to_string(),
        change(ctx),
    );
    let s = settled(
        ctx,
        write_step(ctx, flow_id, step_id, move |c, head, current| {
            let (step, value) = input?;
            let s = store::update(c, head, &fid, &step, current, value, &pre, max, &change)?;
            event(
                c,
                "snapshot.update",
                &change,
                head,
                &fid,
                &step,
                &s.version_id(),
            )?;
            Ok(s)
        }),
    )?;
    Ok(single(200, flow_id, &s))
}

pub fn delete(ctx: &IdCtx, flow_id: &str, step_id: &str) -> Result<Response> {
    if !is_id(flow_id) {
        return malformed_flow_id(ctx, flow_id);
    }
    let (pre, fid, step, change) = (
        precondition(ctx),
        flow_id.to_string(),
        step_id.to_string(),
        change(ctx),
    );
    settled(
        ctx,
        write_step(ctx, flow_id, step_id, move |c, head, current| {
            let version = store::delete(c, head, &fid, &step, current, &pre, &change)?;
            event(c, "snapshot.delete", &change, head, &fid, &step, &version)
        }),
    )?;
    Ok(super::no_content())
}

/// `POST .../snapshots/{step_id}/versions/{version_id}/restore` (section 9): 200 when the step had
/// a snapshot, 201 when the restore created one.
pub fn restore(ctx: &IdCtx, flow_id: &str, step_id: &str, version_id: &str) -> Result<Response> {
    if !is_id(flow_id) {
        return malformed_flow_id(ctx, flow_id);
    }
    let (pre, max, fid, step, vid, change) = (
        precondition(ctx),
        ctx.app.config.max_snapshot_bytes,
        flow_id.to_string(),
        step_id.to_string(),
        version_id.to_string(),
        change(ctx),
    );
    let (s, created) = settled(
        ctx,
        write_step(ctx, flow_id, step_id, move |c, head, current| {
            let (s, created) =
                store::restore(c, head, &fid, &step, current, &vid, &pre, max, &change)?;
            event(
                c,
                "snapshot.restore",
                &change,
                head,
                &fid,
                &step,
                &s.version_id(),
            )?;
            Ok((s, created))
        }),
    )?;
    Ok(single(if created { 201 } else { 200 }, flow_id, &s))
}

/// The author of a change and the history setting.
fn change<W>(ctx: &Ctx<W>) -> Change
where
    W: Caller,
{
    Change {
        user_id: Some(ctx.who.user_id().to_string()),
        keep: ctx.app.config.history_max_versions,
    }
}

/// The public id of whoever sent the request.
pub(super) trait Caller {
    fn user_id(&self) -> &str;
}

impl Caller for Identity {
    fn user_id(&self) -> &str {
        match self {
            Identity::Verified(p) => &p.id,
            Identity::Remembered(c) => &c.user_id,
        }
    }
}

/// The audit event of a snapshot change, in its transaction.
fn event(
    c: &rusqlite::Connection,
    action: &str,
    change: &Change,
    head: &flows::FlowHead,
    flow_id: &str,
    step_id: &str,
    version_id: &str,
) -> Result<()> {
    audit::record(
        c,
        &NewEvent {
            action,
            user_id: change.user_id.as_deref(),
            workspace_id: Some(&head.workspace_id),
            target: Target::Snapshot { step_id, flow_id },
            version_id: Some(version_id),
        },
    )?;
    Ok(())
}
