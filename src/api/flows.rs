//! `/v2/flows`: flows and their graphs, start and stop (spec section 5), and the runtime read path
//! `/v1/tasks/{flow_id}/steps/{step_id}` (section 7).
//!
//! Writes read the body first but report its errors only after the flow (404) and the caller's
//! permission (403) have been checked inside the write transaction, which is the spec's order.

use super::doc::{parse_write, relationship_id, WriteDoc};
use super::{audit_event, json_response, no_content, raw_json_response, Ctx};
use crate::access::{require, Perm};
use crate::config::Config;
use crate::db::audit::Target;
use crate::db::flows::{self as store, Flow, FlowPatch, ListQuery, NewFlow, Sort};
use crate::db::snapshots::Change;
use crate::db::{snapshots, workspaces};
use crate::error::{Error, Result};
use crate::rules;
use crate::util::{iso_ms, json_str};
use rouille::Response;
use serde_json::{json, Value};

/// The flow resource as JSON text. The stored graph and nodes_config are JSON text already
/// (normalized when written) and go into the document as they are, without a parse.
pub fn resource(f: &Flow) -> String {
    let opt_time = |t: Option<i64>| {
        t.map(|t| format!("\"{}\"", iso_ms(t)))
            .unwrap_or_else(|| "null".into())
    };
    let opt_str = |s: &Option<String>| s.as_deref().map(json_str).unwrap_or_else(|| "null".into());
    // Ids are 24 hex characters and status and type are fixed words: safe inside JSON strings.
    format!(
        concat!(
            r#"{{"id":"{id}","type":"flow","links":{{"self":"/v2/flows/{id}"}},"attributes":{{"#,
            r#""name":{name},"description":{description},"type":"{flow_type}","status":"{status}","#,
            r#""current_status":"{status}","default_mapper_type":{mapper},"cron":{cron},"#,
            r#""graph":{graph},"nodes_config":{nodes_config},"created_at":"{created}","updated_at":"{updated}","#,
            r#""last_start_time":{started},"last_stop_time":{stopped}}},"relationships":{{"#,
            r#""workspace":{{"data":{{"id":"{ws}","type":"workspace"}},"links":{{"self":"/v2/workspaces/{ws}"}}}},"#,
            r#""user":{{"data":{{"id":"{user}","type":"user"}},"links":{{"self":"/v2/users/{user}"}}}}}}}}"#
        ),
        id = f.id,
        name = json_str(&f.name),
        description = opt_str(&f.description),
        flow_type = f.flow_type,
        status = f.status,
        mapper = json_str(&f.default_mapper_type),
        cron = opt_str(&f.cron),
        graph = f.graph,
        nodes_config = f.nodes_config,
        created = iso_ms(f.created_at),
        updated = iso_ms(f.updated_at),
        started = opt_time(f.last_start_time),
        stopped = opt_time(f.last_stop_time),
        ws = f.workspace_id,
        user = f.creator_id,
    )
}

fn single(status: u16, f: &Flow) -> Response {
    raw_json_response(status, format!(r#"{{"data":{},"meta":{{}}}}"#, resource(f)))
}

fn patch_from(doc: &WriteDoc, config: &Config) -> Result<FlowPatch> {
    rules::flow_patch(&doc.attributes, config)
}

fn new_flow(doc: &WriteDoc, config: &Config) -> Result<NewFlow> {
    rules::new_flow(&doc.attributes, config)
}

/// Runs `f` in a write transaction once the flow exists (404) and the caller holds `perm` (403).
fn write<T: Send + 'static>(
    ctx: &Ctx,
    id: &str,
    perm: Perm,
    f: impl FnOnce(&rusqlite::Connection, &Flow) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (who, id) = (ctx.who.clone(), id.to_string());
    ctx.app.store.write(move |c| {
        let (flow, role) = store::require(c, &id, who.pk)?;
        require(&who, role, perm, &flow.workspace_id)?;
        f(c, &flow)
    })
}

/// The author of a change to a flow (a graph change may delete snapshots: versions record them).
fn change(ctx: &Ctx) -> Change {
    Change {
        user_id: Some(ctx.who.id.clone()),
        keep: ctx.app.config.history_max_versions,
    }
}

/// The audit event of a change to `flow`.
fn event(c: &rusqlite::Connection, change: &Change, action: &str, flow: &Flow) -> Result<()> {
    // A request's change always has its user (`change` sets it).
    let Some(user) = change.user_id.as_deref() else {
        return Err(Error::internal("a flow change without its user"));
    };
    audit_event(
        c,
        user,
        action,
        Some(&flow.workspace_id),
        Target::Flow(&flow.id),
    )
}

fn reload(c: &rusqlite::Connection, id: &str, user_pk: i64) -> Result<Flow> {
    Ok(store::require(c, id, user_pk)?.0)
}

pub fn get(ctx: &Ctx, id: &str) -> Result<Response> {
    let pk = ctx.who.pk;
    let (flow, role) = ctx.app.store.read(|c| store::require(c, id, pk))?;
    require(&ctx.who, role, Perm::Read, &flow.workspace_id)?;
    Ok(single(200, &flow))
}

pub fn list(ctx: &Ctx) -> Result<Response> {
    let ws_id = ctx
        .param("workspace_id")
        .ok_or_else(|| {
            Error::bad_request(
                "Query parameter workspace_id is required: GET /v2/flows?workspace_id=WORKSPACE_ID",
            )
        })?
        .to_string();
    let pk = ctx.who.pk;
    let (ws, role) = ctx.app.store.read(|c| workspaces::require(c, &ws_id, pk))?;
    require(&ctx.who, role, Perm::Read, &ws.id)?;
    let page = ctx.page()?;
    let status = match ctx.param("filter[status]") {
        None => None,
        Some(s @ ("active" | "inactive")) => Some(s.to_string()),
        Some(s) => {
            return Err(Error::bad_request(format!(
                "filter[status] must be active or inactive, not {s:?}"
            )))
        }
    };
    let flow_type = match ctx.param("filter[type]") {
        None => None,
        Some(t) if rules::FLOW_TYPES.contains(&t) => Some(t.to_string()),
        Some(t) => {
            return Err(Error::bad_request(format!(
                "filter[type] must be ordinary or long_running, not {t:?}"
            )))
        }
    };
    let (sort, descending) = match ctx.param("sort") {
        None => (Sort::Created, false),
        Some(s) => {
            let (desc, key) = match s.strip_prefix('-') {
                Some(k) => (true, k),
                None => (false, s),
            };
            let sort = match key {
                "name" => Sort::Name,
                "created_at" => Sort::CreatedAt,
                "updated_at" => Sort::UpdatedAt,
                _ => {
                    return Err(Error::bad_request(format!(
                        "sort must be name, created_at or updated_at, optionally with a leading `-`; not {s:?}"
                    )))
                }
            };
            (sort, desc)
        }
    };
    let search = ctx
        .param("search")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(Error::bad_request("search must be at most 200 characters"));
    }
    let q = ListQuery {
        workspace_pk: ws.pk,
        status,
        flow_type,
        search,
        sort,
        descending,
        offset: page.offset(),
        limit: page.size,
    };
    let (flows, total) = ctx.app.store.read(|c| store::list(c, &q))?;
    Ok(ctx.collection_raw(flows.iter().map(resource).collect(), page, total))
}

pub fn create(ctx: &Ctx) -> Result<Response> {
    let doc = parse_write(ctx.body()?, "flow", None)?;
    let ws_id = relationship_id(&doc.relationships, "workspace")?.ok_or_else(|| {
        Error::invalid(
            "/data/relationships/workspace",
            "`relationships.workspace.data.id` is required: the workspace the flow belongs to",
        )
    })?;
    let input = new_flow(&doc, &ctx.app.config);
    let who = ctx.who.clone();
    let flow = ctx.app.store.write(move |c| {
        let (ws, role) = workspaces::require(c, &ws_id, who.pk)?;
        require(&who, role, Perm::FlowEdit, &ws.id)?;
        let id = store::insert(c, ws.pk, &who.id, &input?)?;
        audit_event(c, &who.id, "flow.create", Some(&ws.id), Target::Flow(&id))?;
        reload(c, &id, who.pk)
    })?;
    Ok(single(201, &flow))
}

pub fn update(ctx: &Ctx, id: &str) -> Result<Response> {
    let input = ctx
        .body()
        .and_then(|b| parse_write(b, "flow", Some(id)))
        .and_then(|d| patch_from(&d, &ctx.app.config));
    let (pk, change) = (ctx.who.pk, change(ctx));
    let flow = write(ctx, id, Perm::FlowEdit, move |c, flow| {
        store::update(c, flow, input?, &change)?;
        event(c, &change, "flow.update", flow)?;
        reload(c, &flow.id, pk)
    })?;
    Ok(single(200, &flow))
}

pub fn delete(ctx: &Ctx, id: &str) -> Result<Response> {
    let change = change(ctx);
    write(ctx, id, Perm::FlowEdit, move |c, flow| {
        store::delete(c, flow.pk)?;
        event(c, &change, "flow.delete", flow)
    })?;
    Ok(no_content())
}

pub fn start(ctx: &Ctx, id: &str) -> Result<Response> {
    let (pk, change) = (ctx.who.pk, change(ctx));
    let flow = write(ctx, id, Perm::FlowToggle, move |c, flow| {
        store::set_running(c, flow, true)?;
        event(c, &change, "flow.start", flow)?;
        reload(c, &flow.id, pk)
    })?;
    Ok(single(202, &flow))
}

pub fn stop(ctx: &Ctx, id: &str) -> Result<Response> {
    let change = change(ctx);
    write(ctx, id, Perm::FlowToggle, move |c, flow| {
        store::set_running(c, flow, false)?;
        event(c, &change, "flow.stop", flow)
    })?;
    Ok(json_response(202, &json!({"data": {}, "meta": {}})))
}

/// `function`: the part of a node's command after the last `:` and before any `@`.
pub fn function_of(command: &str) -> &str {
    let after = command.rsplit(':').next().unwrap_or(command);
    after.split('@').next().unwrap_or(after)
}

/// `GET /v1/tasks/{flow_id}/steps/{step_id}`: what a component runtime reads at start.
pub fn task_step(ctx: &Ctx, flow_id: &str, step_id: &str) -> Result<Response> {
    let who = &ctx.who;
    // The flow, the caller's right to read it, and the step's snapshot, in one read transaction.
    let (flow, snapshot) = ctx.app.store.read(|c| {
        let (flow, role) = store::require(c, flow_id, who.pk)?;
        require(who, role, Perm::Read, &flow.workspace_id)?;
        let snapshot = snapshots::step_snapshot(c, flow.pk, step_id)?;
        Ok((flow, snapshot))
    })?;
    let graph: Value = serde_json::from_str(&flow.graph)
        .map_err(|_| Error::internal("stored graph is not JSON"))?;
    let node = graph["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == step_id))
        .ok_or_else(|| {
            Error::not_found(format!("Step {step_id} does not exist in flow {flow_id}"))
        })?;
    let command = node["command"].as_str().unwrap_or("");
    let config = match &node["fields"] {
        Value::Object(m) => Value::Object(m.clone()).to_string(),
        _ => "{}".to_string(),
    };
    let snapshot = snapshot
        .flatten()
        .map(|s| s.value)
        .unwrap_or_else(|| "{}".to_string());
    Ok(raw_json_response(
        200,
        format!(
            r#"{{"id":{},"function":{},"config":{config},"snapshot":{snapshot},"is_passthrough":false,"variables":{{}}}}"#,
            json_str(step_id),
            json_str(function_of(command)),
        ),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn function_is_after_last_colon_before_at() {
        assert_eq!(
            super::function_of("elasticio/http:httpRequestAction@1.2.3"),
            "httpRequestAction"
        );
        assert_eq!(super::function_of("a:b:c"), "c");
        assert_eq!(super::function_of("plain"), "plain");
    }
}
