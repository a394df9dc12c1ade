//! openFDA operations: the `/health` check built from what was last seen (no call upstream),
//! `GET /api/admin/openfda/status` and `DELETE /api/admin/cache?prefix=`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::audit::Change;
use crate::config::OpenFdaMode;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AdminUser;
use crate::http::extract::{Json, Query};
use crate::http::health::Check;
use crate::http::AppState;
use crate::openfda::{CircuitState, OpenFda};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openfda_status))
        .routes(routes!(clear_cache))
}

/// The `checks.openfda` entry of `/health`: unhealthy (so `degraded`) while the circuit is open
/// or the newest call failed.
pub fn openfda_check(client: &OpenFda, mode: OpenFdaMode) -> Check {
    let start = Instant::now();
    let seen = client.health().snapshot();
    let circuit = client.circuit();
    let (left_minute, left_day) = client.budget().last_seen_remaining();
    let (healthy, status, message) = if mode == OpenFdaMode::Mirror {
        (
            true,
            "not_used",
            "OPENFDA_MODE=mirror: searches use the local mirror".to_string(),
        )
    } else if circuit == CircuitState::Open {
        (
            false,
            "degraded",
            "circuit open after repeated failures; calls paused".to_string(),
        )
    } else if seen.failing() {
        (
            false,
            "degraded",
            format!(
                "last call failed: {}",
                seen.last_error.clone().unwrap_or_default()
            ),
        )
    } else if seen.last_success.is_none() {
        (true, "idle", "no openFDA call yet".to_string())
    } else {
        (true, "ok", "last call succeeded".to_string())
    };
    Check {
        healthy,
        status: status.into(),
        message,
        details: json!({
            "mode": mode_name(mode),
            "circuit": circuit.as_str(),
            "last_success": seen.last_success,
            "last_error": seen.last_error,
            "last_error_at": seen.last_error_at,
            "budget_remaining_minute": left_minute,
            "budget_remaining_day": left_day,
        }),
        execution_time_ms: (start.elapsed().as_secs_f64() * 1e6).round() / 1e3,
    }
}

fn mode_name(mode: OpenFdaMode) -> &'static str {
    match mode {
        OpenFdaMode::Auto => "auto",
        OpenFdaMode::Live => "live",
        OpenFdaMode::Mirror => "mirror",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStatus {
    /// `redis` or `memory`.
    pub backend: String,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenFdaStatus {
    pub limit_per_minute: u64,
    /// Calls in the current minute window, across every replica sharing Redis.
    pub used_last_minute: u64,
    pub daily_limit: u64,
    pub used_today: u64,
    /// Pacing: at most this many calls per second.
    pub rate_per_second: u64,
    /// `closed`, `open` or `half_open` (this replica's breaker).
    pub circuit: CircuitState,
    pub cache: CacheStatus,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// `auto`, `live` or `mirror`.
    pub mode: String,
    pub base_url: String,
}

/// The openFDA budget, breaker and cache figures (admin).
#[utoipa::path(get, path = "/api/admin/openfda/status", operation_id = "getOpenFdaStatus", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Budget, circuit and cache state", body = OpenFdaStatus)))]
async fn openfda_status(State(state): State<AppState>, _admin: AdminUser) -> Json<OpenFdaStatus> {
    let client = &state.openfda;
    let budget = client.budget();
    let (used_minute, used_day) = budget.usage().await;
    let seen = client.health().snapshot();
    let stats = state.cache.stats();
    Json(OpenFdaStatus {
        limit_per_minute: budget.per_minute,
        used_last_minute: used_minute,
        daily_limit: budget.daily,
        used_today: used_day,
        rate_per_second: budget.per_second,
        circuit: client.circuit(),
        cache: CacheStatus {
            backend: state.cache.backend().to_string(),
            hits: stats.hits.load(Ordering::Relaxed),
            misses: stats.misses.load(Ordering::Relaxed),
            errors: stats.errors.load(Ordering::Relaxed),
        },
        last_error: seen.last_error,
        last_error_at: seen.last_error_at,
        last_success: seen.last_success,
        mode: mode_name(state.config.openfda_mode).to_string(),
        base_url: client.base_url().to_string(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CachePrefix {
    /// Keys starting with this are deleted (1..200 characters). It must lie in a response-cache
    /// namespace: `predicate_search` (the whole namespace) or `predicate_search:…`; rate-limit
    /// and openFDA-budget keys are never cleared here.
    // Required and non-empty: an empty prefix would match every key, and "clear everything"
    // should not be what a blank form field means.
    #[param(min_length = 1, max_length = 200)]
    pub prefix: String,
}

/// The 422 message for a prefix outside the response cache.
fn not_a_cache_namespace() -> String {
    format!(
        "must start with a response-cache namespace ({})",
        crate::cache::NAMESPACES.join(", ")
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: u64,
}

/// Deletes cached entries by key prefix (admin; audited).
#[utoipa::path(delete, path = "/api/admin/cache", operation_id = "clearCache", tag = "admin", security(("bearer" = [])),
    params(CachePrefix),
    responses((status = 200, description = "How many entries were deleted", body = Deleted),
              (status = 422, description = "The prefix is empty, too long or outside the response-cache namespaces", body = crate::http::error::ErrorBody),
              (status = 503, description = "The cache backend is unreachable", body = crate::http::error::ErrorBody)))]
async fn clear_cache(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(q): Query<CachePrefix>,
) -> ApiResult<Json<Deleted>> {
    if q.prefix.is_empty() || q.prefix.chars().count() > 200 {
        return Err(ApiError::field("prefix", "must be 1..200 characters"));
    }
    let prefix = crate::cache::clearable_prefix(&q.prefix)
        .ok_or_else(|| ApiError::field("prefix", not_a_cache_namespace()))?
        .to_string();
    let deleted = state.cache.delete_prefix(&prefix).await.map_err(|e| {
        tracing::warn!(error = %e, "cache clear failed");
        ApiError::Unavailable {
            message: "the cache backend is unreachable".into(),
            retry_after_secs: Some(5),
        }
    })?;
    state.search.forget(&prefix);
    let work = state.audit.begin().await?;
    work.commit(
        &admin.actor,
        Change {
            action: "cache.clear",
            entity_type: "cache",
            entity_id: Some(prefix.clone()),
            project_id: None,
            before: None,
            after: Some(json!({"prefix": prefix, "deleted": deleted})),
        },
    )
    .await?;
    Ok(Json(Deleted { deleted }))
}
