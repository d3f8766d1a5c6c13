//! The command line (spec section 8). `user create` and `user rotate-key` print exactly one JSON
//! object on standard output; everything else (logs, errors) goes to standard error.

use crate::auth::hash_secret;
use crate::config::Config;
use crate::db::{backup, check, users, Store};
use crate::server;
use crate::util::new_api_key;
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "flowsnap",
    version,
    about = "A self-hosted server for the elastic.io platform API v2: users, workspaces, flows and \
             their step snapshots, kept in one SQLite file.",
    long_about = "A self-hosted server for the elastic.io platform API v2: users, workspaces, flows \
                  and their step snapshots, kept in one SQLite file.\n\nStart with `flowsnap serve`: \
                  it creates ./flowsnap.db and a first tenant-admin, prints that admin's API key and \
                  listens on http://127.0.0.1:8080.\n\nSettings come from, strongest first: flags, \
                  FLOWSNAP_* environment variables, the --config TOML file, built-in defaults (see \
                  config.example.toml)."
)]
pub struct Cli {
    /// TOML configuration file (see config.example.toml for every setting).
    #[arg(long, global = true, value_name = "FILE", env = "FLOWSNAP_CONFIG")]
    config: Option<PathBuf>,
    /// SQLite database file [default: ./flowsnap.db].
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (creates the database and a first tenant-admin when needed).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Worker threads handling requests [default: 16].
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
        /// Load this fixture file at start (into an empty database only); enables
        /// POST /_flowsnap/reset.
        #[arg(long, value_name = "FILE")]
        fixture: Option<PathBuf>,
        /// Serve a new temporary database, removed when the server exits.
        #[arg(long)]
        ephemeral: bool,
        /// Serve the built-in demo data set (ephemeral, unless --db names a file to keep it in).
        #[arg(long)]
        demo: bool,
    },
    /// Write the database (or the named workspaces, with their members' users) as a fixture file.
    Export {
        /// Only this workspace (repeatable).
        #[arg(long = "workspace", value_name = "ID")]
        workspaces: Vec<String>,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Load a fixture file into the database, all or nothing; prints a one-line JSON summary.
    Import {
        /// The fixture file (see docs/fixture.schema.json).
        file: PathBuf,
    },
    /// Manage users without the HTTP API.
    #[command(subcommand)]
    User(UserCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Write a consistent copy of the (possibly live) database to FILE; finishes in bounded time
    /// whatever the write rate.
    Backup {
        /// Where to write the copy; must not exist yet (an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check the (possibly live) database: SQLite's integrity_check and foreign_key_check and the
    /// schema version. Prints one JSON line; exits 0 only when all is well, else 1.
    Check,
    /// Ask the running server for GET /healthz; exit 0 when it answers 200 {"status": "ok"},
    /// else 1 with the reason (for container HEALTHCHECKs: no curl needed).
    Healthcheck {
        /// Server address [default: the `listen` setting; 0.0.0.0 and :: are probed on loopback].
        #[arg(long, value_name = "ADDR")]
        addr: Option<String>,
        /// Seconds each step (connect, send, answer) may take.
        #[arg(long, value_name = "SECS", default_value_t = 3)]
        timeout: u64,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user and print {"id", "email", "api_key"} as JSON on standard output.
    Create(CreateArgs),
    /// Issue a new API key for a user (the old one stops working at once) and print it as JSON.
    RotateKey {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// E-mail address; also the user name for HTTP Basic authentication.
    #[arg(long)]
    email: String,
    #[arg(long, default_value = "")]
    first_name: String,
    #[arg(long, default_value = "")]
    last_name: String,
    /// Make the user a tenant-admin (may manage users and read every workspace).
    #[arg(long)]
    tenant_admin: bool,
    /// Read a password from standard input (for POST /v2/users/{id}/api-key with a password).
    #[arg(long)]
    password_stdin: bool,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let mut flags: Vec<(&str, toml::Value)> = Vec::new();
    if let Some(db) = &cli.db {
        flags.push(("db", toml::Value::String(db.display().to_string())));
    }
    if let Command::Serve {
        listen, workers, ..
    } = &cli.command
    {
        if let Some(l) = listen {
            flags.push(("listen", toml::Value::String(l.clone())));
        }
        if let Some(w) = workers {
            flags.push(("workers", toml::Value::Integer(*w as i64)));
        }
    }
    let config = match Config::load(cli.config.as_deref(), std::env::vars(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowsnap: {e}");
            return 2;
        }
    };
    init_logging(&config.log_level, &config.log_format);
    let db_given = cli.db.is_some();
    match run(cli.command, config, db_given) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("flowsnap: {e}");
            1
        }
    }
}

/// Logs go to standard error; a line logged while a request is handled carries its id. With
/// `log_format = "json"` each line is one JSON object: `ts`, `level`, `target`, `request_id` (when
/// the line belongs to a request) and `msg`.
fn init_logging(level: &str, format: &str) {
    use std::io::Write;
    let env = env_logger::Env::default().default_filter_or(format!("flowsnap={level},warn"));
    let json = format == "json";
    let _ = env_logger::Builder::from_env(env)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let ts = buf.timestamp_millis();
            let request = crate::reqlog::current().map(crate::reqlog::format);
            if json {
                let mut line = serde_json::json!({
                    "ts": ts.to_string(),
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "msg": record.args().to_string(),
                });
                if let Some(id) = request {
                    line["request_id"] = serde_json::Value::String(id);
                }
                return writeln!(buf, "{line}");
            }
            match request {
                Some(id) => writeln!(
                    buf,
                    "[{ts} {} {}] [{id}] {}",
                    record.level(),
                    record.target(),
                    record.args()
                ),
                None => writeln!(
                    buf,
                    "[{ts} {} {}] {}",
                    record.level(),
                    record.target(),
                    record.args()
                ),
            }
        })
        .try_init();
}

fn open(config: &Config) -> Result<std::sync::Arc<Store>, String> {
    Store::open(server::store_config(config))
        .map_err(|e| format!("cannot open database {}: {}", config.db.display(), e.detail))
}

fn run(command: Command, config: Config, db_given: bool) -> Result<(), String> {
    match command {
        Command::Serve {
            fixture,
            ephemeral,
            demo,
            ..
        } => server::run(
            config,
            server::ServeOptions {
                fixture,
                ephemeral,
                demo,
                db_given,
            },
        ),
        Command::Import { file } => {
            let text = server::read_fixture(&file, config.max_fixture_bytes)?;
            let what = format!("fixture {}", file.display());
            let started = std::time::Instant::now();
            let fx = crate::fixture::parse(&text, &config)
                .map_err(|e| format!("{what}: {}", e.detail))?;
            drop(text);
            log::info!(
                "{what} read and checked in {} ms",
                started.elapsed().as_millis()
            );
            let store = open(&config)?;
            let result = server::load_fixture(&store, fx, &what, config.history_max_versions);
            store.shutdown();
            println!("{}", result?.to_json());
            Ok(())
        }
        Command::Export { workspaces, out } => {
            if !config.db.exists() {
                return Err(format!(
                    "database {} does not exist; nothing to export",
                    config.db.display()
                ));
            }
            let store = open(&config)?;
            let result = match &out {
                // Never over an existing file (like `backup`): a mistyped --out must not destroy it.
                Some(path) => std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => format!(
                            "{} already exists; export writes only a new file (choose another \
                             --out or remove it first)",
                            path.display()
                        ),
                        _ => format!("cannot create {}: {e}", path.display()),
                    })
                    .and_then(|f| {
                        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
                        crate::fixture::export::export(&store, &workspaces, &mut w).map_err(|e| {
                            // No half-written fixture file is left behind.
                            let _ = std::fs::remove_file(path);
                            e.detail
                        })
                    }),
                None => {
                    let mut w =
                        std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
                    crate::fixture::export::export(&store, &workspaces, &mut w)
                        .map_err(|e| e.detail)
                }
            };
            store.shutdown();
            let summary = result?;
            log::info!("exported {}", summary.to_json());
            Ok(())
        }
        Command::Migrate => {
            let store = open(&config)?;
            store.shutdown();
            log::info!(
                "database {} is at schema version {}",
                config.db.display(),
                crate::db::migrate::SCHEMA_VERSION
            );
            Ok(())
        }
        Command::Backup { out } => {
            let done = backup::backup(
                &config.db,
                &out,
                Duration::from_millis(config.busy_timeout_ms),
                backup::Method::OnlineOneStep,
            )
            .map_err(|e| format!("backup failed: {}", e.detail))?;
            log::info!(
                "backed up {} to {} ({} bytes in {} ms)",
                config.db.display(),
                out.display(),
                done.bytes,
                done.elapsed.as_millis()
            );
            Ok(())
        }
        Command::Healthcheck { addr, timeout } => {
            let target = crate::probe::target(addr.as_deref().unwrap_or(&config.listen))?;
            crate::probe::probe(target, Duration::from_secs(timeout.clamp(1, 60)))?;
            println!("{{\"status\":\"ok\",\"addr\":\"{target}\"}}");
            Ok(())
        }
        Command::Check => {
            let report = check::check(&config.db, Duration::from_millis(config.busy_timeout_ms));
            let line = serde_json::to_string(&report)
                .map_err(|e| format!("cannot write the report: {e}"))?;
            println!("{line}");
            if report.ok {
                Ok(())
            } else {
                Err(format!(
                    "check found problems: {}",
                    report.problems.join("; ")
                ))
            }
        }
        Command::User(UserCommand::Create(a)) => {
            if !crate::util::email_ok(&a.email) {
                return Err(format!("{:?} is not an e-mail address", a.email));
            }
            let password_hash = if a.password_stdin {
                let mut p = String::new();
                std::io::stdin()
                    .read_to_string(&mut p)
                    .map_err(|e| format!("cannot read the password: {e}"))?;
                let p = p.trim_end_matches(['\r', '\n']);
                if !crate::util::password_ok(p) {
                    return Err("the password must be 8 to 1024 bytes with a letter, a digit and another symbol".into());
                }
                Some(hash_secret(p).map_err(|e| e.detail)?)
            } else {
                None
            };
            let key = new_api_key();
            let key_hash = hash_secret(&key).map_err(|e| e.detail)?;
            let store = open(&config)?;
            let result = store.write(move |c| {
                let u = users::insert(
                    c,
                    &users::NewUser {
                        email: &a.email,
                        first_name: &a.first_name,
                        last_name: &a.last_name,
                        tenant_admin: a.tenant_admin,
                        api_key_hash: &key_hash,
                        password_hash: password_hash.as_deref(),
                    },
                )?;
                command_event(c, "user.create", &u.id)?;
                Ok(u)
            });
            store.shutdown();
            let u = result.map_err(|e| e.detail)?;
            println!(
                "{}",
                serde_json::json!({"id": u.id, "email": u.email, "api_key": key})
            );
            Ok(())
        }
        Command::User(UserCommand::RotateKey { email }) => {
            let key = new_api_key();
            let key_hash = hash_secret(&key).map_err(|e| e.detail)?;
            let store = open(&config)?;
            let result = store.write(move |c| {
                let u = users::by_email(c, &email)?.ok_or_else(|| {
                    crate::error::Error::not_found(format!("no user has the e-mail {email}"))
                })?;
                users::set_api_key_hash(c, u.pk, &key_hash)?;
                command_event(c, "user.rotate_key", &u.id)?;
                Ok(u)
            });
            store.shutdown();
            let u = result.map_err(|e| e.detail)?;
            println!(
                "{}",
                serde_json::json!({"id": u.id, "email": u.email, "api_key": key})
            );
            Ok(())
        }
    }
}

/// The audit event of a change the command line made to a user: no user and no request id.
pub(crate) fn command_event(
    c: &rusqlite::Connection,
    action: &str,
    user_id: &str,
) -> crate::error::Result<()> {
    crate::db::audit::record(
        c,
        &crate::db::audit::NewEvent {
            action,
            user_id: None,
            workspace_id: None,
            target: crate::db::audit::Target::User(user_id),
            version_id: None,
        },
    )?;
    Ok(())
}
