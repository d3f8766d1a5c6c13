//! Settings that cannot work together are refused at start, naming both settings (issue 14);
//! the same settings at their limits start.

mod common;

use common::{Server, BIN};
use std::process::{Command, Stdio};

/// Starts `serve` with `env` on a fresh directory; returns (exit code, stderr, whether a database
/// file was made).
fn start_refused(env: &[(&str, &str)]) -> (Option<i32>, String, bool) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("flowsnap-settings-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("flowsnap.db");
    let mut cmd = Command::new(BIN);
    cmd.arg("--db")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let made = db.exists();
    let _ = std::fs::remove_dir_all(&dir);
    (status.code(), err, made)
}

/// Settings, and the names the refusal must carry.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn settings_that_cannot_work_together_are_refused_naming_both() {
    // (settings, the names the message must carry)
    let cases: &[Case] = &[
        (
            &[("FLOWSNAP_MAX_SNAPSHOT_BYTES", "2000000")],
            &["max_snapshot_bytes", "max_body_bytes"],
        ),
        (
            &[
                ("FLOWSNAP_MAX_BODY_BYTES", "100000"),
                ("FLOWSNAP_MAX_FLOW_BYTES", "100001"),
            ],
            &["max_flow_bytes", "max_body_bytes"],
        ),
        (
            &[("FLOWSNAP_MAX_BODY_BYTES", "1000000001")],
            &["max_body_bytes", "SQLITE_MAX_LENGTH"],
        ),
        (
            &[
                ("FLOWSNAP_MAX_BODY_BYTES", "1000000000"),
                ("FLOWSNAP_MAX_SNAPSHOT_BYTES", "1000000001"),
            ],
            &["max_snapshot_bytes", "SQLITE_MAX_LENGTH"],
        ),
        (
            &[
                ("FLOWSNAP_MAX_BODY_BYTES", "1000000000"),
                ("FLOWSNAP_MAX_FLOW_BYTES", "2000000000"),
            ],
            &["max_flow_bytes", "SQLITE_MAX_LENGTH"],
        ),
        (
            &[("FLOWSNAP_IDLE_TIMEOUT_SECS", "4")],
            &["idle_timeout_secs", "5"],
        ),
        (
            &[("FLOWSNAP_IDLE_TIMEOUT_SECS", "0")],
            &["idle_timeout_secs"],
        ),
        (&[("FLOWSNAP_LOG_FORMAT", "xml")], &["log_format"]),
        (
            &[("FLOWSNAP_READ_MMAP_BYTES", "2147418113")],
            &["read_mmap_bytes", "2147418112"],
        ),
    ];
    for (env, names) in cases {
        let (code, err, made) = start_refused(env);
        assert_eq!(code, Some(2), "{env:?} must be refused at start: {err}");
        for n in *names {
            assert!(err.contains(n), "{env:?}: the message must name {n}: {err}");
        }
        assert!(
            !made,
            "{env:?}: a refused start must not create the database"
        );
    }
}

#[test]
fn settings_at_their_limits_start() {
    let s = Server::start_with(&[
        ("FLOWSNAP_MAX_BODY_BYTES", "300000"),
        ("FLOWSNAP_MAX_SNAPSHOT_BYTES", "300000"),
        ("FLOWSNAP_MAX_FLOW_BYTES", "300000"),
        ("FLOWSNAP_IDLE_TIMEOUT_SECS", "5"),
        ("FLOWSNAP_LOG_FORMAT", "text"),
        ("FLOWSNAP_READ_MMAP_BYTES", "2147418112"),
    ]);
    s.get("/v2/users/me", &s.admin).expect(200);
    // A snapshot as large as the body limit allows is accepted: the limits agree.
    let ws = s.workspace(&s.admin, "limits");
    let flow = s.flow(&s.admin, &ws, &["a"]);
    let value = "x".repeat(299_000);
    s.post(
        &format!("/v2/flows/{flow}/snapshots"),
        &s.admin,
        &common::snapshot_doc("a", serde_json::json!(value)),
    )
    .expect(201);
}
