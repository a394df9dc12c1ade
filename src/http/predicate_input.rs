//! What a predicate search accepts on the wire (the `GET` query and the project route's optional
//! body). The rules live in `search::query`, the same for every entry point; the OpenAPI schema of
//! each field says what they accept, and the rules across fields (`q` or `product_code`,
//! searchable words, date order) answer 422 and are documented on the operations.

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::http::extract::{json_object, require_json_content_type};
use crate::search::SearchRequest;

/// Query of `GET /api/predicates/search`. A parameter sent empty (`product_code=`) counts as
/// absent: forms and generated clients send blank fields, and "no filter" is what they mean.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: what the device is and does, at most 2000 characters. `q` or `product_code`
    /// is required, and `q` alone needs a searchable word.
    #[param(max_length = 2000)]
    pub q: Option<String>,
    /// FDA product code, three capital letters (e.g. `FRN`); filters the candidates. Empty
    /// means no filter.
    #[param(pattern = "^([A-Z]{3})?$", max_length = 3)]
    pub product_code: Option<String>,
    /// Earliest decision date, `YYYY-MM-DD`; empty means no bound.
    #[param(schema_with = date_or_empty)]
    pub decision_date_from: Option<String>,
    /// Latest decision date, `YYYY-MM-DD`, not before `decision_date_from`; empty means no bound.
    #[param(schema_with = date_or_empty)]
    pub decision_date_to: Option<String>,
    /// Results, 1..100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A full date (RFC 3339 `full-date`) or the empty string.
fn date_or_empty() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
                .max_length(Some(10)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
}

impl SearchParams {
    /// The parameters with empty values read as absent (see the type's doc).
    pub fn empty_as_absent(self) -> Self {
        let some = |v: Option<String>| v.filter(|s| !s.is_empty());
        SearchParams {
            q: some(self.q),
            product_code: some(self.product_code),
            decision_date_from: some(self.decision_date_from),
            decision_date_to: some(self.decision_date_to),
            limit: self.limit,
        }
    }
}

/// Body of a project search; every field is optional (defaults from the project).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSearchBody {
    /// Free text, at most 2000 characters; absent, null or blank means the project's device
    /// type, else its name.
    #[schema(max_length = 2000)]
    pub q: Option<String>,
    /// Three capital letters; absent or null means the project's product code.
    #[schema(pattern = "^[A-Z]{3}$", max_length = 3)]
    pub product_code: Option<String>,
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub decision_date_from: Option<String>,
    /// Not before `decision_date_from`.
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub decision_date_to: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl SearchParams {
    /// The search these parameters ask for.
    pub fn request(&self) -> SearchRequest<'_> {
        SearchRequest {
            q: self.q.as_deref(),
            product_code: self.product_code.as_deref(),
            decision_date_from: self.decision_date_from.as_deref(),
            decision_date_to: self.decision_date_to.as_deref(),
            limit: self.limit,
        }
    }
}

impl ProjectSearchBody {
    /// The search this body asks for.
    pub fn request(&self) -> SearchRequest<'_> {
        SearchRequest {
            q: self.q.as_deref(),
            product_code: self.product_code.as_deref(),
            decision_date_from: self.decision_date_from.as_deref(),
            decision_date_to: self.decision_date_to.as_deref(),
            limit: self.limit,
        }
    }
}

/// An optional JSON body: empty means defaults; otherwise read like every JSON body.
pub fn optional_json<T: Default + DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    require_json_content_type(headers)?;
    json_object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_query_values_are_absent() {
        let p = SearchParams {
            q: Some("pump".into()),
            product_code: Some(String::new()),
            decision_date_from: Some(String::new()),
            ..SearchParams::default()
        }
        .empty_as_absent();
        assert_eq!(p.product_code, None);
        assert_eq!(p.decision_date_from, None);
    }
}
