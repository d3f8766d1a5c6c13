//! Validation of a flow's graph document (spec section 5). Pure: JSON in, a normalized graph or a
//! 400 naming the member out. The node ids become the flow's step ids.

use crate::error::{Error, Result};
use crate::util::is_step_id;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// A validated graph: its normalized JSON text and its step ids in graph order.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub json: String,
    pub step_ids: Vec<String>,
}

const PTR: &str = "/data/attributes/graph";

fn bad(pointer: String, detail: String) -> Error {
    Error::invalid(&pointer, detail)
}

/// Checks the graph and assigns each edge its id (`SOURCE:TARGET`). Unknown members of the graph,
/// its nodes and its edges are kept as sent.
pub fn validate(v: &Value, max_steps: usize) -> Result<Graph> {
    let obj = v.as_object().ok_or_else(|| {
        bad(
            PTR.into(),
            "`graph` must be an object with `nodes` and `edges` arrays".into(),
        )
    })?;
    let nodes = match obj.get("nodes") {
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(bad(
                format!("{PTR}/nodes"),
                "`graph.nodes` must be an array of nodes".into(),
            ))
        }
        None => {
            return Err(bad(
                format!("{PTR}/nodes"),
                "`graph.nodes` is required: an array of nodes".into(),
            ))
        }
    };
    if nodes.len() > max_steps {
        return Err(bad(
            format!("{PTR}/nodes"),
            format!(
                "the graph has {} nodes; the limit (max_flow_steps) is {max_steps}",
                nodes.len()
            ),
        ));
    }
    let mut step_ids = Vec::with_capacity(nodes.len());
    let mut seen = HashSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let at = format!("{PTR}/nodes/{i}");
        let n = node
            .as_object()
            .ok_or_else(|| bad(at.clone(), format!("node {i} must be an object")))?;
        let id = match n.get("id") {
            Some(Value::String(s)) if is_step_id(s) => s.clone(),
            Some(Value::String(_)) => {
                return Err(bad(
                    format!("{at}/id"),
                    format!(
                        "node {i}: `id` must be 1 to 64 characters of A-Z, a-z, 0-9, `_` and `-`"
                    ),
                ))
            }
            _ => {
                return Err(bad(
                    format!("{at}/id"),
                    format!("node {i}: `id` is required and must be a string"),
                ))
            }
        };
        if !seen.insert(id.clone()) {
            return Err(bad(
                format!("{at}/id"),
                format!("node id `{id}` appears more than once; node ids must be unique"),
            ));
        }
        match n.get("command") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return Err(bad(
                    format!("{at}/command"),
                    format!("node `{id}`: `command` is required and must be a non-empty string"),
                ))
            }
        }
        for key in ["name", "description"] {
            if let Some(v) = n.get(key) {
                if !(v.is_string() || v.is_null()) {
                    return Err(bad(
                        format!("{at}/{key}"),
                        format!("node `{id}`: `{key}` must be a string"),
                    ));
                }
            }
        }
        if let Some(f) = n.get("fields") {
            if !(f.is_object() || f.is_null()) {
                return Err(bad(
                    format!("{at}/fields"),
                    format!("node `{id}`: `fields` must be an object"),
                ));
            }
        }
        step_ids.push(id);
    }
    let edges_in = match obj.get("edges") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(bad(
                format!("{PTR}/edges"),
                "`graph.edges` must be an array of edges".into(),
            ))
        }
    };
    let mut edges = Vec::with_capacity(edges_in.len());
    let mut edge_ids = HashSet::new();
    for (i, edge) in edges_in.into_iter().enumerate() {
        let at = format!("{PTR}/edges/{i}");
        let Value::Object(e) = edge else {
            return Err(bad(
                at,
                format!("edge {i} must be an object with `source` and `target`"),
            ));
        };
        let mut ends = Vec::with_capacity(2);
        for key in ["source", "target"] {
            match e.get(key) {
                Some(Value::String(s)) if seen.contains(s) => ends.push(s.clone()),
                Some(Value::String(s)) => {
                    return Err(bad(
                        format!("{at}/{key}"),
                        format!("edge {i}: `{key}` names `{s}`, which is not a node of the graph"),
                    ))
                }
                _ => {
                    return Err(bad(
                        format!("{at}/{key}"),
                        format!("edge {i}: `{key}` is required and must be a node id"),
                    ))
                }
            }
        }
        let id = format!("{}:{}", ends[0], ends[1]);
        if !edge_ids.insert(id.clone()) {
            return Err(bad(at, format!("edge {id} appears more than once")));
        }
        let mut out = Map::with_capacity(e.len() + 1);
        out.insert("id".into(), Value::String(id));
        for (k, v) in e {
            if k != "id" {
                out.insert(k, v);
            }
        }
        edges.push(Value::Object(out));
    }
    let mut graph = Map::with_capacity(obj.len());
    for (k, v) in obj {
        graph.insert(
            k.clone(),
            if k == "edges" { Value::Null } else { v.clone() },
        );
    }
    graph.insert("edges".into(), Value::Array(edges));
    Ok(Graph {
        json: Value::Object(graph).to_string(),
        step_ids,
    })
}

/// True when two stored graph texts differ as JSON values (member order aside).
pub fn differs(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => x != y,
        _ => a != b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn assigns_edge_ids_and_keeps_unknown_members() {
        let g = validate(
            &json!({"nodes": [{"id": "a", "command": "x/y:get@1", "extra": 1}, {"id": "b", "command": "c"}],
                    "edges": [{"source": "a", "target": "b", "id": "ignored", "config": {}}]}),
            10,
        )
        .unwrap();
        assert_eq!(g.step_ids, ["a", "b"]);
        let v: Value = serde_json::from_str(&g.json).unwrap();
        assert_eq!(v["edges"][0]["id"], "a:b");
        assert_eq!(v["nodes"][0]["extra"], 1);
    }

    #[test]
    fn refusals_name_the_member() {
        let cases = [
            (json!([]), "/data/attributes/graph"),
            (
                json!({"nodes": [{"id": "a"}]}),
                "/data/attributes/graph/nodes/0/command",
            ),
            (
                json!({"nodes": [{"id": "a.b", "command": "c"}]}),
                "/data/attributes/graph/nodes/0/id",
            ),
            (
                json!({"nodes": [{"id": "a", "command": "c"}, {"id": "a", "command": "c"}]}),
                "/data/attributes/graph/nodes/1/id",
            ),
            (
                json!({"nodes": [{"id": "a", "command": "c"}], "edges": [{"source": "a", "target": "z"}]}),
                "/data/attributes/graph/edges/0/target",
            ),
        ];
        for (v, ptr) in cases {
            let e = validate(&v, 10).unwrap_err();
            assert_eq!(e.pointer.as_deref(), Some(ptr), "{v}");
            assert_eq!(e.kind.status(), 400);
        }
        assert!(validate(
            &json!({"nodes": [{"id": "a", "command": "c"}, {"id": "b", "command": "c"}]}),
            1
        )
        .is_err());
    }
}
