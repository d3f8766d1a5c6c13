//! Issue 5: the five snapshot endpoints, every rule of spec section 6 and snapshots-api.md.

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};

/// A server with an owner, a flow of steps s1..s3 in a workspace, and the flow's snapshot path.
fn setup() -> (Server, User, String, String) {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let ws = s.workspace(&owner, "Snapshots");
    let flow = s.flow(&owner, &ws, &["s1", "s2", "s3"]);
    (s, owner, ws, flow)
}

fn snaps(flow: &str) -> String {
    format!("/v2/flows/{flow}/snapshots")
}

#[test]
fn create_read_list_edit_delete() {
    let (s, u, _, f) = setup();
    let base = snaps(&f);
    // None yet.
    let r = s.get(&base, &u);
    r.expect(200);
    assert_eq!(r.json(), json!({"data": [], "meta": {}}));

    // POST with the trailing slash (as in snapshots-api.md) and without.
    let r = s.post(
        &format!("{base}/"),
        &u,
        &snapshot_doc("s3", json!({"n": 3})),
    );
    r.expect(201);
    let expected = json!({"data": {"id": "s3", "type": "snapshot", "links": {"self": format!("{base}/s3")},
                                   "attributes": {"snapshot": {"n": 3}}}, "meta": {}});
    // The resource's own `meta` (section 9; tests/versions.rs checks its members) aside, the
    // document is the platform's.
    let without_meta = |r: &Resp| {
        let mut v = r.json();
        let meta = v["data"].as_object_mut().unwrap().remove("meta");
        assert_eq!(meta.unwrap()["etag"], r.header("ETag").unwrap());
        v
    };
    assert_eq!(without_meta(&r), expected);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    s.post(&base, &u, &snapshot_doc("s1", json!("one")))
        .expect(201);

    // GET one.
    let r = s.get(&format!("{base}/s3"), &u);
    r.expect(200);
    assert_eq!(without_meta(&r), expected);
    s.get(&format!("{base}/s3/"), &u).expect(200);

    // GET all: graph order (s1 before s3), not creation order.
    let r = s.get(&base, &u);
    r.expect(200);
    let v = r.json();
    assert_eq!(v["meta"], json!({}));
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s1", "s3"]);
    assert_eq!(v["data"][0]["links"]["self"], format!("{base}/s1"));

    // PATCH replaces the value; data.id may be left out.
    let r = s.patch(
        &format!("{base}/s3"),
        &u,
        &json!({"data": {"type": "snapshot", "attributes": {"snapshot": [1, 2]}}}),
    );
    r.expect(200);
    assert_eq!(r.json()["data"]["attributes"]["snapshot"], json!([1, 2]));
    assert_eq!(
        s.get(&format!("{base}/s3"), &u).json()["data"]["attributes"]["snapshot"],
        json!([1, 2])
    );

    // DELETE: 204 with an empty body; then GET one is 404 and the list no longer has it.
    let r = s.delete(&format!("{base}/s3"), &u);
    r.expect(204);
    assert!(r.body.is_empty());
    s.get(&format!("{base}/s3"), &u).expect(404);
    let ids: Vec<Value> = s.get(&base, &u).json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(ids, [json!("s1")]);
    // And it can be created again.
    s.post(&base, &u, &snapshot_doc("s3", json!(null)))
        .expect(201);
}

#[test]
fn every_json_type_round_trips_exactly() {
    let (s, u, _, f) = setup();
    let base = snaps(&f);
    let values = [
        r#"{"b":1,"a":[true,false,null],"nested":{"z":"last","y":"first"}}"#,
        r#"1e400"#,
        r#"-0.0"#,
        r#"1.0E+2"#,
        r#"[0.1,1e-7,123456789012345678901234567890.123456789]"#,
        r#""escapes kept as written: \u00e9 \/ \n""#,
        r#"[1,"two",3.5,{"k":null}]"#,
        r#""a string with \"quotes\", \\ backslash, tab\t, unicode é 日本 🎉 and \u0000 nul""#,
        r#"12345678901234567890123"#,
        r#"0.1"#,
        r#"-1.5e-300"#,
        r#"true"#,
        r#"false"#,
        r#"null"#,
        r#"{}"#,
        r#"[]"#,
        r#""""#,
    ];
    for (i, text) in values.iter().enumerate() {
        let step = ["s1", "s2", "s3"][i % 3];
        let _ = s.delete(&format!("{base}/{step}"), &u);
        let body = format!(
            r#"{{"data":{{"type":"snapshot","id":"{step}","attributes":{{"snapshot":{text}}}}}}}"#
        );
        let expected = format!(r#""attributes":{{"snapshot":{text}}}"#);
        // Byte for byte: numbers, escapes and member order as written.

        let r = s.request(
            "POST",
            &base,
            Some(&u.auth()),
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        r.expect(201);
        let t = r.text();
        assert!(t.contains(&expected), "POST {text}: {t}");
        for got in [
            s.get(&format!("{base}/{step}"), &u).text(),
            s.get(&base, &u).text(),
        ] {
            assert!(got.contains(&expected), "GET {text}: {got}");
        }
        // Numbers are never rounded: the digits come back as written.
        if text.starts_with('1') || text.starts_with('0') || text.starts_with('-') {
            assert!(
                s.get(&format!("{base}/{step}"), &u)
                    .text()
                    .contains(&format!(":{text}}}")),
                "{text}"
            );
        }
        let r = s.request(
            "PATCH",
            &format!("{base}/{step}"),
            Some(&u.auth()),
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        r.expect(200);
        assert!(r.text().contains(&expected), "PATCH {text}: {}", r.text());
    }
    // The big-number and member-order case, byte for byte.
    let _ = s.delete(&format!("{base}/s1"), &u);
    let body = r#"{"data":{"type":"snapshot","id":"s1","attributes":{"snapshot":{"z":12345678901234567890123,"a":0.1,"m":{"y":1,"x":2}}}}}"#;
    s.request(
        "POST",
        &base,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    )
    .expect(201);
    let got = s.get(&format!("{base}/s1"), &u).text();
    assert!(
        got.contains(r#"{"snapshot":{"z":12345678901234567890123,"a":0.1,"m":{"y":1,"x":2}}}"#),
        "{got}"
    );
    // Whitespace between tokens is not kept, the value is.
    let spaced = "{\"data\":{\"type\":\"snapshot\",\"id\":\"s2\",\"attributes\":{\"snapshot\": { \"k\" : [ 1 , 2 ] } }}}";
    let _ = s.delete(&format!("{base}/s2"), &u);
    s.request(
        "POST",
        &base,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(spaced.as_bytes()),
    )
    .expect(201);
    assert!(s
        .get(&format!("{base}/s2"), &u)
        .text()
        .contains(r#"{"snapshot":{"k":[1,2]}}"#));
}

#[test]
fn missing_snapshot_member_is_400_but_null_is_a_value() {
    let (s, u, _, f) = setup();
    let base = snaps(&f);
    let before = s.state();
    let r = s.post(
        &base,
        &u,
        &json!({"data": {"type": "snapshot", "id": "s1", "attributes": {}}}),
    );
    r.expect(400);
    assert_eq!(
        r.json()["errors"][0]["source"]["pointer"],
        "/data/attributes/snapshot"
    );
    s.post(
        &base,
        &u,
        &json!({"data": {"type": "snapshot", "id": "s1"}}),
    )
    .expect(400);
    s.post(
        &base,
        &u,
        &json!({"data": {"type": "snapshot", "attributes": {"snapshot": 1}}}),
    )
    .expect(400);
    s.post(
        &base,
        &u,
        &json!({"data": {"type": "snapshot", "id": 5, "attributes": {"snapshot": 1}}}),
    )
    .expect(400);
    s.post(&base, &u, &json!({"data": "x"})).expect(400);
    s.post(&base, &u, &json!([1])).expect(400);
    assert_eq!(before, s.state());
    s.post(&base, &u, &snapshot_doc("s1", json!(null)))
        .expect(201);
    let r = s.get(&format!("{base}/s1"), &u);
    assert_eq!(r.json()["data"]["attributes"], json!({"snapshot": null}));
    // PATCH without the member is 400 too, and changes nothing.
    let before = s.state();
    s.patch(
        &format!("{base}/s1"),
        &u,
        &json!({"data": {"type": "snapshot", "id": "s1", "attributes": {}}}),
    )
    .expect(400);
    assert_eq!(before, s.state());
}

#[test]
fn size_limit_counts_compact_json_bytes() {
    let s = Server::start();
    let u = s.user("o@example.com");
    let ws = s.workspace(&u, "Sizes");
    let f = s.flow(&u, &ws, &["a", "b"]);
    let base = snaps(&f);
    // A string of n characters is n + 2 bytes of JSON.
    let exactly = json!("x".repeat(5118));
    s.post(&base, &u, &snapshot_doc("a", exactly)).expect(201);
    let before = s.state();
    let r = s.post(&base, &u, &snapshot_doc("b", json!("x".repeat(5119))));
    r.expect(413);
    let detail = r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("5120") && detail.contains("5121"),
        "{detail}"
    );
    // Multi-byte characters count in UTF-8 bytes: 1707 × 3 bytes + 2 = 5123.
    s.post(&base, &u, &snapshot_doc("b", json!("€".repeat(1707))))
        .expect(413);
    let r = s.patch(
        &format!("{base}/a"),
        &u,
        &snapshot_doc("a", json!("y".repeat(6000))),
    );
    r.expect(413);
    assert_eq!(before, s.state());
    // Whitespace the client sends does not count.
    let padded = format!(
        "{{\"data\":{{\"type\":\"snapshot\",\"id\":\"b\",\"attributes\":{{\"snapshot\":[{}]}}}}}}",
        vec!["1"; 2000].join(" ,   ")
    );
    s.request(
        "POST",
        &base,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(padded.as_bytes()),
    )
    .expect(201);
    // The limit is a setting.
    let small = Server::start_with(&[("FLOWSNAP_MAX_SNAPSHOT_BYTES", "10")]);
    let ws = small.workspace(&small.admin, "Small");
    let f = small.flow(&small.admin, &ws, &["a"]);
    let r = small.post(
        &snaps(&f),
        &small.admin,
        &snapshot_doc("a", json!("0123456789")),
    );
    r.expect(413);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("10 bytes"));
    small
        .post(
            &snaps(&f),
            &small.admin,
            &snapshot_doc("a", json!("01234567")),
        )
        .expect(201);
}

#[test]
fn refusals_in_the_spec_order_change_nothing() {
    let (s, u, ws, f) = setup();
    let base = snaps(&f);
    let stranger = s.user("stranger@example.com");
    let guest = s.user("guest@example.com");
    s.add_member(&u, &ws, &guest, "guest");
    s.post(&base, &u, &snapshot_doc("s1", json!({"v": 1})))
        .expect(201);
    let missing_flow = "65f0c0ffee0000000000abcd";
    let before = s.state();
    let bad_json = |who: &User, method: &str, path: &str| {
        s.request(
            method,
            path,
            Some(&who.auth()),
            &[("Content-Type", "application/json")],
            Some(b"{nope"),
        )
    };

    // Unknown flow: 404 before anything about the body or membership.
    for (m, p) in [
        ("POST", snaps(missing_flow)),
        ("PATCH", format!("{}/s1", snaps(missing_flow))),
        ("DELETE", format!("{}/s1", snaps(missing_flow))),
    ] {
        let r = bad_json(&stranger, m, &p);
        r.expect(404);
        assert!(r.json()["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(missing_flow));
    }
    s.get(&snaps(missing_flow), &u).expect(404);
    s.get(&format!("{}/s1", snaps(missing_flow)), &u)
        .expect(404);
    s.get(&snaps("not-an-id"), &u).expect(404);

    // Non-member: 403 for reads and writes, before the body.
    s.get(&base, &stranger).expect(403);
    s.get(&format!("{base}/s1"), &stranger).expect(403);
    bad_json(&stranger, "POST", &base).expect(403);
    bad_json(&stranger, "PATCH", &format!("{base}/s1")).expect(403);
    s.delete(&format!("{base}/s1"), &stranger).expect(403);

    // Guest: reads, but no write (403 before the body).
    s.get(&base, &guest).expect(200);
    s.get(&format!("{base}/s1"), &guest).expect(200);
    bad_json(&guest, "POST", &base).expect(403);
    s.post(&base, &guest, &snapshot_doc("s2", json!(1)))
        .expect(403);
    s.patch(&format!("{base}/s1"), &guest, &snapshot_doc("s1", json!(2)))
        .expect(403);
    s.delete(&format!("{base}/s1"), &guest).expect(403);

    // Tenant-admin without membership: reads, but no write.
    s.get(&format!("{base}/s1"), &s.admin).expect(200);
    s.post(&base, &s.admin, &snapshot_doc("s2", json!(1)))
        .expect(403);

    // Body: 415, 400; document: wrong type 409, id mismatch 409.
    let r = s.request(
        "POST",
        &base,
        Some(&u.auth()),
        &[("Content-Type", "text/plain")],
        Some(b"{}"),
    );
    r.expect(415);
    bad_json(&u, "POST", &base).expect(400);
    s.post(
        &base,
        &u,
        &json!({"data": {"type": "flow", "id": "s2", "attributes": {"snapshot": 1}}}),
    )
    .expect(409);
    s.patch(
        &format!("{base}/s1"),
        &u,
        &json!({"data": {"type": "snapshot", "id": "s2", "attributes": {"snapshot": 1}}}),
    )
    .expect(409);

    // Step not in the flow: 404 (also for an id that could never be a step id).
    let r = s.post(&base, &u, &snapshot_doc("nope", json!(1)));
    r.expect(404);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("nope"));
    s.post(&base, &u, &snapshot_doc("../../etc", json!(1)))
        .expect(404);
    s.patch(&format!("{base}/nope"), &u, &snapshot_doc("nope", json!(1)))
        .expect(404);
    s.delete(&format!("{base}/nope"), &u).expect(404);
    s.get(&format!("{base}/nope"), &u).expect(404);

    // Snapshot exists: POST 409. No snapshot: PATCH, DELETE, GET one 404.
    let r = s.post(&base, &u, &snapshot_doc("s1", json!(1)));
    r.expect(409);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("PATCH"));
    s.patch(&format!("{base}/s2"), &u, &snapshot_doc("s2", json!(1)))
        .expect(404);
    s.delete(&format!("{base}/s2"), &u).expect(404);
    s.get(&format!("{base}/s2"), &u).expect(404);
    assert_eq!(before, s.state(), "a refused call changed the database");
}

#[test]
fn writes_are_refused_while_running_and_accepted_after_stop() {
    let (s, u, _, f) = setup();
    let base = snaps(&f);
    s.post(&base, &u, &snapshot_doc("s1", json!({"v": 1})))
        .expect(201);
    s.request(
        "POST",
        &format!("/v2/flows/{f}/start"),
        Some(&u.auth()),
        &[],
        None,
    )
    .expect(202);
    let before = s.state();
    // Every write is 409, even where the step has no snapshot (running comes before that rule).
    let r = s.post(&base, &u, &snapshot_doc("s2", json!(1)));
    r.expect(409);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("running"));
    s.post(&base, &u, &snapshot_doc("s1", json!(1))).expect(409);
    s.patch(&format!("{base}/s1"), &u, &snapshot_doc("s1", json!(2)))
        .expect(409);
    s.patch(&format!("{base}/s2"), &u, &snapshot_doc("s2", json!(2)))
        .expect(409);
    s.delete(&format!("{base}/s1"), &u).expect(409);
    s.delete(&format!("{base}/s2"), &u).expect(409);
    // ...but a step that is not in the flow is still 404 (that rule comes first).
    s.post(&base, &u, &snapshot_doc("zz", json!(1))).expect(404);
    assert_eq!(before, s.state());
    // Reads work while running, including the runtime read path.
    s.get(&format!("{base}/s1"), &u).expect(200);
    s.get(&base, &u).expect(200);
    let t = s.get(&format!("/v1/tasks/{f}/steps/s1"), &u);
    t.expect(200);
    assert_eq!(t.json()["snapshot"], json!({"v": 1}));
    s.request(
        "POST",
        &format!("/v2/flows/{f}/stop"),
        Some(&u.auth()),
        &[],
        None,
    )
    .expect(202);
    s.patch(&format!("{base}/s1"), &u, &snapshot_doc("s1", json!(2)))
        .expect(200);
    s.post(&base, &u, &snapshot_doc("s2", json!(1))).expect(201);
    s.delete(&format!("{base}/s2"), &u).expect(204);
}

#[test]
fn revisions_etags_and_preconditions() {
    let (s, u, _, f) = setup();
    let base = snaps(&f);
    let one = format!("{base}/s1");
    let r = s.post(&base, &u, &snapshot_doc("s1", json!(1)));
    r.expect(201);
    let e1 = s
        .get(&one, &u)
        .header("ETag")
        .expect("GET one sends an ETag")
        .to_string();
    assert!(
        e1.starts_with('"') && e1.ends_with('"') && !e1.starts_with("W/"),
        "strong ETag: {e1}"
    );
    s.patch(&one, &u, &snapshot_doc("s1", json!(2))).expect(200);
    let e2 = s.get(&one, &u).header("ETag").unwrap().to_string();
    assert_ne!(e1, e2);

    // If-Match with a stale ETag: 412, nothing changed.
    let before = s.state();
    let r = s.send_with(
        "PATCH",
        &one,
        &u,
        &snapshot_doc("s1", json!(3)),
        &[("If-Match", &e1)],
    );
    r.expect(412);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains(&e2));
    s.request("DELETE", &one, Some(&u.auth()), &[("If-Match", &e1)], None)
        .expect(412);
    assert_eq!(before, s.state());
    // With the current one: applied, and the new ETag comes back on the PATCH answer.
    let r = s.send_with(
        "PATCH",
        &one,
        &u,
        &snapshot_doc("s1", json!(3)),
        &[("If-Match", &e2)],
    );
    r.expect(200);
    let e3 = r.header("ETag").unwrap().to_string();
    assert_eq!(e3, s.get(&one, &u).header("ETag").unwrap());
    // If-Match: * matches any existing snapshot; a list of tags matches any of them.
    s.send_with(
        "PATCH",
        &one,
        &u,
        &snapshot_doc("s1", json!(4)),
        &[("If-Match", "*")],
    )
    .expect(200);
    let e4 = s.get(&one, &u).header("ETag").unwrap().to_string();
    s.send_with(
        "PATCH",
        &one,
        &u,
        &snapshot_doc("s1", json!(5)),
        &[("If-Match", &format!("\"x\", {e4}"))],
    )
    .expect(200);

    // If-None-Match: * on POST: 412 when a snapshot exists, 201 when none does.
    let before = s.state();
    s.send_with(
        "POST",
        &base,
        &u,
        &snapshot_doc("s1", json!(0)),
        &[("If-None-Match", "*")],
    )
    .expect(412);
    assert_eq!(before, s.state());
    s.send_with(
        "POST",
        &base,
        &u,
        &snapshot_doc("s2", json!(0)),
        &[("If-None-Match", "*")],
    )
    .expect(201);

    // Delete with the current ETag, re-create: the new ETag differs from every earlier one.
    let e5 = s.get(&one, &u).header("ETag").unwrap().to_string();
    s.request("DELETE", &one, Some(&u.auth()), &[("If-Match", &e5)], None)
        .expect(204);
    s.post(&base, &u, &snapshot_doc("s1", json!(1))).expect(201);
    let again = s.get(&one, &u).header("ETag").unwrap().to_string();
    let earlier = [e1, e2, e3, e4, e5];
    assert!(
        !earlier.contains(&again),
        "ETag {again} repeats one of {earlier:?}"
    );
    // A stale If-Match from before the delete does not match the re-created snapshot.
    s.send_with(
        "PATCH",
        &one,
        &u,
        &snapshot_doc("s1", json!(9)),
        &[("If-Match", &earlier[0])],
    )
    .expect(412);
}

#[test]
fn of_twenty_simultaneous_posts_exactly_one_wins() {
    let (s, u, _, f) = setup();
    let s = Arc::new(s);
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (s, u, f, barrier) = (s.clone(), u.clone(), f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                s.post(&snaps(&f), &u, &snapshot_doc("s2", json!({"writer": i})))
                    .status
            })
        })
        .collect();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|&&c| c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 409).count(), 19, "{codes:?}");
    let r = s.get(&format!("{}/s2", snaps(&f)), &u);
    r.expect(200);
    assert!(r.json()["data"]["attributes"]["snapshot"]["writer"].is_number());
}

#[test]
fn no_write_lands_on_a_running_flow() {
    let (s, u, _, f) = setup();
    let one = format!("{}/s1", snaps(&f));
    s.post(&snaps(&f), &u, &snapshot_doc("s1", json!(0)))
        .expect(201);
    let s = Arc::new(s);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (s, u, one, stop) = (s.clone(), u.clone(), one.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut ok = 0;
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let r = s.patch(&one, &u, &snapshot_doc("s1", json!({"w": w, "n": n})));
                    match r.status {
                        200 => ok += 1,
                        409 => {}
                        other => panic!("unexpected {other}: {}", r.text()),
                    }
                }
                ok
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.request(
        "POST",
        &format!("/v2/flows/{f}/start"),
        Some(&u.auth()),
        &[],
        None,
    )
    .expect(202);
    let frozen = s.get(&one, &u).header("ETag").unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let accepted: i64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
    // Nothing changed after the start was acknowledged, and the revision counts every accepted PATCH.
    let etag = s.get(&one, &u).header("ETag").unwrap().to_string();
    assert_eq!(frozen, etag, "a write landed on the running flow");
    let revision: i64 = etag
        .trim_matches('"')
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        revision,
        accepted + 1,
        "revision {revision} vs {accepted} accepted PATCHes"
    );
    assert!(
        accepted > 0,
        "the writers should have had time to write before the start"
    );
}

#[test]
fn snapshots_survive_a_restart() {
    let (mut s, u, _, f) = setup();
    let base = snaps(&f);
    s.post(
        &base,
        &u,
        &snapshot_doc(
            "s2",
            json!({"big": 12345678901234567890123u128, "keep": "me"}),
        ),
    )
    .expect(201);
    s.patch(
        &format!("{base}/s2"),
        &u,
        &snapshot_doc("s2", json!({"z": 1, "a": 2})),
    )
    .expect(200);
    let etag = s
        .get(&format!("{base}/s2"), &u)
        .header("ETag")
        .unwrap()
        .to_string();
    s.restart();
    let r = s.get(&format!("{base}/s2"), &u);
    r.expect(200);
    assert!(
        r.text().contains(r#"{"snapshot":{"z":1,"a":2}}"#),
        "{}",
        r.text()
    );
    assert_eq!(r.header("ETag").unwrap(), etag);
    // The revision goes on from where it was.
    s.patch(&format!("{base}/s2"), &u, &snapshot_doc("s2", json!(3)))
        .expect(200);
    assert_ne!(
        s.get(&format!("{base}/s2"), &u).header("ETag").unwrap(),
        etag
    );
}

#[test]
fn content_types_and_members_per_role() {
    let (s, owner, ws, f) = setup();
    let base = snaps(&f);
    for (role, may_write) in [("admin", true), ("integrator", true), ("guest", false)] {
        let m = s.user(&format!("{role}-member@example.com"));
        s.add_member(&owner, &ws, &m, role);
        let r = s.request(
            "POST",
            &base,
            Some(&m.auth()),
            &[("Content-Type", "application/vnd.api+json; charset=utf-8")],
            Some(snapshot_doc("s3", json!(role)).to_string().as_bytes()),
        );
        if may_write {
            r.expect(201);
            s.delete(&format!("{base}/s3"), &m).expect(204);
        } else {
            r.expect(403);
            assert!(r.json()["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("workspaces.flow.edit"));
        }
        s.get(&base, &m).expect(200);
    }
}

#[test]
fn deep_values_are_kept_up_to_the_depth_limit() {
    let (s, u, _, f) = setup();
    let base = snaps(&f);
    // 500 levels: deeper than a JSON parser's usual recursion limit, well within max_json_depth.
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let body =
        format!(r#"{{"data":{{"type":"snapshot","id":"s1","attributes":{{"snapshot":{deep}}}}}}}"#);
    s.request(
        "POST",
        &base,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    )
    .expect(201);
    assert!(s.get(&format!("{base}/s1"), &u).text().contains(&deep));
    let before = s.state();
    let deeper = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
    let body = format!(
        r#"{{"data":{{"type":"snapshot","id":"s2","attributes":{{"snapshot":{deeper}}}}}}}"#
    );
    let r = s.request(
        "POST",
        &base,
        Some(&u.auth()),
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    r.expect(400);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("1000"));
    assert_eq!(before, s.state());
}

/// The snapshot paths confirm remembered credentials inside their own read or write (one
/// statement instead of two). A key rotated by another process must still fail on the very next
/// request of every kind, with 401 before any 404, and change nothing; the new key works at once,
/// first verified afresh and then remembered.
#[test]
fn a_rotated_key_is_refused_at_once_on_every_snapshot_path() {
    let (s, owner, ws, f) = setup();
    let dev = s.user("dev@example.com");
    s.add_member(&owner, &ws, &dev, "integrator");
    let base = snaps(&f);
    let one = format!("{base}/s1");
    s.post(&base, &owner, &snapshot_doc("s1", json!({"v": 1})))
        .expect(201);
    // Remembered: each path has been answered with this key.
    s.get(&one, &dev).expect(200);
    s.patch(&one, &dev, &snapshot_doc("s1", json!({"v": 2})))
        .expect(200);
    s.post(&base, &dev, &snapshot_doc("s2", json!(2)))
        .expect(201);
    s.delete(&format!("{base}/s2"), &dev).expect(204);

    let out = s.cli(&["user", "rotate-key", "--email", "dev@example.com"], None);
    assert!(out.status.success(), "cli rotate-key");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let before = s.state();
    let refusals = [
        ("GET one", s.get(&one, &dev)),
        (
            "PATCH",
            s.patch(&one, &dev, &snapshot_doc("s1", json!({"v": 3}))),
        ),
        ("POST", s.post(&base, &dev, &snapshot_doc("s2", json!(3)))),
        ("DELETE", s.delete(&one, &dev)),
        (
            "GET a malformed flow id",
            s.get("/v2/flows/not-an-id/snapshots/s1", &dev),
        ),
        (
            "POST to a malformed flow id",
            s.post(
                "/v2/flows/not-an-id/snapshots",
                &dev,
                &snapshot_doc("s2", json!(3)),
            ),
        ),
        (
            "GET an unknown flow",
            s.get("/v2/flows/0123456789abcdef01234567/snapshots/s1", &dev),
        ),
        (
            "PUT (a wrong method)",
            s.send("PUT", &one, &dev, &snapshot_doc("s1", json!(3))),
        ),
        ("GET the list", s.get(&base, &dev)),
    ];
    for (what, r) in &refusals {
        assert_eq!(r.status, 401, "{what} with the rotated key: {}", r.text());
        assert_error_doc(r, 401);
    }
    assert_eq!(before, s.state(), "a refused request changed nothing");

    let dev = User {
        key: v["api_key"].as_str().unwrap_or("").to_string(),
        ..dev
    };
    // First use of the new key on a write (verified afresh), then remembered.
    for n in 4..6 {
        let r = s.patch(&one, &dev, &snapshot_doc("s1", json!({ "v": n })));
        r.expect(200);
        assert_eq!(
            r.json()["data"]["attributes"]["snapshot"],
            json!({ "v": n })
        );
    }
    assert_eq!(
        s.get(&one, &dev).json()["data"]["attributes"]["snapshot"],
        json!({"v": 5})
    );

    // A deleted user's remembered key is refused the same way, on a read and on a write.
    let gone = s.user("gone@example.com");
    s.add_member(&owner, &ws, &gone, "integrator");
    s.get(&one, &gone).expect(200);
    s.patch(&one, &gone, &snapshot_doc("s1", json!(6)))
        .expect(200);
    s.delete(&format!("/v2/users/{}", gone.id), &s.admin)
        .expect(204);
    let before = s.state();
    s.get(&one, &gone).expect(401);
    s.patch(&one, &gone, &snapshot_doc("s1", json!(7)))
        .expect(401);
    assert_eq!(before, s.state(), "a refused request changed nothing");
}
