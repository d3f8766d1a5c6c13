//! Fixtures (spec section 11): `import` and its refusals, `export` and the round trip, `serve
//! --fixture / --ephemeral / --demo`, the readiness line, and `POST /_flowsnap/reset`.

mod common;

use common::{basic, state_of, Resp, Server, User, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WS: &str = "65f0c0ffee00000000001234";
const FLOW: &str = "65f0c0ffee00000000005678";
const WRITERS: &str = "65f0c0ffee00000000005679";
const DEV_ID: &str = "65f0c0ffee000000000000a1";
const INT_ID: &str = "65f0c0ffee000000000000a2";
const ZED_ID: &str = "65f0c0ffee000000000000a3";
const BIG: &str = "12345678901234567890123";

/// The fixture most tests start from: pinned ids and keys, members not in the users' order, a
/// big number, history, and a flow of eight steps for concurrent writers.
fn base_fixture() -> String {
    let writers: Vec<String> = (0..8)
        .map(|i| format!(r#"{{"id": "w{i}", "command": "elasticio/code:execute@1.2.11"}}"#))
        .collect();
    let writer_snaps: Vec<String> = (0..8).map(|i| format!(r#""w{i}": {{"n": 0}}"#)).collect();
    format!(
        r#"{{"flowsnap_fixture": 1,
 "users": [
  {{"id": "{DEV_ID}", "email": "dev@example.com", "first_name": "Dev", "last_name": "One",
   "tenant_admin": true, "api_key": "test-key-not-secret", "password": "pass-word-1!"}},
  {{"id": "{INT_ID}", "email": "int@example.com", "first_name": "Ina", "api_key": "integrator-key-1"}},
  {{"id": "{ZED_ID}", "email": "zed@example.com"}}
 ],
 "workspaces": [{{"id": "{WS}", "name": "Team A",
   "members": [{{"email": "zed@example.com", "role": "guest"}}, {{"email": "dev@example.com", "role": "owner"}},
               {{"user_id": "{INT_ID}", "role": "integrator"}}],
   "flows": [
    {{"id": "{FLOW}", "name": "Orders", "type": "ordinary",
     "graph": {{"nodes": [{{"id": "step_1", "command": "elasticio/http:get@1.0.0", "fields": {{"n": 1.50}}}},
                          {{"id": "step_2", "command": "elasticio/code:execute@1.2.11"}}],
               "edges": [{{"source": "step_1", "target": "step_2"}}]}},
     "snapshots": {{"step_1": {{"last_id": {BIG}, "z": 0.1, "a": "<b>x</b>"}}}},
     "snapshot_history": {{"step_1": [{{"last_id": 1}}, {{"last_id": 2}}]}}}},
    {{"id": "{WRITERS}", "name": "Writers", "type": "ordinary",
     "graph": {{"nodes": [{}], "edges": []}},
     "snapshots": {{{}}}}}]}}]}}"#,
        writers.join(", "),
        writer_snaps.join(", ")
    )
}

fn dev() -> User {
    User {
        id: DEV_ID.into(),
        email: "dev@example.com".into(),
        key: "test-key-not-secret".into(),
    }
}

fn int() -> User {
    User {
        id: INT_ID.into(),
        email: "int@example.com".into(),
        key: "integrator-key-1".into(),
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

/// `flowsnap --db DB ARGS`.
fn cli(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env("FLOWSNAP_LOG_LEVEL", "warn")
        .output()
        .expect("run flowsnap")
}

/// A server on a new ephemeral database loaded from `fixture`.
fn serve_fixture(fixture: &str) -> (Server, PathBuf) {
    let dir = Server::new_dir();
    let f = write_file(&dir, "fixture.json", fixture);
    let (s, ready) = Server::start_serving(
        dir,
        &[
            "serve",
            "--ephemeral",
            "--fixture",
            f.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dev(),
    )
    .unwrap_or_else(|log| panic!("the fixture server did not start: {log}"));
    let db = PathBuf::from(
        ready["database"]
            .as_str()
            .expect("database in the readiness line"),
    );
    (s, db)
}

fn raw_post(s: &Server, path: &str, u: &User, body: &str) -> Resp {
    s.request(
        "POST",
        path,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    )
}

fn raw_patch(s: &Server, path: &str, u: &User, body: &str) -> Resp {
    s.request(
        "PATCH",
        path,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    )
}

fn reset(s: &Server, u: &User) -> Resp {
    s.request("POST", "/_flowsnap/reset", Some(&u.auth()), &[], None)
}

fn wrap(users: &str, workspaces: &str) -> String {
    format!(r#"{{"flowsnap_fixture": 1, "users": [{users}], "workspaces": [{workspaces}]}}"#)
}

fn ws_with(members: &str, flows: &str) -> String {
    format!(r#"{{"name": "New team", "members": [{members}], "flows": [{flows}]}}"#)
}

const OWNER: &str = r#"{"email": "dev@example.com", "role": "owner"}"#;

fn flow_with(extra: &str) -> String {
    format!(
        r#"{{"name": "F", "type": "ordinary", "graph": {{"nodes": [{{"id": "s", "command": "x/y:z@1"}}, {{"id": "t", "command": "x/y:z@1"}}], "edges": []}}{extra}}}"#
    )
}

#[test]
fn import_refusals_name_the_place_and_change_nothing() {
    let s = Server::start();
    let dir = s.dir.clone();
    let base = write_file(&dir, "base.json", &base_fixture());
    let out = s.cli(&["import", base.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = s.state();
    let big = format!(r#", "snapshots": {{"s": "{}"}}"#, "x".repeat(5200));
    let new_user = r#"{"email": "new@example.com"}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "not JSON",
            "{\"flowsnap_fixture\": 1,".into(),
            "not valid JSON",
        ),
        (
            "wrong version",
            r#"{"flowsnap_fixture": 2}"#.into(),
            "flowsnap_fixture: ",
        ),
        (
            "no version",
            r#"{"users": []}"#.into(),
            "flowsnap_fixture: ",
        ),
        (
            "unknown member",
            r#"{"flowsnap_fixture": 1, "colour": 1}"#.into(),
            "colour: ",
        ),
        (
            "users not an array",
            r#"{"flowsnap_fixture": 1, "users": {}}"#.into(),
            "users: ",
        ),
        (
            "bad e-mail",
            wrap(r#"{"email": "nobody"}"#, ""),
            "users[0].email: ",
        ),
        (
            "e-mail twice",
            wrap(r#"{"email": "a@x.y"}, {"email": "A@x.y"}"#, ""),
            "users[1].email: ",
        ),
        (
            "e-mail in the database",
            wrap(r#"{"email": "ADMIN@example.com"}"#, ""),
            "users[0].email: ",
        ),
        (
            "id in the database",
            wrap(&format!(r#"{{"id": "{DEV_ID}", "email": "a@x.y"}}"#), ""),
            "users[0].id: ",
        ),
        (
            "id twice",
            wrap(
                r#"{"id": "65f0c0ffee0000000000bbbb", "email": "a@x.y"}, {"id": "65f0c0ffee0000000000bbbb", "email": "b@x.y"}"#,
                "",
            ),
            "users[1].id: ",
        ),
        (
            "bad id",
            wrap(r#"{"id": "ABC", "email": "a@x.y"}"#, ""),
            "users[0].id: ",
        ),
        (
            "key and hash",
            wrap(
                r#"{"email": "a@x.y", "api_key": "k", "api_key_hash": "h"}"#,
                "",
            ),
            "users[0]: ",
        ),
        (
            "bad hash",
            wrap(r#"{"email": "a@x.y", "api_key_hash": "$2b$10$abc"}"#, ""),
            "users[0].api_key_hash: ",
        ),
        (
            "weak password",
            wrap(r#"{"email": "a@x.y", "password": "short"}"#, ""),
            "users[0].password: ",
        ),
        (
            "long name",
            wrap(
                &format!(
                    r#"{{"email": "a@x.y", "last_name": "{}"}}"#,
                    "n".repeat(101)
                ),
                "",
            ),
            "users[0].last_name: ",
        ),
        (
            "bad workspace name",
            wrap("", &format!(r#"{{"name": "ab", "members": [{OWNER}]}}"#)),
            "workspaces[0].name: ",
        ),
        (
            "no owner",
            wrap(
                "",
                r#"{"name": "Team B", "members": [{"email": "dev@example.com", "role": "admin"}]}"#,
            ),
            "workspaces[0].members: ",
        ),
        (
            "unknown role",
            wrap(
                "",
                r#"{"name": "Team B", "members": [{"email": "dev@example.com", "role": "boss"}]}"#,
            ),
            "workspaces[0].members[0].role: ",
        ),
        (
            "unknown member user",
            wrap(
                "",
                r#"{"name": "Team B", "members": [{"email": "ghost@example.com", "role": "owner"}]}"#,
            ),
            "workspaces[0].members[0].email: ",
        ),
        (
            "member twice",
            wrap(
                "",
                &format!(
                    r#"{{"name": "Team B", "members": [{OWNER}, {{"user_id": "{DEV_ID}", "role": "guest"}}]}}"#
                ),
            ),
            "workspaces[0].members[1]: ",
        ),
        (
            "workspace id in the database",
            wrap(
                "",
                &format!(r#"{{"id": "{WS}", "name": "Team B", "members": [{OWNER}]}}"#),
            ),
            "workspaces[0].id: ",
        ),
        (
            "bad time",
            wrap(
                "",
                &format!(
                    r#"{{"name": "Team B", "created_at": "yesterday", "members": [{OWNER}]}}"#
                ),
            ),
            "workspaces[0].created_at: ",
        ),
        (
            "bad node id",
            wrap(
                "",
                &ws_with(
                    OWNER,
                    r#"{"name": "F", "type": "ordinary", "graph": {"nodes": [{"id": "s", "command": "c"}, {"id": "a.b", "command": "c"}]}}"#,
                ),
            ),
            "workspaces[0].flows[0].graph.nodes[1].id: ",
        ),
        (
            "node id twice",
            wrap(
                "",
                &ws_with(
                    OWNER,
                    r#"{"name": "F", "type": "ordinary", "graph": {"nodes": [{"id": "s", "command": "c"}, {"id": "s", "command": "c"}]}}"#,
                ),
            ),
            "workspaces[0].flows[0].graph.nodes[1].id: ",
        ),
        (
            "edge to nowhere",
            wrap(
                "",
                &ws_with(
                    OWNER,
                    r#"{"name": "F", "type": "ordinary", "graph": {"nodes": [{"id": "s", "command": "c"}], "edges": [{"source": "s", "target": "z"}]}}"#,
                ),
            ),
            "workspaces[0].flows[0].graph.edges[0].target: ",
        ),
        (
            "no command",
            wrap(
                "",
                &ws_with(
                    OWNER,
                    r#"{"name": "F", "type": "ordinary", "graph": {"nodes": [{"id": "s"}]}}"#,
                ),
            ),
            "workspaces[0].flows[0].graph.nodes[0].command: ",
        ),
        (
            "bad flow type",
            wrap(
                "",
                &ws_with(
                    OWNER,
                    r#"{"name": "F", "type": "weird", "graph": {"nodes": []}}"#,
                ),
            ),
            "workspaces[0].flows[0].type: ",
        ),
        (
            "no graph",
            wrap("", &ws_with(OWNER, r#"{"name": "F", "type": "ordinary"}"#)),
            "workspaces[0].flows[0].graph: ",
        ),
        (
            "bad status",
            wrap("", &ws_with(OWNER, &flow_with(r#", "status": "paused""#))),
            "workspaces[0].flows[0].status: ",
        ),
        (
            "unknown step",
            wrap(
                "",
                &ws_with(OWNER, &flow_with(r#", "snapshots": {"nope": 1}"#)),
            ),
            "workspaces[0].flows[0].snapshots.nope: ",
        ),
        (
            "snapshot too large",
            wrap("", &ws_with(OWNER, &flow_with(&big))),
            "workspaces[0].flows[0].snapshots.s: ",
        ),
        (
            "history without a value",
            wrap(
                "",
                &ws_with(
                    OWNER,
                    &flow_with(r#", "snapshots": {"t": 1}, "snapshot_history": {"s": [1]}"#),
                ),
            ),
            "workspaces[0].flows[0].snapshot_history.s: ",
        ),
        (
            "flow id in the database",
            wrap(
                "",
                &ws_with(OWNER, &flow_with(&format!(r#", "id": "{FLOW}""#))),
            ),
            "workspaces[0].flows[0].id: ",
        ),
        (
            "flow id twice",
            wrap(
                "",
                &format!(
                    "{}, {}",
                    ws_with(OWNER, &flow_with(r#", "id": "65f0c0ffee0000000000cccc""#)),
                    ws_with(OWNER, &flow_with(r#", "id": "65f0c0ffee0000000000cccc""#))
                ),
            ),
            "workspaces[1].flows[0].id: ",
        ),
        (
            "unknown flow member",
            wrap("", &ws_with(OWNER, &flow_with(r#", "colour": "red""#))),
            "workspaces[0].flows[0].colour: ",
        ),
        // Valid rows before the refusal are not kept either: all or nothing.
        (
            "late refusal",
            wrap(
                new_user,
                &format!(
                    r#"{}, {{"name": "x", "members": [{OWNER}]}}"#,
                    ws_with(OWNER, &flow_with(""))
                ),
            ),
            "workspaces[1].name: ",
        ),
        (
            "late database refusal",
            wrap(
                new_user,
                &ws_with(OWNER, &flow_with(&format!(r#", "id": "{FLOW}""#))),
            ),
            "workspaces[0].flows[0].id: ",
        ),
    ];
    for (name, text, place) in cases {
        let f = write_file(&dir, "bad.json", &text);
        let out = s.cli(&["import", f.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(out.stdout.is_empty(), "{name}: printed on stdout");
        assert!(
            err.contains(place),
            "{name}: the message must name {place:?}: {err}"
        );
        assert_eq!(s.state(), before, "{name}: the database changed");
    }
}

#[test]
fn a_fixture_over_max_fixture_bytes_is_refused_unread() {
    let dir = Server::new_dir();
    let db = dir.join("f.db");
    let f = write_file(&dir, "f.json", &base_fixture());
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["import", f.to_str().unwrap()])
        .env("FLOWSNAP_MAX_FIXTURE_BYTES", "1000")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_fixture_bytes") && err.contains("1000"),
        "{err}"
    );
    assert!(!db.exists(), "no database is made for a refused file");
    // Within the limit it loads.
    let out = cli(&db, &["import", f.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_pins_ids_keys_values_and_member_order() {
    let s = Server::start();
    let f = write_file(&s.dir, "base.json", &base_fixture());
    let out = s.cli(&["import", f.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        summary,
        json!({"users": 3, "workspaces": 1, "flows": 2, "snapshots": 9})
    );
    // Keys as given; the id as given.
    let me = s.get("/v2/users/me", &dev());
    me.expect(200);
    assert_eq!(me.id(), DEV_ID);
    assert_eq!(me.json()["data"]["attributes"]["first_name"], "Dev");
    s.get("/v2/users/me", &int()).expect(200);
    // The password works where the API accepts one.
    let r = s.request(
        "POST",
        &format!("/v2/users/{DEV_ID}/api-key"),
        Some(&basic("dev@example.com", "pass-word-1!")),
        &[],
        None,
    );
    r.expect(201);
    // A user without a key cannot sign in with anything obvious.
    let zed = User {
        id: ZED_ID.into(),
        email: "zed@example.com".into(),
        key: String::new(),
    };
    s.get("/v2/users/me", &zed).expect(401);
    // The workspace and flow ids; members in the file's order, not the users' order.
    let m = s.get(&format!("/v2/workspaces/{WS}/members"), &s.admin);
    m.expect(200);
    let ids: Vec<String> = m.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [ZED_ID, DEV_ID, INT_ID]);
    // The value exactly as written, with the revision after its history.
    let snap = s.get(&format!("/v2/flows/{FLOW}/snapshots/step_1"), &s.admin);
    snap.expect(200);
    assert!(
        snap.text().contains(&format!(
            r#""snapshot":{{"last_id":{BIG},"z":0.1,"a":"<b>x</b>"}}"#
        )),
        "{}",
        snap.text()
    );
    assert!(
        snap.header("ETag").unwrap().ends_with("-3\""),
        "{:?}",
        snap.header("ETag")
    );
    let flow = s.get(&format!("/v2/flows/{FLOW}"), &s.admin);
    flow.expect(200);
    assert!(
        flow.text().contains(r#""fields":{"n":1.50}"#),
        "{}",
        flow.text()
    );
    assert_eq!(flow.json()["data"]["attributes"]["status"], "inactive");
    assert_eq!(
        flow.json()["data"]["relationships"]["user"]["data"]["id"],
        DEV_ID
    );
}

/// Every GET of sections 3-7 a user can make on the database, with the contract's id and the
/// users' `last_login` (which belong to the database) taken out.
fn every_get(s: &Server, u: &User) -> Vec<(String, String)> {
    let mut paths = vec![
        "/v2/users/me".to_string(),
        "/v2/users".into(),
        "/v2/users?page[size]=1&page[number]=2".into(),
        "/v2/contracts".into(),
        "/v2/workspaces".into(),
    ];
    let users = s.get("/v2/users?page[size]=100", u).json();
    for x in users["data"].as_array().into_iter().flatten() {
        paths.push(format!("/v2/users/{}", x["id"].as_str().unwrap()));
    }
    let wss = s.get("/v2/workspaces?page[size]=100", u).json();
    for w in wss["data"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap();
        paths.push(format!("/v2/workspaces/{id}"));
        paths.push(format!("/v2/workspaces/{id}/members"));
        let members = s.get(&format!("/v2/workspaces/{id}/members"), u).json();
        for m in members["data"].as_array().unwrap() {
            paths.push(format!(
                "/v2/workspaces/{id}/members/{}",
                m["id"].as_str().unwrap()
            ));
        }
        for q in [
            "",
            "&sort=name",
            "&sort=-updated_at",
            "&filter[status]=active",
            "&search=flow",
        ] {
            paths.push(format!("/v2/flows?workspace_id={id}{q}"));
        }
        let flows = s
            .get(&format!("/v2/flows?workspace_id={id}&page[size]=100"), u)
            .json();
        for f in flows["data"].as_array().unwrap() {
            let fid = f["id"].as_str().unwrap();
            paths.push(format!("/v2/flows/{fid}"));
            paths.push(format!("/v2/flows/{fid}/snapshots"));
            for n in f["attributes"]["graph"]["nodes"].as_array().unwrap() {
                let step = n["id"].as_str().unwrap();
                paths.push(format!("/v2/flows/{fid}/snapshots/{step}"));
                paths.push(format!("/v1/tasks/{fid}/steps/{step}"));
            }
        }
    }
    let contract = s.get("/v2/contracts", u).json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    paths
        .into_iter()
        .map(|p| {
            let r = s.get(&p, u);
            assert!(
                r.status == 200 || r.status == 403 || r.status == 404,
                "{p}: {}",
                r.text()
            );
            let mut v: Value = r.json();
            strip_last_login(&mut v);
            let body = v.to_string().replace(&contract, "CONTRACT");
            (p, format!("{} {body}", r.status))
        })
        .collect()
}

/// Takes out what belongs to the database rather than to its content: users' `last_login` and
/// the snapshot `meta` of section 9 (revisions, ETags and times start anew).
fn strip_last_login(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("last_login") {
                m.insert("last_login".into(), Value::Null);
            }
            if m.get("type").and_then(Value::as_str) == Some("snapshot") {
                m.remove("meta");
            }
            m.values_mut().for_each(strip_last_login);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_last_login),
        _ => {}
    }
}

#[test]
fn export_then_import_gives_the_same_answers_get_by_get() {
    let a = Server::start();
    let u = a.user("member@example.com");
    let ws = a.workspace(&a.admin, "Round trip");
    let ws2 = a.workspace(&u, "Second team");
    a.add_member(&a.admin, &ws, &u, "integrator");
    let f1 = a.flow(&a.admin, &ws, &["a", "b", "c"]);
    let f2 = a.flow(&u, &ws, &["x"]);
    let f3 = a.flow(&u, &ws2, &["p", "q"]);
    let snap = |flow: &str, step: &str, raw: &str| {
        raw_post(
            &a,
            &format!("/v2/flows/{flow}/snapshots"),
            &a.admin,
            &format!(
                r#"{{"data": {{"type": "snapshot", "id": "{step}", "attributes": {{"snapshot": {raw}}}}}}}"#
            ),
        )
    };
    snap(
        &f1,
        "a",
        &format!(r#"{{"z": 1, "a": [{BIG}, 0.1, 1e400, -0.0], "s": "\u00e9 <i>"}}"#),
    )
    .expect(201);
    snap(&f1, "c", "null").expect(201);
    snap(&f2, "x", "\"text\"").expect(201);
    raw_patch(
        &a,
        &format!("/v2/flows/{f1}/snapshots/a"),
        &a.admin,
        &format!(
            r#"{{"data": {{"type": "snapshot", "attributes": {{"snapshot": {{"last": {BIG}}}}}}}}}"#
        ),
    )
    .expect(200);
    raw_post(
        &a,
        &format!("/v2/flows/{f3}/snapshots"),
        &u,
        r#"{"data": {"type": "snapshot", "id": "q", "attributes": {"snapshot": [1, 2]}}}"#,
    )
    .expect(201);
    a.patch(
        &format!("/v2/workspaces/{ws}"),
        &a.admin,
        &json!({"data": {"type": "workspace", "id": ws, "attributes": {"name": "Round trip 2"}}}),
    )
    .expect(200);
    a.patch(&format!("/v2/flows/{f2}"), &u, &json!({"data": {"type": "flow", "id": f2, "attributes": {"description": "d", "cron": "* * * * *", "nodes_config": {"x": {"k": 1}}}}})).expect(200);
    a.request(
        "POST",
        &format!("/v2/flows/{f1}/start"),
        Some(&a.admin.auth()),
        &[],
        None,
    )
    .expect(202);
    let before = every_get(&a, &a.admin);
    let before_u = every_get(&a, &u);

    let out_file = a.dir.join("export.json");
    let out = a.cli(&["export", "--out", out_file.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let exported = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        !exported.contains(&u.key) && !exported.contains(&a.admin.key),
        "plain keys are never written"
    );
    // To stdout, the same text.
    let out = a.cli(&["export"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), exported);
    // An existing --out file is refused and left as it is.
    let again = a.cli(&["export", "--out", out_file.to_str().unwrap()], None);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), exported);

    let dir = Server::new_dir();
    let db = dir.join("copy.db");
    let out = cli(&db, &["import", out_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary,
        json!({"users": 2, "workspaces": 2, "flows": 3, "snapshots": 4})
    );
    let (b, _) = Server::start_serving(
        dir,
        &[
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        a.admin.clone(),
    )
    .unwrap_or_else(|l| panic!("{l}"));
    // The same keys work, and every answer is the same.
    assert_eq!(every_get(&b, &b.admin), before);
    assert_eq!(every_get(&b, &u), before_u);
    // And the copy exports to the same text.
    let again = cli(&db, &["export"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), exported);

    // One workspace: its members' users only.
    let out = a.cli(&["export", "--workspace", &ws2], None);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["workspaces"].as_array().unwrap().len(), 1);
    let emails: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["member@example.com"]);
    // An unknown workspace is refused and writes nothing.
    let out = a.cli(&["export", "--workspace", "65f0c0ffee0000000000dead"], None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("65f0c0ffee0000000000dead"));
}

#[test]
fn fixture_on_a_database_with_data_is_refused() {
    let mut s = Server::start();
    assert!(s.terminate().success());
    let before = s.state();
    let f = write_file(&s.dir, "f.json", &base_fixture());
    let db = s.db();
    let r = Server::start_serving(
        Server::new_dir(),
        &[
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--fixture",
            f.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dev(),
    );
    let Err(log) = r else {
        panic!("a fixture was loaded into a database with data")
    };
    assert!(log.contains("already holds data"), "{log}");
    assert_eq!(s.state(), before);
    // --ephemeral names its own database: with --db it is refused.
    let r = Server::start_serving(
        Server::new_dir(),
        &[
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--ephemeral",
            "--listen",
            "127.0.0.1:0",
        ],
        dev(),
    );
    let Err(log) = r else {
        panic!("--ephemeral with --db was accepted")
    };
    assert!(log.contains("--ephemeral"), "{log}");
    // A bad fixture stops the start, naming the place, before a database is made.
    let bad = write_file(&s.dir, "bad.json", &wrap(r#"{"email": "x"}"#, ""));
    let r = Server::start_serving(
        Server::new_dir(),
        &[
            "serve",
            "--ephemeral",
            "--fixture",
            bad.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dev(),
    );
    let Err(log) = r else {
        panic!("a bad fixture was served")
    };
    assert!(log.contains("users[0].email"), "{log}");
}

#[test]
fn the_ephemeral_database_is_removed_at_exit_and_after_a_crash() {
    for signal in ["TERM", "INT"] {
        let (mut s, db) = serve_fixture(&base_fixture());
        assert!(db.exists());
        s.get("/v2/users/me", &dev()).expect(200);
        let child_pid = s.pid();
        common::unsafe_kill(child_pid, signal);
        let deadline = Instant::now() + Duration::from_secs(20);
        while db.parent().unwrap().exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !db.parent().unwrap().exists(),
            "SIG{signal}: {} is still there",
            db.display()
        );
        s.kill();
    }
    // A killed server leaves its directory; the next start removes it and uses a new one.
    let (mut s, db) = serve_fixture(&base_fixture());
    s.kill();
    assert!(db.exists());
    let (t, db2) = serve_fixture(&base_fixture());
    assert_ne!(db, db2);
    assert!(
        !db.parent().unwrap().exists(),
        "the stale directory is removed"
    );
    t.get("/v2/users/me", &dev()).expect(200);
    drop(t);
    // `--ephemeral` alone: an empty database with the first tenant-admin, as usual.
    let (mut e, ready) = Server::start_serving(
        Server::new_dir(),
        &["serve", "--ephemeral", "--listen", "127.0.0.1:0"],
        dev(),
    )
    .unwrap();
    let log = e.log.lock().unwrap().join("\n");
    assert!(log.contains("shown only now"), "{log}");
    let db = PathBuf::from(ready["database"].as_str().unwrap());
    assert!(db.exists());
    assert!(e.terminate().success());
    assert!(!db.exists());
}

#[test]
fn the_readiness_line_is_the_only_output_on_stdout() {
    let dir = Server::new_dir();
    let (mut s, ready) =
        Server::start_serving(dir, &["serve", "--demo", "--listen", "127.0.0.1:0"], dev()).unwrap();
    let obj = ready.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{ready}");
    let url = ready["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    assert!(Path::new(ready["database"].as_str().unwrap()).is_absolute());
    let line = s.stdout.lock().unwrap()[0].clone();
    assert_eq!(
        line,
        format!(
            r#"{{"url": "{}", "database": "{}"}}"#,
            url,
            ready["database"].as_str().unwrap()
        )
    );
    s.get("/healthz", &dev()).expect(200);
    s.get("/v2/nothing", &dev());
    assert!(s.terminate().success());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        s.stdout.lock().unwrap().len(),
        1,
        "{:?}",
        s.stdout.lock().unwrap()
    );
}

#[test]
fn reset_restores_the_state_right_after_the_load() {
    let (s, db) = serve_fixture(&base_fixture());
    let loaded = state_of(&db);
    let admin = dev();
    // Change everything a test might change.
    raw_patch(
        &s,
        &format!("/v2/flows/{FLOW}/snapshots/step_1"),
        &admin,
        r#"{"data": {"type": "snapshot", "attributes": {"snapshot": 1}}}"#,
    )
    .expect(200);
    raw_post(
        &s,
        &format!("/v2/flows/{FLOW}/snapshots"),
        &admin,
        r#"{"data": {"type": "snapshot", "id": "step_2", "attributes": {"snapshot": 2}}}"#,
    )
    .expect(201);
    s.delete(&format!("/v2/flows/{WRITERS}/snapshots/w0"), &admin)
        .expect(204);
    s.request(
        "POST",
        &format!("/v2/flows/{FLOW}/start"),
        Some(&admin.auth()),
        &[],
        None,
    )
    .expect(202);
    let created = s.flow(&admin, WS, &["n1"]);
    let nu = s.post("/v2/users", &admin, &json!({"data": {"type": "user", "attributes": {"first_name": "N", "last_name": "U", "email": "nu@example.com", "password": "pass-word-2!"}}}));
    nu.expect(201);
    let nu_id = nu.id();
    s.post(
        &format!("/v2/workspaces/{WS}/members"),
        &admin,
        &json!({"data": {"type": "member", "id": nu_id, "attributes": {"roles": ["admin"]}}}),
    )
    .expect(200);
    s.patch(
        &format!("/v2/workspaces/{WS}/members/{ZED_ID}"),
        &admin,
        &json!({"data": {"type": "member", "id": ZED_ID, "attributes": {"roles": ["admin"]}}}),
    )
    .expect(200);
    let rotated = s.request(
        "POST",
        &format!("/v2/users/{INT_ID}/api-key"),
        Some(&int().auth()),
        &[],
        None,
    );
    rotated.expect(201);
    let new_key = rotated.json()["data"]["attributes"]["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    s.get("/v2/users/me", &int()).expect(401);
    assert_ne!(state_of(&db), loaded);

    let started = Instant::now();
    reset(&s, &admin).expect(204);
    let took = started.elapsed();
    assert_eq!(
        without_audit(&state_of(&db)),
        without_audit(&loaded),
        "the database is exactly the loaded one again"
    );
    // The audit log as after the load, plus one fixture.reset event by the caller.
    let events = s.get("/v2/audit?page[size]=100", &admin).json();
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["fixture.reset", "fixture.import"]);
    assert_eq!(events["data"][0]["attributes"]["user_id"], DEV_ID);
    assert_eq!(events["data"][0]["attributes"]["target"]["type"], "fixture");
    // The versions as after the load.
    let v = s
        .get(
            &format!("/v2/flows/{FLOW}/snapshots/step_1/versions"),
            &admin,
        )
        .json();
    assert_eq!(v["meta"]["total"], 3, "{v}");
    // As the API shows it: values, status, ids and keys as loaded; what was created is gone.
    let snap = s.get(&format!("/v2/flows/{FLOW}/snapshots/step_1"), &admin);
    snap.expect(200);
    assert!(snap.text().contains(BIG));
    s.get(&format!("/v2/flows/{FLOW}/snapshots/step_2"), &admin)
        .expect(404);
    s.get(&format!("/v2/flows/{WRITERS}/snapshots/w0"), &admin)
        .expect(200);
    assert_eq!(
        s.get(&format!("/v2/flows/{FLOW}"), &admin).json()["data"]["attributes"]["status"],
        "inactive"
    );
    s.get(&format!("/v2/flows/{created}"), &admin).expect(404);
    s.get(&format!("/v2/users/{nu_id}"), &admin).expect(404);
    let ids: Vec<String> = s
        .get(&format!("/v2/workspaces/{WS}/members"), &admin)
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["id"].as_str().unwrap(),
                m["attributes"]["roles"][0].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            format!("{ZED_ID}:guest"),
            format!("{DEV_ID}:owner"),
            format!("{INT_ID}:integrator")
        ]
    );
    s.get("/v2/users/me", &int()).expect(200);
    let rotated_user = User {
        key: new_key,
        ..int()
    };
    s.get("/v2/users/me", &rotated_user).expect(401);
    // Reset twice in a row is the same state again.
    reset(&s, &admin).expect(204);
    assert_eq!(without_audit(&state_of(&db)), without_audit(&loaded));
    let events = s
        .get("/v2/audit?filter[action]=fixture.reset", &admin)
        .json();
    assert_eq!(
        events["meta"]["total"], 1,
        "the first reset's event is undone by the second"
    );
    eprintln!("reset took {took:?}");
}

/// A state dump (`common::state_of`) without the audit log (and its autoincrement counter).
fn without_audit(state: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in state.lines() {
        if let Some(t) = line.strip_prefix("== ") {
            skip = t == "audit_events" || t == "sqlite_sequence";
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn reset_is_404_without_a_fixture_and_403_for_others() {
    let plain = Server::start();
    let before = plain.state();
    let r = reset(&plain, &plain.admin);
    r.expect(404);
    assert_eq!(plain.state(), before);
    plain
        .request("POST", "/_flowsnap/reset", None, &[], None)
        .expect(401);

    let (s, db) = serve_fixture(&base_fixture());
    raw_patch(
        &s,
        &format!("/v2/flows/{FLOW}/snapshots/step_1"),
        &dev(),
        r#"{"data": {"type": "snapshot", "attributes": {"snapshot": 1}}}"#,
    )
    .expect(200);
    let changed = state_of(&db);
    let r = reset(&s, &int());
    r.expect(403);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("tenant-admin"));
    s.request("POST", "/_flowsnap/reset", None, &[], None)
        .expect(401);
    s.request(
        "POST",
        "/_flowsnap/reset",
        Some(&basic("dev@example.com", "wrong")),
        &[],
        None,
    )
    .expect(401);
    let r = s.request("GET", "/_flowsnap/reset", Some(&dev().auth()), &[], None);
    r.expect(405);
    assert_eq!(r.header("Allow"), Some("POST"));
    assert_eq!(state_of(&db), changed, "a refused reset changes nothing");
}

/// One write of a client: its value, and when it was sent and answered.
struct Write {
    n: u64,
    sent: Instant,
    done: Instant,
}

#[test]
fn reset_while_eight_clients_write() {
    let (s, db) = serve_fixture(&base_fixture());
    // The clients' credentials are verified once (argon2) before they start, as a suite would.
    s.get("/v2/users/me", &dev()).expect(200);
    let s = Arc::new(s);
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..8 {
        let (s, stop) = (s.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            let mut ok = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let sent = Instant::now();
                let body = format!(r#"{{"data": {{"type": "snapshot", "attributes": {{"snapshot": {{"n": {n}}}}}}}}}"#);
                let r = s.try_request("PATCH", &format!("/v2/flows/{WRITERS}/snapshots/w{i}"), &dev().auth(), Some(&body))
                    .expect("the server answers every request");
                assert!(r.status < 500, "a 5xx during the reset: {} {}", r.status, r.text());
                assert_eq!(r.status, 200, "{}", r.text());
                ok.push(Write { n, sent, done: Instant::now() });
            }
            ok
        }));
    }
    std::thread::sleep(Duration::from_millis(400));
    let reset_sent = Instant::now();
    reset(&s, &dev()).expect(204);
    let reset_done = Instant::now();
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::SeqCst);
    let writes: Vec<Vec<Write>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let c = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    for (i, ws) in writes.iter().enumerate() {
        let before = ws.iter().filter(|w| w.done < reset_sent).count();
        let after = ws.iter().filter(|w| w.sent > reset_done).count();
        let overlapping = ws.len() - before - after;
        assert!(
            before > 0 && after > 0,
            "client {i}: {before} writes before the reset, {after} after"
        );
        let (value, revision): (String, i64) = c
            .query_row(
                "SELECT v.value, s.revision FROM snapshots s
                 JOIN snapshot_versions v ON v.pk = s.value_pk WHERE s.step_id = ?1",
                [format!("w{i}")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let last = ws.last().unwrap();
        assert_eq!(value, format!(r#"{{"n":{}}}"#, last.n));
        // The fixture's revision (1) plus only the writes that came after the reset: the ones
        // before it are gone.
        let kept = revision as usize - 1;
        assert!(
            kept >= after && kept <= after + overlapping,
            "client {i}: {kept} writes kept; {after} came after the reset, {overlapping} overlapped it, {before} came before"
        );
    }
    // Everything else is as loaded.
    let other: i64 = c
        .query_row(
            "SELECT count(*) FROM snapshots WHERE step_id NOT LIKE 'w%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(other, 1);
    let flows: i64 = c
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(flows, 2);
}

#[test]
fn the_demo_credentials_work_and_the_demo_holds_what_section_11_lists() {
    let (s, ready) = Server::start_serving(
        Server::new_dir(),
        &["serve", "--demo", "--listen", "127.0.0.1:0"],
        dev(),
    )
    .unwrap();
    let log = s.log.lock().unwrap().clone();
    let users: Vec<User> = log
        .iter()
        .filter_map(|l| l.strip_prefix("flowsnap demo: "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (email, key) = (parts.next()?, parts.next()?);
            email.contains('@').then(|| User {
                id: String::new(),
                email: email.into(),
                key: key.into(),
            })
        })
        .collect();
    assert!(users.len() >= 4, "{log:?}");
    assert!(
        log.iter().any(|l| l.contains("console is at http://")),
        "{log:?}"
    );
    for u in &users {
        let me = s.get("/v2/users/me", u);
        me.expect(200);
        assert_eq!(me.json()["data"]["attributes"]["email"], u.email.as_str());
    }
    let admin = users
        .iter()
        .find(|u| {
            log.iter()
                .any(|l| l.contains(&u.email) && l.contains("tenant-admin"))
        })
        .expect("a tenant-admin");
    let wss = s.get("/v2/workspaces", admin).json();
    let wss = wss["data"].as_array().unwrap();
    assert!(wss.len() >= 2);
    let mut roles = std::collections::HashSet::new();
    let mut all = String::new();
    let mut running = 0;
    let mut with_history = 0;
    for w in wss {
        let id = w["id"].as_str().unwrap();
        for m in s.get(&format!("/v2/workspaces/{id}/members"), admin).json()["data"]
            .as_array()
            .unwrap()
        {
            roles.insert(m["attributes"]["roles"][0].as_str().unwrap().to_string());
        }
        for f in s.get(&format!("/v2/flows?workspace_id={id}"), admin).json()["data"]
            .as_array()
            .unwrap()
        {
            let fid = f["id"].as_str().unwrap();
            if f["attributes"]["status"] == "active" {
                running += 1;
            }
            all.push_str(&f.to_string());
            let snaps = s.get(&format!("/v2/flows/{fid}/snapshots"), admin);
            all.push_str(&snaps.text());
            for sn in snaps.json()["data"].as_array().unwrap() {
                let one = s.get(
                    &format!("/v2/flows/{fid}/snapshots/{}", sn["id"].as_str().unwrap()),
                    admin,
                );
                if !one.header("ETag").unwrap().ends_with("-1\"") {
                    with_history += 1;
                }
            }
        }
    }
    assert_eq!(roles.len(), 4, "members of every role: {roles:?}");
    // The history is versions, as section 9 shows them.
    let v = s
        .get(
            "/v2/flows/6740a1c0de0000000000c001/snapshots/step_1/versions",
            admin,
        )
        .json();
    assert_eq!(v["meta"]["total"], 4, "{v}");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["attributes"]["operation"] == "import"));
    assert!(running >= 1, "one flow running");
    assert!(with_history >= 3, "version history on several steps");
    for needle in [
        "elasticio/salesforce:",
        "Polling",
        "elasticio/webhook:receive",
        "startTime",
        "next_page_token",
        "seen_ids",
        "\"orders\":",
        BIG,
        "<img src=x onerror=alert(1)>",
    ] {
        assert!(all.contains(needle), "the demo has {needle}");
    }
    // The demo is resettable.
    reset(&s, admin).expect(204);
    assert!(ready["database"]
        .as_str()
        .unwrap()
        .contains("flowsnap-ephemeral-"));
}

#[test]
fn demo_with_a_database_file_is_kept_across_restarts() {
    let dir = Server::new_dir();
    let db = dir.join("demo.db");
    let args = [
        "--db",
        db.to_str().unwrap(),
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
    ];
    let owner = User {
        id: String::new(),
        email: "adam.admin@example.com".into(),
        key: "demo-adam-admin-key".into(),
    };
    let (mut a, ready) = Server::start_serving(Server::new_dir(), &args, owner.clone()).unwrap();
    assert_eq!(PathBuf::from(ready["database"].as_str().unwrap()), db);
    let flows = a
        .get("/v2/flows?workspace_id=6740a1c0de0000000000b003", &owner)
        .json();
    let fid = flows["data"][0]["id"].as_str().unwrap().to_string();
    a.delete(&format!("/v2/flows/{fid}"), &owner).expect(204);
    assert!(a.terminate().success());
    let (b, _) = Server::start_serving(Server::new_dir(), &args, owner.clone()).unwrap();
    b.get(&format!("/v2/flows/{fid}"), &owner).expect(404);
    // Served as it is: nothing was loaded at this start, so there is nothing to reset to.
    reset(&b, &owner).expect(404);
    assert!(db.exists());
}

#[test]
fn the_schema_names_every_member_the_loader_reads() {
    let schema: Value = serde_json::from_str(include_str!("../docs/fixture.schema.json"))
        .expect("the schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let props = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    let sorted = |a: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let defs = &schema["$defs"];
    assert_eq!(
        props(&schema),
        sorted(&["flowsnap_fixture", "users", "workspaces"])
    );
    assert_eq!(
        props(&defs["user"]),
        sorted(&[
            "id",
            "email",
            "first_name",
            "last_name",
            "tenant_admin",
            "api_key",
            "api_key_hash",
            "password",
            "password_hash",
            "registered"
        ])
    );
    assert_eq!(
        props(&defs["workspace"]),
        sorted(&["id", "name", "created_at", "updated_at", "members", "flows"])
    );
    assert_eq!(
        props(&defs["member"]),
        sorted(&["email", "user_id", "role", "added_at"])
    );
    assert_eq!(
        props(&defs["flow"]),
        sorted(&[
            "id",
            "name",
            "description",
            "type",
            "default_mapper_type",
            "cron",
            "graph",
            "nodes_config",
            "status",
            "created_by",
            "created_at",
            "updated_at",
            "last_start_time",
            "last_stop_time",
            "snapshots",
            "snapshot_history"
        ])
    );
    for d in ["user", "workspace", "member", "flow"] {
        assert_eq!(
            defs[d]["additionalProperties"], false,
            "{d}: unknown members are refused by the loader"
        );
    }
}

#[test]
fn big_numbers_and_member_order_survive_export_and_reimport() {
    let dir = Server::new_dir();
    let f = write_file(&dir, "base.json", &base_fixture());
    let (one, two) = (dir.join("one.db"), dir.join("two.db"));
    assert!(cli(&one, &["import", f.to_str().unwrap()]).status.success());
    let first = cli(&one, &["export"]);
    assert!(first.status.success());
    let text = String::from_utf8(first.stdout).unwrap();
    // Members in the file's order (not the users'), the value's digits as written.
    let zed = text
        .find(&format!(r#"{{"user_id": "{ZED_ID}""#))
        .expect("zed is a member");
    let dev_at = text
        .find(&format!(r#"{{"user_id": "{DEV_ID}""#))
        .expect("dev is a member");
    let int_at = text
        .find(&format!(r#"{{"user_id": "{INT_ID}""#))
        .expect("int is a member");
    assert!(zed < dev_at && dev_at < int_at, "{text}");
    assert!(
        text.contains(&format!(
            r#""step_1": {{"last_id":{BIG},"z":0.1,"a":"<b>x</b>"}}"#
        )),
        "{text}"
    );
    let exported = write_file(&dir, "exported.json", &text);
    let out = cli(&two, &["import", exported.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = cli(&two, &["export"]);
    assert_eq!(
        String::from_utf8(second.stdout).unwrap(),
        text,
        "export, import, export is the same text"
    );
    // Importing the same export again into that database is refused: its ids and e-mails exist.
    let again = cli(&two, &["import", exported.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("users[0]."),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
