//! What a predicate search accepts (the `GET` query and the project route's optional body) and
//! its validation into a `PredicateQuery`. The OpenAPI schema of each field says exactly what the
//! validation accepts; the rules across fields (`q` or `product_code`, searchable words, date
//! order) answer 422 and are documented on the operations.

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::is_product_code;
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::http::extract::{json_object, require_json_content_type};
use crate::openfda::query::significant_words;
use crate::search::PredicateQuery;

/// Free text longer than this is cut (only the first words reach openFDA anyway).
const MAX_TEXT: usize = 2000;

/// Query of `GET /api/predicates/search`. A parameter sent empty (`product_code=`) counts as
/// absent: forms and generated clients send blank fields, and "no filter" is what they mean.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: what the device is and does (the first 2000 characters are used). `q` or
    /// `product_code` is required, and `q` alone needs a searchable word.
    pub q: Option<String>,
    /// FDA product code, three capital letters (e.g. `FRN`); filters the candidates. Empty
    /// means no filter.
    #[param(pattern = "^([A-Z]{3})?$")]
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
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
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
    /// Free text; absent, null or blank means the project's device type, else its name.
    pub q: Option<String>,
    /// Three capital letters; absent or null means the project's product code.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub product_code: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub decision_date_from: Option<String>,
    /// Not before `decision_date_from`.
    #[schema(value_type = Option<String>, format = Date)]
    pub decision_date_to: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A date exactly as JSON Schema's `date` format reads it: `YYYY-MM-DD`, four-digit year, a real
/// day. chrono alone would also take one-digit months and signed or longer years.
fn date(fields: &mut FieldErrors, name: &str, raw: Option<&str>) -> Option<NaiveDate> {
    let raw = raw?;
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if shaped => Some(d),
        _ => {
            fields.insert(name.into(), vec!["must be a date YYYY-MM-DD".into()]);
            None
        }
    }
}

/// Validates a search; `fallback_code` is the project's product code.
pub fn validate(p: &SearchParams, fallback_code: Option<&str>) -> ApiResult<PredicateQuery> {
    let mut fields = FieldErrors::new();
    let text =
        p.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(MAX_TEXT).collect::<String>());
    let product_code = match p.product_code.as_deref() {
        Some(code) if is_product_code(code) => Some(code.to_string()),
        Some(_) => {
            fields.insert(
                "product_code".into(),
                vec!["must be three capital letters, e.g. FRN".into()],
            );
            None
        }
        None => fallback_code.map(String::from),
    };
    let from = date(
        &mut fields,
        "decision_date_from",
        p.decision_date_from.as_deref(),
    );
    let to = date(
        &mut fields,
        "decision_date_to",
        p.decision_date_to.as_deref(),
    );
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            fields.insert(
                "decision_date_to".into(),
                vec!["must not be before decision_date_from".into()],
            );
        }
    }
    let limit = p.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        fields.insert("limit".into(), vec!["must be between 1 and 100".into()]);
    }
    if fields.is_empty() {
        match (&text, &product_code) {
            (None, None) => {
                fields.insert("q".into(), vec!["q or product_code is required".into()]);
            }
            (Some(t), None) if significant_words(t).is_empty() => {
                fields.insert(
                    "q".into(),
                    vec!["has no searchable words; describe the device".into()],
                );
            }
            _ => {}
        }
    }
    ApiError::check(fields)?;
    Ok(PredicateQuery {
        text,
        product_code,
        decision_date_from: from,
        decision_date_to: to,
        // In 1..=100 after the check above.
        limit: limit as usize,
    })
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

    fn check(from: &str) -> Option<NaiveDate> {
        date(&mut FieldErrors::new(), "d", Some(from))
    }

    #[test]
    fn dates_are_full_dates_only() {
        assert_eq!(check("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in [
            "2023-02-29",
            "2024-1-05",
            "+2024-01-05",
            "12024-01-05",
            "2024-13-01",
            " 2024-01-05",
            "",
        ] {
            assert_eq!(check(bad), None, "{bad}");
        }
    }

    #[test]
    fn empty_query_values_are_absent_and_codes_are_exact() {
        let p = SearchParams {
            q: Some("pump".into()),
            product_code: Some(String::new()),
            decision_date_from: Some(String::new()),
            ..SearchParams::default()
        }
        .empty_as_absent();
        let q = validate(&p, None).unwrap();
        assert_eq!(q.product_code, None);
        assert_eq!(q.decision_date_from, None);
        let padded = SearchParams {
            product_code: Some(" FRN".into()),
            ..SearchParams::default()
        };
        assert!(validate(&padded, None).is_err());
    }
}
