//! The races of issue 14: an API-key rotation checks its caller in the transaction that writes
//! the new key; a writer that cannot begin its transaction answers the whole group at once.

mod common;

use common::{Server, User};
use serde_json::json;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[test]
fn concurrent_rotations_with_one_key_issue_exactly_one_new_key() {
    let s = Arc::new(Server::start_with(&[("FLOWSNAP_ARGON2_MAX_WAITING", "64")]));
    let u = s.user("rotating@example.com");
    // Remembered credentials: every rotation below passes its first check at once.
    s.get("/v2/users/me", &u).expect(200);
    let before = s.state();
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let answers: Vec<_> = (0..n)
        .map(|_| {
            let (s, u, barrier) = (s.clone(), u.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = s.post(&format!("/v2/users/{}/api-key", u.id), &u, &json!({}));
                (r.status, r)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let issued: Vec<String> = answers
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, r)| {
            r.json()["data"]["attributes"]["api_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for (st, r) in &answers {
        if *st != 201 {
            r.expect(401);
        }
    }
    assert_eq!(
        issued.len(),
        1,
        "one key, one rotation: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    // The key that was issued is the one that works; the old one does not.
    let new = User {
        key: issued[0].clone(),
        ..u.clone()
    };
    s.get("/v2/users/me", &new).expect(200);
    s.get("/v2/users/me", &u).expect(401);
    assert_ne!(s.state(), before);
}

#[test]
fn a_rotation_with_a_replaced_key_is_refused_and_changes_nothing() {
    let s = Server::start();
    let u = s.user("pw@example.com");
    // The admin rotates u's key; u's old key then fails, and nothing else changes.
    let r = s.post(&format!("/v2/users/{}/api-key", u.id), &s.admin, &json!({}));
    r.expect(201);
    let before = s.state();
    s.post(&format!("/v2/users/{}/api-key", u.id), &u, &json!({}))
        .expect(401);
    assert_eq!(s.state(), before, "a refused rotation changes nothing");
}

#[test]
fn a_writer_that_cannot_begin_answers_its_whole_group_at_once() {
    let busy_ms = 1000;
    let s = Arc::new(Server::start_with(&[(
        "FLOWSNAP_BUSY_TIMEOUT_MS",
        &busy_ms.to_string(),
    )]));
    // Remembered credentials: the requests below need no write of their own to sign in.
    s.get("/v2/users/me", &s.admin).expect(200);
    let before = s.state();
    // Another process holds the write lock.
    let other = rusqlite::Connection::open(s.db()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let started = Instant::now();
    let answers: Vec<_> = (0..n)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = s.post(
                    "/v2/workspaces",
                    &s.admin,
                    &json!({"data": {"type": "workspace", "attributes": {"name": format!("busy {i}")}}}),
                );
                (r, started.elapsed())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for (r, _) in &answers {
        r.expect(503);
        assert!(r.header("Retry-After").is_some());
    }
    let slowest = answers.iter().map(|(_, t)| *t).max().unwrap();
    // Retrying BEGIN per job took one busy timeout per queued job (8 s here); answering the
    // group at once takes one per group (the first job often alone, the rest in a second).
    assert!(
        slowest < Duration::from_millis(busy_ms * 7 / 2),
        "the last of {n} writes waited {slowest:?} with a busy timeout of {busy_ms} ms"
    );
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    assert_eq!(s.state(), before, "refused writes change nothing");
    s.post(
        "/v2/workspaces",
        &s.admin,
        &json!({"data": {"type": "workspace", "attributes": {"name": "after"}}}),
    )
    .expect(201);
}
