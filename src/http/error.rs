//! How an [`ApiError`] answers over HTTP: its status, its headers (`WWW-Authenticate`,
//! `Retry-After`) and the one JSON error body every non-2xx carries, with the request's id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware for the whole request.
    pub static REQUEST_ID: String;
}

/// The current request id, or an empty string outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Every `code` an error body can carry: [`ApiError::code`]'s, plus `method_not_allowed` from
/// the router (a test keeps the two in step).
pub const ERROR_CODES: [&str; 15] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "precondition_failed",
    "payload_too_large",
    "unsupported_media_type",
    "validation_failed",
    "rate_limited",
    "upstream_error",
    "service_unavailable",
    "timeout",
    "internal_error",
];

/// The error body of every non-2xx answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable, closed set: bad_request, unauthorized, forbidden, not_found,
    /// method_not_allowed, conflict, precondition_failed, payload_too_large,
    /// unsupported_media_type, validation_failed, rate_limited, upstream_error,
    /// service_unavailable, timeout, internal_error.
    #[schema(example = "not_found")]
    pub code: String,
    #[schema(example = "project 42 not found")]
    pub message: String,
    pub request_id: String,
    /// Per-field messages, only for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// Marks a 401 or 403 answer with its reason, for the security-event line the request
/// middleware writes (`telemetry::SecurityEvent`).
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

/// The status an error answers with.
pub fn status(err: &ApiError) -> StatusCode {
    match err {
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
        ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds the one error body for a status, code and message (also used by middleware).
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        code: code.to_string(),
        message: message.to_string(),
        request_id: current_request_id(),
        fields: None,
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(&self);
        let message = match &self {
            // 5xx details go to the log with their source chain, never to the client.
            ApiError::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let fields = match &self {
            ApiError::Validation { fields, .. } => Some(fields.clone()),
            _ => None,
        };
        let body = ErrorBody {
            code: self.code().to_string(),
            message,
            request_id: current_request_id(),
            fields,
        };
        let refused = matches!(self, ApiError::Unauthorized(_) | ApiError::Forbidden(_));
        let reason = refused.then(|| body.message.clone());
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(reason) = reason {
            response.extensions_mut().insert(Refusal(reason));
        }
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Unavailable {
                retry_after_secs: Some(retry_after_secs),
                ..
            }
            | ApiError::Timeout {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_documented_code() {
        let kinds = [
            ApiError::BadRequest(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::Conflict(String::new()),
            ApiError::PreconditionFailed(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::field("x", "y"),
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::BadGateway(String::new()),
            ApiError::Unavailable {
                message: String::new(),
                retry_after_secs: None,
            },
            ApiError::Timeout {
                message: String::new(),
                retry_after_secs: None,
            },
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        for kind in kinds {
            assert!(
                ERROR_CODES.contains(&kind.code()),
                "{} is not in ERROR_CODES",
                kind.code()
            );
        }
    }
}
