//! Logging (human text or one JSON object per line) and the Prometheus metrics registry.
//!
//! Metric names follow Prometheus conventions: one prefix (`regassist_`, added here to every
//! metric the code records, so call sites use the short name), base units (`_seconds`,
//! `_bytes`), `_total` on counters, a `regassist_build_info` gauge, and the standard `process_*`
//! families (unprefixed, as every exporter names them), rendered from `/proc` at scrape time.

use std::cell::Cell;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::{Layer, PrefixLayer};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::config::LogFormat;

tokio::task_local! {
    /// The authenticated user of the current request, for its log line.
    pub static REQUEST_USER: Cell<Option<i64>>;
}

/// Notes the authenticated user for the current request's log line.
pub fn record_user(id: i64) {
    let _ = REQUEST_USER.try_with(|cell| cell.set(Some(id)));
    tracing::Span::current().record("user_id", id);
}

/// The kinds of security event: the `kind` label of `security_events_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityKind {
    /// A request refused for its credentials (401): missing, malformed, expired, unknown.
    SignInFailed,
    /// A signed-in caller refused an action (403): role, disabled account, credential kind.
    Forbidden,
}

impl SecurityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityKind::SignInFailed => "sign_in_failed",
            SecurityKind::Forbidden => "forbidden",
        }
    }
}

/// One security event: what was refused, to whom, for which request.
#[derive(Debug)]
pub struct SecurityEvent<'a> {
    pub kind: SecurityKind,
    /// The message the caller was given (never a token or a secret).
    pub reason: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub request_id: &'a str,
    pub user_id: Option<i64>,
    pub client_ip: Option<std::net::IpAddr>,
}

impl SecurityEvent<'_> {
    /// One `WARN` line on the `security` target (so it can be routed or filtered alone) and one
    /// count of `security_events_total{kind}`.
    pub fn emit(&self) {
        let kind = self.kind.as_str();
        metrics::counter!("security_events_total", "kind" => kind).increment(1);
        tracing::warn!(
            target: "security",
            kind,
            reason = self.reason,
            method = self.method,
            route = self.route,
            request_id = self.request_id,
            user_id = self.user_id,
            client_ip = self.client_ip.map(tracing::field::display),
            "security event"
        );
    }
}

/// Installs the global tracing subscriber once; later calls are ignored (tests build many apps).
pub fn init_tracing(format: LogFormat) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
        let registry = tracing_subscriber::registry().with(filter);
        let result = match format {
            LogFormat::Json => registry
                .with(
                    fmt::layer()
                        .with_writer(std::io::stderr)
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_target(true),
                )
                .try_init(),
            LogFormat::Text => registry
                .with(fmt::layer().with_writer(std::io::stderr).with_target(true))
                .try_init(),
        };
        // Another subscriber (a test harness) may already be installed; that is fine.
        let _ = result;
    });
}

/// The prefix of every metric the service records (joined with `_`).
pub const METRIC_PREFIX: &str = "regassist";

/// The commit this binary was built from (`unknown` outside a git checkout); see `build.rs`.
pub const GIT_COMMIT: &str = env!("REGASSIST_GIT_COMMIT");
/// The UTC date of the build (`SOURCE_DATE_EPOCH` when set, for reproducible builds).
pub const BUILD_DATE: &str = env!("REGASSIST_BUILD_DATE");
/// `--version`: the package version, the commit and the build date.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("REGASSIST_GIT_COMMIT"),
    ", built ",
    env!("REGASSIST_BUILD_DATE"),
    ")"
);

/// The process-wide Prometheus recorder; installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
                        5.0, 10.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let prefixed = PrefixLayer::new(METRIC_PREFIX).layer(recorder);
            if metrics::set_global_recorder(prefixed).is_ok() {
                describe();
                metrics::gauge!(
                    "build_info",
                    "version" => env!("CARGO_PKG_VERSION"),
                    "commit" => GIT_COMMIT,
                    "build_date" => BUILD_DATE
                )
                .set(1.0);
            }
            // Otherwise a recorder was installed elsewhere (impossible in this binary); the
            // handle then renders only what reached it, which is nothing.
            handle
        })
        .clone()
}

/// The text of `/metrics`: the recorded metrics and the process families.
pub fn render(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    text.push_str(&process_metrics());
    text
}

/// `process_*` in the Prometheus client libraries' names and units, from `/proc/self` (Linux);
/// empty elsewhere.
fn process_metrics() -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return String::new();
    };
    // Fields after the command name (which may hold spaces) start at field 3, `state`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // The kernel's clock tick and page size are 100 Hz and 4 KiB on every Linux this runs on.
    const TICKS: f64 = 100.0;
    const PAGE: f64 = 4096.0;
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (utime + stime) / TICKS,
        );
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time()) {
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            boot + start / TICKS,
        );
    }
    if let Some(vsize) = field(23) {
        family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            vsize,
        );
    }
    if let Some(rss) = field(24) {
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss * PAGE,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Some(max) = max_open_files() {
        family(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max,
        );
    }
    if let Some(threads) = field(20) {
        family(
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            threads,
        );
    }
    out
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_open_files() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn describe() {
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests by method, matched route and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency by route and status"
    );
    metrics::describe_counter!(
        "auth_attempts_total",
        "Authentications by method and outcome"
    );
    metrics::describe_counter!(
        "sign_in_cache_total",
        "Sign-in cache lookups by result (hit, miss, bypass while the account-change listener is down)"
    );
    metrics::describe_counter!(
        "security_events_total",
        "Refused requests by kind (sign_in_failed: 401, forbidden: 403); each also logged on target `security`"
    );
    metrics::describe_counter!(
        "audit_events_written_total",
        "Rows appended to the audit trail"
    );
    metrics::describe_gauge!(
        "audit_last_event_timestamp_seconds",
        "Unix time of the newest audit row written by this process"
    );
    metrics::describe_counter!(
        "cache_requests_total",
        "Cache lookups by result (hit, miss, error)"
    );
    metrics::describe_gauge!("db_pool_connections", "Database pool connections by state");
    metrics::describe_gauge!("db_pool_max_connections", "Database pool size limit");
    metrics::describe_counter!(
        "openfda_requests_total",
        "openFDA calls by endpoint and outcome (ok, not_found, bad_query, rate_limited, server_error, timeout, connect_error, circuit_open, budget_exhausted, refused)"
    );
    metrics::describe_gauge!(
        "openfda_budget_remaining",
        "openFDA calls left in the shared budget, by window (minute, day)"
    );
    metrics::describe_gauge!(
        "build_info",
        "Always 1; the labels name the version, commit and build date of this binary"
    );
    metrics::describe_counter!(
        "openfda_budget_fallback_total",
        "Times the shared openFDA budget fell back to this replica's own (Redis unreachable)"
    );
    metrics::describe_counter!(
        "predicate_searches_total",
        "Predicate searches by outcome (cache_hit, fetched, shared, error) and source"
    );
}
