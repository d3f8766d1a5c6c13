//! The store: one SQLite file, a pool of read connections and one writer thread.
//!
//! Invariants:
//! - Reads run on each worker thread's own connection in WAL mode, so they never wait for a write.
//! - Every write runs on the single writer thread, inside a `BEGIN IMMEDIATE` transaction that
//!   checks every rule and applies the change. Concurrent writes are committed together (group
//!   commit): each job runs inside its own savepoint, so a job whose rule fails is rolled back
//!   alone, and every caller is answered only after the commit that holds its change.
//! - This module and its children know SQL and nothing of HTTP.

pub mod audit;
pub mod backup;
pub mod check;
pub mod fixture;
pub mod flows;
pub mod migrate;
pub mod snapshots;
pub mod users;
pub mod versions;
pub mod workspaces;

use crate::error::{Error, Kind, Result};
use rusqlite::{Connection, OpenFlags};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the store needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub synchronous_full: bool,
    pub busy_timeout: Duration,
    pub write_batch_max: usize,
    /// Page cache of each read connection, in bytes.
    pub read_cache_bytes: u64,
    /// Memory-mapped I/O of each read connection, in bytes (`PRAGMA mmap_size`; 0: off).
    pub read_mmap_bytes: u64,
    pub write_queue_max: usize,
    /// 0: unlimited. Otherwise the most bytes the database file may hold (PRAGMA max_page_count).
    pub max_db_bytes: u64,
    /// `PRAGMA wal_autocheckpoint` (PASSIVE checkpoints after a commit); 0: none, for Litestream.
    pub wal_autocheckpoint_pages: u32,
    /// Audit events older than this many days are removed by later write groups; 0 keeps them.
    pub audit_retention_days: u32,
}

/// Called by the writer once the transaction holding a job has committed (`None`) or failed.
type Finish = Box<dyn FnOnce(Option<Error>) + Send>;
/// A write job: runs inside the writer's transaction, says whether it succeeded, and how to
/// answer its caller once the outcome of the commit is known.
/// Called with `None` when the job cannot run at all (the transaction could not begin).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;
/// A job that needs the writer's connection to itself, outside any transaction (see
/// `Store::exclusive`).
type Exclusive = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the writer thread is sent.
enum Msg {
    Job(Job),
    Exclusive(Exclusive),
}

thread_local! {
    /// This thread's read connection and the id of the store it belongs to.
    static READER: RefCell<Option<(u64, Connection)>> = const { RefCell::new(None) };
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

/// Upper bounds of the write-group size buckets (`WriteStats::group_sizes`); the last bucket
/// counts every larger group.
pub const GROUP_SIZE_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// What the writer has done, as plain counters (read by the metrics endpoint; nothing here
/// knows of it).
#[derive(Default)]
struct WriterCounters {
    /// Jobs handed to the writer and not yet taken by it.
    queued: AtomicUsize,
    groups: AtomicU64,
    jobs: AtomicU64,
    /// Committed groups by size: `GROUP_SIZE_BOUNDS[i]` is the upper bound of bucket `i`; one
    /// more bucket for larger groups.
    group_sizes: [AtomicU64; GROUP_SIZE_BOUNDS.len() + 1],
}

/// A reading of the writer's counters.
#[derive(Debug, Clone, Default)]
pub struct WriteStats {
    /// Write jobs waiting for the writer.
    pub queue_length: usize,
    /// Transactions committed (each holds one group of jobs).
    pub groups_committed: u64,
    /// Jobs in those transactions.
    pub jobs_committed: u64,
    /// Committed groups per size bucket (not cumulative), see `GROUP_SIZE_BOUNDS`.
    pub group_sizes: Vec<u64>,
}

pub struct Store {
    /// Tells this store's thread-local read connections from another store's.
    id: u64,
    config: StoreConfig,
    counters: Arc<WriterCounters>,
    writer: Mutex<Option<SyncSender<Msg>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

/// Opens a connection with the pragmas every connection needs.
fn open_connection(config: &StoreConfig, read_only: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(&config.path, flags)?;
    conn.busy_timeout(config.busy_timeout)?;
    // Only PASSIVE checkpoints, and none at all with 0: Litestream (spec section 13) wants to
    // run the checkpoints itself, and flowsnap never runs a RESTART or TRUNCATE one.
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {};",
        config.wal_autocheckpoint_pages
    ))?;
    conn.execute_batch(if config.synchronous_full {
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
    } else {
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
    })?;
    if !read_only {
        // The writer's statement journals (one per job: each job runs in a savepoint of the
        // group's transaction) stay in memory: otherwise every page a job changes that an
        // earlier job of its group already changed is first copied into a temporary file, and
        // under PATCH load that copy was a fifth of the writer thread's time (perf). What such a
        // journal holds is bounded by one job's pages; the writer runs no large sorts.
        conn.execute_batch("PRAGMA temp_store = MEMORY;")?;
    }
    if read_only {
        // Readers keep a bounded page cache each (there is one reader per worker thread); the OS
        // page cache holds the rest of the file.
        let kib = (config.read_cache_bytes / 1024).max(1);
        conn.execute_batch(&format!(
            "PRAGMA query_only = ON; PRAGMA cache_size = -{kib};"
        ))?;
        if config.read_mmap_bytes > 0 {
            // Pages are then read from the mapping (the OS page cache) without a copy each.
            conn.query_row(
                &format!("PRAGMA mmap_size = {}", config.read_mmap_bytes),
                [],
                |_| Ok(()),
            )?;
        }
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) and migrates the database, then starts the writer thread.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>> {
        let writer_conn = open_connection(&config, false)?;
        // A new file gets 8 KiB pages (snapshots of up to 5 KB then fit in their rows); the page
        // size must be chosen before WAL mode and the first table.
        let pages: i64 = writer_conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if pages == 0 {
            writer_conn.execute_batch("PRAGMA page_size = 8192")?;
        }
        let mode: String = writer_conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!(
                "SQLite refused WAL mode (journal_mode is {mode}); reads may wait for writes"
            );
        }
        migrate::migrate(&writer_conn)?;
        if config.max_db_bytes > 0 {
            let page_size: u64 = writer_conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (config.max_db_bytes / page_size.max(512)).max(1);
            writer_conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        }
        let (tx, rx) = mpsc::sync_channel::<Msg>(config.write_queue_max);
        let batch_max = config.write_batch_max;
        let counters = Arc::new(WriterCounters::default());
        let writer_counters = counters.clone();
        let retention_days = config.audit_retention_days;
        let handle = std::thread::Builder::new()
            .name("flowsnap-writer".into())
            .spawn(move || {
                writer_loop(writer_conn, rx, batch_max, retention_days, &writer_counters)
            })?;
        Ok(Arc::new(Store {
            config,
            counters,
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
        }))
    }

    /// Runs `f` in a read transaction on this thread's read connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader(|conn| {
            exec(conn, "BEGIN")?;
            let result = f(conn);
            // A read transaction has nothing to keep: end it either way.
            exec(conn, "COMMIT")?;
            result
        })
    }

    /// Runs `f`, which must issue a single statement, on this thread's connection without an explicit
    /// transaction: one statement is consistent on its own, and the hot read paths (credential
    /// check, one snapshot) save the BEGIN and COMMIT.
    pub fn read_one<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader(f)
    }

    /// Runs `f` on this thread's read connection to this store, opening it on first use. Each
    /// worker thread keeps its own, so reads take no lock of ours and the number of read
    /// connections is the number of worker threads.
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        READER.with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                // A read inside a read on this thread: give it a connection of its own.
                return f(&open_connection(&self.config, true)?);
            };
            if slot.as_ref().map(|(id, _)| *id) != Some(self.id) {
                *slot = Some((self.id, open_connection(&self.config, true)?));
            }
            let Some((_, conn)) = slot.as_ref() else {
                return Err(poisoned());
            };
            let result = catch_unwind(AssertUnwindSafe(|| f(conn)));
            // A connection left inside a transaction (an error or a panic between BEGIN and
            // COMMIT) is dropped: a later read on this thread must not see an old snapshot.
            if result.is_err() || !conn.is_autocommit() {
                *slot = None;
            }
            result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `f` inside the writer's `BEGIN IMMEDIATE` transaction and returns its result once the
    /// transaction is committed. An `Err` from `f` rolls back everything `f` did, and only that.
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = mpsc::sync_channel::<Result<T>>(1);
        let request = crate::reqlog::current();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            // The writer's log lines about this job name the request it serves.
            let _marked = crate::reqlog::enter(request);
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(Error::internal("not run")),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit: Option<Error>| {
                let _ = reply_tx.send(match commit {
                    None => result,
                    Some(e) => Err(e),
                });
            });
            (ok, finish)
        });
        self.send(Msg::Job(job))?;
        reply_rx.recv().map_err(|_| {
            log::error!("a write job ended without an answer (it panicked)");
            Error::internal("An internal error happened; it has been logged.")
        })?
    }

    /// Runs `f` on the writer thread with its connection to itself, between two write groups and
    /// outside any transaction: no other write runs before `f` returns. For what cannot run
    /// inside the writer's transaction (`restore`: SQLite's backup API into the database).
    pub fn exclusive<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = mpsc::sync_channel::<Result<T>>(1);
        let request = crate::reqlog::current();
        let job: Exclusive = Box::new(move |conn: &mut Connection| {
            let _marked = crate::reqlog::enter(request);
            let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(Error::internal("an exclusive write job panicked")));
            if !conn.is_autocommit() {
                // `f` must leave no transaction open; the next group begins its own.
                let _ = exec(conn, "ROLLBACK");
            }
            let _ = reply_tx.send(result);
        });
        self.send(Msg::Exclusive(job))?;
        reply_rx.recv().map_err(|_| {
            log::error!("an exclusive write job ended without an answer");
            Error::internal("An internal error happened; it has been logged.")
        })?
    }

    /// A copy of the whole database as it is now, in memory (SQLite's backup API from a read
    /// connection, so a consistent snapshot); `restore` makes the database that copy again.
    pub fn baseline(&self) -> Result<Baseline> {
        let src = open_connection(&self.config, true)?;
        let mut dst = Connection::open_in_memory()?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
            backup_all(&backup)?;
        }
        Ok(Baseline(Mutex::new(dst)))
    }

    /// Makes the database exactly `baseline` again, page for page, in one step of SQLite's backup
    /// API on the writer thread (`exclusive`: no write is half done while it runs, and the writes
    /// queued behind it see the restored state). Readers in WAL mode keep the view their read
    /// transaction began with and see the restored database from their next one. Then `after`
    /// runs in a write transaction of its own (for the event that records the restore).
    pub fn restore<F>(&self, baseline: Arc<Baseline>, after: F) -> Result<()>
    where
        F: FnOnce(&Connection) -> Result<()> + Send + 'static,
    {
        self.exclusive(move |conn| {
            {
                let src = baseline.0.lock().map_err(|_| poisoned())?;
                let backup = rusqlite::backup::Backup::new(&src, conn)?;
                backup_all(&backup)?;
            }
            exec(conn, "BEGIN IMMEDIATE")?;
            if let Err(e) = after(conn) {
                let _ = exec(conn, "ROLLBACK");
                return Err(e);
            }
            exec(conn, "COMMIT")?;
            // The copy went through the WAL: move it into the database file now, so that reads
            // after the reset find their pages there instead of looking each up in the WAL.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                log::warn!("checkpoint after the reset: {e}");
            }
            Ok(())
        })
    }

    fn send(&self, msg: Msg) -> Result<()> {
        let sender = self.writer.lock().map_err(|_| poisoned())?.clone();
        let Some(sender) = sender else {
            return Err(Error::new(
                Kind::Unavailable,
                "The server is shutting down; retry shortly.",
            ));
        };
        // A write job is counted before it is sent, so that the writer's decrement never comes
        // first (exclusive jobs are not in the queue length: the writer does not count them).
        let counted = matches!(msg, Msg::Job(_));
        if counted {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
        }
        let sent = sender.try_send(msg);
        if sent.is_err() && counted {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Error::new(
                Kind::Unavailable,
                "Too many writes are queued (write_queue_max); nothing was changed. Retry shortly.",
            )),
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::internal(
                    "The database writer stopped; it has been logged.",
                ))
            }
        }
        Ok(())
    }

    /// The writer's counters now.
    pub fn write_stats(&self) -> WriteStats {
        let c = &self.counters;
        WriteStats {
            queue_length: c.queued.load(Ordering::Relaxed),
            groups_committed: c.groups.load(Ordering::Relaxed),
            jobs_committed: c.jobs.load(Ordering::Relaxed),
            group_sizes: c
                .group_sizes
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
        }
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Stops the writer after the queued writes are done. Later writes are refused.
    pub fn shutdown(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Ok(mut h) = self.writer_thread.lock() {
            if let Some(h) = h.take() {
                let _ = h.join();
            }
        }
    }
}

/// A copy of a database kept in memory (`Store::baseline`).
pub struct Baseline(Mutex<Connection>);

/// Copies every page in one backup step: the destination changes in one transaction.
fn backup_all(backup: &rusqlite::backup::Backup) -> Result<()> {
    match backup.step(-1)? {
        rusqlite::backup::StepResult::Done => Ok(()),
        other => Err(Error::new(
            Kind::Unavailable,
            format!("the database copy could not complete ({other:?}); nothing was changed, retry"),
        )),
    }
}

/// Runs one cached statement that returns no rows (BEGIN, COMMIT, SAVEPOINT, ...).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn poisoned() -> Error {
    Error::internal("An internal error happened; it has been logged.")
}

/// How often a write group also removes expired audit events (at most `audit::PURGE_BATCH`).
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// The writer thread: takes the queued jobs in groups and commits each group once.
fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Msg>,
    batch_max: usize,
    retention_days: u32,
    counters: &WriterCounters,
) {
    let mut last_purge: Option<std::time::Instant> = None;
    // An exclusive job that arrived while a group was being gathered runs right after it.
    let mut next: Option<Msg> = None;
    while let Some(msg) = next.take().or_else(|| rx.recv().ok()) {
        let first = match msg {
            Msg::Exclusive(f) => {
                f(&mut conn);
                continue;
            }
            Msg::Job(j) => j,
        };
        let mut jobs = vec![first];
        while jobs.len() < batch_max {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => jobs.push(j),
                Ok(m) => {
                    next = Some(m);
                    break;
                }
                Err(_) => break,
            }
        }
        counters.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
        // Expired audit events go a bounded number at a time, with a group that commits anyway.
        let purge_before = (retention_days > 0
            && last_purge.is_none_or(|t| t.elapsed() >= PURGE_INTERVAL))
        .then(|| {
            last_purge = Some(std::time::Instant::now());
            crate::util::now_ms() - i64::from(retention_days) * 86_400_000
        });
        run_group(&conn, jobs, purge_before, counters);
    }
    log::debug!("writer stopped");
}

/// Answers every job with `err` without running it.
fn refuse_all(jobs: impl IntoIterator<Item = Job>, err: &Error) {
    for job in jobs {
        let (_, finish) = job(None);
        finish(Some(err.clone()));
    }
}

impl WriterCounters {
    fn committed(&self, size: usize) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(size as u64, Ordering::Relaxed);
        let bucket = GROUP_SIZE_BOUNDS
            .iter()
            .position(|&b| size as u64 <= b)
            .unwrap_or(GROUP_SIZE_BOUNDS.len());
        self.group_sizes[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

/// Removes expired audit events inside the group's transaction, in a savepoint of its own: a
/// failure is logged and changes nothing else.
fn purge_audit(conn: &Connection, before_ms: i64) {
    if exec(conn, "SAVEPOINT purge").is_err() {
        return;
    }
    match audit::purge(conn, before_ms) {
        Ok(n) => {
            if n > 0 {
                log::debug!("removed {n} expired audit events");
            }
            let _ = exec(conn, "RELEASE purge");
        }
        Err(e) => {
            log::warn!("could not remove expired audit events: {}", e.detail);
            let _ = exec(conn, "ROLLBACK TO purge").and_then(|()| exec(conn, "RELEASE purge"));
        }
    }
}

fn run_group(
    conn: &Connection,
    jobs: Vec<Job>,
    purge_before: Option<i64>,
    counters: &WriterCounters,
) {
    let mut pending: Vec<Finish> = Vec::with_capacity(jobs.len());
    let mut in_tx = false;
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        if !in_tx {
            // One BEGIN for the group (and one more after SQLite rolled a transaction back
            // itself). When it fails (another process has held the write lock for the whole busy
            // timeout), every job left is answered with the cause at once: trying again per job
            // would keep the last caller waiting up to `write_batch_max` busy timeouts.
            if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
                refuse_all(std::iter::once(job).chain(jobs), &Error::from(e));
                break;
            }
            in_tx = true;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            let (_, finish) = job(None);
            finish(Some(Error::from(e)));
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| job(Some(conn))));
        let ok = matches!(outcome, Ok((true, _)));
        if conn.is_autocommit() {
            // SQLite rolled back the whole transaction itself (for instance on a full disk):
            // everything before this job in the group is lost, so tell those callers.
            let err = Error::new(
                Kind::InsufficientStorage,
                "The database could not complete the write (disk full or I/O error); nothing was \
                 changed. Free space on the server's disk, then retry.",
            );
            for f in pending.drain(..) {
                f(Some(err.clone()));
            }
            if let Ok((_, f)) = outcome {
                f(Some(err));
            }
            in_tx = false;
            continue;
        }
        let closed = if ok {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(e) = closed {
            log::error!("cannot close a savepoint: {e}");
        }
        match outcome {
            Ok((_, f)) => pending.push(f),
            Err(_) => log::error!("a write job panicked; its changes were rolled back"),
        }
    }
    if !in_tx {
        return;
    }
    if let Some(before) = purge_before {
        purge_audit(conn, before);
    }
    match exec(conn, "COMMIT") {
        Ok(()) => {
            // Counted before anyone is answered: a caller then sees its own commit counted.
            counters.committed(pending.len());
            for f in pending {
                f(None);
            }
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            let err = Error::from(e);
            for f in pending {
                f(Some(err.clone()));
            }
        }
    }
}
