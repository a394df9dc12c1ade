//! Logging (human text or one JSON object per line) and the Prometheus metrics registry.

use std::cell::Cell;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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

/// The process-wide Prometheus recorder; installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
                        5.0, 10.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    handle
                }
                // A recorder installed elsewhere (impossible in this binary): keep a detached one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
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
    metrics::describe_counter!(
        "predicate_searches_total",
        "Predicate searches by outcome (cache_hit, fetched, shared, error) and source"
    );
}
