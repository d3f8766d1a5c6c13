//! Settings: built-in defaults, then the TOML file, then `FLOWSNAP_*` environment variables, then
//! command-line flags (strongest last). Every layer is merged into one TOML table and deserialized
//! once, so an unknown key or a bad value is a clear error at start from whichever layer it came.
//!
//! Every setting, with its default and meaning, is listed in `config.example.toml`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Path of the SQLite database file.
    pub db: PathBuf,
    /// Request-handling worker threads (rouille's pool).
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest snapshot value, in UTF-8 bytes of its compact JSON text.
    pub max_snapshot_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a snapshot value.
    pub max_json_depth: usize,
    /// Largest `page[size]`; larger requests are lowered to it.
    pub max_page_size: usize,
    /// `page[size]` when the client sends none.
    pub default_page_size: usize,
    /// Most nodes one flow graph may have.
    pub max_flow_steps: usize,
    /// Largest flow graph plus nodes_config, in bytes of JSON text.
    pub max_flow_bytes: usize,
    /// Most successful credential verifications remembered.
    pub auth_cache_entries: usize,
    /// Seconds a remembered verification stays unused before it is forgotten (each use restarts it;
    /// a key change ends it at once anyway).
    pub auth_cache_ttl_secs: u64,
    /// argon2 verifications that may run at once.
    pub argon2_max_concurrent: usize,
    /// Requests that may wait for an argon2 slot; beyond that a request is answered 429.
    pub argon2_max_waiting: usize,
    /// SQLite `synchronous`: "full" (an acknowledged write survives power loss) or "normal".
    pub synchronous: String,
    /// How long a connection waits for another process's write lock, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Most write requests committed together in one transaction.
    pub write_batch_max: usize,
    /// Page cache of each read connection (one per worker thread), in bytes.
    pub read_cache_bytes: u64,
    /// WAL pages after which a commit checkpoints (SQLite's PASSIVE autocheckpoint); 0: flowsnap
    /// never checkpoints (run Litestream, which then does it).
    pub wal_autocheckpoint_pages: u32,
    /// Most write requests queued for the writer; beyond that a write is answered 503.
    pub write_queue_max: usize,
    /// Largest size of the database file, in bytes (0: only the disk limits it). Writes beyond it
    /// are answered 507 and change nothing; reads keep working.
    pub max_db_bytes: u64,
    /// Log level: error, warn, info, debug or trace (RUST_LOG, when set, wins).
    pub log_level: String,
    /// E-mail of the tenant-admin created on first start.
    pub admin_email: String,
    /// Seconds a connection may send nothing (idle, or stalled inside a request) or leave its
    /// response unread before it is closed. At least 5 (the idle time spec section 1 promises).
    pub idle_timeout_secs: u64,
    /// Serve `GET /metrics` (Prometheus text format, no authentication).
    pub metrics: bool,
    /// Log line format: "text" or "json" (one JSON object per line).
    pub log_format: String,
    /// Memory-mapped I/O of each read connection, in bytes (SQLite `mmap_size`; 0: off).
    pub read_mmap_bytes: u64,
    /// Versions kept per step (section 9); 0 keeps none.
    pub history_max_versions: u32,
    /// Days an audit event is kept (section 10); 0 keeps events for ever.
    pub audit_retention_days: u32,
    /// Largest fixture file `import` and `serve --fixture` read, in bytes.
    pub max_fixture_bytes: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".into(),
            db: PathBuf::from("./flowsnap.db"),
            workers: 16,
            max_body_bytes: 1024 * 1024,
            max_snapshot_bytes: 5120,
            max_json_depth: 1000,
            max_page_size: 100,
            default_page_size: 50,
            max_flow_steps: 1000,
            max_flow_bytes: 256 * 1024,
            auth_cache_entries: 10_000,
            auth_cache_ttl_secs: 300,
            argon2_max_concurrent: 2,
            argon2_max_waiting: 4,
            synchronous: "full".into(),
            busy_timeout_ms: 5000,
            write_batch_max: 64,
            read_cache_bytes: 512 * 1024,
            wal_autocheckpoint_pages: 1000,
            write_queue_max: 1024,
            max_db_bytes: 0,
            log_level: "info".into(),
            admin_email: "admin@example.com".into(),
            idle_timeout_secs: 30,
            metrics: true,
            log_format: "text".into(),
            read_mmap_bytes: 1 << 30,
            history_max_versions: 10,
            audit_retention_days: 90,
            max_fixture_bytes: 1 << 30,
        }
    }
}

/// The keys a TOML file or `FLOWSNAP_*` variable may set.
const KEYS: &[&str] = &[
    "listen",
    "db",
    "workers",
    "max_body_bytes",
    "max_snapshot_bytes",
    "max_json_depth",
    "max_page_size",
    "default_page_size",
    "max_flow_steps",
    "max_flow_bytes",
    "auth_cache_entries",
    "auth_cache_ttl_secs",
    "argon2_max_concurrent",
    "argon2_max_waiting",
    "synchronous",
    "busy_timeout_ms",
    "write_batch_max",
    "read_cache_bytes",
    "wal_autocheckpoint_pages",
    "write_queue_max",
    "max_db_bytes",
    "log_level",
    "admin_email",
    "idle_timeout_secs",
    "metrics",
    "log_format",
    "read_mmap_bytes",
    "history_max_versions",
    "audit_retention_days",
    "max_fixture_bytes",
];

/// SQLite's largest string or blob (SQLITE_MAX_LENGTH of the bundled build): a body, snapshot or
/// flow larger than this could be accepted by the HTTP layer and then not be stored.
pub const SQLITE_MAX_LENGTH: u64 = 1_000_000_000;

/// The shortest `idle_timeout_secs`: spec section 1 promises keep-alive connections at least 5 s.
pub const MIN_IDLE_TIMEOUT_SECS: u64 = 5;

/// Environment variables with the prefix that are not settings.
/// (`FLOWSNAP_BIN` is where test suites name the binary: see the README's examples.)
const ENV_NOT_SETTINGS: &[&str] = &["FLOWSNAP_CONFIG", "FLOWSNAP_BIN"];

impl Config {
    /// Builds the configuration from a file (if any), the environment and flag overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(&str, toml::Value)],
    ) -> Result<Config, String> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            let parsed: toml::Table = text
                .parse()
                .map_err(|e| format!("config file {}: {e}", path.display()))?;
            for (k, v) in parsed {
                if !KEYS.contains(&k.as_str()) {
                    return Err(format!(
                        "config file {}: unknown setting `{k}`; known settings are: {}",
                        path.display(),
                        KEYS.join(", ")
                    ));
                }
                table.insert(k, v);
            }
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("FLOWSNAP_") else {
                continue;
            };
            if ENV_NOT_SETTINGS.contains(&name.as_str()) {
                continue;
            }
            let key = key.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "environment variable {name}: unknown setting `{key}`; known settings are: {}",
                    KEYS.join(", ")
                ));
            }
            table.insert(key, env_value(&value));
        }
        for (k, v) in flags {
            table.insert((*k).to_string(), v.clone());
        }
        let config: Config = match toml::Value::Table(table.clone()).try_into() {
            Ok(c) => c,
            Err(e) => {
                let e: toml::de::Error = e;
                // Name the setting: find the first key that fails on its own.
                let culprit = table.iter().find(|(k, v)| {
                    let mut one = toml::Table::new();
                    one.insert((*k).clone(), (*v).clone());
                    toml::Value::Table(one).try_into::<Config>().is_err()
                });
                return Err(match culprit {
                    Some((k, v)) => {
                        format!("configuration: bad value {v} for `{k}`: {}", e.message())
                    }
                    None => format!("configuration: {}", e.message()),
                });
            }
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("workers", self.workers),
            ("max_body_bytes", self.max_body_bytes),
            ("max_snapshot_bytes", self.max_snapshot_bytes),
            ("max_json_depth", self.max_json_depth),
            ("max_page_size", self.max_page_size),
            ("default_page_size", self.default_page_size),
            ("max_flow_steps", self.max_flow_steps),
            ("max_flow_bytes", self.max_flow_bytes),
            ("auth_cache_entries", self.auth_cache_entries),
            ("argon2_max_concurrent", self.argon2_max_concurrent),
            ("write_batch_max", self.write_batch_max),
            ("write_queue_max", self.write_queue_max),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("configuration: `{name}` must be at least 1"));
            }
        }
        // Sizes that end up as one SQLite string: none may exceed SQLite's limit.
        let sqlite_sized = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_snapshot_bytes", self.max_snapshot_bytes as u64),
            ("max_flow_bytes", self.max_flow_bytes as u64),
        ];
        for (name, v) in sqlite_sized {
            if v > SQLITE_MAX_LENGTH {
                return Err(format!(
                    "configuration: `{name}` is {v} bytes, above SQLite's string limit \
                     (SQLITE_MAX_LENGTH, {SQLITE_MAX_LENGTH} bytes); such a value could not be \
                     stored. Lower `{name}` to at most {SQLITE_MAX_LENGTH}"
                ));
            }
        }
        // A value must fit in the body that carries it.
        for (name, v) in [
            ("max_snapshot_bytes", self.max_snapshot_bytes),
            ("max_flow_bytes", self.max_flow_bytes),
        ] {
            if v > self.max_body_bytes {
                return Err(format!(
                    "configuration: `{name}` ({v}) is larger than `max_body_bytes` ({}): a value \
                     that large could never arrive in a request body. Raise `max_body_bytes` or \
                     lower `{name}`",
                    self.max_body_bytes
                ));
            }
        }
        if self.idle_timeout_secs < MIN_IDLE_TIMEOUT_SECS {
            return Err(format!(
                "configuration: `idle_timeout_secs` must be at least {MIN_IDLE_TIMEOUT_SECS} \
                 (keep-alive connections stay open at least that long), not {}",
                self.idle_timeout_secs
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(format!(
                "configuration: `log_format` must be \"text\" or \"json\", not {:?}",
                self.log_format
            ));
        }
        // Upper bounds: beyond these a value is a typo, and some would make the start itself fail
        // (a channel allocated up front, a timeout SQLite refuses, paging arithmetic).
        let at_most: [(&str, u64, u64); 17] = [
            ("workers", self.workers as u64, 1024),
            ("max_json_depth", self.max_json_depth as u64, 100_000),
            ("max_page_size", self.max_page_size as u64, 10_000),
            ("max_flow_steps", self.max_flow_steps as u64, 100_000),
            (
                "auth_cache_entries",
                self.auth_cache_entries as u64,
                10_000_000,
            ),
            (
                "auth_cache_ttl_secs",
                self.auth_cache_ttl_secs,
                86_400 * 365,
            ),
            (
                "argon2_max_concurrent",
                self.argon2_max_concurrent as u64,
                1024,
            ),
            (
                "argon2_max_waiting",
                self.argon2_max_waiting as u64,
                100_000,
            ),
            ("busy_timeout_ms", self.busy_timeout_ms, 600_000),
            ("write_batch_max", self.write_batch_max as u64, 100_000),
            ("write_queue_max", self.write_queue_max as u64, 1_000_000),
            ("read_cache_bytes", self.read_cache_bytes, 1 << 30),
            ("idle_timeout_secs", self.idle_timeout_secs, 86_400),
            // SQLITE_MAX_MMAP_SIZE of the bundled build: SQLite silently maps no more.
            ("read_mmap_bytes", self.read_mmap_bytes, 0x7fff_0000),
            (
                "wal_autocheckpoint_pages",
                self.wal_autocheckpoint_pages as u64,
                1_000_000,
            ),
            (
                "history_max_versions",
                self.history_max_versions as u64,
                crate::db::versions::MAX_KEEP as u64,
            ),
            (
                "audit_retention_days",
                self.audit_retention_days as u64,
                36_500,
            ),
        ];
        for (name, v, max) in at_most {
            if v > max {
                return Err(format!(
                    "configuration: `{name}` must be at most {max}, not {v}"
                ));
            }
        }
        if self.default_page_size > self.max_page_size {
            return Err(
                "configuration: `default_page_size` must not exceed `max_page_size`".into(),
            );
        }
        if !matches!(self.synchronous.as_str(), "full" | "normal") {
            return Err(format!(
                "configuration: `synchronous` must be \"full\" or \"normal\", not {:?}",
                self.synchronous
            ));
        }
        if !matches!(
            self.log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace" | "off"
        ) {
            return Err(format!(
                "configuration: `log_level` must be one of error, warn, info, debug, trace, off; not {:?}",
                self.log_level
            ));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "configuration: `listen` must be an address like 127.0.0.1:8080, not {:?}",
                self.listen
            ));
        }
        if !crate::util::email_ok(&self.admin_email) {
            return Err(format!(
                "configuration: `admin_email` {:?} is not an e-mail address",
                self.admin_email
            ));
        }
        Ok(())
    }
}

/// An environment value as TOML: numbers and booleans when they parse as such, else a string.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_validate() {
        let c = Config::load(None, env(&[]), &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.max_snapshot_bytes, 5120);
    }

    #[test]
    fn env_beats_file_and_flags_beat_env() {
        let dir = std::env::temp_dir().join(format!("flowsnap-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "workers = 3\nmax_page_size = 70\n").unwrap();
        let c = Config::load(Some(&file), env(&[("FLOWSNAP_WORKERS", "5")]), &[]).unwrap();
        assert_eq!((c.workers, c.max_page_size), (5, 70));
        let c = Config::load(
            Some(&file),
            env(&[("FLOWSNAP_WORKERS", "5")]),
            &[("workers", toml::Value::Integer(9))],
        )
        .unwrap();
        assert_eq!(c.workers, 9);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = Config::load(None, env(&[("FLOWSNAP_WORKRES", "5")]), &[]).unwrap_err();
        assert!(e.contains("unknown setting `workres`"), "{e}");
        let e = Config::load(None, env(&[("FLOWSNAP_WORKERS", "many")]), &[]).unwrap_err();
        assert!(e.contains("workers") || e.contains("invalid type"), "{e}");
        let e = Config::load(None, env(&[("FLOWSNAP_SYNCHRONOUS", "off")]), &[]).unwrap_err();
        assert!(e.contains("synchronous"), "{e}");
        let e = Config::load(None, env(&[("FLOWSNAP_WORKERS", "0")]), &[]).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
    }
}
