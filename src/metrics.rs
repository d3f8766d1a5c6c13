//! `GET /metrics` (spec section 13): the Prometheus text exposition format, through the
//! `prometheus` crate's registry and text encoder.
//!
//! Two kinds of figures:
//! - counted per request here: requests by route template, method and status, and request
//!   durations by route template and method. The label sets are bounded: route templates (never
//!   raw paths), seven method names and "other", the statuses the server answers with.
//! - read at scrape time from plain counters the store and `auth` keep (neither knows of this
//!   module): write groups and their sizes, the write queue, remembered-credential hits and
//!   misses, argon2 refusals; and the database file's size from its metadata.
//!
//! The hot path takes no lock shared by the workers: each worker thread keeps, in a thread-local
//! map, the counter and histogram of every label set it has used (the crate's children share
//! their atomics with the registry), so a request costs a thread-local lookup and atomic adds.
//! The crate's own labelled lookup (`with_label_values`) takes a read lock on a map shared by all
//! workers; it runs once per label set and thread.

use crate::auth::AuthStats;
use crate::db::{WriteStats, GROUP_SIZE_BOUNDS};
use crate::error::{Error, Result};
use prometheus::core::Collector;
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Request duration buckets, in seconds: 100 µs to 10 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

type CounterKey = (u64, &'static str, &'static str, u16);
type HistogramKey = (u64, &'static str, &'static str);

thread_local! {
    /// This thread's children of the request families, by (metrics id, labels).
    static COUNTERS: RefCell<HashMap<CounterKey, IntCounter>> = RefCell::new(HashMap::new());
    static HISTOGRAMS: RefCell<HashMap<HistogramKey, Histogram>> = RefCell::new(HashMap::new());
}

pub struct Metrics {
    /// Tells this instance's thread-local children from another instance's (tests start many).
    id: u64,
    requests: IntCounterVec,
    durations: HistogramVec,
}

/// A method as a label: the ones HTTP clients send, else "other" (a client chooses the method
/// string, which must not become an unbounded label value).
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "PUT" => "PUT",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn metrics_error(e: prometheus::Error) -> Error {
    Error::internal(format!("metrics: {e}"))
}

impl Metrics {
    pub fn new() -> Result<Metrics> {
        let requests = IntCounterVec::new(
            prometheus::Opts::new(
                "flowsnap_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
            ),
            &["route", "method", "status"],
        )
        .map_err(metrics_error)?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "flowsnap_http_request_duration_seconds",
                "Time from a request's arrival at the handler to its response, by route template \
                 and method.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .map_err(metrics_error)?;
        Ok(Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requests,
            durations,
        })
    }

    /// Counts one answered request. `route` is a route template, `method` a `method_label`.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, took: Duration) {
        let id = self.id;
        COUNTERS.with(|c| {
            let mut c = c.borrow_mut();
            c.entry((id, route, method, status))
                .or_insert_with(|| {
                    self.requests
                        .with_label_values(&[route, method, &status.to_string()])
                })
                .inc();
        });
        HISTOGRAMS.with(|h| {
            let mut h = h.borrow_mut();
            h.entry((id, route, method))
                .or_insert_with(|| self.durations.with_label_values(&[route, method]))
                .observe(took.as_secs_f64());
        });
    }

    /// The exposition text and its content type.
    pub fn render(
        &self,
        write: &WriteStats,
        auth: &AuthStats,
        db_path: &Path,
    ) -> Result<(String, Vec<u8>)> {
        let mut families = self.requests.collect();
        families.extend(self.durations.collect());
        families.push(counter(
            "flowsnap_write_groups_total",
            "Write transactions committed (each holds one group of write requests).",
            write.groups_committed,
        ));
        families.push(group_sizes(write));
        families.push(gauge(
            "flowsnap_write_queue_length",
            "Write requests waiting for the writer (at most write_queue_max).",
            write.queue_length as f64,
        ));
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        families.push(gauge(
            "flowsnap_db_size_bytes",
            "Size of the database file, in bytes.",
            size(db_path) as f64,
        ));
        families.push(gauge(
            "flowsnap_db_wal_size_bytes",
            "Size of the database's write-ahead log file, in bytes.",
            size(Path::new(&wal)) as f64,
        ));
        let mut lookups = family(
            "flowsnap_auth_remembered_total",
            "Requests with credentials, by whether a verification was remembered (hit: no argon2) \
             or not (miss).",
            MetricType::COUNTER,
        );
        lookups.set_metric(vec![
            counter_metric(&[("result", "hit")], auth.remembered_hits),
            counter_metric(&[("result", "miss")], auth.remembered_misses),
        ]);
        families.push(lookups);
        families.push(counter(
            "flowsnap_argon2_refused_total",
            "argon2 verifications and hashings refused with 429 (argon2_max_concurrent running \
             and argon2_max_waiting waiting).",
            auth.argon2_refused,
        ));
        let encoder = prometheus::TextEncoder::new();
        let mut out = Vec::new();
        encoder.encode(&families, &mut out).map_err(metrics_error)?;
        Ok((encoder.format_type().to_string(), out))
    }
}

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f
}

fn labels(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = proto::LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn counter_metric(pairs: &[(&str, &str)], v: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(v as f64);
    let mut m = proto::Metric::default();
    m.set_label(labels(pairs));
    m.set_counter(c);
    m
}

fn counter(name: &str, help: &str, v: u64) -> MetricFamily {
    let mut f = family(name, help, MetricType::COUNTER);
    f.set_metric(vec![counter_metric(&[], v)]);
    f
}

fn gauge(name: &str, help: &str, v: f64) -> MetricFamily {
    let mut f = family(name, help, MetricType::GAUGE);
    let mut g = proto::Gauge::default();
    g.set_value(v);
    f.set_metric(vec![proto::Metric::from_gauge(g)]);
    f
}

/// The committed groups' sizes as a histogram (the store counts them per bucket).
fn group_sizes(write: &WriteStats) -> MetricFamily {
    let mut f = family(
        "flowsnap_write_group_size",
        "Write requests per committed transaction (group commit, at most write_batch_max).",
        MetricType::HISTOGRAM,
    );
    let mut cumulative = 0;
    let buckets = GROUP_SIZE_BOUNDS
        .iter()
        .zip(&write.group_sizes)
        .map(|(&bound, &n)| {
            cumulative += n;
            let mut b = proto::Bucket::default();
            b.set_upper_bound(bound as f64);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    let mut h = proto::Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(write.groups_committed);
    h.set_sample_sum(write.jobs_committed as f64);
    let mut m = proto::Metric::default();
    m.set_histogram(h);
    f.set_metric(vec![m]);
    f
}
