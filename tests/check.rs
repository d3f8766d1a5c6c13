//! `flowsnap check` (spec sections 8 and 13): integrity, foreign keys and the schema version, on a
//! live database; one JSON line on stdout; exit 0 only when all is well, 1 with the problems named.

mod common;
#[path = "common/load.rs"]
mod load;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[test]
fn check_passes_on_a_live_database_while_the_server_writes() {
    let s = Server::start();
    let fx = load::Fixture::create(&s, 3, 4, 2000);
    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let _stop = load::StopOnDrop(&stop);
        let writers = scope.spawn(|| fx.run(&s, &stop, &acked));
        // Writes land before, during and after each check.
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.load(Ordering::SeqCst) < 50 {
            assert!(Instant::now() < deadline, "the writers made no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        // At least 3 checks, and until one of them ran while a write was acknowledged (a check
        // takes milliseconds; on a loaded machine a write may take as long).
        let mut overlapped = 0;
        let mut runs = 0;
        while runs < 3 || overlapped == 0 {
            assert!(runs < 200, "no check ran while a write was acknowledged");
            let before = acked.load(Ordering::SeqCst);
            let (code, v) = load::check(&s.db());
            let during = acked.load(Ordering::SeqCst) - before;
            assert_eq!(code, Some(0), "{v}");
            assert_eq!(v["ok"], true, "{v}");
            assert_eq!(v["integrity"], serde_json::json!(["ok"]), "{v}");
            assert_eq!(v["foreign_key_violations"], serde_json::json!([]), "{v}");
            assert_eq!(v["problems"], serde_json::json!([]), "{v}");
            assert_eq!(v["schema_version"], v["expected_schema_version"], "{v}");
            runs += 1;
            if during > 0 {
                overlapped += 1;
            }
        }
        eprintln!("{runs} checks, {overlapped} with writes acknowledged meanwhile");
        stop.store(true, Ordering::SeqCst);
        let (acks, _) = writers.join().unwrap();
        assert!(acks.len() >= 50);
    });
    // The server is still well after the checks.
    s.get("/v2/users/me", &s.admin).expect(200);
}

/// Each way a database can be wrong, applied to a copy of a good one: check exits 1, names the
/// problem, and leaves the file as it was.
#[test]
fn check_names_each_problem_and_changes_nothing() {
    let s = Server::start();
    let fx = load::Fixture::create(&s, 2, 40, 3000);
    let good = s.dir.join("good.db");
    let out = s.cli(&["backup", "--out", good.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = load::check(&good);
    assert_eq!(code, Some(0), "{v}");
    let current = v["schema_version"].as_i64().unwrap();
    assert!(current >= 1);
    let _ = fx;

    type Damage = Box<dyn Fn(&std::path::Path)>;
    let set_version = |n: i64| -> Damage {
        Box::new(move |p: &std::path::Path| {
            let c = rusqlite::Connection::open(p).unwrap();
            c.execute_batch(&format!("PRAGMA user_version = {n}"))
                .unwrap();
        })
    };
    let cases: Vec<(&str, Damage, &[&str], Option<i64>)> = vec![
        (
            "a table page overwritten",
            Box::new(|p: &std::path::Path| {
                let c = rusqlite::Connection::open(p).unwrap();
                let (root, size): (i64, i64) = c
                    .query_row(
                        "SELECT (SELECT rootpage FROM sqlite_master WHERE name = 'snapshots'),
                                (SELECT page_size FROM pragma_page_size)",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                drop(c);
                let mut bytes = std::fs::read(p).unwrap();
                let at = ((root - 1) * size) as usize;
                assert!(at + 64 < bytes.len());
                // The page header and cell pointers become garbage.
                for b in &mut bytes[at..at + 64] {
                    *b = 0xA5;
                }
                std::fs::write(p, bytes).unwrap();
            }),
            &["integrity_check"],
            Some(current),
        ),
        (
            "a step deleted under its snapshot (foreign keys off)",
            Box::new(|p: &std::path::Path| {
                let c = rusqlite::Connection::open(p).unwrap();
                // The step goes, its snapshot stays: the snapshot's key on its step dangles.
                c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
                let n = c
                    .execute(
                        "DELETE FROM steps WHERE (flow_pk, step_id) IN
                         (SELECT flow_pk, step_id FROM snapshots LIMIT 1)",
                        [],
                    )
                    .unwrap();
                assert_eq!(n, 1);
            }),
            &["foreign_key_check", "snapshots"],
            Some(current),
        ),
        (
            "a snapshot's value removed (its version row deleted by hand)",
            Box::new(|p: &std::path::Path| {
                let c = rusqlite::Connection::open(p).unwrap();
                let n = c
                    .execute(
                        "DELETE FROM snapshot_versions WHERE pk = (SELECT value_pk FROM snapshots LIMIT 1)",
                        [],
                    )
                    .unwrap();
                assert_eq!(n, 1);
            }),
            &["without their value", "value_pk"],
            Some(current),
        ),
        (
            "an older schema version",
            set_version(current - 1),
            &["older", "migrate"],
            Some(current - 1),
        ),
        (
            "a newer schema version",
            set_version(current + 1),
            &["newer"],
            Some(current + 1),
        ),
        (
            "schema version 0",
            set_version(0),
            &["not a flowsnap database"],
            Some(0),
        ),
    ];
    for (i, (what, damage, words, version)) in cases.iter().enumerate() {
        let copy = s.dir.join(format!("bad-{i}.db"));
        std::fs::copy(&good, &copy).unwrap();
        damage(&copy);
        let before = std::fs::read(&copy).unwrap();
        let (code, v) = load::check(&copy);
        assert_eq!(code, Some(1), "{what}: {v}");
        assert_eq!(v["ok"], false, "{what}: {v}");
        let problems = v["problems"].to_string();
        eprintln!("{what}: {problems}");
        for w in *words {
            assert!(problems.contains(w), "{what}: {w:?} not in {problems}");
        }
        assert_eq!(v["schema_version"].as_i64(), *version, "{what}: {v}");
        assert_eq!(
            v["expected_schema_version"].as_i64(),
            Some(current),
            "{what}"
        );
        assert!(
            std::fs::read(&copy).unwrap() == before,
            "{what}: check changed the file"
        );
    }
}

#[test]
fn check_of_a_missing_file_says_so_and_creates_nothing() {
    let dir = std::env::temp_dir().join(format!("flowsnap-check-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("nothing-here.db");
    let (code, v) = load::check(&db);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{v}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "check created {left:?}");
    // A file that is not a database is a problem too, not a crash.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, vec![b'j'; 10_000]).unwrap();
    let (code, v) = load::check(&junk);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("not an SQLite database"),
        "{v}"
    );
    assert_eq!(std::fs::read(&junk).unwrap(), vec![b'j'; 10_000]);
    let _ = std::fs::remove_dir_all(&dir);
}
