//! `log_format = "json"`: every line on standard error is one JSON object, and a request's lines
//! carry the request id its response names in `X-Request-Id`.

mod common;

use common::Server;
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn json_log_lines_parse_and_carry_the_request_id() {
    let s = Server::start_with(&[("FLOWSNAP_LOG_FORMAT", "json")]);
    let r = s.get("/v2/users/me", &s.admin);
    r.expect(200);
    let rid = r.header("X-Request-Id").expect("X-Request-Id").to_string();
    // A refusal too: its line names its own request.
    let bad = s.get("/v2/flows/000000000000000000000000", &s.admin);
    bad.expect(404);
    let bad_rid = bad.header("X-Request-Id").unwrap().to_string();
    assert_ne!(rid, bad_rid);

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = s.log.lock().unwrap().clone();
        if lines.iter().any(|l| l.contains(&bad_rid)) || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(lines.len() >= 4, "{lines:?}");
    let mut parsed = Vec::new();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        for member in ["ts", "level", "target", "msg"] {
            assert!(v[member].is_string(), "{member} missing: {l}");
        }
        parsed.push(v);
    }
    // The first-start line carries the admin's key in a member of its own.
    assert!(parsed.iter().any(|v| v["api_key"] == s.admin.key.as_str()));
    for (id, path) in [
        (&rid, "/v2/users/me"),
        (&bad_rid, "/v2/flows/000000000000000000000000"),
    ] {
        let line = parsed
            .iter()
            .find(|v| v["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no line with request_id {id}: {lines:?}"));
        assert!(line["msg"].as_str().unwrap().contains(path), "{line}");
    }
    // Lines outside a request carry none.
    assert!(parsed
        .iter()
        .any(|v| v["msg"].as_str().unwrap().contains("listening on")
            && v.get("request_id").is_none()));
}
