//! `GET /metrics` (spec section 13): the families, route templates as labels, one request moves
//! its counter by exactly one, no raw id in any label, off with `metrics = false`.

mod common;

use common::{basic, snapshot_doc, Server};
use serde_json::json;
use std::sync::{Arc, Barrier};

const FAMILIES: &[(&str, &str)] = &[
    ("flowsnap_http_requests_total", "counter"),
    ("flowsnap_http_request_duration_seconds", "histogram"),
    ("flowsnap_write_groups_total", "counter"),
    ("flowsnap_write_group_size", "histogram"),
    ("flowsnap_write_queue_length", "gauge"),
    ("flowsnap_db_size_bytes", "gauge"),
    ("flowsnap_auth_remembered_total", "counter"),
    ("flowsnap_argon2_refused_total", "counter"),
];

fn scrape(s: &Server) -> String {
    let r = s.request("GET", "/metrics", None, &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("text/plain; version=0.0.4"));
    r.text()
}

/// The value of the sample `series` (name and labels exactly as exposed); 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn every_family_is_exposed_without_authentication() {
    let s = Server::start();
    let text = scrape(&s);
    for (name, kind) in FAMILIES {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} ({kind}) missing:\n{text}"
        );
    }
    // The database file's size is read from the file.
    let size = std::fs::metadata(s.db()).unwrap().len() as f64;
    assert!(size > 0.0);
    assert_eq!(value(&text, "flowsnap_db_size_bytes"), size);
    // Only GET.
    let r = s.request("POST", "/metrics", None, &[], Some(b"{}"));
    r.expect(405);
}

#[test]
fn a_request_moves_its_counters_by_exactly_one_under_its_route_template() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "metrics");
    let flow = s.flow(&s.admin, &ws, &["step_a"]);
    s.post(
        &format!("/v2/flows/{flow}/snapshots"),
        &s.admin,
        &snapshot_doc("step_a", json!({"n": 1})),
    )
    .expect(201);
    let get = r#"flowsnap_http_requests_total{method="GET",route="/v2/flows/{id}/snapshots/{step_id}",status="200"}"#;
    let missing = r#"flowsnap_http_requests_total{method="GET",route="/v2/flows/{id}/snapshots/{step_id}",status="404"}"#;
    let took = r#"flowsnap_http_request_duration_seconds_count{method="GET",route="/v2/flows/{id}/snapshots/{step_id}"}"#;
    let patch = r#"flowsnap_http_requests_total{method="PATCH",route="/v2/flows/{id}/snapshots/{step_id}",status="200"}"#;
    let hits = r#"flowsnap_auth_remembered_total{result="hit"}"#;
    let misses = r#"flowsnap_auth_remembered_total{result="miss"}"#;
    let groups = "flowsnap_write_groups_total";
    let group_jobs = "flowsnap_write_group_size_sum";

    let before = scrape(&s);
    s.get(&format!("/v2/flows/{flow}/snapshots/step_a"), &s.admin)
        .expect(200);
    let after = scrape(&s);
    assert_eq!(value(&after, get) - value(&before, get), 1.0);
    assert_eq!(value(&after, took) - value(&before, took), 1.0);
    assert_eq!(value(&after, missing), value(&before, missing));
    assert_eq!(value(&after, hits) - value(&before, hits), 1.0);
    assert_eq!(value(&after, misses), value(&before, misses));
    assert_eq!(
        value(&after, groups),
        value(&before, groups),
        "a read commits nothing"
    );

    s.get(
        &format!("/v2/flows/{flow}/snapshots/no_such_step"),
        &s.admin,
    )
    .expect(404);
    s.patch(
        &format!("/v2/flows/{flow}/snapshots/step_a"),
        &s.admin,
        &snapshot_doc("step_a", json!({"n": 2})),
    )
    .expect(200);
    // Wrong credentials: not remembered.
    let wrong = basic(&s.admin.email, "0000000000000000000000000000000000000000");
    s.request("GET", "/v2/users/me", Some(&wrong), &[], None)
        .expect(401);
    let last = scrape(&s);
    assert_eq!(value(&last, missing) - value(&after, missing), 1.0);
    assert_eq!(value(&last, patch) - value(&after, patch), 1.0);
    assert_eq!(value(&last, groups) - value(&after, groups), 1.0);
    assert_eq!(value(&last, group_jobs) - value(&after, group_jobs), 1.0);
    assert_eq!(value(&last, misses) - value(&after, misses), 1.0);
    assert_eq!(value(&last, "flowsnap_write_queue_length"), 0.0);

    // Route templates, never raw paths: no id of the requests above is in any label.
    for id in [
        flow.as_str(),
        ws.as_str(),
        "step_a",
        "no_such_step",
        s.admin.id.as_str(),
    ] {
        assert!(!last.contains(id), "{id} in the metrics:\n{last}");
    }
    // Every series of the request families names a route template.
    for l in last.lines().filter(|l| l.starts_with("flowsnap_http_")) {
        let route = l
            .split("route=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "route label {route:?} in {l}"
        );
    }
}

#[test]
fn argon2_refusals_are_counted_as_the_429s_they_are() {
    let s = Arc::new(Server::start_with(&[
        ("FLOWSNAP_ARGON2_MAX_CONCURRENT", "1"),
        ("FLOWSNAP_ARGON2_MAX_WAITING", "0"),
    ]));
    let before = scrape(&s);
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let statuses: Vec<u16> = (0..n)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                let wrong = basic(&s.admin.email, &format!("{i:040}"));
                barrier.wait();
                s.request("GET", "/v2/users/me", Some(&wrong), &[], None)
                    .status
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let refused = statuses.iter().filter(|&&st| st == 429).count() as f64;
    assert!(refused > 0.0, "{statuses:?}");
    let after = scrape(&s);
    let name = "flowsnap_argon2_refused_total";
    assert_eq!(value(&after, name) - value(&before, name), refused);
    let series = r#"flowsnap_http_requests_total{method="GET",route="/v2/users/me",status="429"}"#;
    assert_eq!(value(&after, series) - value(&before, series), refused);
}

#[test]
fn metrics_false_gives_404_and_the_rest_works() {
    let s = Server::start_with(&[("FLOWSNAP_METRICS", "false")]);
    let r = s.request("GET", "/metrics", None, &[], None);
    r.expect(404);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("metrics = false"));
    s.get("/v2/users/me", &s.admin).expect(200);
}
