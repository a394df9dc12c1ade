//! The middleware stack, in one readable place (outermost first in [`apply`]).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::config::Config;
use crate::error::ApiError;
use crate::http::error::{error_response, Refusal, REQUEST_ID};
use crate::http::AppState;
use crate::telemetry::{SecurityEvent, SecurityKind};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps the router in the whole stack. Requests pass these from top to bottom.
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let config = &state.config;
    router
        .layer(axum::extract::DefaultBodyLimit::max(
            config.body_limit_bytes,
        ))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::body_limit::refuse_oversized,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(middleware::from_fn(normalize_errors))
        .layer(middleware::from_fn(security_headers))
        .layer(
            CompressionLayer::new().gzip(true).compress_when(
                SizeAbove::new(1024).and(NotForContentType::new("text/event-stream")),
            ),
        )
        .layer(cors(config))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(request_id))
}

/// Echoes a sane client `X-Request-ID` or makes one, and scopes it over the whole request.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_request_id(v))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// One span and one log line per request, plus the request counter and latency histogram; a
/// refused one (401, 403) also makes a security event.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let client_ip = super::auth::client_ip(
        req.headers(),
        req.extensions(),
        state.config.trust_forwarded_for,
    );
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let request_id = crate::http::error::current_request_id();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        request_id = %request_id,
        user_id = tracing::field::Empty,
    );
    let (user, response) = crate::telemetry::REQUEST_USER
        .scope(std::cell::Cell::new(None), async {
            let response = next.run(req).instrument(span.clone()).await;
            let user = crate::telemetry::REQUEST_USER.with(|u| u.get());
            (user, response)
        })
        .await;
    let latency = start.elapsed();
    let status = response.status().as_u16();
    let labels = [
        ("method", method.to_string()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(latency.as_secs_f64());
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if let Some(Refusal(reason)) = response.extensions().get::<Refusal>() {
        let kind = if status == 401 {
            SecurityKind::SignInFailed
        } else {
            SecurityKind::Forbidden
        };
        SecurityEvent {
            kind,
            reason,
            method: method.as_str(),
            route: &route,
            request_id: &request_id,
            user_id: user,
            client_ip: Some(client_ip),
        }
        .emit();
    }
    // Probes and scrapes are frequent and uninteresting unless they fail.
    let quiet = route.starts_with("/health") || route == "/metrics";
    // The request's fields go on the line itself so `LOG_FORMAT=json` lines stand alone.
    let method = method.as_str();
    if status >= 500 {
        tracing::error!(
            method,
            route,
            request_id,
            user_id = user,
            status,
            latency_ms,
            "request failed"
        );
    } else if !quiet {
        tracing::info!(
            method,
            route,
            request_id,
            user_id = user,
            status,
            latency_ms,
            "request"
        );
    }
    response
}

fn cors(config: &Config) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            REQUEST_ID_HEADER,
            HeaderName::from_static("x-change-reason"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::CONTENT_DISPOSITION,
            header::RETRY_AFTER,
            REQUEST_ID_HEADER,
            HeaderName::from_static("x-total-count"),
        ])
        .max_age(Duration::from_secs(600));
    if config.cors_origins.iter().any(|o| o == "*") {
        base.allow_origin(AllowOrigin::any())
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        base.allow_origin(origins)
    }
}

/// nosniff, no framing, no referrer; a strict CSP everywhere but the Swagger UI page.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_docs = req.uri().path().starts_with("/docs");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !is_docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

/// Turns any non-JSON error (axum's 404/405, a layer's 413) into the one error body.
async fn normalize_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed on this route")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "request body is larger than the limit")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        s if s.is_server_error() => ("internal_error", "internal error"),
        _ => ("bad_request", "bad request"),
    };
    let mut normalized = error_response(status, code, message);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        normalized
            .headers_mut()
            .insert(header::ALLOW, allow.clone());
    }
    normalized
}

/// Bounds each request's time; the client gets 504 `timeout` instead of waiting forever.
async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout {
            message: "the request took too long".into(),
            retry_after_secs: None,
        }
        .into_response(),
    }
}

/// A panicking handler answers 500 in the one error format; the process keeps serving.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
}
