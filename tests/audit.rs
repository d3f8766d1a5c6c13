//! Spec section 10: the audit log. Every accepted change is one event written with it; refusals
//! record nothing; the three read paths with their permissions and filters; retention.

mod common;
use common::*;
use serde_json::{json, Value};

fn events(s: &Server, u: &User, path: &str) -> Vec<Value> {
    let r = s.get(path, u);
    r.expect(200);
    r.json()["data"].as_array().unwrap().clone()
}

fn newest(s: &Server) -> Value {
    events(s, &s.admin, "/v2/audit?page[size]=1")[0].clone()
}

/// Checks that the newest event records `action` on `target`, made by the request `r`.
#[track_caller]
fn assert_newest(s: &Server, r: &Resp, action: &str, user: &User, ws: Option<&str>, target: Value) {
    let e = newest(s);
    let a = &e["attributes"];
    assert_eq!(a["action"], action, "{e}");
    assert_eq!(a["user_id"], user.id, "{e}");
    assert_eq!(a["request_id"], r.header("X-Request-Id").unwrap(), "{e}");
    assert_eq!(a["workspace_id"], json!(ws), "{e}");
    assert_eq!(a["target"], target, "{e}");
    assert_eq!(e["type"], "audit-event");
    assert_eq!(
        e["links"]["self"],
        format!("/v2/audit/{}", e["id"].as_str().unwrap())
    );
    if target["type"] == "snapshot" {
        assert!(a["version_id"].is_string(), "{e}");
    } else {
        assert!(
            a.get("version_id").is_none(),
            "version_id only on snapshot events: {e}"
        );
    }
}

#[test]
fn every_accepted_change_is_one_event_naming_its_request() {
    let s = Server::start();
    let a = s.admin.clone();
    let total = |s: &Server| {
        s.get("/v2/audit?page[size]=1", &s.admin).json()["meta"]["total"]
            .as_i64()
            .unwrap()
    };
    let n0 = total(&s);
    let mut expected = n0;
    let me = a.clone();
    let mut check =
        |s: &Server, r: &Resp, status: u16, action: &str, ws: Option<&str>, target: Value| {
            r.expect(status);
            expected += 1;
            assert_eq!(total(s), expected, "{action}: exactly one event");
            assert_newest(s, r, action, &me, ws, target);
        };
    let r = s.post(
        "/v2/users",
        &a,
        &json!({"data": {"type": "user", "attributes": {
        "first_name": "U", "last_name": "V", "email": "u@example.com", "password": "pass-w0rd!"}}}),
    );
    let uid = r.id();
    check(
        &s,
        &r,
        201,
        "user.create",
        None,
        json!({"type": "user", "id": uid}),
    );
    let r = s.request(
        "POST",
        &format!("/v2/users/{uid}/api-key"),
        Some(&a.auth()),
        &[],
        None,
    );
    let key = r.json()["data"]["attributes"]["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    check(
        &s,
        &r,
        201,
        "user.rotate_key",
        None,
        json!({"type": "user", "id": uid}),
    );
    let r = s.post(
        "/v2/workspaces",
        &a,
        &json!({"data": {"type": "workspace", "attributes": {"name": "Audited"}}}),
    );
    let ws = r.id();
    let w = Some(ws.as_str());
    check(
        &s,
        &r,
        201,
        "workspace.create",
        w,
        json!({"type": "workspace", "id": ws}),
    );
    let r = s.patch(
        &format!("/v2/workspaces/{ws}"),
        &a,
        &json!({"data": {"type": "workspace", "attributes": {"name": "Audited 2"}}}),
    );
    check(
        &s,
        &r,
        200,
        "workspace.update",
        w,
        json!({"type": "workspace", "id": ws}),
    );
    let r = s.post(
        &format!("/v2/workspaces/{ws}/members"),
        &a,
        &json!({"data": {"type": "member", "id": uid, "attributes": {"roles": ["guest"]}}}),
    );
    check(
        &s,
        &r,
        200,
        "member.add",
        w,
        json!({"type": "member", "id": uid}),
    );
    let r = s.patch(
        &format!("/v2/workspaces/{ws}/members/{uid}"),
        &a,
        &json!({"data": {"type": "member", "id": uid, "attributes": {"roles": ["admin"]}}}),
    );
    check(
        &s,
        &r,
        200,
        "member.update",
        w,
        json!({"type": "member", "id": uid}),
    );
    let r = s.delete(&format!("/v2/workspaces/{ws}/members/{uid}"), &a);
    check(
        &s,
        &r,
        204,
        "member.remove",
        w,
        json!({"type": "member", "id": uid}),
    );
    let r = s.post("/v2/flows", &a, &flow_doc(&ws, "F", &["step_1", "step_2"]));
    let flow = r.id();
    check(
        &s,
        &r,
        201,
        "flow.create",
        w,
        json!({"type": "flow", "id": flow}),
    );
    let r = s.patch(
        &format!("/v2/flows/{flow}"),
        &a,
        &json!({"data": {"type": "flow", "id": flow, "attributes": {"name": "G"}}}),
    );
    check(
        &s,
        &r,
        200,
        "flow.update",
        w,
        json!({"type": "flow", "id": flow}),
    );
    let snap = json!({"type": "snapshot", "id": "step_1", "flow_id": flow});
    let r = s.post(
        &format!("/v2/flows/{flow}/snapshots"),
        &a,
        &snapshot_doc("step_1", json!({"secret_value": "v-9f8e7d"})),
    );
    let etag = r.header("ETag").unwrap().trim_matches('"').to_string();
    check(&s, &r, 201, "snapshot.create", w, snap.clone());
    assert_eq!(newest(&s)["attributes"]["version_id"], etag);
    let r = s.patch(
        &format!("/v2/flows/{flow}/snapshots/step_1"),
        &a,
        &snapshot_doc("step_1", json!(2)),
    );
    let etag2 = r.header("ETag").unwrap().trim_matches('"').to_string();
    check(&s, &r, 200, "snapshot.update", w, snap.clone());
    assert_eq!(newest(&s)["attributes"]["version_id"], etag2);
    let r = s.request(
        "POST",
        &format!("/v2/flows/{flow}/snapshots/step_1/versions/{etag}/restore"),
        Some(&a.auth()),
        &[],
        None,
    );
    check(&s, &r, 200, "snapshot.restore", w, snap.clone());
    let r = s.delete(&format!("/v2/flows/{flow}/snapshots/step_1"), &a);
    check(&s, &r, 204, "snapshot.delete", w, snap.clone());
    let g = etag.split('-').next().unwrap();
    assert_eq!(
        newest(&s)["attributes"]["version_id"],
        format!("{g}-4"),
        "a delete's version is the next revision"
    );
    let r = s.request(
        "POST",
        &format!("/v2/flows/{flow}/start"),
        Some(&a.auth()),
        &[],
        None,
    );
    check(
        &s,
        &r,
        202,
        "flow.start",
        w,
        json!({"type": "flow", "id": flow}),
    );
    let r = s.request(
        "POST",
        &format!("/v2/flows/{flow}/stop"),
        Some(&a.auth()),
        &[],
        None,
    );
    check(
        &s,
        &r,
        202,
        "flow.stop",
        w,
        json!({"type": "flow", "id": flow}),
    );
    let r = s.delete(&format!("/v2/flows/{flow}"), &a);
    check(
        &s,
        &r,
        204,
        "flow.delete",
        w,
        json!({"type": "flow", "id": flow}),
    );
    let r = s.delete(&format!("/v2/workspaces/{ws}"), &a);
    check(
        &s,
        &r,
        204,
        "workspace.delete",
        w,
        json!({"type": "workspace", "id": ws}),
    );
    let r = s.delete(&format!("/v2/users/{uid}"), &a);
    check(
        &s,
        &r,
        204,
        "user.delete",
        None,
        json!({"type": "user", "id": uid}),
    );

    // The deleted workspace's events stay in the global log; none holds a value, key or hash.
    let all = s.get("/v2/audit?page[size]=100", &a);
    let text = all.text();
    assert!(all.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["attributes"]["workspace_id"] == ws));
    for secret in [
        "v-9f8e7d",
        "secret_value",
        &a.key,
        &key,
        "argon2",
        "pass-w0rd!",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    // GET one.
    let id = newest(&s)["id"].as_str().unwrap().to_string();
    let one = s.get(&format!("/v2/audit/{id}"), &a);
    one.expect(200);
    assert_eq!(one.json()["data"], newest(&s));
}

#[test]
fn refused_requests_record_nothing_and_the_command_line_records_no_user() {
    let s = Server::start();
    let a = s.admin.clone();
    let ws = s.workspace(&a, "Refusals");
    let flow = s.flow(&a, &ws, &["step_1"]);
    let guest = s.user("guest@example.com");
    s.add_member(&a, &ws, &guest, "guest");
    // The command line's change is an event without user and request.
    let cli_events = events(
        &s,
        &a,
        "/v2/audit?filter[action]=user.create&page[size]=100",
    );
    let cli = cli_events
        .iter()
        .find(|e| e["attributes"]["target"]["id"] == guest.id)
        .expect("cli event");
    assert_eq!(cli["attributes"]["user_id"], Value::Null);
    assert_eq!(cli["attributes"]["request_id"], Value::Null);
    assert_eq!(cli["attributes"]["workspace_id"], Value::Null);

    let before = s.state();
    let refusals: Vec<(&User, &str, String, Option<Value>, u16)> = vec![
        (
            &guest,
            "POST",
            format!("/v2/flows/{flow}/snapshots"),
            Some(snapshot_doc("step_1", json!(1))),
            403,
        ),
        (
            &a,
            "POST",
            format!("/v2/flows/{flow}/snapshots"),
            Some(snapshot_doc("nope", json!(1))),
            404,
        ),
        (
            &a,
            "PATCH",
            format!("/v2/flows/{flow}/snapshots/step_1"),
            Some(snapshot_doc("step_1", json!(1))),
            404,
        ),
        (
            &guest,
            "PATCH",
            format!("/v2/workspaces/{ws}"),
            Some(json!({"data": {"type": "workspace", "attributes": {"name": "x y z"}}})),
            403,
        ),
        (
            &a,
            "POST",
            "/v2/workspaces".into(),
            Some(json!({"data": {"type": "workspace", "attributes": {"name": "!"}}})),
            400,
        ),
        (&a, "POST", format!("/v2/flows/{flow}/stop"), None, 409),
        (
            &a,
            "DELETE",
            format!("/v2/workspaces/{ws}/members/{}", a.id),
            None,
            409,
        ),
    ];
    for (who, method, path, body, status) in refusals {
        let r = match body {
            Some(b) => s.send(method, &path, who, &b),
            None => s.request(method, &path, Some(&who.auth()), &[], None),
        };
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        r.expect(status);
    }
    assert_eq!(
        before,
        s.state(),
        "a refusal records no event and changes nothing"
    );
}

#[test]
fn audit_reads_follow_their_permissions() {
    let s = Server::start();
    let a = s.admin.clone();
    let owner = s.user("owner@example.com");
    let ws = s.workspace(&owner, "Perms");
    let flow = s.flow(&owner, &ws, &["step_1"]);
    let users: Vec<(&str, User)> = ["admin", "integrator", "guest"]
        .iter()
        .map(|role| {
            let u = s.user(&format!("ws-{role}@example.com"));
            s.add_member(&owner, &ws, &u, role);
            (*role, u)
        })
        .collect();
    let outsider = s.user("outsider@example.com");
    let revoked = s.user("revoked@example.com");
    s.add_member(&owner, &ws, &revoked, "admin");
    s.cli(
        &["user", "rotate-key", "--email", "revoked@example.com"],
        None,
    );
    let ws_event = events(&s, &owner, &format!("/v2/workspaces/{ws}/audit"))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user_event = events(&s, &a, "/v2/audit?filter[action]=user.create")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (role_admin, integrator, guest) = (&users[0].1, &users[1].1, &users[2].1);
    let wpath = format!("/v2/workspaces/{ws}/audit");
    let cases: Vec<(&User, String, u16)> = vec![
        (&owner, wpath.clone(), 200),
        (role_admin, wpath.clone(), 200),
        (&a, wpath.clone(), 200),
        (integrator, wpath.clone(), 403),
        (guest, wpath.clone(), 403),
        (&outsider, wpath.clone(), 403),
        (&revoked, wpath.clone(), 401),
        (
            &owner,
            "/v2/workspaces/65f0c0ffee0000000000abcd/audit".into(),
            404,
        ),
        (&a, "/v2/audit".into(), 200),
        (&owner, "/v2/audit".into(), 403),
        (&revoked, "/v2/audit".into(), 401),
        (&a, format!("/v2/audit/{ws_event}"), 200),
        (&owner, format!("/v2/audit/{ws_event}"), 200),
        (role_admin, format!("/v2/audit/{ws_event}"), 200),
        (integrator, format!("/v2/audit/{ws_event}"), 403),
        (&outsider, format!("/v2/audit/{ws_event}"), 403),
        (&owner, format!("/v2/audit/{user_event}"), 403),
        (&a, format!("/v2/audit/{user_event}"), 200),
        (&a, "/v2/audit/99999999".into(), 404),
        (&a, "/v2/audit/abc".into(), 404),
        (&a, format!("/v2/audit/0{ws_event}"), 404),
        (&a, "/v2/audit?filter[action]=snapshot.explode".into(), 400),
        (&owner, format!("{wpath}?filter[action]=nope"), 400),
        (&a, "/v2/audit?page[size]=-1".into(), 400),
    ];
    for (who, path, status) in cases {
        let before = s.state();
        let r = s.get(&path, who);
        assert_eq!(r.status, status, "{} {path}: {}", who.email, r.text());
        r.expect(status);
        assert_eq!(before, s.state());
        if status == 403 && who.email == "outsider@example.com" {
            assert!(
                !r.text().contains(&ws) && !r.text().contains(&flow),
                "{}",
                r.text()
            );
        }
    }
    let r = s.request("POST", "/v2/audit", Some(&a.auth()), &[], None);
    r.expect(405);
}

#[test]
fn audit_filters_and_paging() {
    let s = Server::start();
    let a = s.admin.clone();
    let u = s.user("other@example.com");
    let w1 = s.workspace(&a, "One");
    let w2 = s.workspace(&u, "Two");
    let f1 = s.flow(&a, &w1, &["step_1"]);
    let f2 = s.flow(&a, &w1, &["step_1"]);
    s.flow(&u, &w2, &["step_1"]);
    for i in 0..3 {
        s.post(
            &format!("/v2/flows/{f1}/snapshots"),
            &a,
            &snapshot_doc("step_1", json!(i)),
        )
        .expect(201);
        s.delete(&format!("/v2/flows/{f1}/snapshots/step_1"), &a)
            .expect(204);
    }
    s.post(
        &format!("/v2/flows/{f2}/snapshots"),
        &a,
        &snapshot_doc("step_1", json!(1)),
    )
    .expect(201);
    let count = |path: &str| s.get(path, &a).json()["meta"]["total"].as_i64().unwrap();
    assert_eq!(count(&format!("/v2/workspaces/{w1}/audit")), 1 + 2 + 6 + 1);
    assert_eq!(
        count(&format!("/v2/workspaces/{w1}/audit?filter[flow_id]={f1}")),
        1 + 6
    );
    assert_eq!(
        count(&format!(
            "/v2/workspaces/{w1}/audit?filter[action]=snapshot.delete"
        )),
        3
    );
    assert_eq!(
        count(&format!(
            "/v2/workspaces/{w1}/audit?filter[action]=snapshot.create&filter[flow_id]={f2}"
        )),
        1
    );
    assert_eq!(
        count(&format!(
            "/v2/workspaces/{w1}/audit?filter[user_id]={}",
            u.id
        )),
        0
    );
    assert_eq!(count(&format!("/v2/audit?filter[user_id]={}", u.id)), 2);
    assert_eq!(count(&format!("/v2/audit?filter[workspace_id]={w2}")), 2);
    assert_eq!(count(&format!("/v2/workspaces/{w2}/audit")), 2);
    // Newest first; pages walk every event once, ids decreasing.
    let all = events(&s, &a, &format!("/v2/workspaces/{w1}/audit?page[size]=100"));
    let mut walked = Vec::new();
    for p in 1..=4 {
        walked.extend(events(
            &s,
            &a,
            &format!("/v2/workspaces/{w1}/audit?page[size]=3&page[number]={p}"),
        ));
    }
    assert_eq!(walked, all);
    let ids: Vec<i64> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(all[0]["attributes"]["action"], "snapshot.create");
    assert_eq!(
        all.last().unwrap()["attributes"]["action"],
        "workspace.create"
    );
}

#[test]
fn expired_events_are_removed_a_bounded_number_at_a_time() {
    let mut s = Server::start_with(&[("FLOWSNAP_AUDIT_RETENTION_DAYS", "1")]);
    let a = s.admin.clone();
    let ws = s.workspace(&a, "Retention");
    let st = s.terminate();
    assert!(st.success());
    let old = 1200;
    let recent: i64;
    {
        let c = rusqlite::Connection::open(s.db()).unwrap();
        recent = c
            .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
            .unwrap();
        let two_days_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 2 * 86_400_000;
        // The old events come first (lowest ids), as they would have been written.
        c.execute_batch("UPDATE audit_events SET id = id + 100000")
            .unwrap();
        let mut ins = c
            .prepare("INSERT INTO audit_events (id, created_at, action, workspace_id, target_type, target_id) VALUES (?1, ?2, 'workspace.update', ?3, 'workspace', ?3)")
            .unwrap();
        for i in 0..old {
            ins.execute(rusqlite::params![i + 1, two_days_ago, ws])
                .unwrap();
        }
    }
    s.respawn();
    let count = |s: &Server| {
        s.get("/v2/audit?page[size]=1", &s.admin).json()["meta"]["total"]
            .as_i64()
            .unwrap()
    };
    // The first write group after the start (the sign-in's last_login) removes at most 500
    // (audit::PURGE_BATCH), not all 1200.
    let after_one = count(&s);
    assert_eq!(
        after_one,
        recent + old - 500,
        "one purge removes a bounded number"
    );
    // Later writes remove the rest; the recent events stay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count(&s) > recent + 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "expired events were not removed"
        );
        s.patch(
            &format!("/v2/workspaces/{ws}"),
            &a,
            &json!({"data": {"type": "workspace", "attributes": {"name": "Kept"}}}),
        )
        .expect(200);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let left = events(&s, &a, "/v2/audit?page[size]=100");
    assert!(
        left.iter()
            .all(|e| e["id"].as_str().unwrap().parse::<i64>().unwrap() > 100_000),
        "only recent events stay"
    );
}
