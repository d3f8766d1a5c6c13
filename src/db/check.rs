//! `flowsnap check` (spec sections 8 and 13): SQLite's `integrity_check` and `foreign_key_check`
//! and the schema version, on a database that a server may be writing at the same time.
//!
//! The file is opened read-only (never created, never migrated) and everything is read in one
//! read transaction, so the answer describes one consistent state of a live database (WAL mode:
//! the server's writes go on meanwhile and are not part of it).

use super::migrate::SCHEMA_VERSION;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Most `integrity_check` messages and foreign-key violations listed one by one; the counts are
/// always exact up to this limit, and the report says when there were more.
pub const MAX_LISTED: usize = 20;

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub database: String,
    /// `PRAGMA user_version` of the file; `None` when it could not be read.
    pub schema_version: Option<i64>,
    /// The version this flowsnap writes.
    pub expected_schema_version: i64,
    /// `["ok"]` when SQLite found nothing, else its messages (at most `MAX_LISTED`).
    pub integrity: Vec<String>,
    pub foreign_key_violations: Vec<FkViolation>,
    /// Every problem in words, the first is the most serious. Empty exactly when `ok`.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FkViolation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

/// Checks the database at `path`. Never fails: whatever goes wrong is a problem in the report.
pub fn check(path: &Path, busy_timeout: Duration) -> Report {
    let mut report = Report {
        ok: false,
        database: path.display().to_string(),
        schema_version: None,
        expected_schema_version: SCHEMA_VERSION,
        integrity: Vec::new(),
        foreign_key_violations: Vec::new(),
        problems: Vec::new(),
    };
    if let Err(problem) = run(path, busy_timeout, &mut report) {
        report.problems.push(problem);
    }
    report.ok = report.problems.is_empty();
    report
}

fn run(path: &Path, busy_timeout: Duration, report: &mut Report) -> Result<(), String> {
    let name = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(format!("{name} is not a file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "database {name} does not exist (check never creates it)"
            ))
        }
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    }
    // READ_ONLY without CREATE: a missing file is never made, and nothing is written (SQLite
    // may create the -shm index of a WAL database that no other process has open).
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {name} as an SQLite database: {e}"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| format!("cannot set the busy timeout: {e}"))?;
    let corrupt = |what: &str, e: rusqlite::Error| {
        format!("{what} failed: {e} (the file is damaged or not an SQLite database)")
    };
    conn.execute_batch("BEGIN")
        .map_err(|e| corrupt("starting a read transaction", e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| corrupt("reading the schema version", e))?;
    report.schema_version = Some(version);
    if version == 0 {
        report.problems.push(format!(
            "schema version 0: {name} is not a flowsnap database (or an empty one); `flowsnap \
             migrate` creates the schema"
        ));
    } else if version < SCHEMA_VERSION {
        report.problems.push(format!(
            "schema version {version} is older than this flowsnap's {SCHEMA_VERSION}; `flowsnap \
             migrate` (or the next `flowsnap serve`) upgrades it"
        ));
    } else if version > SCHEMA_VERSION {
        report.problems.push(format!(
            "schema version {version} is newer than this flowsnap understands \
             ({SCHEMA_VERSION}); check it with the flowsnap that wrote it"
        ));
    }

    // integrity_check stops after N messages; one more than we list tells "and more".
    let mut integrity = Vec::new();
    let limit = MAX_LISTED + 1;
    let result = conn
        .prepare(&format!("PRAGMA integrity_check({limit})"))
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
    match result {
        // SQLite may put several messages in one row, under a "*** in database main ***" line.
        Ok(rows) if rows == ["ok"] => integrity = rows,
        Ok(rows) => {
            integrity = rows
                .iter()
                .flat_map(|r| r.lines())
                .filter(|l| !l.trim().is_empty() && !l.starts_with("*** in database"))
                .map(str::to_string)
                .collect()
        }
        Err(e) => report.problems.push(corrupt("SQLite's integrity_check", e)),
    }
    if !integrity.is_empty() && integrity != ["ok"] {
        let more = integrity.len() > MAX_LISTED;
        integrity.truncate(MAX_LISTED);
        report.problems.push(format!(
            "integrity_check found {}{} problem(s), first: {}; restore the latest backup",
            integrity.len(),
            if more { "+" } else { "" },
            integrity[0]
        ));
    }
    report.integrity = integrity;

    let result = conn.prepare("PRAGMA foreign_key_check").and_then(|mut st| {
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        let mut n = 0usize;
        while let Some(r) = rows.next()? {
            n += 1;
            if out.len() < MAX_LISTED {
                out.push(FkViolation {
                    table: r.get(0)?,
                    rowid: r.get(1)?,
                    parent: r.get(2)?,
                });
            }
        }
        Ok((n, out))
    });
    match result {
        Ok((0, _)) => {}
        Ok((n, listed)) => {
            let first = &listed[0];
            report.problems.push(format!(
                "foreign_key_check found {n} row(s) that refer to a missing row, first: {} row \
                 {} refers to a missing {} row",
                first.table,
                first
                    .rowid
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "(without rowid)".into()),
                first.parent
            ));
            report.foreign_key_violations = listed;
        }
        Err(e) => report
            .problems
            .push(corrupt("SQLite's foreign_key_check", e)),
    }
    if version == SCHEMA_VERSION {
        // What no foreign key states: every snapshot's value is a version with a value, in its
        // own step's history (one pass over the snapshots, one lookup each).
        let result = conn.query_row(
            "SELECT count(*), min(s.step_id) FROM snapshots s
             LEFT JOIN snapshot_versions v ON v.pk = s.value_pk
             LEFT JOIN step_histories h ON h.flow_pk = s.flow_pk AND h.step_id = s.step_id
             WHERE v.value IS NULL OR h.pk IS NULL OR s.value_pk / 1024 != h.pk",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
        );
        match result {
            Ok((0, _)) => {}
            Ok((n, step)) => report.problems.push(format!(
                "{n} snapshot(s) without their value (no version with a value at value_pk in the                  step's history), for example one of step {}; restore the latest backup",
                step.unwrap_or_default()
            )),
            Err(e) => report.problems.push(corrupt("checking the snapshots' values", e)),
        }
    }
    let _ = conn.execute_batch("COMMIT");
    Ok(())
}
