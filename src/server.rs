//! `flowsnap serve`: opens the store, creates the first tenant-admin on an empty database, runs
//! the thread-pooled rouille server, and stops cleanly on SIGTERM or Ctrl-C.

use crate::api::{self, App};
use crate::auth::{self, Auth, AuthConfig};
use crate::config::Config;
use crate::db::{users, Store, StoreConfig};
use crate::error::Result;
use crate::util;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

pub fn run(config: Config) -> std::result::Result<(), String> {
    crate::sockets::return_large_allocations();
    if let Some(n) = crate::sockets::raise_open_files_limit() {
        log::debug!("open files limit: {n}");
    }
    let store = Store::open(store_config(&config))
        .map_err(|e| format!("cannot open database {}: {}", config.db.display(), e.detail))?;
    let admin = first_start(&store, &config.admin_email)
        .map_err(|e| format!("first start: {}", e.detail))?;
    let auth = Auth::new(AuthConfig {
        cache_entries: config.auth_cache_entries,
        cache_ttl: Duration::from_secs(config.auth_cache_ttl_secs),
        argon2_max_concurrent: config.argon2_max_concurrent,
        argon2_max_waiting: config.argon2_max_waiting,
    })
    .map_err(|e| e.detail)?;
    // Before the listener exists: its first connection gets the timeouts too.
    if !crate::sockets::set_connection_timeouts(Duration::from_secs(config.idle_timeout_secs)) {
        log::warn!("connection timeouts are not supported here; idle connections are not closed");
    }
    let app = Arc::new(App::new(store.clone(), auth, config.clone()).map_err(|e| e.detail)?);
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
    log::info!(
        "flowsnap listening on http://{addr} (database {})",
        config.db.display()
    );

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
    log::info!("stopped");
    Ok(())
}
