//! `flowsnap serve`: opens the store (a temporary one with `--ephemeral`), loads a fixture
//! (`--fixture`, `--demo`) and keeps the reset point, creates the first tenant-admin on an empty
//! database, runs the thread-pooled rouille server, prints the one readiness line on stdout, and
//! stops cleanly on SIGTERM or Ctrl-C.

use crate::api::{self, App};
use crate::auth::{self, Auth, AuthConfig};
use crate::config::Config;
use crate::db::{users, Store, StoreConfig};
use crate::ephemeral::Ephemeral;
use crate::error::Result;
use crate::fixture;
use crate::util;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long in-flight requests get to finish after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn store_config(c: &Config) -> StoreConfig {
    StoreConfig {
        path: c.db.clone(),
        synchronous_full: c.synchronous == "full",
        busy_timeout: Duration::from_millis(c.busy_timeout_ms),
        write_batch_max: c.write_batch_max,
        read_cache_bytes: c.read_cache_bytes,
        read_mmap_bytes: c.read_mmap_bytes,
        write_queue_max: c.write_queue_max,
        max_db_bytes: c.max_db_bytes,
        wal_autocheckpoint_pages: c.wal_autocheckpoint_pages,
        audit_retention_days: c.audit_retention_days,
    }
}

/// Creates the tenant-admin when the database has no user; returns its e-mail and API key.
pub fn first_start(store: &Store, email: &str) -> Result<Option<(String, String)>> {
    if store.read(users::count)? > 0 {
        return Ok(None);
    }
    let key = util::new_api_key();
    let hash = auth::hash_secret(&key)?;
    let email = email.to_string();
    store.write(move |c| {
        if users::count(c)? > 0 {
            return Ok(None);
        }
        let u = users::insert(
            c,
            &users::NewUser {
                email: &email,
                first_name: "Admin",
                last_name: "",
                tenant_admin: true,
                api_key_hash: &hash,
                password_hash: None,
            },
        )?;
        crate::cli::command_event(c, "user.create", &u.id)?;
        Ok(Some((u.email, key)))
    })
}

/// What `serve` was asked to start with (spec section 11).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub fixture: Option<PathBuf>,
    pub ephemeral: bool,
    pub demo: bool,
    /// `--db` was given on the command line.
    pub db_given: bool,
}

/// Reads a fixture file, refusing one larger than `max_fixture_bytes` before reading it.
pub fn read_fixture(path: &Path, max: u64) -> std::result::Result<String, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))?
        .len();
    if len > max {
        return Err(format!(
            "fixture {} is {len} bytes; the limit (max_fixture_bytes) is {max} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))
}

/// Loads a parsed fixture into `store`, logging where the time went.
pub fn load_fixture(
    store: &Store,
    fx: fixture::Fixture,
    what: &str,
    keep_versions: u32,
) -> std::result::Result<fixture::Summary, String> {
    let hashed = fixture::load::hash_secrets(&fx).map_err(|e| e.detail)?;
    let (count, threads, hash_time) = (hashed.count, hashed.threads, hashed.took);
    let started = Instant::now();
    let summary = fixture::load::load(store, fx, hashed, keep_versions)
        .map_err(|e| format!("{what}: {}", e.detail))?;
    log::info!(
        "loaded {what}: {}; {count} argon2id hashes in {} ms on {threads} threads, rows in {} ms",
        summary.to_json(),
        hash_time.as_millis(),
        started.elapsed().as_millis()
    );
    Ok(summary)
}

pub fn run(mut config: Config, opts: ServeOptions) -> std::result::Result<(), String> {
    let exec_started = Instant::now();
    crate::sockets::return_large_allocations();
    if let Some(n) = crate::sockets::raise_open_files_limit() {
        log::debug!("open files limit: {n}");
    }
    if opts.demo && opts.fixture.is_some() {
        return Err(
            "--demo loads the built-in demo data set; it cannot be combined with --fixture".into(),
        );
    }
    let ephemeral_wanted = opts.ephemeral || (opts.demo && !opts.db_given);
    if opts.ephemeral && opts.db_given {
        return Err(
            "--ephemeral serves a new temporary database; it cannot be combined with --db".into(),
        );
    }
    // The authentication setup hashes a dummy secret (one argon2 hash): done beside the fixture's
    // own hashing, it does not delay the readiness line.
    let auth_config = AuthConfig {
        cache_entries: config.auth_cache_entries,
        cache_ttl: Duration::from_secs(config.auth_cache_ttl_secs),
        argon2_max_concurrent: config.argon2_max_concurrent,
        argon2_max_waiting: config.argon2_max_waiting,
    };
    let auth = std::thread::spawn(move || Auth::new(auth_config));
    // The fixture is read and checked before any database is touched.
    let started = Instant::now();
    let fixture = match (&opts.fixture, opts.demo) {
        (Some(path), _) => {
            let text = read_fixture(path, config.max_fixture_bytes)?;
            let what = format!("fixture {}", path.display());
            Some((
                fixture::parse(&text, &config).map_err(|e| format!("{what}: {}", e.detail))?,
                what,
            ))
        }
        (None, true) => Some((
            fixture::parse(fixture::DEMO, &config)
                .map_err(|e| format!("the built-in demo data set: {}", e.detail))?,
            "the demo data set".to_string(),
        )),
        (None, false) => None,
    };
    let parse_time = started.elapsed();
    let ephemeral = if ephemeral_wanted {
        let e = Ephemeral::create()?;
        config.db = e.db();
        // Nothing of an ephemeral database outlives the process: durability against power loss
        // buys nothing and costs an fsync per commit.
        config.synchronous = "normal".into();
        Some(e)
    } else {
        None
    };
    let store = Store::open(store_config(&config))
        .map_err(|e| format!("cannot open database {}: {}", config.db.display(), e.detail))?;
    let mut baseline = None;
    let mut demo_users = Vec::new();
    if let Some((fx, what)) = fixture {
        let empty = store
            .read(crate::db::fixture::is_empty)
            .map_err(|e| e.detail)?;
        if !empty && opts.demo {
            log::info!(
                "database {} already holds data; serving it as it is (the demo is loaded only into a new or empty database)",
                config.db.display()
            );
        } else if !empty {
            return Err(format!(
                "database {} already holds data; --fixture loads only into an empty database \
                 (use --ephemeral, a new --db file, or `flowsnap import` to add to this one)",
                config.db.display()
            ));
        } else {
            if opts.demo {
                demo_users = fx
                    .users
                    .iter()
                    .filter_map(|u| match &u.api_key {
                        fixture::Secret::Plain(k) => {
                            Some((u.email.clone(), k.clone(), u.tenant_admin))
                        }
                        _ => None,
                    })
                    .collect();
            }
            log::debug!("{what} read and checked in {} ms", parse_time.as_millis());
            load_fixture(&store, fx, &what, config.history_max_versions)?;
            baseline = Some(());
        }
    }
    let admin = first_start(&store, &config.admin_email)
        .map_err(|e| format!("first start: {}", e.detail))?;
    // The reset point: the database right after the load (and the first tenant-admin, if the
    // fixture had no user).
    let baseline = match baseline {
        Some(()) => Some(
            store
                .baseline()
                .map_err(|e| format!("cannot keep the reset point: {}", e.detail))?,
        ),
        None => None,
    };
    let auth = auth
        .join()
        .map_err(|_| "the authentication setup panicked".to_string())?
        .map_err(|e| e.detail)?;
    // Before the listener exists: its first connection gets the timeouts too.
    if !crate::sockets::set_connection_timeouts(Duration::from_secs(config.idle_timeout_secs)) {
        log::warn!("connection timeouts are not supported here; idle connections are not closed");
    }
    let mut app = App::new(store.clone(), auth, config.clone()).map_err(|e| e.detail)?;
    if let Some(b) = baseline {
        app = app.with_baseline(b);
    }
    let app = Arc::new(app);
    let handler_app = app.clone();
    let server = rouille::Server::new(&config.listen, move |req| api::handle(&handler_app, req))
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?
        .pool_size(config.workers);
    let addr = server.server_addr();
    if !crate::sockets::set_on_listener(addr) {
        log::warn!("could not set TCP_NODELAY on the listener; responses over ~1 KB may wait 40 ms for delayed ACKs");
    }
    if let Some((email, key)) = admin {
        if config.log_format == "json" {
            // One JSON object like every other line, the key in a member of its own.
            eprintln!(
                "{}",
                serde_json::json!({
                    "ts": util::iso_ms(util::now_ms()),
                    "level": "WARN",
                    "target": "flowsnap::server",
                    "msg": format!(
                        "created the first tenant-admin {email}; its API key is shown only now"
                    ),
                    "email": email,
                    "api_key": key,
                })
            );
        } else {
            eprintln!(
                "flowsnap: created the first tenant-admin {email}; its API key is shown only \
                 now:\n\n    {key}\n\ntry it:\n\n    curl -u '{email}:{key}' \
                 http://{addr}/v2/users/me\n"
            );
        }
    }
    for (email, key, tenant_admin) in &demo_users {
        eprintln!(
            "flowsnap demo: {email} {key}{}",
            if *tenant_admin {
                "  (tenant-admin)"
            } else {
                ""
            }
        );
    }
    if !demo_users.is_empty() {
        eprintln!("flowsnap demo: the console is at http://{addr}/ ; try curl -u '{}:{}' http://{addr}/v2/workspaces", demo_users[0].0, demo_users[0].1);
    }
    log::info!(
        "flowsnap listening on http://{addr} (database {}), ready {} ms after start",
        config.db.display(),
        exec_started.elapsed().as_millis()
    );
    // The readiness line: the only output on stdout.
    let database = std::path::absolute(&config.db).unwrap_or_else(|_| config.db.clone());
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            r#"{{"url": {}, "database": {}}}"#,
            util::json_str(&format!("http://{addr}")),
            util::json_str(&database.display().to_string())
        );
        let _ = out.flush();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    ctrlc::set_handler(move || {
        if stop_flag.swap(true, Ordering::SeqCst) {
            return;
        }
        // Under a load that never pauses, the accept loop may not notice the flag: make sure the
        // process ends after the grace period all the same.
        std::thread::spawn(|| {
            std::thread::sleep(SHUTDOWN_GRACE);
            log::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; exiting");
            crate::ephemeral::remove_now();
            std::process::exit(0);
        });
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;

    while !stop.load(Ordering::SeqCst) {
        server.poll_timeout(Duration::from_millis(100));
    }
    log::info!("stopping: finishing requests in flight");
    app.stopping.store(true, Ordering::SeqCst);
    server.join();
    drop(server);
    store.shutdown();
    drop(ephemeral);
    log::info!("stopped");
    Ok(())
}
