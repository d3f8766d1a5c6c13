//! Issue 7.3: property tests. The request body reader, the write-document parser and the graph
//! validator get arbitrary bytes and arbitrary JSON: they never panic, and they answer either a
//! valid result or a 4xx error with a detail.

use flowsnap::api::doc::{parse_snapshot_write, parse_write};
use flowsnap::api::read_json;
use flowsnap::graph;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Arbitrary JSON values, including deep and wide ones.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z0-9_:@ -]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z_]{1,8}",
                        Just("id".to_string()),
                        Just("nodes".to_string()),
                        Just("edges".to_string()),
                        Just("command".to_string()),
                        Just("source".to_string()),
                        Just("target".to_string()),
                        Just("data".to_string()),
                        Just("type".to_string()),
                        Just("attributes".to_string())
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Graph-shaped JSON: mostly valid structure with arbitrary holes.
fn arb_graph() -> impl Strategy<Value = Value> {
    let id = prop_oneof![8 => "[a-zA-Z0-9_-]{1,8}", 1 => any::<String>(), 1 => Just(String::new())];
    let command =
        prop_oneof![8 => Just(json!("elasticio/a:b@1")), 1 => Just(json!("")), 1 => arb_json()];
    let fields = prop_oneof![8 => Just(json!({"k": 1})), 1 => arb_json()];
    let node = (id, command, fields)
        .prop_map(|(id, command, fields)| json!({"id": id, "command": command, "fields": fields}));
    (
        prop::collection::vec(node, 0..8),
        prop::collection::vec((0usize..10, 0usize..10), 0..6),
        arb_json(),
    )
        .prop_map(|(nodes, pairs, extra)| {
            let ids: Vec<Value> = nodes.iter().map(|n| n["id"].clone()).collect();
            let pick = |i: usize| {
                ids.get(i)
                    .cloned()
                    .unwrap_or_else(|| json!(format!("missing{i}")))
            };
            let edges: Vec<Value> = pairs
                .iter()
                .map(|&(a, b)| json!({"source": pick(a), "target": pick(b)}))
                .collect();
            json!({"nodes": nodes, "edges": edges, "extra": extra})
        })
}

fn assert_client_error(e: &flowsnap::error::Error) {
    let s = e.kind.status();
    assert!((400..500).contains(&s), "status {s}: {}", e.detail);
    assert!(!e.detail.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn body_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048),
                                   ct in prop_oneof![Just("application/json"), Just("text/plain"), Just("application/vnd.api+json; charset=utf-8"), Just("")]) {
        let mut headers = vec![];
        if !ct.is_empty() {
            headers.push(("Content-Type".to_string(), ct.to_string()));
        }
        let req = rouille::Request::fake_http("POST", "/v2/workspaces", headers, bytes);
        match read_json(&req, 1024) {
            Ok(_) => {}
            Err(e) => assert_client_error(&e),
        }
    }

    #[test]
    fn write_parser_takes_any_json(v in arb_json(), wrap in any::<bool>(), url in prop_oneof![Just(None), Just(Some("s1"))]) {
        let body = if wrap { json!({"data": v}) } else { v };
        match parse_write(body, "snapshot", url) {
            Ok(doc) => {
                if let (Some(id), Some(u)) = (&doc.id, url) { prop_assert_eq!(id.as_str(), u); }
            }
            Err(e) => assert_client_error(&e),
        }
    }

    #[test]
    fn snapshot_parser_takes_any_bytes_and_json(v in arb_json(), bytes in prop::collection::vec(any::<u8>(), 0..256), pick in 0u8..4) {
        let doc = json!({"data": {"type": "snapshot", "id": "s1", "attributes": {"snapshot": v.clone()}}});
        let body = match pick {
            0 => bytes,
            1 => doc.to_string().into_bytes(),
            2 => serde_json::to_string_pretty(&json!({"data": v.clone()})).unwrap().into_bytes(),
            _ => serde_json::to_string_pretty(&doc).unwrap().into_bytes(),
        };
        match parse_snapshot_write(&body, Some("s1"), 1000) {
            Ok((step, text)) => {
                prop_assert_eq!(step.as_str(), "s1");
                // The kept text is valid JSON with no whitespace between tokens, and the same value.
                let parsed: Value = serde_json::from_str(&text).unwrap();
                if pick == 1 || pick == 3 {
                    prop_assert_eq!(&parsed, &v);
                    // Pretty-printed or not, the kept text is the compact text, byte for byte.
                    prop_assert_eq!(text, v.to_string());
                }
            }
            Err(e) => assert_client_error(&e),
        }
    }

    #[test]
    fn graph_validator_takes_any_json(v in prop_oneof![arb_json(), arb_graph()]) {
        match graph::validate(&v, 50) {
            Ok(g) => {
                // A valid result is consistent: unique step ids of the allowed characters, and a
                // normalized text that validates again to the same graph.
                let mut ids = g.step_ids.clone();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), g.step_ids.len());
                prop_assert!(g.step_ids.iter().all(|s| flowsnap::util::is_step_id(s)));
                let again = graph::validate(&serde_json::from_str(&g.json).unwrap(), 50).unwrap();
                prop_assert_eq!(again, g);
            }
            Err(e) => assert_client_error(&e),
        }
    }
}

#[test]
fn deep_nesting_is_a_400_not_a_stack_overflow() {
    for open in ["[", "{\"a\":"] {
        let mut body = String::from(
            "{\"data\":{\"type\":\"snapshot\",\"id\":\"s\",\"attributes\":{\"snapshot\":",
        );
        body.push_str(&open.repeat(100_000));
        let req = rouille::Request::fake_http(
            "POST",
            "/x",
            vec![("Content-Type".into(), "application/json".into())],
            body.into_bytes(),
        );
        let e = read_json(&req, 10 * 1024 * 1024).unwrap_err();
        assert_eq!(e.kind.status(), 400, "{}", e.detail);
    }
}

/// The generators reach both sides: valid graphs and refusals (so the properties above are not
/// vacuous).
#[test]
fn generators_produce_valid_and_invalid_graphs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_graph();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..500 {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        match graph::validate(&v, 50) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(ok >= 25 && err >= 25, "valid {ok}, invalid {err}");
}
