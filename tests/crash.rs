//! Issue 7.1: crash safety. Concurrent writers create, patch and delete snapshots over HTTP and
//! record what was acknowledged; the server is killed with SIGKILL at random moments and started
//! again on the same file; after each restart every acknowledged write must be there, nothing
//! unacknowledged may appear half-written, revisions must count the acknowledged changes, and
//! `PRAGMA integrity_check` must say `ok`. Each step's newest version must equal its current
//! snapshot (or be a delete when it has none), and the audit log must hold exactly one event per
//! acknowledged change (plus the in-flight ones found applied).
//!
//! CI runs `CRASH_ROUNDS` (default 10) rounds; a bigger run:
//! `CRASH_ROUNDS=200 cargo test --release --test crash -- --nocapture`.

mod common;
use common::*;
use rand::Rng;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 6;
const STEPS_PER_WRITER: usize = 8;

/// What the tests know of one step's snapshot: `None` when it has none.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    state: Option<(u64, i64)>, // (value seq, revision)
}

#[derive(Debug, Clone)]
enum Op {
    Create(u64),
    Patch(u64),
    Delete,
}

#[derive(Debug, Clone)]
struct StepModel {
    step: String,
    known: Known,
    /// A request whose answer never came: it may or may not have been applied.
    pending: Option<Op>,
}

fn apply(k: &Known, op: &Op) -> Known {
    match op {
        Op::Create(seq) => Known {
            state: Some((*seq, 1)),
        },
        Op::Patch(seq) => Known {
            state: Some((*seq, k.state.map(|(_, r)| r).unwrap_or(0) + 1)),
        },
        Op::Delete => Known { state: None },
    }
}

fn value(writer: usize, step: &str, seq: u64) -> Value {
    json!({"writer": writer, "step": step, "seq": seq, "pad": "p".repeat((seq % 7 * 300) as usize)})
}

#[derive(Default)]
struct Counts {
    acknowledged: u64,
    /// Writes in flight at a kill that were found applied after the restart.
    applied_in_flight: u64,
    unknown: u64,
    checked: u64,
}

/// One writer's work until the server disappears: returns how many writes were acknowledged.
fn write_until_gone(
    s: &Server,
    auth: &str,
    flow: &str,
    writer: usize,
    model: &mut [StepModel],
    seq: &mut u64,
) -> u64 {
    let mut rng = rand::thread_rng();
    let mut acked = 0;
    loop {
        let i = rng.gen_range(0..model.len());
        let m = &mut model[i];
        *seq += 1;
        let op = match m.known.state {
            None => Op::Create(*seq),
            Some(_) if rng.gen_bool(0.25) => Op::Delete,
            Some(_) => Op::Patch(*seq),
        };
        let base = format!("/v2/flows/{flow}/snapshots");
        let doc = |seq: u64| {
            json!({"data": {"type": "snapshot", "id": m.step, "attributes": {"snapshot": value(writer, &m.step, seq)}}})
                .to_string()
        };
        let (result, ok_status) = match &op {
            Op::Create(n) => (s.try_request("POST", &base, auth, Some(&doc(*n))), 201),
            Op::Patch(n) => (
                s.try_request("PATCH", &format!("{base}/{}", m.step), auth, Some(&doc(*n))),
                200,
            ),
            Op::Delete => (
                s.try_request("DELETE", &format!("{base}/{}", m.step), auth, None),
                204,
            ),
        };
        match result {
            Some(r) if r.status == ok_status => {
                m.known = apply(&m.known, &op);
                acked += 1;
            }
            Some(r) if r.status == 503 || r.status == 500 && r.text().is_empty() => {
                // The server is going down under us: the outcome is unknown.
                m.pending = Some(op);
                return acked;
            }
            Some(r) => panic!("{op:?} on {} answered {}: {}", m.step, r.status, r.text()),
            None => {
                m.pending = Some(op);
                return acked;
            }
        }
    }
}

/// Reads the step's snapshot after a restart and checks it against the model. Returns whether a
/// write whose answer never came was found applied.
fn verify(s: &Server, auth: &str, flow: &str, writer: usize, m: &mut StepModel) -> bool {
    let r = s.request(
        "GET",
        &format!("/v2/flows/{flow}/snapshots/{}", m.step),
        Some(auth),
        &[],
        None,
    );
    let seen = match r.status {
        404 => Known { state: None },
        200 => {
            let v = r.json();
            let snap = &v["data"]["attributes"]["snapshot"];
            let seq = snap["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("half-written value {snap}"));
            assert_eq!(*snap, value(writer, &m.step, seq), "value not as written");
            let etag = r.header("ETag").unwrap().trim_matches('"').to_string();
            let rev: i64 = etag.rsplit('-').next().unwrap().parse().unwrap();
            Known {
                state: Some((seq, rev)),
            }
        }
        other => panic!("GET after restart answered {other}: {}", r.text()),
    };
    let allowed_after = m.pending.as_ref().map(|op| apply(&m.known, op));
    assert!(
        seen == m.known || Some(&seen) == allowed_after.as_ref(),
        "step {}: saw {seen:?}, acknowledged {:?}, in flight {:?}",
        m.step,
        m.known,
        m.pending
    );
    let applied = m.pending.is_some() && seen != m.known;
    m.known = seen;
    m.pending = None;
    applied
}

/// Section 9's invariant, read from the file: every step's newest version is its current
/// snapshot (same generation, revision and value), or a delete when it has none.
fn check_versions(db: &std::path::Path) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut st = c
        .prepare(
            "SELECT st.step_id, s.generation, s.revision, cur.value,
                    v.generation, v.revision, v.operation, v.value
             FROM steps st
             LEFT JOIN snapshots s ON s.flow_pk = st.flow_pk AND s.step_id = st.step_id
             LEFT JOIN snapshot_versions cur ON cur.pk = s.value_pk
             LEFT JOIN step_histories h ON h.flow_pk = st.flow_pk AND h.step_id = st.step_id
             LEFT JOIN snapshot_versions v ON v.pk = (
                 SELECT pk FROM snapshot_versions x
                 WHERE x.pk BETWEEN h.pk * 1024 AND h.pk * 1024 + 1023
                 ORDER BY x.generation DESC, x.revision DESC LIMIT 1)",
        )
        .unwrap();
    type Row = (
        String,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (step, sg, sr, sv, vg, vr, op, vv) in rows {
        match (sg, op.as_deref()) {
            (Some(_), _) => assert_eq!(
                (sg, sr, sv),
                (vg, vr, vv),
                "step {step}: the newest version is not the current snapshot"
            ),
            (None, None) | (None, Some("delete")) => {}
            (None, other) => {
                panic!("step {step} has no snapshot but its newest version is {other:?}")
            }
        }
    }
}

/// The snapshot events of the flow in the audit log.
fn snapshot_events(db: &std::path::Path, flow: &str) -> u64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM audit_events WHERE flow_id = ?1 AND action LIKE 'snapshot.%'",
            [flow],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut s = Arc::new(Server::start());
    let owner = s.user("crash@example.com");
    let ws = s.workspace(&owner, "Crash");
    let steps: Vec<String> = (0..WRITERS * STEPS_PER_WRITER)
        .map(|i| format!("step_{i}"))
        .collect();
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    let flow = s.flow(&owner, &ws, &refs);
    let auth = owner.auth();
    s.get("/v2/users/me", &owner).expect(200); // cache the credentials before the first kill

    let models: Vec<Arc<Mutex<Vec<StepModel>>>> = (0..WRITERS)
        .map(|w| {
            Arc::new(Mutex::new(
                steps[w * STEPS_PER_WRITER..(w + 1) * STEPS_PER_WRITER]
                    .iter()
                    .map(|st| StepModel {
                        step: st.clone(),
                        known: Known { state: None },
                        pending: None,
                    })
                    .collect(),
            ))
        })
        .collect();
    let mut seqs = [0u64; WRITERS];
    let mut counts = Counts::default();
    let mut rng = rand::thread_rng();
    for round in 0..rounds {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (server, model, auth, flow, mut seq) = (
                    s.clone(),
                    models[w].clone(),
                    auth.clone(),
                    flow.clone(),
                    seqs[w],
                );
                std::thread::spawn(move || {
                    let mut m = model.lock().unwrap();
                    let acked = write_until_gone(&server, &auth, &flow, w, &mut m, &mut seq);
                    (acked, seq)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..600)));
        unsafe_kill(s.pid(), "KILL");
        for (w, h) in handles.into_iter().enumerate() {
            let (acked, seq) = h.join().unwrap();
            counts.acknowledged += acked;
            seqs[w] = seq;
        }
        let server = Arc::get_mut(&mut s).expect("every writer has finished");
        server.kill();
        server.respawn();
        let integrity: String = rusqlite::Connection::open_with_flags(
            s.db(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
        assert_eq!(integrity, "ok", "round {round}");
        check_versions(&s.db());
        for (w, model) in models.iter().enumerate() {
            for m in model.lock().unwrap().iter_mut() {
                if m.pending.is_some() {
                    counts.unknown += 1;
                }
                if verify(&s, &auth, &flow, w, m) {
                    counts.applied_in_flight += 1;
                }
                counts.checked += 1;
            }
        }
        assert_eq!(
            snapshot_events(&s.db(), &flow),
            counts.acknowledged + counts.applied_in_flight,
            "round {round}: one audit event per change"
        );
    }
    eprintln!(
        "crash safety: {rounds} SIGKILLs survived, {} acknowledged writes, {} steps verified, {} writes in flight at a kill",
        counts.acknowledged, counts.checked, counts.unknown
    );
    assert!(
        counts.acknowledged > rounds as u64 * 10,
        "too few writes to mean anything"
    );
}
