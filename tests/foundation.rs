//! Issue 2: the binary, the command line, the HTTP skeleton and authentication, over HTTP.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn every_kind_of_bad_credentials_gets_the_same_401() {
    let s = Server::start();
    let path = "/v2/users/me";
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("not basic", Some("Bearer abc".into())),
        ("bad base64", Some("Basic !!!not-base64".into())),
        (
            "no colon",
            Some(format!("Basic {}", base64_of("admin@example.com"))),
        ),
        (
            "unknown e-mail",
            Some(basic("nobody@example.com", &s.admin.key)),
        ),
        (
            "wrong key",
            Some(basic(
                "admin@example.com",
                "0000000000000000000000000000000000000000",
            )),
        ),
        ("empty key", Some(basic("admin@example.com", ""))),
    ];
    let mut bodies = Vec::new();
    for (what, auth) in &cases {
        let r = s.request("GET", path, auth.as_deref(), &[], None);
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_error_doc(&r, 401);
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Basic realm=\"flowsnap\""),
            "{what}"
        );
        bodies.push(r.body.clone());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "401 bodies differ");
    // Authentication comes before 404 and 405.
    s.request("GET", "/v2/no/such/path", None, &[], None)
        .expect(401);
    s.request("PUT", "/v2/users/me", None, &[], None)
        .expect(401);
    // The e-mail is case-insensitive.
    let upper = User {
        email: "ADMIN@Example.COM".into(),
        ..s.admin.clone()
    };
    s.get(path, &upper).expect(200);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn users_me_returns_the_caller() {
    let s = Server::start();
    let r = s.get("/v2/users/me", &s.admin);
    r.expect(200);
    let v = r.json();
    assert_eq!(v["data"]["type"], "user");
    assert_eq!(v["data"]["attributes"]["email"], "admin@example.com");
    assert_eq!(
        v["data"]["links"]["self"],
        format!("/v2/users/{}", s.admin.id)
    );
    assert_eq!(v["meta"], json!({}));
    let id = v["data"]["id"].as_str().unwrap();
    assert!(
        id.len() == 24
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{id}"
    );
    let registered = v["data"]["attributes"]["registered"].as_str().unwrap();
    assert!(is_iso_ms(registered), "{registered}");
    assert!(
        v["data"]["attributes"].get("api_key").is_none()
            && v["data"]["attributes"].get("password").is_none()
    );
    assert!(r.header("X-Request-Id").is_some());
    // A trailing slash is the same resource.
    s.get("/v2/users/me/", &s.admin).expect(200);
}

pub fn is_iso_ms(t: &str) -> bool {
    let b = t.as_bytes();
    t.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && t.ends_with('Z')
}

#[test]
fn error_documents_for_404_405_413_415_400() {
    // The snapshot and flow limits may not exceed the body limit (refused at start).
    let s = Server::start_with(&[
        ("FLOWSNAP_MAX_BODY_BYTES", "2000"),
        ("FLOWSNAP_MAX_SNAPSHOT_BYTES", "2000"),
        ("FLOWSNAP_MAX_FLOW_BYTES", "2000"),
    ]);
    let a = s.admin.auth();
    let before = s.state();

    let r = s.get("/v2/nothing-here", &s.admin);
    r.expect(404);

    let r = s.request("PUT", "/v2/workspaces", Some(&a), &[], None);
    r.expect(405);
    assert_eq!(r.header("Allow"), Some("GET, POST"));
    let r = s.request("DELETE", "/v2/users/me", Some(&a), &[], None);
    r.expect(405);
    assert_eq!(r.header("Allow"), Some("GET"));

    let big = format!(
        "{{\"data\": {{\"type\": \"workspace\", \"attributes\": {{\"name\": \"{}\"}}}}}}",
        "x".repeat(3000)
    );
    let r = s.request(
        "POST",
        "/v2/workspaces",
        Some(&a),
        &[("Content-Type", "application/json")],
        Some(big.as_bytes()),
    );
    r.expect(413);
    assert!(
        r.json()["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("2000"),
        "413 names the limit"
    );

    let body = br#"{"data": {"type": "workspace", "attributes": {"name": "abc"}}}"#;
    let r = s.request(
        "POST",
        "/v2/workspaces",
        Some(&a),
        &[("Content-Type", "text/plain")],
        Some(body),
    );
    r.expect(415);
    let r = s.request("POST", "/v2/workspaces", Some(&a), &[], Some(body));
    r.expect(415);

    let r = s.request(
        "POST",
        "/v2/workspaces",
        Some(&a),
        &[("Content-Type", "application/json")],
        Some(b"{\"data\": "),
    );
    r.expect(400);
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("JSON"));
    let r = s.request(
        "POST",
        "/v2/workspaces",
        Some(&a),
        &[("Content-Type", "application/json")],
        Some(b""),
    );
    r.expect(400);
    // vnd.api+json with a charset is JSON.
    let r = s.request(
        "POST",
        "/v2/workspaces",
        Some(&a),
        &[("Content-Type", "application/vnd.api+json; charset=utf-8")],
        Some(b"{\"data\": 1}"),
    );
    r.expect(400);
    assert_eq!(r.json()["errors"][0]["source"]["pointer"], "/data");
    assert_eq!(before, s.state(), "a refused request changed the database");

    // The same body within the limit works, with the vnd.api+json type.
    s.request(
        "POST",
        "/v2/workspaces",
        Some(&a),
        &[("Content-Type", "application/vnd.api+json")],
        Some(body),
    )
    .expect(201);
    // healthz needs no authentication and no database.
    let r = s.request("GET", "/healthz", None, &[], None);
    r.expect(200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = s.request("GET", "/v2/openapi.json", None, &[], None);
    r.expect(200);
    assert!(r.json()["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[test]
fn a_large_body_is_refused_without_being_read() {
    let s = Server::start();
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v2/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
        s.admin.auth()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&[b' '; 65536]).unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    let r = parse_response(&buf[..n]).expect("a response before the body was sent");
    r.expect(413);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("104857600"));
}

#[test]
fn first_start_creates_one_admin_and_prints_a_working_curl_line() {
    let mut s = Server::start();
    let log = s.log.lock().unwrap().join("\n");
    assert!(log.contains("admin@example.com"), "{log}");
    let curl = log
        .lines()
        .find(|l| l.trim_start().starts_with("curl -u"))
        .expect("a curl line");
    assert!(
        curl.contains(&s.admin.key) && curl.contains(&s.addr) && curl.contains("/v2/users/me"),
        "{curl}"
    );
    // The curl line works as printed.
    if Command::new("curl").arg("--version").output().is_ok() {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{} -s", curl.trim()))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).expect("curl printed JSON");
        assert_eq!(v["data"]["attributes"]["email"], "admin@example.com");
    }
    // A restart does not create a second admin (Server::restart asserts no key is printed).
    s.restart();
    let r = s.get("/v2/users", &s.admin);
    r.expect(200);
    assert_eq!(r.json()["meta"]["total"], 1);
}

#[test]
fn cli_user_create_and_rotate_key_print_one_json_object() {
    let s = Server::start();
    let out = s.cli(
        &[
            "user",
            "create",
            "--email",
            "dev@example.com",
            "--first-name",
            "Dev",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "stdout must hold one JSON object: {stdout}"
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["id", "email", "api_key"]);
    let dev = User {
        id: v["id"].as_str().unwrap().into(),
        email: "dev@example.com".into(),
        key: v["api_key"].as_str().unwrap().into(),
    };
    s.get("/v2/users/me", &dev).expect(200);

    // A duplicate e-mail (any case) is refused with a message and no output on stdout.
    let before = s.state();
    let out = s.cli(&["user", "create", "--email", "DEV@example.com"], None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(before, s.state());

    // Rotation in another process while the server runs: the old key fails on the next request.
    s.get("/v2/users/me", &dev).expect(200);
    let out = s.cli(&["user", "rotate-key", "--email", "dev@example.com"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], dev.id.as_str());
    s.get("/v2/users/me", &dev).expect(401);
    let rotated = User {
        key: v["api_key"].as_str().unwrap().into(),
        ..dev.clone()
    };
    s.get("/v2/users/me", &rotated).expect(200);
    s.get("/v2/users/me", &rotated).expect(200);

    let out = s.cli(
        &["user", "rotate-key", "--email", "ghost@example.com"],
        None,
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());

    // --password-stdin, then that password gets a key from the API-key endpoint.
    let out = s.cli(
        &[
            "user",
            "create",
            "--email",
            "pw@example.com",
            "--password-stdin",
        ],
        Some("s3cret-pass\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["id"].as_str().unwrap();
    let r = s.request(
        "POST",
        &format!("/v2/users/{id}/api-key"),
        Some(&basic("pw@example.com", "s3cret-pass")),
        &[],
        None,
    );
    r.expect(201);
    let out = s.cli(
        &[
            "user",
            "create",
            "--email",
            "weak@example.com",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!out.status.success());
}

#[test]
fn user_deleted_by_a_tenant_admin_fails_on_the_next_request() {
    let s = Server::start();
    let u = s.user("gone@example.com");
    s.get("/v2/users/me", &u).expect(200);
    s.delete(&format!("/v2/users/{}", u.id), &s.admin)
        .expect(204);
    s.get("/v2/users/me", &u).expect(401);
}

#[test]
fn backup_makes_a_database_the_server_can_open() {
    let s = Server::start();
    let ws = s.workspace(&s.admin, "Backed up");
    let out_path = s.dir.join("copy.db");
    let out = s.cli(&["backup", "--out", out_path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Refuses to overwrite.
    let again = s.cli(&["backup", "--out", out_path.to_str().unwrap()], None);
    assert!(!again.status.success());

    // A second server on the copy sees the workspace and the admin's key.
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(&out_path)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("FLOWSNAP_LOG_LEVEL", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut addr = String::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0 {
        assert!(
            !line.contains("shown only now"),
            "the copy already has its admin"
        );
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = rest.split_whitespace().next().unwrap().to_string();
            break;
        }
        line.clear();
    }
    let mut c = TcpStream::connect(&addr).unwrap();
    write!(c, "GET /v2/workspaces/{ws} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\n\r\n", s.admin.auth()).unwrap();
    let r = read_response(&mut c);
    let _ = child.kill();
    let _ = child.wait();
    r.expect(200);
    assert_eq!(r.json()["data"]["attributes"]["name"], "Backed up");
}

#[test]
fn sigterm_finishes_and_exits_zero() {
    let mut s = Server::start();
    // An idle keep-alive connection must not hold the shutdown up.
    let mut idle = TcpStream::connect(&s.addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let st = s.terminate();
    assert!(st.success(), "exit status {st:?}");
    assert!(started.elapsed() < Duration::from_secs(12));
    let log = s.log.lock().unwrap().join("\n");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn every_log_line_of_a_request_has_its_id() {
    let s = Server::start();
    let r = s.get("/v2/users/me", &s.admin);
    let rid = r.header("X-Request-Id").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(100));
    let log = s.log.lock().unwrap().join("\n");
    assert!(
        log.lines().any(|l| l.contains(&format!("[{rid}]"))
            && l.contains("/v2/users/me")
            && l.contains("200")),
        "{log}"
    );
}

#[test]
fn configuration_errors_stop_the_start() {
    let dir = std::env::temp_dir().join(format!("flowsnap-cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--db")
            .arg(dir.join("x.db"))
            .args(extra)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[("FLOWSNAP_MAX_BODY_BYTE", "5")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting `max_body_byte`"));
    let out = run(&[("FLOWSNAP_WORKERS", "lots")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("workers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Values too large to be meant (some would make the start itself fail) are refused by name.
    for (var, value) in [
        ("FLOWSNAP_WRITE_QUEUE_MAX", "9000000000000000000"),
        ("FLOWSNAP_BUSY_TIMEOUT_MS", "3000000000"),
        ("FLOWSNAP_MAX_PAGE_SIZE", "9223372036854775807"),
    ] {
        let out = run(&[(var, value)], &[]);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("must be at most"), "{var}: {err}");
    }
    let file = dir.join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nsynchronus = \"full\"\n").unwrap();
    let out = run(&[], &["--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("synchronus"));
    // --help says what the commands are.
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for word in ["serve", "user", "migrate", "backup"] {
        assert!(text.contains(word), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_creates_and_records_the_schema_version() {
    let dir = std::env::temp_dir().join(format!("flowsnap-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("m.db");
    let migrate = |path: &std::path::Path| {
        let out = Command::new(BIN)
            .arg("--db")
            .arg(path)
            .arg("migrate")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let version = |c: &rusqlite::Connection| -> i64 {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    migrate(&db);
    migrate(&db);
    let c = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(version(&c), 3);
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page, 8192, "snapshots fit in their rows on 8 KiB pages");
    drop(c);

    // A version-1 database with data (as the first release wrote it: schema.sql alone) is
    // upgraded in place to the current version, keeping every row of the version-1 tables
    // (version 3's snapshot columns and versions are checked in tests/versions.rs).
    let old = dir.join("v1.db");
    legacy_db(&old, 1, "{\"kept\":1e400}", 0);
    let before = v1_tables(&state_of(&old));
    migrate(&old);
    let c = rusqlite::Connection::open(&old).unwrap();
    assert_eq!(version(&c), 3);
    let index: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'flows_head'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1, "migration 2 creates flows_head");
    assert_eq!(
        before,
        v1_tables(&state_of(&old)),
        "the upgrade keeps every row"
    );
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // A version-2 file whose flows_head index was dropped (by hand) gets it back on open.
    c.execute_batch("DROP INDEX flows_head").unwrap();
    drop(c);
    migrate(&old);
    let c = rusqlite::Connection::open(&old).unwrap();
    let index: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'flows_head'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1, "a missing flows_head is made again");
    assert_eq!(
        before,
        v1_tables(&state_of(&old)),
        "the repair keeps every row"
    );
    // A negative version (no flowsnap writes one) is refused, not skipped over.
    c.execute_batch("PRAGMA user_version = -1").unwrap();
    drop(c);
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&old)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-1"));
    let c = rusqlite::Connection::open(&db).unwrap();
    // A database from a newer flowsnap is refused, not damaged.
    c.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(c);
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sections of a `state_of` dump for the tables whose columns version 1 fixed (version 3
/// adds columns to `snapshots` and new tables).
fn v1_tables(state: &str) -> String {
    state
        .split("== ")
        .filter(|t| {
            ![
                "snapshots\n",
                "snapshot_versions\n",
                "step_histories\n",
                "audit_events\n",
                "sqlite_sequence\n",
            ]
            .iter()
            .any(|name| t.starts_with(name))
        })
        .collect::<Vec<_>>()
        .join("== ")
}
