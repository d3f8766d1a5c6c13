//! Spec section 9: snapshot metadata, versions, restore, retention, and the schema migration
//! that brings them. Real server on port 0, HTTP only (the database is read only to prove that
//! a refusal changed nothing).

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;

const BIG: &str =
    r#"{"z_last":1,"big":12345678901234567890123,"tiny":0.1,"exp":1e400,"a":[-0.0,"é\u00e9"]}"#;

fn snap_path(flow: &str, step: &str) -> String {
    format!("/v2/flows/{flow}/snapshots/{step}")
}

fn versions_path(flow: &str, step: &str) -> String {
    format!("/v2/flows/{flow}/snapshots/{step}/versions")
}

fn raw_doc(step: &str, value: &str) -> String {
    format!(r#"{{"data":{{"type":"snapshot","id":"{step}","attributes":{{"snapshot":{value}}}}}}}"#)
}

/// The raw text of `data.attributes.snapshot` in a response (the value as the server wrote it).
fn raw_value(body: &str) -> String {
    let start = body.find(r#""snapshot":"#).expect("snapshot member") + r#""snapshot":"#.len();
    let rest = &body[start..];
    // The value ends where the attributes object closes: `}` followed by `,"meta"` or `}`.
    let end = [rest.find(r#"},"meta""#), rest.find(r#","size_bytes""#)]
        .into_iter()
        .flatten()
        .min()
        .expect("end of value");
    rest[..end].to_string()
}

struct Fixture {
    s: Server,
    flow: String,
}

fn setup(env: &[(&str, &str)]) -> Fixture {
    let s = Server::start_with(env);
    let admin = s.admin.clone();
    let ws = s.workspace(&admin, "Versions team");
    let flow = s.flow(&admin, &ws, &["step_1", "step_2", "step_3"]);
    Fixture { s, flow }
}

#[test]
fn every_snapshot_object_carries_its_meta() {
    let f = setup(&[]);
    let (s, a) = (&f.s, f.s.admin.clone());
    let created = s.send_raw(
        "POST",
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &raw_doc("step_1", BIG),
        &[],
    );
    created.expect(201);
    let m = created.json()["data"]["meta"].clone();
    assert_eq!(m["revision"], 1);
    assert_eq!(m["etag"], created.header("ETag").unwrap());
    assert_eq!(
        m["size_bytes"],
        BIG.len(),
        "size is the compact JSON text's bytes"
    );
    assert_eq!(m["updated_by"], a.id);
    assert_eq!(m["created_at"], m["updated_at"]);
    assert_eq!(raw_value(&created.text()), BIG);
    std::thread::sleep(std::time::Duration::from_millis(5));

    let patched = s.send_raw(
        "PATCH",
        &snap_path(&f.flow, "step_1"),
        &a,
        &raw_doc("step_1", "[1,2]"),
        &[],
    );
    patched.expect(200);
    let pm = patched.json()["data"]["meta"].clone();
    assert_eq!(pm["revision"], 2);
    assert_eq!(pm["size_bytes"], 5);
    assert_eq!(
        pm["created_at"], m["created_at"],
        "created_at stays across updates"
    );
    assert_ne!(pm["updated_at"], m["updated_at"]);

    let got = s.get(&snap_path(&f.flow, "step_1"), &a);
    got.expect(200);
    assert_eq!(got.json()["data"]["meta"], pm);
    assert_eq!(
        got.json()["data"]["meta"]["etag"],
        got.header("ETag").unwrap()
    );
    let list = s.get(&format!("/v2/flows/{}/snapshots", f.flow), &a);
    list.expect(200);
    assert_eq!(list.json()["data"][0]["meta"], pm);

    // A delete and a re-create start anew: revision 1, a new creation time and ETag.
    std::thread::sleep(std::time::Duration::from_millis(5));
    s.delete(&snap_path(&f.flow, "step_1"), &a).expect(204);
    let again = s.send_raw(
        "POST",
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &raw_doc("step_1", "null"),
        &[],
    );
    again.expect(201);
    let am = again.json()["data"]["meta"].clone();
    assert_eq!(am["revision"], 1);
    assert_ne!(am["created_at"], m["created_at"]);
    assert_ne!(am["etag"], m["etag"]);
    assert_eq!(am["size_bytes"], 4);
}

#[test]
fn every_change_is_a_version_newest_first_with_exact_values() {
    let f = setup(&[]);
    let (s, a) = (&f.s, f.s.admin.clone());
    let post = s.send_raw(
        "POST",
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &raw_doc("step_1", BIG),
        &[],
    );
    post.expect(201);
    let g = post
        .header("ETag")
        .unwrap()
        .trim_matches('"')
        .split('-')
        .next()
        .unwrap()
        .to_string();
    s.send_raw(
        "PATCH",
        &snap_path(&f.flow, "step_1"),
        &a,
        &raw_doc("step_1", r#"{"b":2,"a":1}"#),
        &[],
    )
    .expect(200);
    s.delete(&snap_path(&f.flow, "step_1"), &a).expect(204);

    let r = s.get(&versions_path(&f.flow, "step_1"), &a);
    r.expect(200);
    let v = r.json();
    assert_eq!(v["meta"]["total"], 3);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [format!("{g}-3"), format!("{g}-2"), format!("{g}-1")],
        "newest first; a delete records the next revision"
    );
    let ops: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attributes"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["delete", "update", "create"]);
    let del = &v["data"][0];
    assert!(
        del["attributes"].get("snapshot").is_none(),
        "a delete version has no snapshot member"
    );
    assert_eq!(del["attributes"]["size_bytes"], 0);
    assert_eq!(del["attributes"]["created_by"], a.id);
    assert_eq!(del["attributes"]["restored_from"], Value::Null);
    assert_eq!(del["type"], "snapshot-version");
    assert_eq!(
        del["links"]["self"],
        format!("{}/{g}-3", versions_path(&f.flow, "step_1"))
    );

    // One version, exactly as written (big number, member order, escapes).
    let one = s.get(&format!("{}/{g}-1", versions_path(&f.flow, "step_1")), &a);
    one.expect(200);
    assert_eq!(raw_value(&one.text()), BIG);
    assert_eq!(one.json()["data"]["attributes"]["size_bytes"], BIG.len());
    let two = s.get(&format!("{}/{g}-2", versions_path(&f.flow, "step_1")), &a);
    assert_eq!(raw_value(&two.text()), r#"{"b":2,"a":1}"#);

    // A step without history is an empty list; paging works like every list.
    let empty = s.get(&versions_path(&f.flow, "step_2"), &a);
    empty.expect(200);
    assert_eq!(empty.json()["data"], json!([]));
    let paged = s.get(
        &format!(
            "{}?page[size]=1&page[number]=2",
            versions_path(&f.flow, "step_1")
        ),
        &a,
    );
    assert_eq!(paged.json()["data"][0]["id"], format!("{g}-2"));
    assert_eq!(paged.json()["meta"]["total_pages"], 3);
}

#[test]
fn version_reads_refuse_unknown_steps_and_versions() {
    let f = setup(&[]);
    let (s, a) = (&f.s, f.s.admin.clone());
    s.post(
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &snapshot_doc("step_1", json!(1)),
    )
    .expect(201);
    let flow = &f.flow;
    let cases: Vec<(String, u16)> = vec![
        (versions_path(flow, "nope"), 404),
        (format!("{}/1-1", versions_path(flow, "nope")), 404),
        (format!("{}/999-1", versions_path(flow, "step_1")), 404),
        (format!("{}/x-1", versions_path(flow, "step_1")), 404),
        (format!("{}/1", versions_path(flow, "step_1")), 404),
        (versions_path("65f0c0ffee0000000000abcd", "step_1"), 404),
        (versions_path("not-an-id", "step_1"), 404),
        (
            format!("{}?page[size]=0", versions_path(flow, "step_1")),
            400,
        ),
    ];
    for (path, status) in cases {
        let r = s.get(&path, &a);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        r.expect(status);
    }
    let r = s.request(
        "DELETE",
        &versions_path(flow, "step_1"),
        Some(&a.auth()),
        &[],
        None,
    );
    r.expect(405);
    assert_eq!(r.header("Allow"), Some("GET"));
}

/// Every version id of `step`'s history, newest first.
fn version_ids(s: &Server, u: &User, flow: &str, step: &str) -> Vec<String> {
    let r = s.get(&format!("{}?page[size]=100", versions_path(flow, step)), u);
    r.expect(200);
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restore_makes_the_version_current_as_a_new_change() {
    let f = setup(&[]);
    let (s, a) = (&f.s, f.s.admin.clone());
    let snaps = format!("/v2/flows/{}/snapshots", f.flow);
    s.send_raw("POST", &snaps, &a, &raw_doc("step_1", BIG), &[])
        .expect(201);
    s.send_raw(
        "PATCH",
        &snap_path(&f.flow, "step_1"),
        &a,
        &raw_doc("step_1", "2"),
        &[],
    )
    .expect(200);
    let first = version_ids(s, &a, &f.flow, "step_1").pop().unwrap();

    // With a snapshot: 200, the revision grows by one, the value is the version's exactly.
    let r = s.request(
        "POST",
        &format!("{}/{first}/restore", versions_path(&f.flow, "step_1")),
        Some(&a.auth()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        None,
    );
    r.expect(200);
    assert_eq!(raw_value(&r.text()), BIG);
    assert_eq!(r.json()["data"]["meta"]["revision"], 3);
    assert_eq!(r.json()["data"]["meta"]["etag"], r.header("ETag").unwrap());
    let got = s.get(&snap_path(&f.flow, "step_1"), &a);
    assert_eq!(raw_value(&got.text()), BIG);
    let newest = s.get(&versions_path(&f.flow, "step_1"), &a).json()["data"][0].clone();
    assert_eq!(newest["attributes"]["operation"], "restore");
    assert_eq!(newest["attributes"]["restored_from"], first);
    assert_eq!(
        format!("\"{}\"", newest["id"].as_str().unwrap()),
        r.header("ETag").unwrap()
    );

    // After a delete: 201, a new snapshot with revision 1 and an ETag never seen before.
    let before: HashSet<String> = version_ids(s, &a, &f.flow, "step_1").into_iter().collect();
    s.delete(&snap_path(&f.flow, "step_1"), &a).expect(204);
    let r = s.request(
        "POST",
        &format!("{}/{first}/restore", versions_path(&f.flow, "step_1")),
        Some(&a.auth()),
        &[],
        None,
    );
    r.expect(201);
    assert_eq!(r.json()["data"]["meta"]["revision"], 1);
    let etag = r.header("ETag").unwrap().trim_matches('"').to_string();
    assert!(
        !before.contains(&etag),
        "{etag} repeats an earlier version id"
    );
    assert_eq!(raw_value(&r.text()), BIG);
}

#[test]
fn restore_refusals_come_in_the_listed_order_and_change_nothing() {
    let mut f = setup(&[]);
    let a = f.s.admin.clone();
    let flow = f.flow.clone();
    let snaps = format!("/v2/flows/{flow}/snapshots");
    // step_1: big value (v1), then a small one (v2); step_2: created then deleted.
    let big = format!(r#""{}""#, "x".repeat(3000));
    f.s.send_raw("POST", &snaps, &a, &raw_doc("step_1", &big), &[])
        .expect(201);
    f.s.send_raw(
        "PATCH",
        &snap_path(&flow, "step_1"),
        &a,
        &raw_doc("step_1", "1"),
        &[],
    )
    .expect(200);
    f.s.send_raw("POST", &snaps, &a, &raw_doc("step_2", "2"), &[])
        .expect(201);
    f.s.delete(&snap_path(&flow, "step_2"), &a).expect(204);
    let v1 = version_ids(&f.s, &a, &flow, "step_1");
    let (big_v, small_v) = (v1[1].clone(), v1[0].clone());
    let deleted_v = version_ids(&f.s, &a, &flow, "step_2")[0].clone();
    let etag =
        f.s.get(&snap_path(&flow, "step_1"), &a)
            .header("ETag")
            .unwrap()
            .to_string();

    let restore = |s: &Server, step: &str, v: &str, headers: &[(&str, &str)]| {
        s.request(
            "POST",
            &format!("{}/{v}/restore", versions_path(&flow, step)),
            Some(&a.auth()),
            headers,
            None,
        )
    };
    // (step, version, headers, status, running): each refusal wins over every later one.
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16, bool);
    let cases: Vec<Case> = vec![
        ("nope", "1-1".into(), vec![], 404, true),
        ("step_1", "999-9".into(), vec![], 409, true),
        (
            "step_1",
            "999-9".into(),
            vec![("If-Match", "\"0-0\"")],
            404,
            false,
        ),
        (
            "step_2",
            deleted_v.clone(),
            vec![("If-Match", "\"0-0\"")],
            409,
            false,
        ),
        (
            "step_1",
            small_v.clone(),
            vec![("If-Match", "\"0-0\"")],
            412,
            false,
        ),
        (
            "step_1",
            small_v.clone(),
            vec![("If-None-Match", "*")],
            412,
            false,
        ),
        ("step_3", small_v.clone(), vec![], 404, false),
        ("step_2", small_v.clone(), vec![], 404, false),
    ];
    for (step, v, headers, status, running) in &cases {
        if *running {
            f.s.request(
                "POST",
                &format!("/v2/flows/{flow}/start"),
                Some(&a.auth()),
                &[],
                None,
            )
            .expect(202);
        }
        let before = f.s.state();
        let r = restore(&f.s, step, v, headers);
        assert_eq!(r.status, *status, "{step} {v} {headers:?}: {}", r.text());
        r.expect(*status);
        assert_eq!(
            before,
            f.s.state(),
            "{step} {v} {headers:?} changed something"
        );
        if *running {
            f.s.request(
                "POST",
                &format!("/v2/flows/{flow}/stop"),
                Some(&a.auth()),
                &[],
                None,
            )
            .expect(202);
        }
    }
    // A version's value over today's max_snapshot_bytes: 413, after every other check.
    f.s.set_env("FLOWSNAP_MAX_SNAPSHOT_BYTES", "1000");
    f.s.restart();
    let before = f.s.state();
    let r = restore(&f.s, "step_1", &big_v, &[("If-Match", &etag)]);
    r.expect(413);
    assert!(r.text().contains("1000"), "{}", r.text());
    assert_eq!(before, f.s.state());
    // And the successes beside those refusals: the matching If-Match, and If-None-Match: * on a
    // step without a snapshot.
    restore(&f.s, "step_1", &small_v, &[("If-Match", &etag)]).expect(200);
    let v2 = version_ids(&f.s, &a, &flow, "step_2");
    let first_2 = v2.last().unwrap().clone();
    restore(&f.s, "step_2", &first_2, &[("If-None-Match", "*")]).expect(201);
}

#[test]
fn retention_keeps_the_newest_versions_only() {
    let f = setup(&[("FLOWSNAP_HISTORY_MAX_VERSIONS", "3")]);
    let (s, a) = (&f.s, f.s.admin.clone());
    s.post(
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &snapshot_doc("step_1", json!(0)),
    )
    .expect(201);
    let oldest = version_ids(s, &a, &f.flow, "step_1")[0].clone();
    for i in 1..=4 {
        s.patch(
            &snap_path(&f.flow, "step_1"),
            &a,
            &snapshot_doc("step_1", json!(i)),
        )
        .expect(200);
    }
    let ids = version_ids(s, &a, &f.flow, "step_1");
    assert_eq!(ids.len(), 3, "{ids:?}");
    let g = oldest.split('-').next().unwrap();
    assert_eq!(ids, [format!("{g}-5"), format!("{g}-4"), format!("{g}-3")]);
    let before = s.state();
    s.get(
        &format!("{}/{oldest}", versions_path(&f.flow, "step_1")),
        &a,
    )
    .expect(404);
    let r = s.request(
        "POST",
        &format!("{}/{oldest}/restore", versions_path(&f.flow, "step_1")),
        Some(&a.auth()),
        &[],
        None,
    );
    r.expect(404);
    assert_eq!(
        before,
        s.state(),
        "a refused read or restore of a pruned version changed something"
    );

    // history_max_versions = 0: no history at all, snapshots work as before.
    let f = setup(&[("FLOWSNAP_HISTORY_MAX_VERSIONS", "0")]);
    let (s, a) = (&f.s, f.s.admin.clone());
    let r = s.post(
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &snapshot_doc("step_1", json!(0)),
    );
    r.expect(201);
    let id = r.header("ETag").unwrap().trim_matches('"').to_string();
    s.patch(
        &snap_path(&f.flow, "step_1"),
        &a,
        &snapshot_doc("step_1", json!(1)),
    )
    .expect(200);
    assert!(version_ids(s, &a, &f.flow, "step_1").is_empty());
    s.get(&format!("{}/{id}", versions_path(&f.flow, "step_1")), &a)
        .expect(404);
}

/// `history_max_versions` changed between two starts: a smaller setting shows only the newest it
/// allows at once (the step's next change prunes the rest), a larger one keeps what is there and
/// grows to it; 0 shows none, and the current value is never lost.
#[test]
fn a_changed_history_setting_applies_to_the_versions_already_kept() {
    let mut f = setup(&[("FLOWSNAP_HISTORY_MAX_VERSIONS", "5")]);
    let a = f.s.admin.clone();
    let flow = f.flow.clone();
    let value = |i: i64| format!(r#"{{"n":{i},"big":12345678901234567890123}}"#);
    let patch = |s: &Server, i: i64| {
        s.send_raw(
            "PATCH",
            &snap_path(&flow, "step_1"),
            &a,
            &raw_doc("step_1", &value(i)),
            &[],
        )
        .expect(200);
    };
    f.s.send_raw(
        "POST",
        &format!("/v2/flows/{flow}/snapshots"),
        &a,
        &raw_doc("step_1", &value(0)),
        &[],
    )
    .expect(201);
    for i in 1..=6 {
        patch(&f.s, i);
    }
    let five = version_ids(&f.s, &a, &flow, "step_1");
    assert_eq!(five.len(), 5, "{five:?}");
    let slots = |s: &Server| -> i64 {
        rusqlite::Connection::open(s.db())
            .unwrap()
            .query_row("SELECT count(*) FROM snapshot_versions", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(slots(&f.s), 5);

    // 2: the newest two show at once; the stored five stay until the step changes.
    f.s.set_env("FLOWSNAP_HISTORY_MAX_VERSIONS", "2");
    f.s.restart();
    assert_eq!(version_ids(&f.s, &a, &flow, "step_1"), five[..2]);
    let r = f.s.get(
        &format!(
            "{}?page[size]=1&page[number]=2",
            versions_path(&flow, "step_1")
        ),
        &a,
    );
    r.expect(200);
    assert_eq!(r.json()["meta"]["total"], 2, "{}", r.text());
    f.s.get(
        &format!("{}/{}", versions_path(&flow, "step_1"), five[2]),
        &a,
    )
    .expect(404);
    patch(&f.s, 7);
    let two = version_ids(&f.s, &a, &flow, "step_1");
    assert_eq!(two.len(), 2);
    assert_eq!(two[1], five[0]);
    assert_eq!(
        slots(&f.s),
        2,
        "the change pruned the step to the new setting"
    );

    // 4: what is kept stays, and the history grows to four.
    f.s.set_env("FLOWSNAP_HISTORY_MAX_VERSIONS", "4");
    f.s.restart();
    assert_eq!(version_ids(&f.s, &a, &flow, "step_1"), two);
    for i in 8..=10 {
        patch(&f.s, i);
    }
    let four = version_ids(&f.s, &a, &flow, "step_1");
    assert_eq!(four.len(), 4);
    assert_eq!(
        four[3], two[0],
        "four kept: the newest three and the newest before them"
    );
    assert_eq!(slots(&f.s), 4);

    // 0: none shows, the value stays exact, and a change keeps only the current value.
    f.s.set_env("FLOWSNAP_HISTORY_MAX_VERSIONS", "0");
    f.s.restart();
    assert!(version_ids(&f.s, &a, &flow, "step_1").is_empty());
    f.s.get(
        &format!("{}/{}", versions_path(&flow, "step_1"), four[0]),
        &a,
    )
    .expect(404);
    patch(&f.s, 11);
    assert_eq!(slots(&f.s), 1);
    let r = f.s.get(&snap_path(&flow, "step_1"), &a);
    r.expect(200);
    assert_eq!(raw_value(&r.text()), value(11));
    // And a delete with no history leaves nothing of the step's values.
    f.s.delete(&snap_path(&flow, "step_1"), &a).expect(204);
    assert_eq!(slots(&f.s), 0);
}

#[test]
fn a_graph_change_records_deletes_and_a_returning_step_gets_its_history_back() {
    let f = setup(&[]);
    let (s, a) = (&f.s, f.s.admin.clone());
    let snaps = format!("/v2/flows/{}/snapshots", f.flow);
    s.send_raw("POST", &snaps, &a, &raw_doc("step_2", BIG), &[])
        .expect(201);
    s.send_raw("POST", &snaps, &a, &raw_doc("step_3", "3"), &[])
        .expect(201);
    let patch =
        |steps: &[&str]| {
            s.patch(&format!("/v2/flows/{}", f.flow), &a,
            &json!({"data": {"type": "flow", "id": f.flow, "attributes": {"graph": graph(steps)}}}))
            .expect(200);
        };
    patch(&["step_1"]);
    // The dropped steps are gone from the flow: their versions are not reachable...
    s.get(&versions_path(&f.flow, "step_2"), &a).expect(404);
    let events = s.get("/v2/audit?filter[action]=flow.update", &a).json();
    assert_eq!(
        events["meta"]["total"], 1,
        "one flow.update event for a PATCH dropping two steps"
    );
    // ...until the step comes back: create, then the delete the graph change made.
    patch(&["step_1", "step_2"]);
    let r = s.get(&versions_path(&f.flow, "step_2"), &a);
    r.expect(200);
    let data = r.json()["data"].clone();
    assert_eq!(data.as_array().unwrap().len(), 2);
    assert_eq!(data[0]["attributes"]["operation"], "delete");
    assert_eq!(data[0]["attributes"]["created_by"], a.id);
    assert_eq!(data[1]["attributes"]["operation"], "create");
    s.get(&snap_path(&f.flow, "step_2"), &a).expect(404);
    // The old value can be restored into the returned step.
    let first = data[1]["id"].as_str().unwrap();
    let r = s.request(
        "POST",
        &format!("{}/{first}/restore", versions_path(&f.flow, "step_2")),
        Some(&a.auth()),
        &[],
        None,
    );
    r.expect(201);
    assert_eq!(raw_value(&r.text()), BIG);
    // A flow's versions go with the flow.
    s.delete(&format!("/v2/flows/{}", f.flow), &a).expect(204);
    let c = rusqlite::Connection::open(s.db()).unwrap();
    let left: (i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM snapshot_versions), (SELECT count(*) FROM step_histories)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(left, (0, 0));
}

#[test]
fn history_is_private_to_the_workspace() {
    let f = setup(&[]);
    let (s, a) = (&f.s, f.s.admin.clone());
    let ws = s.get(&format!("/v2/flows/{}", f.flow), &a).json()["data"]["relationships"]
        ["workspace"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &snapshot_doc("step_1", json!({"secret": "s3cr3t-value"})),
    )
    .expect(201);
    let v = version_ids(s, &a, &f.flow, "step_1")[0].clone();
    let guest = s.user("guest@example.com");
    s.add_member(&a, &ws, &guest, "guest");
    let outsider = s.user("outsider@example.com");
    let revoked = s.user("revoked@example.com");
    s.add_member(&a, &ws, &revoked, "owner");
    s.cli(
        &["user", "rotate-key", "--email", "revoked@example.com"],
        None,
    );

    let list = versions_path(&f.flow, "step_1");
    let one = format!("{list}/{v}");
    let restore = format!("{one}/restore");
    // (who, method, path, status)
    let cases = [
        (&outsider, "GET", list.clone(), 403),
        (&outsider, "GET", one.clone(), 403),
        (&outsider, "POST", restore.clone(), 403),
        (&guest, "GET", list.clone(), 200),
        (&guest, "GET", one.clone(), 200),
        (&guest, "POST", restore.clone(), 403),
        (&revoked, "GET", list.clone(), 401),
        (&revoked, "GET", one.clone(), 401),
        (&revoked, "POST", restore.clone(), 401),
    ];
    for (who, method, path, status) in cases {
        let before = s.state();
        let r = s.request(method, &path, Some(&who.auth()), &[], None);
        assert_eq!(
            r.status,
            status,
            "{} {method} {path}: {}",
            who.email,
            r.text()
        );
        r.expect(status);
        if status != 200 && who.email != "guest@example.com" {
            assert!(
                !r.text().contains("s3cr3t-value") && !r.text().contains(&ws),
                "{}",
                r.text()
            );
        }
        assert_eq!(
            before,
            s.state(),
            "{} {method} {path} changed something",
            who.email
        );
    }
}

#[test]
fn concurrent_patches_make_one_version_each_with_consecutive_revisions() {
    let f = setup(&[("FLOWSNAP_HISTORY_MAX_VERSIONS", "100")]);
    let a = f.s.admin.clone();
    f.s.post(
        &format!("/v2/flows/{}/snapshots", f.flow),
        &a,
        &snapshot_doc("step_1", json!(0)),
    )
    .expect(201);
    let s = std::sync::Arc::new(f.s);
    let (threads, each) = (8, 6);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (s, a, flow) = (s.clone(), a.clone(), f.flow.clone());
            std::thread::spawn(move || {
                (0..each)
                    .map(|i| {
                        let r = s.patch(
                            &snap_path(&flow, "step_1"),
                            &a,
                            &snapshot_doc("step_1", json!({"t": t, "i": i})),
                        );
                        r.expect(200);
                        r.json()["data"]["meta"]["revision"].as_i64().unwrap()
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut revisions: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    revisions.sort();
    let expected: Vec<i64> = (2..=(threads * each + 1) as i64).collect();
    assert_eq!(revisions, expected, "every PATCH got its own revision");
    let ids = version_ids(&s, &a, &f.flow, "step_1");
    assert_eq!(ids.len(), threads * each + 1);
    let revs: Vec<i64> = ids
        .iter()
        .rev()
        .map(|id| id.split('-').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        revs,
        (1..=(threads * each + 1) as i64).collect::<Vec<_>>(),
        "consecutive, one version per change"
    );
}

#[test]
fn a_version_2_database_with_data_upgrades_in_place() {
    let dir = std::env::temp_dir().join(format!("flowsnap-v2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("v2.db");
    legacy_db(&db, 2, "{\"kept\":12345678901234567890123}", 1764000000123);
    let out = std::process::Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let snap: (String, i64, i64, i64, Option<String>) = c
        .query_row(
            "SELECT v.value, s.revision, s.created_at, s.updated_at, s.updated_by
             FROM snapshots s JOIN snapshot_versions v ON v.pk = s.value_pk",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        snap,
        (
            "{\"kept\":12345678901234567890123}".into(),
            4,
            1764000000123,
            1764000000123,
            None
        )
    );
    let v: (String, i64, i64, String, Option<String>) = c
        .query_row(
            "SELECT h.step_id, v.generation, v.revision, v.operation, v.value
             FROM snapshot_versions v JOIN step_histories h ON v.pk / 1024 = h.pk",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        v,
        (
            "s1".into(),
            9,
            4,
            "import".into(),
            Some("{\"kept\":12345678901234567890123}".into())
        )
    );
    let events: i64 = c
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 0);
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let fk: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
