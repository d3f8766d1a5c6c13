//! The validation rules of the API's attributes that are also the rules of a fixture file
//! (spec section 11: "validated by the same rules"): one function per rule, called by the
//! handlers in `api/` and by the fixture loader in `fixture/`. Pure: values in, a value or a 400
//! naming the member (`/data/attributes/...`) out.

use crate::api::doc::{opt_nullable_str, opt_str, req_str};
use crate::config::Config;
use crate::db::flows::{FlowPatch, NewFlow};
use crate::error::{Error, Result};
use crate::graph;
use serde_json::{Map, Value};

/// Workspace name rule: 3 to 40 characters of letters, digits, space, `-` and `_`.
pub fn workspace_name_ok(name: &str) -> bool {
    let n = name.chars().count();
    (3..=40).contains(&n)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
}

/// A user's `first_name` or `last_name`: at most 100 characters, without control characters.
pub fn person_name_ok(v: &str) -> bool {
    v.chars().count() <= 100 && !v.chars().any(|c| c.is_control())
}

pub const FLOW_TYPES: [&str; 2] = ["ordinary", "long_running"];

fn flow_type(attrs: &Map<String, Value>) -> Result<Option<String>> {
    match opt_str(attrs, "type")? {
        Some(t) if FLOW_TYPES.contains(&t.as_str()) => Ok(Some(t)),
        Some(t) => Err(Error::invalid(
            "/data/attributes/type",
            format!("flow type {t:?} must be \"ordinary\" or \"long_running\""),
        )),
        None => Ok(None),
    }
}

fn flow_name(attrs: &Map<String, Value>) -> Result<Option<String>> {
    match opt_str(attrs, "name")? {
        Some(n) if n.trim().is_empty() || n.chars().count() > 255 => Err(Error::invalid(
            "/data/attributes/name",
            "`name` must be 1 to 255 characters, not only spaces",
        )),
        other => Ok(other),
    }
}

fn flow_graph(attrs: &Map<String, Value>, max_steps: usize) -> Result<Option<graph::Graph>> {
    match attrs.get("graph") {
        None => Ok(None),
        Some(g) => graph::validate(g, max_steps).map(Some),
    }
}

fn nodes_config(attrs: &Map<String, Value>) -> Result<Option<String>> {
    match attrs.get("nodes_config") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some("{}".into())),
        Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(Error::invalid(
            "/data/attributes/nodes_config",
            "`nodes_config` must be an object",
        )),
    }
}

/// A string attribute (absent, null or a string) of at most `max` characters.
fn bounded<T: AsRef<str>>(v: Option<T>, name: &str, max: usize) -> Result<Option<T>> {
    if v.as_ref().is_some_and(|s| s.as_ref().chars().count() > max) {
        return Err(Error::invalid(
            &format!("/data/attributes/{name}"),
            format!("`{name}` must be at most {max} characters"),
        ));
    }
    Ok(v)
}

fn bounded_nullable(
    v: Option<Option<String>>,
    name: &str,
    max: usize,
) -> Result<Option<Option<String>>> {
    match v {
        Some(Some(s)) => Ok(Some(bounded(Some(s), name, max)?)),
        other => Ok(other),
    }
}

pub fn flow_patch(a: &Map<String, Value>, config: &Config) -> Result<FlowPatch> {
    let p = FlowPatch {
        name: flow_name(a)?,
        description: bounded_nullable(opt_nullable_str(a, "description")?, "description", 10_000)?,
        flow_type: flow_type(a)?,
        default_mapper_type: bounded(
            opt_str(a, "default_mapper_type")?,
            "default_mapper_type",
            255,
        )?,
        cron: bounded_nullable(opt_nullable_str(a, "cron")?, "cron", 255)?,
        graph: flow_graph(a, config.max_flow_steps)?,
        nodes_config: nodes_config(a)?,
    };
    let bytes = p.graph.as_ref().map_or(0, |g| g.json.len())
        + p.nodes_config.as_ref().map_or(0, String::len);
    if bytes > config.max_flow_bytes {
        return Err(Error::too_large(format!(
            "The flow's graph and nodes_config are {bytes} bytes of JSON; the limit (max_flow_bytes) is {} bytes",
            config.max_flow_bytes
        )));
    }
    Ok(p)
}

pub fn new_flow(a: &Map<String, Value>, config: &Config) -> Result<NewFlow> {
    req_str(a, "name")?;
    req_str(a, "type")?;
    if !a.contains_key("graph") {
        return Err(Error::invalid(
            "/data/attributes/graph",
            "`graph` is required: {\"nodes\": [...], \"edges\": [...]}",
        ));
    }
    let p = flow_patch(a, config)?;
    Ok(NewFlow {
        name: p.name.unwrap_or_default(),
        description: p.description.unwrap_or(None),
        flow_type: p.flow_type.unwrap_or_default(),
        default_mapper_type: p.default_mapper_type.unwrap_or_else(|| "jsonata".into()),
        cron: p.cron.unwrap_or(None),
        graph: p.graph.ok_or_else(|| Error::internal("graph vanished"))?,
        nodes_config: p.nodes_config.unwrap_or_else(|| "{}".into()),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn workspace_name_rule() {
        assert!(super::workspace_name_ok("My team_1-x"));
        assert!(!super::workspace_name_ok("ab"));
        assert!(!super::workspace_name_ok(&"a".repeat(41)));
        assert!(!super::workspace_name_ok("a/b/c"));
    }

    #[test]
    fn person_name_rule() {
        assert!(super::person_name_ok("Ada"));
        assert!(super::person_name_ok(""));
        assert!(!super::person_name_ok(&"a".repeat(101)));
        assert!(!super::person_name_ok("a\nb"));
    }
}
