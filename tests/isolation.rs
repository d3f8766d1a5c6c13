//! Issue 7.5: walk every endpoint as a user of another workspace, as a guest, and with a revoked
//! key. Each answer is the spec's 403/404/401, nothing changes, and no body mentions the other
//! workspace's ids or names.

mod common;
use common::*;
use serde_json::json;

struct World {
    s: Server,
    owner: User,
    ws: String,
    flow: String,
    secret_names: Vec<String>,
}

fn world() -> World {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let ws = s.workspace(&owner, "Secret Workspace");
    let r = s.post(
        "/v2/flows",
        &owner,
        &flow_doc(&ws, "Secret Flow", &["alpha", "beta"]),
    );
    r.expect(201);
    let flow = r.id();
    s.post(
        &format!("/v2/flows/{flow}/snapshots"),
        &owner,
        &snapshot_doc("alpha", json!({"secret": "s3cr3t-value"})),
    )
    .expect(201);
    World {
        s,
        owner,
        ws,
        flow,
        secret_names: vec![
            "Secret Workspace".into(),
            "Secret Flow".into(),
            "s3cr3t-value".into(),
        ],
    }
}

/// (method, path, body) for every endpoint that touches the owner's workspace.
fn calls(w: &World, user_id: &str) -> Vec<(&'static str, String, Option<serde_json::Value>)> {
    let (ws, f, o) = (&w.ws, &w.flow, &w.owner.id);
    vec![
        ("GET", format!("/v2/workspaces/{ws}"), None),
        (
            "PATCH",
            format!("/v2/workspaces/{ws}"),
            Some(
                json!({"data": {"type": "workspace", "id": ws, "attributes": {"name": "Taken over"}}}),
            ),
        ),
        ("DELETE", format!("/v2/workspaces/{ws}"), None),
        ("GET", format!("/v2/workspaces/{ws}/members"), None),
        (
            "POST",
            format!("/v2/workspaces/{ws}/members"),
            Some(
                json!({"data": {"type": "member", "id": user_id, "attributes": {"roles": ["owner"]}}}),
            ),
        ),
        ("GET", format!("/v2/workspaces/{ws}/members/{o}"), None),
        (
            "PATCH",
            format!("/v2/workspaces/{ws}/members/{o}"),
            Some(json!({"data": {"type": "member", "id": o, "attributes": {"roles": ["guest"]}}})),
        ),
        ("DELETE", format!("/v2/workspaces/{ws}/members/{o}"), None),
        ("GET", format!("/v2/flows?workspace_id={ws}"), None),
        (
            "POST",
            "/v2/flows".to_string(),
            Some(flow_doc(ws, "Intruder", &["x"])),
        ),
        ("GET", format!("/v2/flows/{f}"), None),
        (
            "PATCH",
            format!("/v2/flows/{f}"),
            Some(json!({"data": {"type": "flow", "id": f, "attributes": {"name": "Taken"}}})),
        ),
        ("DELETE", format!("/v2/flows/{f}"), None),
        ("POST", format!("/v2/flows/{f}/start"), None),
        ("POST", format!("/v2/flows/{f}/stop"), None),
        ("GET", format!("/v2/flows/{f}/snapshots"), None),
        (
            "POST",
            format!("/v2/flows/{f}/snapshots"),
            Some(snapshot_doc("beta", json!(1))),
        ),
        ("GET", format!("/v2/flows/{f}/snapshots/alpha"), None),
        (
            "PATCH",
            format!("/v2/flows/{f}/snapshots/alpha"),
            Some(snapshot_doc("alpha", json!(2))),
        ),
        ("DELETE", format!("/v2/flows/{f}/snapshots/alpha"), None),
        ("GET", format!("/v1/tasks/{f}/steps/alpha"), None),
        ("GET", format!("/v2/users/{o}"), None),
        ("POST", format!("/v2/users/{o}/api-key"), None),
        ("DELETE", format!("/v2/users/{o}"), None),
    ]
}

fn call(
    s: &Server,
    auth: &str,
    method: &str,
    path: &str,
    body: &Option<serde_json::Value>,
) -> Resp {
    match body {
        Some(b) => s.request(
            method,
            path,
            Some(auth),
            &[("Content-Type", "application/json")],
            Some(b.to_string().as_bytes()),
        ),
        None => s.request(method, path, Some(auth), &[], None),
    }
}

#[test]
fn a_user_of_another_workspace_sees_and_changes_nothing() {
    let w = world();
    let outsider = w.s.user("outsider@example.com");
    let own_ws = w.s.workspace(&outsider, "Own Workspace");
    let before = w.s.state();
    for (method, path, body) in calls(&w, &outsider.id) {
        let r = call(&w.s, &outsider.auth(), method, &path, &body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert_error_doc(&r, 403);
        let text = r.text();
        for secret in w.secret_names.iter().chain([&w.ws]) {
            assert!(
                !text.contains(secret.as_str()),
                "{method} {path} leaks {secret}: {text}"
            );
        }
    }
    // Lists show only the caller's own workspace.
    let r = w.s.get("/v2/workspaces", &outsider);
    r.expect(200);
    assert_eq!(r.json()["meta"]["total"], 1);
    assert_eq!(r.json()["data"][0]["id"], own_ws.as_str());
    let r =
        w.s.get(&format!("/v2/flows?workspace_id={own_ws}"), &outsider);
    assert_eq!(r.json()["meta"]["total"], 0);
    for secret in &w.secret_names {
        assert!(!w
            .s
            .get("/v2/workspaces", &outsider)
            .text()
            .contains(secret.as_str()));
    }
    w.s.get("/v2/users", &outsider).expect(403);
    assert_eq!(before, w.s.state(), "an outsider changed something");
}

#[test]
fn a_guest_reads_but_changes_nothing() {
    let w = world();
    let guest = w.s.user("guest@example.com");
    w.s.add_member(&w.owner, &w.ws, &guest, "guest");
    let before = w.s.state();
    for (method, path, body) in calls(&w, &guest.id) {
        let r = call(&w.s, &guest.auth(), method, &path, &body);
        let user_path = path.starts_with("/v2/users/");
        match (method, user_path) {
            ("GET", false) => assert_eq!(r.status, 200, "{method} {path}: {}", r.text()),
            _ => {
                assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
                assert_error_doc(&r, 403);
            }
        }
    }
    assert_eq!(before, w.s.state(), "a guest changed something");
}

#[test]
fn a_revoked_key_gets_401_everywhere() {
    let w = world();
    let old = w.owner.clone();
    let r = w.s.request(
        "POST",
        &format!("/v2/users/{}/api-key", old.id),
        Some(&old.auth()),
        &[],
        None,
    );
    r.expect(201);
    let before = w.s.state();
    let mut bodies = Vec::new();
    for (method, path, body) in calls(&w, &old.id) {
        let r = call(&w.s, &old.auth(), method, &path, &body);
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        assert_error_doc(&r, 401);
        bodies.push(r.body);
    }
    assert!(bodies.windows(2).all(|p| p[0] == p[1]));
    assert_eq!(before, w.s.state(), "a revoked key changed something");
    // The new key works.
    let new = json_key(&r);
    let fresh = User { key: new, ..old };
    w.s.get(&format!("/v2/flows/{}", w.flow), &fresh)
        .expect(200);
}

fn json_key(r: &Resp) -> String {
    r.json()["data"]["attributes"]["api_key"]
        .as_str()
        .unwrap()
        .to_string()
}
