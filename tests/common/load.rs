//! A steady PATCH load for the operations tests (backup, check, Litestream): writer threads, each
//! owning its own steps, PATCH snapshot values continuously over HTTP and record every
//! acknowledged write (step, value sequence number, revision from the ETag, when the answer came).
//! `verify_copy` then checks a copy of the database against those acknowledgements.
//! Included with `#[path = "common/load.rs"] mod load;` beside `mod common;`.
#![allow(dead_code)]

use crate::common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Ack {
    pub step: String,
    pub seq: u64,
    pub revision: i64,
    /// When the acknowledgement (the 200) was received.
    pub at: Instant,
}

/// A flow whose steps `w{writer}_{k}` each have a snapshot (revision 1, seq 0).
pub struct Fixture {
    pub flow: String,
    pub writers: usize,
    pub steps_per_writer: usize,
    pub pad: usize,
}

pub fn value(step: &str, seq: u64, pad: usize) -> Value {
    json!({"step": step, "seq": seq, "pad": "x".repeat(pad)})
}

pub fn step_name(writer: usize, k: usize) -> String {
    format!("w{writer}_{k}")
}

impl Fixture {
    pub fn create(s: &Server, writers: usize, steps_per_writer: usize, pad: usize) -> Fixture {
        let ws = s.workspace(&s.admin, "load");
        let names: Vec<String> = (0..writers)
            .flat_map(|w| (0..steps_per_writer).map(move |k| step_name(w, k)))
            .collect();
        let refs: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        let flow = s.flow(&s.admin, &ws, &refs);
        for n in &names {
            s.post(
                &format!("/v2/flows/{flow}/snapshots"),
                &s.admin,
                &snapshot_doc(n, value(n, 0, pad)),
            )
            .expect(201);
        }
        Fixture {
            flow,
            writers,
            steps_per_writer,
            pad,
        }
    }

    /// Runs the writers until `stop` is set; returns every acknowledged write, and counts them in
    /// `acked` as they come. A write whose answer never comes (the server was killed) ends that
    /// writer; `in_flight` then holds it (step, seq).
    pub fn run(
        &self,
        s: &Server,
        stop: &AtomicBool,
        acked: &AtomicU64,
    ) -> (Vec<Ack>, Vec<(String, u64)>) {
        let auth = s.admin.auth();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.writers)
                .map(|w| {
                    let auth = auth.clone();
                    scope.spawn(move || {
                        let mut acks = Vec::new();
                        let mut seq = 0u64;
                        let mut k = 0usize;
                        while !stop.load(Ordering::SeqCst) {
                            let step = step_name(w, k % self.steps_per_writer);
                            k += 1;
                            seq += 1;
                            let doc = snapshot_doc(&step, value(&step, seq, self.pad)).to_string();
                            let path = format!("/v2/flows/{}/snapshots/{step}", self.flow);
                            match s.try_request("PATCH", &path, &auth, Some(&doc)) {
                                Some(r) if r.status == 200 => {
                                    let etag = r.header("ETag").expect("ETag").trim_matches('"');
                                    let revision: i64 = etag
                                        .rsplit('-')
                                        .next()
                                        .and_then(|r| r.parse().ok())
                                        .expect("ETag GEN-REV");
                                    acks.push(Ack {
                                        step,
                                        seq,
                                        revision,
                                        at: Instant::now(),
                                    });
                                    acked.fetch_add(1, Ordering::SeqCst);
                                }
                                Some(r) if r.status == 503 => {} // queue full: not applied
                                Some(r) => panic!("PATCH answered {}: {}", r.status, r.text()),
                                None => return (acks, Some((step, seq))),
                            }
                        }
                        (acks, None)
                    })
                })
                .collect();
            let mut all = Vec::new();
            let mut in_flight = Vec::new();
            for h in handles {
                let (acks, pending) = h.join().expect("writer panicked");
                all.extend(acks);
                in_flight.extend(pending);
            }
            (all, in_flight)
        })
    }
}

/// What a copy of the database holds for each step of the fixture's flow: (seq, revision).
pub fn read_copy(db: &Path, flow: &str) -> HashMap<String, (u64, i64)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the copy");
    let mut st = c
        .prepare(
            "SELECT s.step_id, v.value, s.revision FROM snapshots s
             JOIN snapshot_versions v ON v.pk = s.value_pk
             JOIN flows f ON f.pk = s.flow_pk WHERE f.id = ?1",
        )
        .expect("prepare");
    let rows = st
        .query_map([flow], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .expect("query");
    let mut out = HashMap::new();
    for row in rows {
        let (step, text, rev) = row.expect("row");
        let v: Value = serde_json::from_str(&text).expect("stored value is JSON");
        out.insert(step, (v["seq"].as_u64().expect("seq"), rev));
    }
    out
}

/// Checks a copy against the acknowledgements: for every step, the copy holds the last write
/// acknowledged before `cutoff` or a later one, and what it holds is a write that was really
/// made (an acknowledged one, the initial value, or one still in flight), value and revision
/// together. Returns how many steps had a write acknowledged before `cutoff`.
pub fn verify_copy(
    fx: &Fixture,
    db: &Path,
    acks: &[Ack],
    in_flight: &[(String, u64)],
    cutoff: Instant,
) -> usize {
    let copy = read_copy(db, &fx.flow);
    let mut checked = 0;
    for w in 0..fx.writers {
        for k in 0..fx.steps_per_writer {
            let step = step_name(w, k);
            let &(seq, rev) = copy
                .get(&step)
                .unwrap_or_else(|| panic!("step {step} has no snapshot in the copy"));
            let mine: Vec<&Ack> = acks.iter().filter(|a| a.step == step).collect();
            if let Some(last) = mine.iter().rfind(|a| a.at < cutoff) {
                checked += 1;
                assert!(
                    rev >= last.revision,
                    "step {step}: the copy has revision {rev} (seq {seq}), but revision {} (seq \
                     {}) was acknowledged before the cutoff",
                    last.revision,
                    last.seq
                );
            }
            let real = (seq == 0 && rev == 1)
                || mine.iter().any(|a| a.seq == seq && a.revision == rev)
                || in_flight.iter().any(|(s, q)| *s == step && *q == seq);
            assert!(
                real,
                "step {step}: the copy holds seq {seq} at revision {rev}, which no write made"
            );
        }
    }
    checked
}

/// Runs `flowsnap check` on `db`; returns (exit code, the JSON line).
pub fn check(db: &Path) -> (Option<i32>, Value) {
    let out = std::process::Command::new(BIN)
        .arg("--db")
        .arg(db)
        .arg("check")
        .env("FLOWSNAP_LOG_LEVEL", "warn")
        .output()
        .expect("run check");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "check prints one line: {text:?}");
    let v: Value = serde_json::from_str(lines[0]).expect("check prints JSON");
    (out.status.code(), v)
}

/// Sets the flag when dropped, also when a test panics inside `std::thread::scope`: the scope
/// joins the writers before the panic goes on, so they must be told to stop.
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
