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
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                match whole_floats_as_integers(parts, state).await {
                    Some(value) => Ok(Path(value)),
                    None => Err(ApiError::BadRequest(format!(
                        "invalid path parameter: {}",
                        e.body_text()
                    ))),
                }
            }
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// The path parameters again with whole floats (`3.0`) read as integers, when there are any.
/// JSON Schema counts `3.0` as an integer, so a client working from the OpenAPI document may
/// render an integer id that way; it means project 3, as in a JSON body.
async fn whole_floats_as_integers<T: DeserializeOwned, S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Option<T> {
    let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
        .await
        .ok()?;
    let mut any_whole_float = false;
    let mut values: Vec<serde_json::Value> = raw
        .iter()
        .map(|(_, v)| {
            if let Some(n) = whole_float(v) {
                any_whole_float = true;
                serde_json::Value::from(n)
            } else if let Ok(n) = v.parse::<i64>() {
                serde_json::Value::from(n)
            } else {
                serde_json::Value::from(v)
            }
        })
        .collect();
    if !any_whole_float {
        return None;
    }
    // One parameter deserializes as itself, several as a tuple (how the handlers take them).
    let value = if values.len() == 1 {
        values.pop()?
    } else {
        serde_json::Value::Array(values)
    };
    serde_json::from_value(value).ok()
}

/// `-12.0` -> -12; `12.5`, `12.`, `1e3` and anything else -> None.
fn whole_float(raw: &str) -> Option<i64> {
    let (int, frac) = raw.split_once('.')?;
    if frac.is_empty() || !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    int.parse().ok()
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
                if let Some(value) = query_with_whole_floats_as_integers(&parts.uri) {
                    return Ok(Query(value));
                }
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

/// The query again with whole floats (`limit=5.0`) read as integers, when there are any (see
/// `whole_floats_as_integers`). Only tried after the query as sent failed to parse.
fn query_with_whole_floats_as_integers<T: DeserializeOwned>(uri: &axum::http::Uri) -> Option<T> {
    let query = uri.query()?;
    let mut any_whole_float = false;
    let mut rewritten = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match whole_float(&value) {
            Some(n) => {
                any_whole_float = true;
                rewritten.append_pair(&name, &n.to_string());
            }
            None => {
                rewritten.append_pair(&name, &value);
            }
        }
    }
    if !any_whole_float {
        return None;
    }
    let uri: axum::http::Uri = format!("/?{}", rewritten.finish()).parse().ok()?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .ok()
        .map(|axum::extract::Query(value)| value)
}

/// Refuses a text parameter longer than `max` characters (422 naming `field`); counts no
/// further than `max + 1`, so an over-long value costs no more than an allowed one.
pub fn max_chars(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().nth(max).is_some() => {
            Err(ApiError::field(field, format!("at most {max} characters")))
        }
        _ => Ok(()),
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
    total_count(axum::Json(items).into_response(), total)
}

/// A JSON body already serialised (by the database) with `X-Total-Count`.
pub fn json_with_total(json: impl Into<axum::body::Bytes>, total: i64) -> Response {
    total_count(serialised_json(json), total)
}

/// A JSON body already serialised (by the database).
pub fn serialised_json(json: impl Into<axum::body::Bytes>) -> Response {
    let content_type = (
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    ([content_type], json.into()).into_response()
}

fn total_count(mut response: Response, total: i64) -> Response {
    response
        .headers_mut()
        .insert("x-total-count", axum::http::HeaderValue::from(total));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_floats_become_integers() {
        assert_eq!(whole_float("3.0"), Some(3));
        assert_eq!(whole_float("-44945.00"), Some(-44945));
        for other in ["3", "3.5", "3.", ".0", "1e3", "abc.0", "3.0.0"] {
            assert_eq!(whole_float(other), None, "{other}");
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(
            missing_field("Failed to deserialize query string: missing field `q`"),
            Some("q")
        );
        assert_eq!(missing_field("invalid digit found in string"), None);
    }
}
