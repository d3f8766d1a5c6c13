//! `flowsnap healthcheck` (the container's HEALTHCHECK, issue 14.6): 0 for a server that answers
//! /healthz, 1 with the reason for anything else, in bounded time.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String, Duration) {
    let start = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.arg("healthcheck")
        .args(args)
        .env_remove("FLOWSNAP_LISTEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn healthcheck_passes_for_a_running_server() {
    let s = Server::start();
    let (code, out, err, _) = healthcheck(&["--addr", &s.addr], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"status\":\"ok\""), "{out}");
    // With no --addr it probes the `listen` setting; a wildcard address is probed on loopback
    // (the container listens on 0.0.0.0).
    let port = s.addr.rsplit(':').next().unwrap();
    let listen = format!("0.0.0.0:{port}");
    let (code, out, err, _) = healthcheck(&[], &[("FLOWSNAP_LISTEN", &listen)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("127.0.0.1:{port}")), "{out}");
}

#[test]
fn healthcheck_fails_with_the_reason() {
    // A port nobody listens on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    // Something that answers, but not flowsnap's health.
    let wrong = TcpListener::bind("127.0.0.1:0").unwrap();
    let wrong_addr = wrong.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in wrong.incoming().take(2) {
            let mut c = c.unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
            );
        }
    });
    // Something that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let cases: &[(&str, &[&str], &str)] = &[
        ("nothing listens", &["--addr", &closed], "cannot connect"),
        ("another status", &["--addr", &wrong_addr], "status \"503\""),
        (
            "no answer",
            &["--addr", &silent_addr, "--timeout", "1"],
            "no answer",
        ),
        ("not an address", &["--addr", "nowhere"], "not an address"),
    ];
    for (what, args, words) in cases {
        let (code, out, err, took) = healthcheck(args, &[]);
        assert_eq!(code, Some(1), "{what}: {out} {err}");
        assert!(err.contains(words), "{what}: {words:?} not in {err}");
        assert!(out.is_empty(), "{what}: {out}");
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
    }
    drop(silent);
}
