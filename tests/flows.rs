//! Flows and steps (spec section 5) and the runtime read path (section 7), over HTTP against the
//! real binary.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// helpers

/// `2026-11-27T10:23:58.123Z`
fn is_iso_ms(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn is_flow_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn attrs(r: &Resp) -> Value {
    r.json()["data"]["attributes"].clone()
}

/// Sends a request that must be refused: checks the status, the error document, that the error
/// names `pointer` (when given) and says `detail_has`, and that the database did not change.
#[track_caller]
fn refused(
    s: &Server,
    what: &str,
    status: u16,
    pointer: Option<&str>,
    detail_has: &str,
    send: impl FnOnce() -> Resp,
) {
    let before = s.state();
    let r = send();
    assert_eq!(
        r.status,
        status,
        "{what}: unexpected status; body: {}",
        r.text()
    );
    r.expect(status);
    let e = &r.json()["errors"][0];
    if let Some(p) = pointer {
        assert_eq!(
            e["source"]["pointer"], p,
            "{what}: wrong error pointer: {e}"
        );
    }
    let detail = e["detail"].as_str().unwrap_or("");
    assert!(
        detail.to_lowercase().contains(&detail_has.to_lowercase()),
        "{what}: detail should mention {detail_has:?}: {e}"
    );
    assert_eq!(
        before,
        s.state(),
        "{what}: a refused request changed the database"
    );
}

/// Rows of one query on the server's database, each row's columns joined with `|`.
fn rows(s: &Server, sql: &str) -> Vec<String> {
    let c =
        rusqlite::Connection::open_with_flags(s.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open db");
    let mut st = c.prepare(sql).expect("prepare");
    let n = st.column_count();
    let mut out = Vec::new();
    let mut q = st.query([]).expect("query");
    while let Some(r) = q.next().expect("row") {
        let cols: Vec<String> = (0..n)
            .map(
                |i| match r.get::<_, rusqlite::types::Value>(i).expect("col") {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    v => format!("{v:?}"),
                },
            )
            .collect();
        out.push(cols.join("|"));
    }
    out
}

fn flow_pk(s: &Server, id: &str) -> String {
    rows(s, &format!("SELECT pk FROM flows WHERE id = '{id}'"))
        .pop()
        .unwrap_or_else(|| panic!("flow {id} not in the database"))
}

fn steps_of(s: &Server, id: &str) -> Vec<String> {
    let pk = flow_pk(s, id);
    rows(
        s,
        &format!("SELECT step_id FROM steps WHERE flow_pk = {pk} ORDER BY position"),
    )
}

fn snapshot_steps(s: &Server, id: &str) -> Vec<String> {
    let pk = flow_pk(s, id);
    rows(
        s,
        &format!("SELECT step_id FROM snapshots WHERE flow_pk = {pk} ORDER BY step_id"),
    )
}

/// POST start/stop the way real clients do: form content type, empty body.
fn toggle(s: &Server, id: &str, what: &str, u: &User) -> Resp {
    s.request(
        "POST",
        &format!("/v2/flows/{id}/{what}"),
        Some(&u.auth()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b""),
    )
}

/// Creates a snapshot as the tenant-admin (the tests that use this create their flows as it).
fn create_snapshot(s: &Server, flow: &str, step: &str, v: Value) {
    s.post(
        &format!("/v2/flows/{flow}/snapshots"),
        &s.admin,
        &snapshot_doc(step, v),
    )
    .expect(201);
}

/// Every item of a list, fetched page by page with `page[size]=size`; checks the paging meta of
/// every page, that a page past the end is empty, and that no item appears twice.
#[track_caller]
fn list_all(s: &Server, u: &User, query: &str, size: usize) -> Vec<Value> {
    let sep = if query.is_empty() { "" } else { "&" };
    let mut out: Vec<Value> = Vec::new();
    let first = s.get(&format!("/v2/flows?{query}{sep}page[size]={size}"), u);
    first.expect(200);
    let total = first.json()["meta"]["total"].as_u64().expect("meta.total") as usize;
    let pages = total.div_ceil(size);
    assert_eq!(
        first.json()["meta"]["total_pages"],
        pages,
        "{query}: total_pages"
    );
    for p in 1..=pages + 1 {
        let r = s.get(
            &format!("/v2/flows?{query}{sep}page[size]={size}&page[number]={p}"),
            u,
        );
        r.expect(200);
        let v = r.json();
        assert_eq!(v["meta"]["page"], p, "{query}: meta.page");
        assert_eq!(v["meta"]["per_page"], size, "{query}: meta.per_page");
        assert_eq!(
            v["meta"]["total"], total,
            "{query}: meta.total changed between pages"
        );
        assert_eq!(v["meta"]["total_pages"], pages, "{query}: meta.total_pages");
        assert!(v["links"]["self"].is_string(), "{query}: links.self: {v}");
        let data = v["data"].as_array().expect("data array");
        let expect_len = if p > pages {
            0
        } else {
            size.min(total - (p - 1) * size)
        };
        assert_eq!(
            data.len(),
            expect_len,
            "{query}: page {p} of {pages} has the wrong length"
        );
        out.extend(data.iter().cloned());
    }
    let ids: HashSet<&str> = out.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        out.len(),
        "{query}: a flow appears twice across pages"
    );
    assert_eq!(
        out.len(),
        total,
        "{query}: pages do not add up to meta.total"
    );
    out
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// POST /v2/flows

#[test]
fn create_returns_the_full_flow_document() {
    let s = Server::start();
    let other = s.user("other@example.com");
    let ws = s.workspace(&s.admin, "Flows ws");
    let body = json!({"data": {"type": "flow", "attributes": {
    "name": "My flow",
    "description": "Moves orders",
    "type": "ordinary",
    "cron": "*/5 * * * *",
    "nodes_config": {"a": {"prefetch": 1}},
    // Server-only attributes: ignored.
    "status": "active",
    "current_status": "active",
    "created_at": "2000-01-01T00:00:00.000Z",
    "updated_at": "2000-01-01T00:00:00.000Z",
    "last_start_time": "2000-01-01T00:00:00.000Z",
    "last_stop_time": "2000-01-01T00:00:00.000Z",
    "graph": {
        "nodes": [
            {"id": "a", "command": "elasticio/http:httpRequestAction@1.2.3", "name": "A",
             "description": "first", "fields": {"url": "http://x", "n": 1},
             "x_custom": {"kept": [1, 2, 3]}, "position": {"x": 1}},
            {"id": "Step_2-b", "command": "elasticio/code:run", "fields": {}}
        ],
        "edges": [{"id": "bogus", "source": "a", "target": "Step_2-b", "config": {"mapper": {"x": "y"}}, "x_edge": true}],
        "x_graph": "kept too"
    }},
    "relationships": {
        "workspace": {"data": {"id": ws, "type": "workspace"}},
        "user": {"data": {"id": other.id, "type": "user"}}
    }}});
    let r = s.post("/v2/flows", &s.admin, &body);
    r.expect(201);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v = r.json();
    let d = &v["data"];
    let id = d["id"].as_str().expect("data.id");
    assert!(is_flow_id(id), "flow id must be 24 lowercase hex: {id}");
    assert_eq!(d["type"], "flow");
    assert_eq!(d["links"]["self"], format!("/v2/flows/{id}"));
    assert_eq!(v["meta"], json!({}), "meta must be {{}}");
    let a = &d["attributes"];
    assert_eq!(a["name"], "My flow");
    assert_eq!(a["description"], "Moves orders");
    assert_eq!(a["type"], "ordinary");
    assert_eq!(
        a["status"], "inactive",
        "a new flow starts inactive, whatever the client sent"
    );
    assert_eq!(
        a["current_status"], "inactive",
        "current_status equals status"
    );
    assert_eq!(
        a["default_mapper_type"], "jsonata",
        "default_mapper_type defaults to jsonata"
    );
    assert_eq!(a["cron"], "*/5 * * * *");
    assert_eq!(a["nodes_config"], json!({"a": {"prefetch": 1}}));
    assert!(
        is_iso_ms(&a["created_at"]),
        "created_at: {}",
        a["created_at"]
    );
    assert!(
        is_iso_ms(&a["updated_at"]),
        "updated_at: {}",
        a["updated_at"]
    );
    assert_ne!(
        a["created_at"], "2000-01-01T00:00:00.000Z",
        "client's created_at must be ignored"
    );
    assert_ne!(
        a["updated_at"], "2000-01-01T00:00:00.000Z",
        "client's updated_at must be ignored"
    );
    assert_eq!(
        a["last_start_time"],
        Value::Null,
        "client's last_start_time must be ignored"
    );
    assert_eq!(
        a["last_stop_time"],
        Value::Null,
        "client's last_stop_time must be ignored"
    );
    // Nodes come back exactly as sent, unknown members included, in order.
    assert_eq!(
        a["graph"]["nodes"],
        body["data"]["attributes"]["graph"]["nodes"]
    );
    assert_eq!(
        a["graph"]["x_graph"], "kept too",
        "unknown graph members are kept"
    );
    assert_eq!(
        a["graph"]["edges"],
        json!([{"id": "a:Step_2-b", "source": "a", "target": "Step_2-b", "config": {"mapper": {"x": "y"}}, "x_edge": true}]),
        "the server assigns the edge id SOURCE:TARGET and keeps the rest"
    );
    let rel = &d["relationships"];
    assert_eq!(
        rel["workspace"]["data"],
        json!({"id": ws, "type": "workspace"})
    );
    assert_eq!(
        rel["user"]["data"],
        json!({"id": s.admin.id, "type": "user"}),
        "relationships.user is the creator, not what the client sent"
    );
    // The steps are exactly the nodes, in order.
    assert_eq!(steps_of(&s, id), ["a", "Step_2-b"]);

    // GET returns the same document.
    let g = s.get(&format!("/v2/flows/{id}"), &s.admin);
    g.expect(200);
    assert_eq!(g.header("Content-Type"), Some("application/json"));
    assert_eq!(g.json(), v, "GET must return what POST returned");

    // Minimal flow: description, cron null; nodes_config {}; other mapper type kept;
    // long_running accepted; application/vnd.api+json with charset accepted.
    let r = s.post(
        "/v2/flows",
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"name": "lr", "type": "long_running",
                "default_mapper_type": "handlebars", "graph": {"nodes": [{"id": "only", "command": "x"}]}},
                "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
    );
    r.expect(201);
    let a = attrs(&r);
    assert_eq!(a["type"], "long_running");
    assert_eq!(a["default_mapper_type"], "handlebars");
    assert_eq!(a["description"], Value::Null);
    assert_eq!(a["cron"], Value::Null);
    assert_eq!(a["graph"]["edges"], json!([]), "edges default to []");
    let doc = flow_doc(&ws, "vnd", &["a"]).to_string();
    let r = s.request(
        "POST",
        "/v2/flows",
        Some(&s.admin.auth()),
        &[("Content-Type", "application/vnd.api+json; charset=utf-8")],
        Some(doc.as_bytes()),
    );
    r.expect(201);

    // Step ids: 1 and 64 characters, every allowed character.
    let long = "A".repeat(64);
    let r = s.post(
        "/v2/flows",
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"name": "ids", "type": "ordinary",
               "graph": {"nodes": [{"id": "x", "command": "c"}, {"id": long, "command": "c"},
                                   {"id": "azAZ09_-", "command": "c"}],
                         "edges": [{"source": "x", "target": long}, {"source": long, "target": "x"},
                                   {"source": "x", "target": "x"}]}},
               "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
    );
    r.expect(201);
    let a = attrs(&r);
    let ids: Vec<&str> = a["graph"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [format!("x:{long}"), format!("{long}:x"), "x:x".to_string()]
    );

    // Step ids are case-sensitive: `a` and `A` are two steps.
    let r = s.post(
        "/v2/flows",
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"name": "case", "type": "ordinary",
               "graph": {"nodes": [{"id": "a", "command": "c"}, {"id": "A", "command": "c"}]}},
               "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
    );
    r.expect(201);
    assert_eq!(steps_of(&s, &r.id()), ["a", "A"]);

    // Integrators and admins of the workspace may create flows; the creator is the caller.
    let integ = s.user("integ@example.com");
    let adm = s.user("adm@example.com");
    s.add_member(&s.admin, &ws, &integ, "integrator");
    s.add_member(&s.admin, &ws, &adm, "admin");
    for u in [&integ, &adm] {
        let r = s.post("/v2/flows", u, &flow_doc(&ws, "by member", &["a"]));
        r.expect(201);
        assert_eq!(
            r.json()["data"]["relationships"]["user"]["data"]["id"],
            u.id.as_str()
        );
    }
}

#[test]
fn create_refusals_change_nothing() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "Refusals");
    let guest = s.user("guest@example.com");
    let stranger = s.user("stranger@example.com");
    s.add_member(&s.admin, &ws, &guest, "guest");
    let ws_rel = json!({"workspace": {"data": {"id": ws, "type": "workspace"}}});
    let with_attrs = |a: Value| json!({"data": {"type": "flow", "attributes": a, "relationships": ws_rel.clone()}});
    let with_graph = |g: Value| with_attrs(json!({"name": "f", "type": "ordinary", "graph": g}));
    let node = |id: &str| json!({"id": id, "command": "elasticio/x:y@1"});
    let g = "/data/attributes/graph";
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, &str, String)> = vec![
        ("name missing", with_attrs(json!({"type": "ordinary", "graph": graph(&["a"])})), "name", "/data/attributes/name".into()),
        ("name empty", with_attrs(json!({"name": "", "type": "ordinary", "graph": graph(&["a"])})), "name", "/data/attributes/name".into()),
        ("name blank", with_attrs(json!({"name": "   ", "type": "ordinary", "graph": graph(&["a"])})), "name", "/data/attributes/name".into()),
        ("name not a string", with_attrs(json!({"name": 5, "type": "ordinary", "graph": graph(&["a"])})), "name", "/data/attributes/name".into()),
        ("type missing", with_attrs(json!({"name": "f", "graph": graph(&["a"])})), "type", "/data/attributes/type".into()),
        ("type unknown", with_attrs(json!({"name": "f", "type": "batch", "graph": graph(&["a"])})), "long_running", "/data/attributes/type".into()),
        ("type null", with_attrs(json!({"name": "f", "type": null, "graph": graph(&["a"])})), "type", "/data/attributes/type".into()),
        ("graph missing", with_attrs(json!({"name": "f", "type": "ordinary"})), "graph", g.into()),
        ("graph null", with_graph(Value::Null), "graph", g.into()),
        ("graph an array", with_graph(json!([])), "graph", g.into()),
        ("nodes missing", with_graph(json!({"edges": []})), "nodes", format!("{g}/nodes")),
        ("nodes not an array", with_graph(json!({"nodes": {"a": 1}})), "nodes", format!("{g}/nodes")),
        ("node not an object", with_graph(json!({"nodes": [node("a"), "b"]})), "node 1", format!("{g}/nodes/1")),
        ("node id missing", with_graph(json!({"nodes": [{"command": "c"}]})), "id", format!("{g}/nodes/0/id")),
        ("node id a number", with_graph(json!({"nodes": [{"id": 7, "command": "c"}]})), "id", format!("{g}/nodes/0/id")),
        ("node id empty", with_graph(json!({"nodes": [node("")]})), "A-Z", format!("{g}/nodes/0/id")),
        ("node id with a dot", with_graph(json!({"nodes": [node("ok"), node("a.b")]})), "A-Z", format!("{g}/nodes/1/id")),
        ("node id with a space", with_graph(json!({"nodes": [node("a b")]})), "A-Z", format!("{g}/nodes/0/id")),
        ("node id with a slash", with_graph(json!({"nodes": [node("a/b")]})), "A-Z", format!("{g}/nodes/0/id")),
        ("node id non-ASCII", with_graph(json!({"nodes": [node("stép")]})), "A-Z", format!("{g}/nodes/0/id")),
        ("node id 65 characters", with_graph(json!({"nodes": [node(&"a".repeat(65))]})), "64", format!("{g}/nodes/0/id")),
        ("node ids not unique", with_graph(json!({"nodes": [node("a"), node("b"), node("a")]})), "unique", format!("{g}/nodes/2/id")),
        ("command missing", with_graph(json!({"nodes": [{"id": "a"}]})), "command", format!("{g}/nodes/0/command")),
        ("command empty", with_graph(json!({"nodes": [{"id": "a", "command": ""}]})), "command", format!("{g}/nodes/0/command")),
        ("command not a string", with_graph(json!({"nodes": [{"id": "a", "command": 1}]})), "command", format!("{g}/nodes/0/command")),
        ("command null", with_graph(json!({"nodes": [{"id": "a", "command": null}]})), "command", format!("{g}/nodes/0/command")),
        ("edges not an array", with_graph(json!({"nodes": [node("a")], "edges": {}})), "edges", format!("{g}/edges")),
        ("edge not an object", with_graph(json!({"nodes": [node("a")], "edges": ["a:a"]})), "edge 0", format!("{g}/edges/0")),
        ("edge source unknown", with_graph(json!({"nodes": [node("a"), node("b")], "edges": [{"source": "zz", "target": "b"}]})), "zz", format!("{g}/edges/0/source")),
        ("edge target unknown", with_graph(json!({"nodes": [node("a"), node("b")], "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}]})), "c", format!("{g}/edges/1/target")),
        ("edge target missing", with_graph(json!({"nodes": [node("a")], "edges": [{"source": "a"}]})), "target", format!("{g}/edges/0/target")),
        ("edge source not a string", with_graph(json!({"nodes": [node("a")], "edges": [{"source": 1, "target": "a"}]})), "source", format!("{g}/edges/0/source")),
        ("data missing", json!({"type": "flow"}), "data", "/data".into()),
        ("attributes not an object", json!({"data": {"type": "flow", "attributes": [], "relationships": ws_rel.clone()}}), "attributes", "/data/attributes".into()),
        ("workspace relationship missing", json!({"data": {"type": "flow", "attributes": {"name": "f", "type": "ordinary", "graph": graph(&["a"])}}}), "workspace", "/data/relationships/workspace".into()),
        ("workspace relationship without id", json!({"data": {"type": "flow", "attributes": {"name": "f", "type": "ordinary", "graph": graph(&["a"])}, "relationships": {"workspace": {"data": null}}}}), "workspace", "/data/relationships/workspace/data/id".into()),
    ];
    for (what, body, detail, pointer) in &cases {
        refused(&s, what, 400, Some(pointer), detail, || {
            s.post("/v2/flows", &s.admin, body)
        });
    }
    refused(
        &s,
        "data.type not flow",
        409,
        Some("/data/type"),
        "flow",
        || {
            s.post("/v2/flows", &s.admin, &json!({"data": {"type": "workspace", "attributes": {"name": "f", "type": "ordinary", "graph": graph(&["a"])}, "relationships": ws_rel.clone()}}))
        },
    );
    refused(&s, "malformed JSON", 400, None, "JSON", || {
        s.request(
            "POST",
            "/v2/flows",
            Some(&s.admin.auth()),
            &[("Content-Type", "application/json")],
            Some(b"{\"data\": "),
        )
    });
    refused(
        &s,
        "not JSON by content type",
        415,
        None,
        "application/json",
        || {
            let doc = flow_doc(&ws, "f", &["a"]).to_string();
            s.request(
                "POST",
                "/v2/flows",
                Some(&s.admin.auth()),
                &[("Content-Type", "text/plain")],
                Some(doc.as_bytes()),
            )
        },
    );
    refused(&s, "no credentials", 401, None, "", || {
        let doc = flow_doc(&ws, "f", &["a"]).to_string();
        s.request(
            "POST",
            "/v2/flows",
            None,
            &[("Content-Type", "application/json")],
            Some(doc.as_bytes()),
        )
    });

    // The workspace: must exist (404) and the caller needs workspaces.flow.edit in it (403).
    let missing = "65f0c0ffee0000000000abcd";
    refused(&s, "unknown workspace", 404, None, missing, || {
        s.post("/v2/flows", &s.admin, &flow_doc(missing, "f", &["a"]))
    });
    refused(
        &s,
        "guest member",
        403,
        None,
        "workspaces.flow.edit",
        || s.post("/v2/flows", &guest, &flow_doc(&ws, "f", &["a"])),
    );
    refused(&s, "non-member", 403, None, "member", || {
        s.post("/v2/flows", &stranger, &flow_doc(&ws, "f", &["a"]))
    });
    // A tenant-admin reads everything but needs a role to write.
    let ws2 = s.workspace(&stranger, "Strangers");
    refused(
        &s,
        "tenant-admin without a role",
        403,
        None,
        "member",
        || s.post("/v2/flows", &s.admin, &flow_doc(&ws2, "f", &["a"])),
    );
    // Permission is checked before the rules of the document.
    refused(
        &s,
        "guest with an invalid graph",
        403,
        None,
        "workspaces.flow.edit",
        || {
            s.post(
                "/v2/flows",
                &guest,
                &with_graph(json!({"nodes": [node("a"), node("a")]})),
            )
        },
    );
    refused(
        &s,
        "unknown workspace with an invalid graph",
        404,
        None,
        missing,
        || {
            let mut b = with_graph(json!({"nodes": [node("a"), node("a")]}));
            b["data"]["relationships"]["workspace"]["data"]["id"] = json!(missing);
            s.post("/v2/flows", &s.admin, &b)
        },
    );
    assert!(
        rows(&s, "SELECT id FROM flows").is_empty(),
        "no flow may have been created"
    );
}

// ---------------------------------------------------------------------------------------------
// GET one, access, methods

#[test]
fn get_one_and_access_rules() {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let guest = s.user("guest@example.com");
    let stranger = s.user("stranger@example.com");
    let ws = s.workspace(&owner, "Access");
    s.add_member(&owner, &ws, &guest, "guest");
    let id = s.flow(&owner, &ws, &["a", "b"]);
    let path = format!("/v2/flows/{id}");

    let r = s.get(&path, &owner);
    r.expect(200);
    assert_eq!(r.id(), id);
    assert_eq!(
        s.get(&path, &guest).expect(200).json(),
        r.json(),
        "a guest member reads the flow"
    );
    assert_eq!(
        s.get(&path, &s.admin).expect(200).json(),
        r.json(),
        "a tenant-admin reads every flow"
    );
    s.get(&path, &stranger).expect(403);
    let r404 = s.get("/v2/flows/65f0c0ffee0000000000abcd", &owner);
    r404.expect(404);
    assert!(r404.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("65f0c0ffee0000000000abcd"));
    s.get("/v2/flows/not-an-id", &owner).expect(404);
    // Authentication comes first, even for flows that do not exist.
    let r = s.request("GET", &path, None, &[], None);
    r.expect(401);
    assert!(r.header("WWW-Authenticate").is_some());
    s.request(
        "GET",
        "/v2/flows/65f0c0ffee0000000000abcd",
        Some(&basic(&owner.email, "wrong")),
        &[],
        None,
    )
    .expect(401);
    // Methods a path does not support: 405 with Allow.
    let r = s.send("PUT", &path, &owner, &json!({}));
    r.expect(405);
    let allow = r.header("Allow").unwrap_or("");
    assert!(
        allow.contains("PATCH") && allow.contains("DELETE") && allow.contains("GET"),
        "Allow: {allow}"
    );
    let r = s.get(&format!("{path}/start"), &owner);
    r.expect(405);
    assert_eq!(r.header("Allow"), Some("POST"));
    let r = s.delete("/v2/flows", &owner);
    r.expect(405);
    assert!(r.header("Allow").unwrap_or("").contains("POST"));
    let r = s.post(&format!("/v1/tasks/{id}/steps/a"), &owner, &json!({}));
    r.expect(405);
    assert_eq!(r.header("Allow"), Some("GET"));
}

// ---------------------------------------------------------------------------------------------
// GET /v2/flows?workspace_id=

struct Made {
    id: String,
    name: String,
    description: Option<String>,
    long_running: bool,
    active: bool,
}

#[test]
fn list_pages_filters_sorts_and_searches() {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let guest = s.user("guest@example.com");
    let stranger = s.user("stranger@example.com");
    let ws = s.workspace(&owner, "Listing");
    s.add_member(&owner, &ws, &guest, "guest");
    let other_ws = s.workspace(&owner, "Other");
    let elsewhere = s.flow(&owner, &other_ws, &["a"]);

    let prefixes = ["alpha", "Beta", "gamma", "DELTA", "epsilon", "Zeta", "eta"];
    let mut made: Vec<Made> = Vec::new();
    let specials: [(&str, Option<&str>); 6] = [
        ("100% off", None),
        ("under_score", None),
        ("Ébc", Some("ÜBERWEISUNG an Bank")),
        ("éab", None),
        ("plain", Some("Find the NeEdLe here")),
        ("needle in the name", Some("desc")),
    ];
    for i in 0..55 {
        let (name, description) = if i < specials.len() {
            (specials[i].0.to_string(), specials[i].1.map(str::to_string))
        } else {
            let d = (i % 9 == 0).then(|| format!("number {i}"));
            (format!("{} flow {i:02}", prefixes[i % prefixes.len()]), d)
        };
        let long_running = i % 3 == 0;
        let mut attrs = json!({"name": name, "type": if long_running { "long_running" } else { "ordinary" },
                               "graph": graph(&["a", "b"])});
        if let Some(d) = &description {
            attrs["description"] = json!(d);
        }
        let r = s.post(
            "/v2/flows",
            &owner,
            &json!({"data": {"type": "flow", "attributes": attrs,
                    "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
        );
        r.expect(201);
        made.push(Made {
            id: r.id(),
            name,
            description,
            long_running,
            active: false,
        });
        // Distinct creation times, so that created_at orders them exactly.
        std::thread::sleep(Duration::from_millis(2));
    }
    for (i, m) in made.iter_mut().enumerate() {
        if i % 4 == 1 {
            toggle(&s, &m.id, "start", &owner).expect(202);
            m.active = true;
        }
    }
    let creation: Vec<String> = made.iter().map(|m| m.id.clone()).collect();
    let q = format!("workspace_id={ws}");

    // Default page size 50: two pages, creation order, relationships in lists too.
    let r = s.get(&format!("/v2/flows?{q}"), &owner);
    r.expect(200);
    let v = r.json();
    assert_eq!(
        v["meta"],
        json!({"page": 1, "per_page": 50, "total": 55, "total_pages": 2})
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 50);
    let item = &v["data"][0];
    assert_eq!(item["type"], "flow");
    assert_eq!(item["links"]["self"], format!("/v2/flows/{}", made[0].id));
    assert_eq!(
        item["relationships"]["workspace"]["data"],
        json!({"id": ws, "type": "workspace"})
    );
    assert_eq!(
        item["relationships"]["user"]["data"],
        json!({"id": owner.id, "type": "user"})
    );
    assert_eq!(
        item["attributes"]["graph"],
        attrs(&s.get(&format!("/v2/flows/{}", made[0].id), &owner))["graph"]
    );
    let all = list_all(&s, &owner, &q, 50);
    assert_eq!(ids(&all), creation, "without sort: creation order");
    assert!(
        !ids(&all).contains(&elsewhere),
        "a flow of another workspace is listed"
    );
    for f in &all {
        let a = &f["attributes"];
        assert_eq!(
            a["status"], a["current_status"],
            "current_status equals status in lists"
        );
    }
    // Every page size pages through every flow exactly once, in the same order.
    for size in [1, 7, 10, 55, 100] {
        assert_eq!(
            ids(&list_all(&s, &owner, &q, size)),
            creation,
            "page[size]={size}"
        );
    }
    // page[size] above the maximum is lowered to it.
    let r = s.get(&format!("/v2/flows?{q}&page[size]=1000"), &owner);
    r.expect(200);
    assert_eq!(
        r.json()["meta"],
        json!({"page": 1, "per_page": 100, "total": 55, "total_pages": 1})
    );
    // Past the end: 200, empty.
    let r = s.get(
        &format!("/v2/flows?{q}&page[size]=10&page[number]=99"),
        &owner,
    );
    r.expect(200);
    assert_eq!(r.json()["data"], json!([]));
    assert_eq!(r.json()["meta"]["total"], 55);
    // Percent-encoded keys (and values) mean the same.
    let lit = s.get(
        &format!("/v2/flows?{q}&page[size]=7&page[number]=3&filter[type]=ordinary&sort=-name"),
        &owner,
    );
    let enc = s.get(
        &format!("/v2/flows?workspace%5Fid={ws}&page%5Bsize%5D=7&page%5bnumber%5d=3&filter%5Btype%5D=ordinary&sort=%2Dname"),
        &owner,
    );
    lit.expect(200);
    enc.expect(200);
    assert_eq!(
        lit.json()["data"],
        enc.json()["data"],
        "percent-encoded query differs"
    );
    assert_eq!(lit.json()["meta"], enc.json()["meta"]);
    assert_eq!(enc.json()["meta"]["per_page"], 7);
    // Unknown parameters are ignored.
    let r = s.get(&format!("/v2/flows?{q}&foo=bar&include=x"), &owner);
    r.expect(200);
    assert_eq!(
        r.json()["meta"]["total"],
        55,
        "unknown query parameters are ignored"
    );

    // Filters: exact totals, right members, creation order kept.
    let expect = |pred: &dyn Fn(&Made) -> bool| -> Vec<String> {
        made.iter()
            .filter(|m| pred(m))
            .map(|m| m.id.clone())
            .collect()
    };
    let checks: Vec<(String, Vec<String>)> = vec![
        ("filter[status]=active".into(), expect(&|m| m.active)),
        ("filter[status]=inactive".into(), expect(&|m| !m.active)),
        (
            "filter[type]=long_running".into(),
            expect(&|m| m.long_running),
        ),
        ("filter[type]=ordinary".into(), expect(&|m| !m.long_running)),
        (
            "filter[type]=long_running&filter[status]=active".into(),
            expect(&|m| m.long_running && m.active),
        ),
    ];
    for (filter, want) in &checks {
        assert!(!want.is_empty() && want.len() < 55, "test setup: {filter}");
        let got = list_all(&s, &owner, &format!("{q}&{filter}"), 4);
        assert_eq!(ids(&got), *want, "{filter}");
    }

    // Search: case-insensitive, in name and description, literal % and _.
    let search = |term: &str| -> Vec<String> {
        let t = term.to_lowercase();
        made.iter()
            .filter(|m| {
                m.name.to_lowercase().contains(&t)
                    || m.description
                        .as_ref()
                        .is_some_and(|d| d.to_lowercase().contains(&t))
            })
            .map(|m| m.id.clone())
            .collect()
    };
    let searches: [(&str, &str); 10] = [
        ("NEEDLE", "NEEDLE"),
        ("needle", "needle"),
        ("alpha", "alpha"),
        ("DeLtA%20FLOW", "delta flow"),
        ("delta+flow", "delta flow"),
        ("number", "number"),
        ("%25", "%"),
        ("_", "_"),
        ("%C3%BCberweisung", "überweisung"),
        ("%C3%89B", "éb"),
    ];
    for (raw, term) in searches {
        let want = search(term);
        assert!(!want.is_empty(), "test setup: search {term}");
        let got = list_all(&s, &owner, &format!("{q}&search={raw}"), 3);
        assert_eq!(
            ids(&got),
            want,
            "search={raw} (case-insensitive, name and description)"
        );
    }
    assert!(list_all(&s, &owner, &format!("{q}&search=nothing-matches-this"), 5).is_empty());
    // Search together with a filter and a sort.
    let want: Vec<String> = {
        let mut v: Vec<&Made> = made
            .iter()
            .filter(|m| m.name.to_lowercase().contains("flow") && !m.long_running)
            .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.name.to_lowercase()));
        v.iter().map(|m| m.id.clone()).collect()
    };
    let got = list_all(
        &s,
        &owner,
        &format!("{q}&search=FLOW&filter[type]=ordinary&sort=-name"),
        6,
    );
    assert_eq!(ids(&got), want, "search + filter + sort");

    // Sorts. Names are unique, created_at distinct; compare with the expected full order.
    let mut by_name: Vec<&Made> = made.iter().collect();
    by_name.sort_by_key(|m| m.name.to_lowercase());
    let by_name: Vec<String> = by_name.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        ids(&list_all(&s, &owner, &format!("{q}&sort=name"), 8)),
        by_name,
        "sort=name is case-insensitive"
    );
    let mut rev = by_name.clone();
    rev.reverse();
    assert_eq!(
        ids(&list_all(&s, &owner, &format!("{q}&sort=-name"), 8)),
        rev,
        "sort=-name"
    );
    assert_eq!(
        ids(&list_all(&s, &owner, &format!("{q}&sort=created_at"), 8)),
        creation,
        "sort=created_at"
    );
    let mut rev = creation.clone();
    rev.reverse();
    assert_eq!(
        ids(&list_all(&s, &owner, &format!("{q}&sort=-created_at"), 8)),
        rev,
        "sort=-created_at"
    );

    // updated_at: the flow changed last comes last (first with -).
    std::thread::sleep(Duration::from_millis(5));
    let touched = &made[20].id;
    s.patch(
        &format!("/v2/flows/{touched}"),
        &owner,
        &json!({"data": {"type": "flow", "attributes": {"description": "touched"}}}),
    )
    .expect(200);
    for (sort, desc) in [("updated_at", false), ("-updated_at", true)] {
        let got = list_all(&s, &owner, &format!("{q}&sort={sort}"), 9);
        let keys: Vec<(String, String)> = got
            .iter()
            .map(|f| {
                (
                    f["attributes"]["updated_at"].as_str().unwrap().to_string(),
                    f["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for w in keys.windows(2) {
            let ordered = if desc {
                w[0].0 >= w[1].0
            } else {
                w[0].0 <= w[1].0
            };
            assert!(ordered, "sort={sort}: {:?} before {:?}", w[0], w[1]);
            if w[0].0 == w[1].0 {
                assert!(
                    w[0].1 < w[1].1 || desc,
                    "sort={sort}: ties must be broken by id"
                );
            }
        }
        let pos = if desc { 0 } else { got.len() - 1 };
        assert_eq!(
            got[pos]["id"],
            touched.as_str(),
            "sort={sort}: the flow updated last"
        );
    }

    // Who may list: members (guests too) and tenant-admins; not strangers.
    assert_eq!(
        s.get(&format!("/v2/flows?{q}"), &guest).expect(200).json()["meta"]["total"],
        55
    );
    assert_eq!(
        s.get(&format!("/v2/flows?{q}"), &s.admin)
            .expect(200)
            .json()["meta"]["total"],
        55
    );
    s.get(&format!("/v2/flows?{q}"), &stranger).expect(403);
    s.get("/v2/flows?workspace_id=65f0c0ffee0000000000abcd", &owner)
        .expect(404);

    // Bad queries: 400, saying which parameter.
    #[rustfmt::skip]
    let bad: [(&str, &str); 16] = [
        ("", "workspace_id"),
        ("page[size]=10", "workspace_id"),
        ("&filter[status]=running", "filter[status]"),
        ("&filter[status]=ACTIVE", "filter[status]"),
        ("&filter[type]=batch", "filter[type]"),
        ("&sort=foo", "sort"),
        ("&sort=-foo", "sort"),
        ("&sort=status", "sort"),
        ("&page[size]=0", "page[size]"),
        ("&page[size]=-1", "page[size]"),
        ("&page[size]=abc", "page[size]"),
        ("&page[size]=1.5", "page[size]"),
        ("&page[size]=", "page[size]"),
        ("&page[number]=0", "page[number]"),
        ("&page[number]=-3", "page[number]"),
        ("&page%5Bnumber%5D=x", "page[number]"),
    ];
    for (query, param) in bad {
        let path = if query.starts_with('&') {
            format!("/v2/flows?{q}{query}")
        } else {
            format!("/v2/flows?{query}")
        };
        refused(&s, &path, 400, None, param, || s.get(&path, &owner));
    }
    // A number too large for 64 bits is still a positive integer: a page past the end.
    let r = s.get(
        &format!("/v2/flows?{q}&page[number]=99999999999999999999999"),
        &owner,
    );
    r.expect(200);
    assert_eq!(r.json()["data"], serde_json::json!([]));
}

// ---------------------------------------------------------------------------------------------
// PATCH /v2/flows/{id}

#[test]
fn patch_updates_partially_and_replaces_the_graph() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "Patching");
    let guest = s.user("guest@example.com");
    let stranger = s.user("stranger@example.com");
    let integ = s.user("integ@example.com");
    s.add_member(&s.admin, &ws, &guest, "guest");
    s.add_member(&s.admin, &ws, &integ, "integrator");
    let r = s.post(
        "/v2/flows",
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"name": "orig", "description": "desc", "type": "ordinary",
                "cron": "0 * * * *", "default_mapper_type": "handlebars", "nodes_config": {"a": {"x": 1}},
                "graph": graph(&["a", "b", "c"])},
                "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
    );
    r.expect(201);
    let id = r.id();
    let path = format!("/v2/flows/{id}");
    let original = attrs(&r);
    std::thread::sleep(Duration::from_millis(3));

    // Only the name: everything else unchanged (updated_at moves on).
    let r = s.patch(
        &path,
        &integ,
        &json!({"data": {"type": "flow", "id": id, "attributes": {"name": "renamed"}}}),
    );
    r.expect(200);
    let a = attrs(&r);
    assert_eq!(a["name"], "renamed");
    for k in [
        "description",
        "type",
        "status",
        "current_status",
        "default_mapper_type",
        "cron",
        "graph",
        "nodes_config",
        "created_at",
        "last_start_time",
        "last_stop_time",
    ] {
        assert_eq!(a[k], original[k], "PATCH of the name changed {k}");
    }
    assert!(
        a["updated_at"].as_str() > original["updated_at"].as_str(),
        "updated_at must move on"
    );
    assert_eq!(
        r.json()["data"]["relationships"],
        s.get(&path, &s.admin).json()["data"]["relationships"]
    );
    assert_eq!(
        s.get(&path, &s.admin).json(),
        r.json(),
        "GET after PATCH returns what PATCH returned"
    );

    // No data.id, no attributes: a valid no-op.
    s.patch(&path, &s.admin, &json!({"data": {"type": "flow"}}))
        .expect(200);
    // Nullable attributes to null; other attributes; server-only attributes ignored.
    let r = s.patch(
        &path,
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"description": null, "cron": null, "type": "long_running",
                "default_mapper_type": "jsonata", "nodes_config": {"b": {}},
                "status": "active", "current_status": "active", "created_at": "2000-01-01T00:00:00.000Z",
                "last_start_time": "2000-01-01T00:00:00.000Z", "last_stop_time": "2000-01-01T00:00:00.000Z"}}}),
    );
    r.expect(200);
    let a = attrs(&r);
    assert_eq!(a["description"], Value::Null);
    assert_eq!(a["cron"], Value::Null);
    assert_eq!(a["type"], "long_running");
    assert_eq!(a["default_mapper_type"], "jsonata");
    assert_eq!(a["nodes_config"], json!({"b": {}}));
    assert_eq!(a["status"], "inactive", "PATCH cannot start a flow");
    assert_eq!(a["current_status"], "inactive");
    assert_eq!(a["created_at"], original["created_at"]);
    assert_eq!(a["last_start_time"], Value::Null);
    assert_eq!(a["last_stop_time"], Value::Null);
    assert_eq!(a["graph"], original["graph"]);

    // Snapshots for every step, then a graph that drops b and adds d.
    for (step, v) in [
        ("a", json!({"n": 1})),
        ("b", json!([2])),
        ("c", json!("three")),
    ] {
        create_snapshot(&s, &id, step, v);
    }
    assert_eq!(snapshot_steps(&s, &id), ["a", "b", "c"]);
    let new_graph = json!({"nodes": [
            {"id": "a", "command": "elasticio/x:changed@2", "fields": {"new": true}},
            {"id": "c", "command": "elasticio/x:c@1", "name": "c"},
            {"id": "d", "command": "elasticio/x:d@1", "x_extra": [1]}],
        "edges": [{"source": "a", "target": "d"}, {"source": "d", "target": "c", "config": {"k": 1}}]});
    let r = s.patch(
        &path,
        &s.admin,
        &json!({"data": {"type": "flow", "id": id, "attributes": {"graph": new_graph}}}),
    );
    r.expect(200);
    let a = attrs(&r);
    assert_eq!(
        a["graph"]["nodes"], new_graph["nodes"],
        "a sent graph replaces the whole graph"
    );
    assert_eq!(
        a["graph"]["edges"],
        json!([{"id": "a:d", "source": "a", "target": "d"}, {"id": "d:c", "source": "d", "target": "c", "config": {"k": 1}}])
    );
    assert_eq!(a["name"], "renamed", "a graph PATCH leaves the name alone");
    assert_eq!(
        steps_of(&s, &id),
        ["a", "c", "d"],
        "steps follow the new graph"
    );
    assert_eq!(
        snapshot_steps(&s, &id),
        ["a", "c"],
        "the snapshot of dropped step b must be deleted, a and c kept"
    );
    s.get(&format!("{path}/snapshots/b"), &s.admin).expect(404);
    assert_eq!(
        s.get(&format!("{path}/snapshots/a"), &s.admin)
            .expect(200)
            .json()["data"]["attributes"]["snapshot"],
        json!({"n": 1})
    );
    assert_eq!(
        s.get(&format!("{path}/snapshots/c"), &s.admin)
            .expect(200)
            .json()["data"]["attributes"]["snapshot"],
        "three"
    );
    // Reordering keeps snapshots and changes the graph order of the snapshot list.
    let r = s.patch(
        &path,
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"graph": graph(&["c", "a", "d"])}}}),
    );
    r.expect(200);
    assert_eq!(steps_of(&s, &id), ["c", "a", "d"]);
    let list = s
        .get(&format!("{path}/snapshots"), &s.admin)
        .expect(200)
        .json();
    let order: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["c", "a"], "snapshot list in the new graph order");
    // Re-adding b later: it starts without a snapshot.
    s.patch(
        &path,
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"graph": graph(&["c", "a", "d", "b"])}}}),
    )
    .expect(200);
    s.get(&format!("{path}/snapshots/b"), &s.admin).expect(404);
    assert_eq!(snapshot_steps(&s, &id), ["a", "c"]);

    // Refusals, each changing nothing (the snapshots of a and c included).
    let doc = |a: Value| json!({"data": {"type": "flow", "attributes": a}});
    let drop_a = doc(json!({"graph": graph(&["c"]), "type": "batch"}));
    refused(
        &s,
        "data.id differs from the URL",
        409,
        Some("/data/id"),
        "URL",
        || {
            s.patch(&path, &s.admin, &json!({"data": {"type": "flow", "id": "65f0c0ffee0000000000abcd", "attributes": {"graph": graph(&["c"])}}}))
        },
    );
    refused(
        &s,
        "data.type not flow",
        409,
        Some("/data/type"),
        "flow",
        || {
            s.patch(
                &path,
                &s.admin,
                &json!({"data": {"type": "snapshot", "attributes": {"graph": graph(&["c"])}}}),
            )
        },
    );
    refused(
        &s,
        "data.type missing",
        400,
        Some("/data/type"),
        "type",
        || s.patch(&path, &s.admin, &json!({"data": {"attributes": {}}})),
    );
    refused(
        &s,
        "empty name",
        400,
        Some("/data/attributes/name"),
        "name",
        || s.patch(&path, &s.admin, &doc(json!({"name": ""}))),
    );
    refused(
        &s,
        "null name",
        400,
        Some("/data/attributes/name"),
        "name",
        || s.patch(&path, &s.admin, &doc(json!({"name": null}))),
    );
    refused(
        &s,
        "bad type with a graph that drops a step",
        400,
        Some("/data/attributes/type"),
        "type",
        || s.patch(&path, &s.admin, &drop_a),
    );
    refused(
        &s,
        "graph null",
        400,
        Some("/data/attributes/graph"),
        "graph",
        || s.patch(&path, &s.admin, &doc(json!({"graph": null}))),
    );
    refused(
        &s,
        "duplicate node ids",
        400,
        Some("/data/attributes/graph/nodes/1/id"),
        "unique",
        || {
            s.patch(&path, &s.admin, &doc(json!({"graph": {"nodes": [{"id": "c", "command": "x"}, {"id": "c", "command": "y"}]}})))
        },
    );
    refused(
        &s,
        "edge to a missing node",
        400,
        Some("/data/attributes/graph/edges/0/target"),
        "node",
        || {
            s.patch(&path, &s.admin, &doc(json!({"graph": {"nodes": [{"id": "c", "command": "x"}], "edges": [{"source": "c", "target": "a"}]}})))
        },
    );
    refused(
        &s,
        "description a number",
        400,
        Some("/data/attributes/description"),
        "description",
        || s.patch(&path, &s.admin, &doc(json!({"description": 1}))),
    );
    refused(&s, "malformed JSON", 400, None, "JSON", || {
        s.request(
            "PATCH",
            &path,
            Some(&s.admin.auth()),
            &[("Content-Type", "application/json")],
            Some(b"{nope"),
        )
    });
    refused(&s, "text/plain body", 415, None, "application/json", || {
        let b = drop_a.to_string();
        s.request(
            "PATCH",
            &path,
            Some(&s.admin.auth()),
            &[("Content-Type", "text/plain")],
            Some(b.as_bytes()),
        )
    });
    refused(&s, "guest", 403, None, "workspaces.flow.edit", || {
        s.patch(&path, &guest, &doc(json!({"name": "g"})))
    });
    refused(&s, "non-member", 403, None, "member", || {
        s.patch(&path, &stranger, &doc(json!({"name": "g"})))
    });
    refused(
        &s,
        "unknown flow",
        404,
        None,
        "65f0c0ffee0000000000abcd",
        || {
            s.patch(
                "/v2/flows/65f0c0ffee0000000000abcd",
                &s.admin,
                &doc(json!({"name": "g"})),
            )
        },
    );
    // Order: the flow (404) and the caller (403) before the body.
    refused(
        &s,
        "unknown flow, malformed body",
        404,
        None,
        "not found",
        || {
            s.request(
                "PATCH",
                "/v2/flows/65f0c0ffee0000000000abcd",
                Some(&s.admin.auth()),
                &[("Content-Type", "application/json")],
                Some(b"{nope"),
            )
        },
    );
    refused(
        &s,
        "guest, malformed body",
        403,
        None,
        "workspaces.flow.edit",
        || {
            s.request(
                "PATCH",
                &path,
                Some(&guest.auth()),
                &[("Content-Type", "application/json")],
                Some(b"{nope"),
            )
        },
    );
    refused(
        &s,
        "guest, text/plain body",
        403,
        None,
        "workspaces.flow.edit",
        || {
            s.request(
                "PATCH",
                &path,
                Some(&guest.auth()),
                &[("Content-Type", "text/plain")],
                Some(b"x"),
            )
        },
    );

    // A tenant-admin needs a role to write.
    let ws2 = s.workspace(&stranger, "Strangers");
    let theirs = s.flow(&stranger, &ws2, &["a"]);
    refused(
        &s,
        "tenant-admin without a role",
        403,
        None,
        "member",
        || {
            s.patch(
                &format!("/v2/flows/{theirs}"),
                &s.admin,
                &doc(json!({"name": "mine"})),
            )
        },
    );
}

#[test]
fn patch_of_a_running_flow() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "Running");
    let sent_graph = json!({"nodes": [{"id": "a", "command": "x/y:z@1", "fields": {"f": 1}}, {"id": "b", "command": "x/y:w"}],
                            "edges": [{"source": "a", "target": "b"}]});
    let r = s.post(
        "/v2/flows",
        &s.admin,
        &json!({"data": {"type": "flow", "attributes": {"name": "run", "type": "ordinary", "graph": sent_graph},
                "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
    );
    r.expect(201);
    let id = r.id();
    let path = format!("/v2/flows/{id}");
    create_snapshot(&s, &id, "b", json!({"keep": true}));

    // Inactive: sending back exactly what GET returned is fine.
    let got = s.get(&path, &s.admin).json();
    s.patch(&path, &s.admin, &got).expect(200);

    toggle(&s, &id, "start", &s.admin).expect(202);
    let doc = |a: Value| json!({"data": {"type": "flow", "id": id, "attributes": a}});
    refused(&s, "graph change while running", 409, None, "stop", || {
        s.patch(&path, &s.admin, &doc(json!({"graph": graph(&["a"])})))
    });
    refused(
        &s,
        "graph with changed fields while running",
        409,
        None,
        "graph",
        || {
            let mut g = sent_graph.clone();
            g["nodes"][0]["fields"]["f"] = json!(2);
            s.patch(&path, &s.admin, &doc(json!({"graph": g})))
        },
    );
    refused(
        &s,
        "graph reordered while running",
        409,
        None,
        "graph",
        || {
            let mut g = sent_graph.clone();
            g["nodes"] = json!([sent_graph["nodes"][1], sent_graph["nodes"][0]]);
            s.patch(&path, &s.admin, &doc(json!({"graph": g})))
        },
    );
    refused(&s, "type change while running", 409, None, "type", || {
        s.patch(&path, &s.admin, &doc(json!({"type": "long_running"})))
    });
    refused(
        &s,
        "graph change with a name while running",
        409,
        None,
        "stop",
        || {
            s.patch(
                &path,
                &s.admin,
                &doc(json!({"name": "new name", "graph": graph(&["a", "b"])})),
            )
        },
    );
    assert_eq!(snapshot_steps(&s, &id), ["b"]);

    // Unchanged graph and type are not a change: the GET document sent back, the graph as first
    // sent (without edge ids), the same type with a new name.
    let got = s.get(&path, &s.admin).json();
    let r = s.patch(&path, &s.admin, &got);
    r.expect(200);
    assert_eq!(attrs(&r)["status"], "active");
    assert_eq!(attrs(&r)["graph"], got["data"]["attributes"]["graph"]);
    // The same graph with node members in another order and a made-up edge id (server-only).
    let same = json!({"edges": [{"target": "b", "source": "a", "id": "made-up"}],
                      "nodes": [{"fields": {"f": 1}, "command": "x/y:z@1", "id": "a"}, {"command": "x/y:w", "id": "b"}]});
    let r = s.patch(&path, &s.admin, &doc(json!({"graph": same})));
    r.expect(200);
    assert_eq!(attrs(&r)["graph"]["edges"][0]["id"], "a:b");
    let r = s.patch(
        &path,
        &s.admin,
        &doc(json!({"graph": sent_graph, "type": "ordinary", "name": "renamed while running"})),
    );
    r.expect(200);
    assert_eq!(attrs(&r)["name"], "renamed while running");
    assert_eq!(attrs(&r)["status"], "active");
    assert_eq!(attrs(&r)["current_status"], "active");
    // Sending server-only attributes that say "inactive" neither stops the flow nor is refused.
    let r = s.patch(
        &path,
        &s.admin,
        &doc(json!({"status": "inactive", "current_status": "inactive", "description": "d"})),
    );
    r.expect(200);
    assert_eq!(attrs(&r)["status"], "active");
    assert_eq!(snapshot_steps(&s, &id), ["b"]);

    // Stopped again: the graph may change.
    toggle(&s, &id, "stop", &s.admin).expect(202);
    let r = s.patch(
        &path,
        &s.admin,
        &doc(json!({"graph": graph(&["a"]), "type": "long_running"})),
    );
    r.expect(200);
    assert_eq!(attrs(&r)["type"], "long_running");
    assert!(
        snapshot_steps(&s, &id).is_empty(),
        "snapshot of dropped step b must be gone"
    );
}

// ---------------------------------------------------------------------------------------------
// DELETE /v2/flows/{id}

#[test]
fn delete_removes_the_flow_its_steps_and_snapshots() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "Deleting");
    let guest = s.user("guest@example.com");
    let stranger = s.user("stranger@example.com");
    s.add_member(&s.admin, &ws, &guest, "guest");
    let keep = s.flow(&s.admin, &ws, &["a", "b"]);
    create_snapshot(&s, &keep, "a", json!(1));
    let id = s.flow(&s.admin, &ws, &["a", "b", "c"]);
    create_snapshot(&s, &id, "a", json!({"x": 1}));
    create_snapshot(&s, &id, "c", json!(null));
    let pk = flow_pk(&s, &id);
    let path = format!("/v2/flows/{id}");

    refused(&s, "guest", 403, None, "workspaces.flow.edit", || {
        s.delete(&path, &guest)
    });
    refused(&s, "non-member", 403, None, "member", || {
        s.delete(&path, &stranger)
    });
    refused(
        &s,
        "unknown flow",
        404,
        None,
        "65f0c0ffee0000000000abcd",
        || s.delete("/v2/flows/65f0c0ffee0000000000abcd", &s.admin),
    );

    // Running or not; a form content type and empty body are ignored.
    toggle(&s, &id, "start", &s.admin).expect(202);
    let r = s.request(
        "DELETE",
        &path,
        Some(&s.admin.auth()),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "0"),
        ],
        None,
    );
    r.expect(204);
    assert!(r.body.is_empty(), "204 has no body");
    s.get(&path, &s.admin).expect(404);
    s.get(&format!("{path}/snapshots"), &s.admin).expect(404);
    s.get(&format!("/v1/tasks/{id}/steps/a"), &s.admin)
        .expect(404);
    assert!(rows(&s, &format!("SELECT * FROM flows WHERE pk = {pk}")).is_empty());
    assert!(
        rows(&s, &format!("SELECT * FROM steps WHERE flow_pk = {pk}")).is_empty(),
        "steps must be deleted"
    );
    assert!(
        rows(&s, &format!("SELECT * FROM snapshots WHERE flow_pk = {pk}")).is_empty(),
        "snapshots must be deleted"
    );
    refused(&s, "second delete", 404, None, &id, || {
        s.delete(&path, &s.admin)
    });
    // The other flow is untouched.
    assert_eq!(steps_of(&s, &keep), ["a", "b"]);
    assert_eq!(snapshot_steps(&s, &keep), ["a"]);
    let list = s
        .get(&format!("/v2/flows?workspace_id={ws}"), &s.admin)
        .expect(200)
        .json();
    assert_eq!(list["meta"]["total"], 1);

    // An integrator may delete.
    let integ = s.user("integ@example.com");
    s.add_member(&s.admin, &ws, &integ, "integrator");
    s.delete(&format!("/v2/flows/{keep}"), &integ).expect(204);
    assert!(rows(&s, "SELECT * FROM snapshots").is_empty());
    assert!(rows(&s, "SELECT * FROM steps").is_empty());
}

// ---------------------------------------------------------------------------------------------
// start / stop

#[test]
fn start_and_stop() {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let guest = s.user("guest@example.com");
    let integ = s.user("integ@example.com");
    let stranger = s.user("stranger@example.com");
    let ws = s.workspace(&owner, "Toggle");
    s.add_member(&owner, &ws, &guest, "guest");
    s.add_member(&owner, &ws, &integ, "integrator");
    let id = s.flow(&owner, &ws, &["a", "b"]);
    let path = format!("/v2/flows/{id}");

    for what in ["start", "stop"] {
        let p = format!("{path}/{what}");
        refused(
            &s,
            &format!("guest {what}"),
            403,
            None,
            "toggleStatus",
            || toggle(&s, &id, what, &guest),
        );
        refused(
            &s,
            &format!("non-member {what}"),
            403,
            None,
            "member",
            || toggle(&s, &id, what, &stranger),
        );
        refused(
            &s,
            &format!("tenant-admin {what}"),
            403,
            None,
            "member",
            || toggle(&s, &id, what, &s.admin),
        );
        refused(
            &s,
            &format!("{what} unknown flow"),
            404,
            None,
            "65f0c0ffee0000000000abcd",
            || toggle(&s, "65f0c0ffee0000000000abcd", what, &owner),
        );
        refused(
            &s,
            &format!("{what} without credentials"),
            401,
            None,
            "",
            || s.request("POST", &p, None, &[], Some(b"")),
        );
    }
    refused(&s, "stop an inactive flow", 409, None, "inactive", || {
        toggle(&s, &id, "stop", &owner)
    });

    // Start as real clients send it: form content type, Content-Length: 0.
    let r = toggle(&s, &id, "start", &integ);
    r.expect(202);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["data"]["id"], id.as_str());
    assert_eq!(v["data"]["type"], "flow");
    assert_eq!(v["data"]["links"]["self"], path);
    assert_eq!(v["meta"], json!({}));
    let a = &v["data"]["attributes"];
    assert_eq!(a["status"], "active");
    assert_eq!(a["current_status"], "active");
    assert!(
        is_iso_ms(&a["last_start_time"]),
        "last_start_time set: {}",
        a["last_start_time"]
    );
    assert_eq!(a["last_stop_time"], Value::Null);
    assert_eq!(
        s.get(&path, &guest).json()["data"],
        v["data"],
        "GET shows the started flow"
    );
    let started = a["last_start_time"].clone();

    refused(
        &s,
        "start an active flow",
        409,
        None,
        "already active",
        || toggle(&s, &id, "start", &owner),
    );
    refused(
        &s,
        "guest stop of an active flow",
        403,
        None,
        "toggleStatus",
        || toggle(&s, &id, "stop", &guest),
    );
    let r = list_all(
        &s,
        &owner,
        &format!("workspace_id={ws}&filter[status]=active"),
        5,
    );
    assert_eq!(ids(&r).as_slice(), std::slice::from_ref(&id));

    std::thread::sleep(Duration::from_millis(3));
    let r = toggle(&s, &id, "stop", &integ);
    r.expect(202);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"data": {}, "meta": {}}),
        "stop answers an empty document"
    );
    let a = attrs(&s.get(&path, &owner));
    assert_eq!(a["status"], "inactive");
    assert_eq!(a["current_status"], "inactive");
    assert!(
        is_iso_ms(&a["last_stop_time"]),
        "last_stop_time set: {}",
        a["last_stop_time"]
    );
    assert_eq!(a["last_start_time"], started, "stop keeps last_start_time");
    assert!(
        a["last_stop_time"].as_str() > started.as_str(),
        "last_stop_time after last_start_time"
    );
    refused(&s, "stop again", 409, None, "inactive", || {
        toggle(&s, &id, "stop", &owner)
    });

    // Other client habits: no Content-Type and no Content-Length at all; JSON content type with an
    // empty body; form type on stop.
    std::thread::sleep(Duration::from_millis(3));
    let raw = format!(
        "POST /v2/flows/{id}/start HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        s.addr,
        owner.auth()
    );
    let r = s.raw(raw.as_bytes());
    r.expect(202);
    let again = attrs(&r)["last_start_time"].clone();
    assert!(
        again.as_str() > started.as_str(),
        "a second start sets a new last_start_time"
    );
    let r = s.request(
        "POST",
        &format!("{path}/stop"),
        Some(&owner.auth()),
        &[("Content-Type", "application/json")],
        Some(b""),
    );
    r.expect(202);
    let r = s.request(
        "POST",
        &format!("{path}/start"),
        Some(&owner.auth()),
        &[("Content-Type", "application/json")],
        Some(b""),
    );
    r.expect(202);
}

// ---------------------------------------------------------------------------------------------
// GET /v1/tasks/{flow_id}/steps/{step_id}

#[test]
fn runtime_task_step() {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let guest = s.user("guest@example.com");
    let stranger = s.user("stranger@example.com");
    let ws = s.workspace(&owner, "Runtime");
    s.add_member(&owner, &ws, &guest, "guest");
    let r = s.post(
        "/v2/flows",
        &owner,
        &json!({"data": {"type": "flow", "attributes": {"name": "rt", "type": "ordinary", "graph": {"nodes": [
                {"id": "http", "command": "elasticio/http:httpRequestAction@1.2.3", "name": "HTTP",
                 "fields": {"url": "https://example.com", "n": 12345678901234567890123u128, "nested": {"a": [1, 0.1]}}},
                {"id": "plain", "command": "plain"},
                {"id": "trig", "command": "my/comp:trigger", "fields": null},
                {"id": "multi", "command": "a:b:c@2.0.0", "fields": {}},
                {"id": "nul", "command": "x:y@1"}],
               "edges": [{"source": "http", "target": "plain"}]}},
               "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}}),
    );
    r.expect(201);
    let id = r.id();
    let task = |step: &str| format!("/v1/tasks/{id}/steps/{step}");

    let r = s.get(&task("http"), &owner);
    r.expect(200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"id": "http", "function": "httpRequestAction",
               "config": {"url": "https://example.com", "n": 12345678901234567890123u128, "nested": {"a": [1, 0.1]}},
               "snapshot": {}, "is_passthrough": false, "variables": {}}),
        "plain JSON, not a JSON:API document; no snapshot yet is {{}}"
    );
    assert!(
        r.text().contains("12345678901234567890123"),
        "config numbers come back as written: {}",
        r.text()
    );
    let expected = [
        ("plain", "plain"),
        ("trig", "trigger"),
        ("multi", "c"),
        ("nul", "y"),
    ];
    for (step, function) in expected {
        let v = s.get(&task(step), &owner).expect(200).json();
        assert_eq!(v["id"], step);
        assert_eq!(v["function"], function, "function of step {step}");
        assert_eq!(
            v["config"],
            json!({}),
            "step {step} without fields: config {{}}"
        );
        assert_eq!(v["snapshot"], json!({}));
        assert_eq!(v["is_passthrough"], false);
        assert_eq!(v["variables"], json!({}));
    }

    // With snapshots: the value itself, also null.
    s.post(
        &format!("/v2/flows/{id}/snapshots"),
        &owner,
        &snapshot_doc("http", json!({"cursor": "2026-01-01", "ids": [1, 2]})),
    )
    .expect(201);
    s.post(
        &format!("/v2/flows/{id}/snapshots"),
        &owner,
        &snapshot_doc("nul", Value::Null),
    )
    .expect(201);
    s.post(
        &format!("/v2/flows/{id}/snapshots"),
        &owner,
        &snapshot_doc("plain", json!("text")),
    )
    .expect(201);
    assert_eq!(
        s.get(&task("http"), &owner).json()["snapshot"],
        json!({"cursor": "2026-01-01", "ids": [1, 2]})
    );
    assert_eq!(s.get(&task("plain"), &owner).json()["snapshot"], "text");
    let v = s.get(&task("nul"), &owner).json();
    assert!(v.as_object().unwrap().contains_key("snapshot"));
    assert_eq!(
        v["snapshot"],
        Value::Null,
        "a stored null snapshot is returned as null"
    );

    // Allowed while the flow runs, for every member and the tenant-admin.
    toggle(&s, &id, "start", &owner).expect(202);
    for u in [&owner, &guest, &s.admin] {
        let v = s.get(&task("http"), u).expect(200).json();
        assert_eq!(
            v["snapshot"]["ids"],
            json!([1, 2]),
            "task read by {} while running",
            u.email
        );
    }
    s.get(&task("http"), &stranger).expect(403);
    let r = s.get(&task("nope"), &owner);
    r.expect(404);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("nope"));
    s.get(&task("a.b"), &owner).expect(404);
    s.get("/v1/tasks/65f0c0ffee0000000000abcd/steps/http", &owner)
        .expect(404);
    // The flow is checked before the step; membership before the step too.
    s.get("/v1/tasks/65f0c0ffee0000000000abcd/steps/nope", &stranger)
        .expect(404);
    s.get(&task("nope"), &stranger).expect(403);
    s.request("GET", &task("http"), None, &[], None).expect(401);

    // A step removed from the graph is gone from the read path.
    toggle(&s, &id, "stop", &owner).expect(202);
    s.patch(
        &format!("/v2/flows/{id}"),
        &owner,
        &json!({"data": {"type": "flow", "attributes": {"graph": graph(&["plain"])}}}),
    )
    .expect(200);
    s.get(&task("http"), &owner).expect(404);
    let v = s.get(&task("plain"), &owner).expect(200).json();
    assert_eq!(v["function"], "plain");
    assert_eq!(v["config"], json!({"step": "plain"}));
    assert_eq!(v["snapshot"], "text", "kept step keeps its snapshot");
}

// ---------------------------------------------------------------------------------------------
// trailing slashes

#[test]
fn trailing_slash_on_every_flow_path() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "Slashes");
    let r = s.post("/v2/flows/", &s.admin, &flow_doc(&ws, "slash", &["a", "b"]));
    r.expect(201);
    let id = r.id();
    let p = format!("/v2/flows/{id}/");
    assert_eq!(
        s.get(&p, &s.admin).expect(200).id(),
        id,
        "GET /v2/flows/ID/"
    );
    let list = s
        .get(&format!("/v2/flows/?workspace_id={ws}"), &s.admin)
        .expect(200)
        .json();
    assert_eq!(list["meta"]["total"], 1, "GET /v2/flows/?workspace_id=");
    let r = s.patch(
        &p,
        &s.admin,
        &json!({"data": {"type": "flow", "id": id, "attributes": {"name": "slashed"}}}),
    );
    r.expect(200);
    assert_eq!(attrs(&r)["name"], "slashed");
    s.post(
        &format!("/v2/flows/{id}/snapshots/"),
        &s.admin,
        &snapshot_doc("a", json!(1)),
    )
    .expect(201);
    let r = s.request(
        "POST",
        &format!("/v2/flows/{id}/start/"),
        Some(&s.admin.auth()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b""),
    );
    r.expect(202);
    let v = s
        .get(&format!("/v1/tasks/{id}/steps/a/"), &s.admin)
        .expect(200)
        .json();
    assert_eq!(v["snapshot"], 1);
    let r = s.request(
        "POST",
        &format!("/v2/flows/{id}/stop/"),
        Some(&s.admin.auth()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b""),
    );
    r.expect(202);
    assert_eq!(r.json(), json!({"data": {}, "meta": {}}));
    s.delete(&p, &s.admin).expect(204);
    s.get(&p, &s.admin).expect(404);
}

#[test]
fn flow_sizes_are_bounded() {
    let s = Server::start_with(&[("FLOWSNAP_MAX_FLOW_BYTES", "4096")]);
    let ws = s.workspace(&s.admin, "Bounded");
    let f = s.flow(&s.admin, &ws, &["a"]);
    let before = s.state();
    let big = serde_json::json!({"blob": "x".repeat(5000)});
    let r = s.patch(
        &format!("/v2/flows/{f}"),
        &s.admin,
        &serde_json::json!({"data": {"type": "flow", "id": f, "attributes": {"nodes_config": big}}}),
    );
    r.expect(413);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("max_flow_bytes"));
    let r = s.patch(
        &format!("/v2/flows/{f}"),
        &s.admin,
        &serde_json::json!({"data": {"type": "flow", "id": f, "attributes": {"description": "d".repeat(10_001)}}}),
    );
    r.expect(400);
    assert_eq!(
        r.json()["errors"][0]["source"]["pointer"],
        "/data/attributes/description"
    );
    let r = s.patch(
        &format!("/v2/flows/{f}"),
        &s.admin,
        &serde_json::json!({"data": {"type": "flow", "id": f, "attributes": {"cron": "* ".repeat(200)}}}),
    );
    r.expect(400);
    assert_eq!(before, s.state());
    // Within the limits, and null, both work.
    s.patch(
        &format!("/v2/flows/{f}"),
        &s.admin,
        &serde_json::json!({"data": {"type": "flow", "id": f, "attributes": {"description": "d".repeat(10_000), "cron": null}}}),
    )
    .expect(200);
}
