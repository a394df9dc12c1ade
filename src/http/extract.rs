//! The project's own `Json`, `Path` and `Query` extractors: a rejected body, path or query gets the
//! one error body (400/413/415/422), never axum's plain-text rejection.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::{ApiError, FieldErrors};

/// JSON body in, JSON body out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json_content_type(req.headers())?;
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        json_object(&bytes).map(Json)
    }
}

/// 415 unless the `Content-Type` is `application/json` or a `+json` type.
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        ))
    }
}

/// A request body read as a JSON object into `T`: 400 for bad JSON, 422 naming the field.
pub fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body of this API is a JSON object; serde would also build a struct
    // from an array, so the shape is checked first.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(integral_floats_as_integers(value))
        .map_err(|e| data_error(e.path().to_string(), e.into_inner().to_string()))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// JSON Schema counts `3.0` as an integer; serde does not. Whole floats that fit become integers
/// so a client's `"project_id": 3.0` means project 3.
fn integral_floats_as_integers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => {
            Value::Array(items.into_iter().map(integral_floats_as_integers).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integral_floats_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A 422 naming the field serde complained about.
fn data_error(path: String, detail: String) -> ApiError {
    let field = unknown_field(&detail).map(String::from).unwrap_or_else(|| {
        if path == "." || path.is_empty() {
            "body".into()
        } else {
            path
        }
    });
    let mut fields = FieldErrors::new();
    fields.insert(field, vec![detail.clone()]);
    ApiError::Validation {
        message: format!("request body is invalid: {detail}"),
        fields,
    }
}

/// The name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(detail: &str) -> Option<&str> {
    let rest = detail.split_once("unknown field `")?.1;
    rest.split_once('`').map(|(name, _)| name)
}

/// The name in serde's "missing field `x`" message.
fn missing_field(detail: &str) -> Option<&str> {
    let rest = detail.split_once("missing field `")?.1;
    rest.split_once('`').map(|(name, _)| name)
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::BadRequest(
                format!("invalid path parameter: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                // A required parameter that is absent is a validation failure of that field
                // (422, like a missing body field); anything unparseable stays a 400.
                match missing_field(&text) {
                    Some(name) => Err(ApiError::field(name, "is required")),
                    None => Err(ApiError::BadRequest(format!("invalid query: {text}"))),
                }
            }
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// `limit` (1..100, default 50) and `offset` (>= 0) of every list.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1..100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Rows to skip, default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl Page {
    /// `(limit, offset)` after validation.
    pub fn validate(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        let mut fields = FieldErrors::new();
        if !(1..=100).contains(&limit) {
            fields.insert("limit".into(), vec!["must be between 1 and 100".into()]);
        }
        if offset < 0 {
            fields.insert("offset".into(), vec!["must be 0 or more".into()]);
        }
        ApiError::check(fields)?;
        Ok((limit, offset))
    }
}

/// Adds `X-Total-Count` to a list response.
pub fn with_total<T: Serialize>(items: T, total: i64) -> Response {
    let mut response = axum::Json(items).into_response();
    response
        .headers_mut()
        .insert("x-total-count", axum::http::HeaderValue::from(total));
    response
}
