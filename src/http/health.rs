//! Health probes and the Prometheus scrape. No auth, no rate limit, never a call upstream.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::db::Db;
use crate::http::AppState;
use crate::redis_link::{LinkError, RedisLink};

pub const SERVICE_NAME: &str = "medical-device-regulatory-assistant";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(health_database))
        .routes(routes!(health_redis))
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

/// One component's state.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Check {
    pub healthy: bool,
    /// `connected`, `disconnected`, `not_configured`, `ok`, `degraded`, ...
    pub status: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Value,
    pub execution_time_ms: f64,
}

/// The body of every health answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct HealthReport {
    pub healthy: bool,
    /// `ok`, `degraded` or `unhealthy`.
    pub status: String,
    pub timestamp: DateTime<Utc>,
    pub execution_time_ms: f64,
    pub service: String,
    pub version: String,
    pub checks: BTreeMap<String, Check>,
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

pub async fn check_database(db: &Db) -> Check {
    let start = Instant::now();
    let stats = db.pool_stats();
    let result = tokio::time::timeout(Duration::from_secs(2), db.ping()).await;
    let (healthy, status, message) = match result {
        Ok(Ok(())) => (true, "connected", format!("{} answers", stats.backend)),
        Ok(Err(e)) => (
            false,
            "disconnected",
            format!("{} query failed: {}", stats.backend, short(&e.to_string())),
        ),
        Err(_) => (
            false,
            "disconnected",
            format!("{} did not answer within 2 s", stats.backend),
        ),
    };
    Check {
        healthy,
        status: status.into(),
        message,
        details: serde_json::to_value(&stats).unwrap_or_default(),
        execution_time_ms: ms(start),
    }
}

/// PING through the link (its timeout and breaker): a stalled Redis reports `stalled` within
/// the response timeout, and `circuit_open` at once while the breaker refuses.
pub async fn check_redis(redis: Option<&RedisLink>) -> Check {
    let start = Instant::now();
    let Some(link) = redis else {
        return Check {
            healthy: true,
            status: "not_configured".into(),
            message: "running without Redis: in-process cache and rate limits".into(),
            details: serde_json::json!({}),
            execution_time_ms: ms(start),
        };
    };
    let answer = link.ping().await;
    let (size, available, max) = link.pool_status();
    let details = serde_json::json!({"pool_size": size, "pool_available": available, "pool_max": max,
        "response_timeout_ms": link.timeout().as_millis() as u64,
        "consecutive_failures": link.failures(), "circuit_open": link.is_open()});
    let (status, message) = match answer {
        Ok(()) => {
            return Check {
                healthy: true,
                status: "connected".into(),
                message: "Redis answers PING".into(),
                details,
                execution_time_ms: ms(start),
            }
        }
        Err(LinkError::Open) => (
            "circuit_open",
            "Redis failing; not asked until the next probe (cache off, limits counted in process)"
                .to_string(),
        ),
        Err(e @ LinkError::Timeout(_)) => ("stalled", short(&e.to_string())),
        Err(e) => (
            "disconnected",
            format!("Redis unreachable: {}", short(&e.to_string())),
        ),
    };
    Check {
        healthy: false,
        status: status.into(),
        message,
        details,
        execution_time_ms: ms(start),
    }
}

/// How long a committed change's audit row may wait for its place on the chain before the
/// trail counts as degraded (the alert in monitoring/alerts.yml uses the same minute).
const PENDING_TOLERANCE_SECS: i64 = 60;

/// The audit trail's anchoring: degraded when the checkpoint writer refused the chain (it no
/// longer holds the previous checkpoint) or a row has waited to be sealed for over a minute.
pub async fn check_audit(audit: &crate::audit::AuditLog) -> Check {
    let start = Instant::now();
    let status = audit.anchor().status();
    let pending = audit.refresh_pending_gauges().await;
    let details = serde_json::json!({
        "checkpoint_seq": status.last.as_ref().map(|c| c.head_seq),
        "checkpoint_at": status.last.as_ref().map(|c| c.at.clone()),
        "pending_entries": pending.as_ref().ok().map(|p| p.0),
        "oldest_pending_age_seconds": pending.as_ref().ok().and_then(|p| p.1),
    });
    let (healthy, status, message) = match (&status.refused, &pending) {
        (Some(why), _) => (false, "degraded", format!("checkpoint refused: {why}")),
        (None, Ok((n, Some(age)))) if *age > PENDING_TOLERANCE_SECS => (
            false,
            "degraded",
            format!("{n} audit rows wait to be sealed, the oldest for {age} s"),
        ),
        (None, Err(e)) => (
            false,
            "degraded",
            format!("audit queue unreadable: {}", short(&e.to_string())),
        ),
        (None, Ok(_)) => (true, "ok", "the chain is anchored".to_string()),
    };
    Check {
        healthy,
        status: status.into(),
        message,
        details,
        execution_time_ms: ms(start),
    }
}

/// Error text without anything that looks like a URL (which could carry a password).
fn short(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

fn report(start: Instant, checks: BTreeMap<String, Check>, critical: &[&str]) -> Response {
    let critical_ok = critical
        .iter()
        .all(|name| checks.get(*name).is_some_and(|c| c.healthy));
    let all_ok = checks.values().all(|c| c.healthy);
    let (code, status) = match (critical_ok, all_ok) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
    };
    let body = HealthReport {
        healthy: critical_ok,
        status: status.into(),
        timestamp: Utc::now(),
        execution_time_ms: ms(start),
        service: SERVICE_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        checks,
    };
    (code, axum::Json(body)).into_response()
}

/// Every check. 200 while the database answers (`degraded` when Redis or openFDA is failing, or
/// the audit trail's checkpoint was refused); 503 when the database is down.
#[utoipa::path(get, path = "/health", operation_id = "getHealth", tag = "health",
    responses((status = 200, description = "Serving (status ok or degraded)", body = HealthReport),
              (status = 503, description = "The database is down", body = HealthReport)))]
async fn health(State(state): State<AppState>) -> Response {
    let start = Instant::now();
    let (database, redis, audit) = tokio::join!(
        check_database(&state.db),
        check_redis(state.redis.as_ref()),
        check_audit(&state.audit)
    );
    let mut checks = BTreeMap::new();
    checks.insert("database".to_string(), database);
    checks.insert("redis".to_string(), redis);
    checks.insert("audit".to_string(), audit);
    let openfda = super::openfda_admin::openfda_check(&state.openfda, state.config.openfda_mode);
    checks.insert("openfda".to_string(), openfda);
    report(start, checks, &["database"])
}

/// The database check alone; `details` names the backend and pool figures.
#[utoipa::path(get, path = "/health/database", operation_id = "getDatabaseHealth", tag = "health",
    responses((status = 200, description = "The database answers", body = HealthReport),
              (status = 503, description = "The database is down", body = HealthReport)))]
async fn health_database(State(state): State<AppState>) -> Response {
    let start = Instant::now();
    let mut checks = BTreeMap::new();
    checks.insert("database".to_string(), check_database(&state.db).await);
    report(start, checks, &["database"])
}

/// The Redis check alone: `connected`, `not_configured` (embedded mode), or 503 `disconnected`.
#[utoipa::path(get, path = "/health/redis", operation_id = "getRedisHealth", tag = "health",
    responses((status = 200, description = "Redis answers or is not configured", body = HealthReport),
              (status = 503, description = "Redis is configured but unreachable", body = HealthReport)))]
async fn health_redis(State(state): State<AppState>) -> Response {
    let start = Instant::now();
    let mut checks = BTreeMap::new();
    checks.insert("redis".to_string(), check_redis(state.redis.as_ref()).await);
    report(start, checks, &["redis"])
}

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    pub status: String,
}

/// 200 while the process serves; no I/O.
#[utoipa::path(get, path = "/health/live", operation_id = "getLiveness", tag = "health",
    responses((status = 200, description = "The process serves", body = Liveness)))]
async fn live() -> axum::Json<Liveness> {
    axum::Json(Liveness {
        status: "alive".into(),
    })
}

/// 200 when the database answers and migrations are applied; 503 while draining on shutdown.
#[utoipa::path(get, path = "/health/ready", operation_id = "getReadiness", tag = "health",
    responses((status = 200, description = "Ready for traffic", body = HealthReport),
              (status = 503, description = "Not ready, or draining", body = HealthReport)))]
async fn ready(State(state): State<AppState>) -> Response {
    let start = Instant::now();
    let mut checks = BTreeMap::new();
    let draining = state.draining.load(Ordering::SeqCst);
    let migrations =
        tokio::time::timeout(Duration::from_secs(2), state.db.migrations_applied()).await;
    let (ok, message) = match (draining, migrations) {
        (true, _) => (false, "draining for shutdown".to_string()),
        (false, Ok(Ok(true))) => (true, "migrations applied".to_string()),
        (false, Ok(Ok(false))) => (
            false,
            "migrations pending: run `regassist migrate`".to_string(),
        ),
        (false, Ok(Err(e))) => (
            false,
            format!("database query failed: {}", short(&e.to_string())),
        ),
        (false, Err(_)) => (false, "database did not answer within 2 s".to_string()),
    };
    checks.insert(
        "readiness".to_string(),
        Check {
            healthy: ok,
            status: if ok {
                "ready".into()
            } else {
                "not_ready".into()
            },
            message,
            details: serde_json::json!({"draining": draining}),
            execution_time_ms: ms(start),
        },
    );
    report(start, checks, &["readiness"])
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.db.pool_stats();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(stats.idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(f64::from(stats.size.saturating_sub(stats.idle)));
    metrics::gauge!("db_pool_max_connections").set(f64::from(stats.max));
    // The alert on rows waiting to be sealed needs a current figure at every scrape.
    let _ = state.audit.refresh_pending_gauges().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(&state.metrics),
    )
        .into_response()
}
