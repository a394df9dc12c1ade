//! Predicate search and a project's predicates: search, store, list, select, compare.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::projects::owned;
use crate::app::AppState;
use crate::audit::{self, Change};
use crate::auth::AuthUser;
use crate::db::predicates::{self as store, PredicateDevice};
use crate::db::projects;
use crate::domain::comparison::Comparison;
use crate::domain::ids::is_product_code;
use crate::domain::ranking::Ranked;
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::http::extract::{with_total, Json, Path, Query};
use crate::openfda::query::significant_words;
use crate::search::project::{comparison, search_and_store, subject_text, InteractionContext};
use crate::search::{self, Failure, PredicateQuery, SearchMeta};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_predicates))
        .routes(routes!(search_for_project))
        .routes(routes!(list_predicates))
        .routes(routes!(select_predicate))
        .routes(routes!(compare_predicate))
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from(secs));
        }
        response
    }
}

/// Free text longer than this is cut (only the first words reach openFDA anyway).
const MAX_TEXT: usize = 2000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: what the device is and does. `q` or `product_code` is required.
    pub q: Option<String>,
    /// FDA product code, three capital letters (e.g. `FRN`); filters the candidates.
    pub product_code: Option<String>,
    /// Earliest decision date, `YYYY-MM-DD`.
    pub decision_date_from: Option<String>,
    /// Latest decision date, `YYYY-MM-DD`.
    pub decision_date_to: Option<String>,
    /// Results, 1..100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn date(fields: &mut FieldErrors, name: &str, raw: Option<&str>) -> Option<NaiveDate> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            fields.insert(name.into(), vec!["must be a date YYYY-MM-DD".into()]);
            None
        }
    }
}

/// Validates a search; `fallback_code` is the project's product code.
fn validate(
    p: &SearchParams,
    fallback_code: Option<&str>,
    needs_input: bool,
) -> ApiResult<PredicateQuery> {
    let mut fields = FieldErrors::new();
    let text =
        p.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(MAX_TEXT).collect::<String>());
    let product_code = match p
        .product_code
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
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
    if needs_input && fields.is_empty() {
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
        limit: limit as usize,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<Ranked>,
    pub meta: SearchMeta,
}

/// Ranked 510(k) predicate candidates (only substantially equivalent decisions), best first;
/// ties by K-number.
#[utoipa::path(get, path = "/api/predicates/search", tag = "predicates", security(("bearer" = [])),
    params(SearchParams),
    responses((status = 200, description = "Ranked candidates", body = SearchResponse),
              (status = 502, description = "openFDA answered something unreadable", body = crate::error::ErrorBody),
              (status = 503, description = "openFDA unavailable, rate limited or budget spent; see Retry-After", body = crate::error::ErrorBody),
              (status = 504, description = "openFDA did not answer in time; see Retry-After", body = crate::error::ErrorBody)))]
async fn search_predicates(
    State(state): State<AppState>,
    _auth: AuthUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchResponse>, Failure> {
    let query = validate(&params, None, true)?;
    let subject = query.text.clone().unwrap_or_default();
    let found = search::predicates(&state, &query, &subject).await?;
    Ok(Json(SearchResponse {
        results: found.results,
        meta: found.meta,
    }))
}

/// Body of a project search; every field is optional (defaults from the project).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSearchBody {
    pub q: Option<String>,
    pub product_code: Option<String>,
    pub decision_date_from: Option<String>,
    pub decision_date_to: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// An optional JSON body: empty means defaults.
fn optional_json<T: Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::field("body", e.to_string()),
        _ => ApiError::BadRequest(format!("request body is not valid JSON: {e}")),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectSearchResponse {
    pub message: String,
    pub results: Vec<PredicateDevice>,
    pub meta: SearchMeta,
}

/// Searches for the project's device and stores the ranked candidates (earlier selections are
/// kept), with an assistant interaction and an audit row.
#[utoipa::path(post, path = "/api/projects/{id}/predicates/search", tag = "predicates", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    request_body(content = ProjectSearchBody, description = "Optional; q defaults to the project's device type and name, product_code to the project's"),
    responses((status = 200, description = "Stored candidates", body = ProjectSearchResponse),
              (status = 503, description = "openFDA unavailable, rate limited or budget spent; see Retry-After", body = crate::error::ErrorBody),
              (status = 504, description = "openFDA did not answer in time; see Retry-After", body = crate::error::ErrorBody)))]
async fn search_for_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ProjectSearchResponse>, Failure> {
    let body: ProjectSearchBody = optional_json(&headers, &body)?;
    let project = owned(&state, &auth, id).await?;
    let params = SearchParams {
        q: body
            .q
            .clone()
            .or_else(|| project.device_type.clone())
            .or_else(|| Some(project.name.clone())),
        product_code: body.product_code.clone(),
        decision_date_from: body.decision_date_from.clone(),
        decision_date_to: body.decision_date_to.clone(),
        limit: body.limit,
    };
    let query = validate(&params, project.product_code.as_deref(), true)?;
    let subject = subject_text(&project, body.q.as_deref());
    let session = uuid::Uuid::new_v4().to_string();
    let input = json!({"q": query.text, "product_code": query.product_code, "limit": query.limit,
        "decision_date_from": query.decision_date_from, "decision_date_to": query.decision_date_to});
    let ctx = InteractionContext {
        session_id: &session,
        task_type: "predicate_search",
        input,
    };
    let stored = search_and_store(
        &state,
        &auth.actor,
        auth.user.id,
        &project,
        &query,
        &subject,
        ctx,
    )
    .await?;
    Ok(Json(ProjectSearchResponse {
        message: format!(
            "{} predicate candidates stored for project {id}",
            stored.predicates.len()
        ),
        results: stored.predicates,
        meta: stored.result.meta,
    }))
}

/// The project's stored candidates, best first; count in `X-Total-Count`.
#[utoipa::path(get, path = "/api/projects/{id}/predicates", tag = "predicates", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses((status = 200, description = "Stored candidates", body = [PredicateDevice])))]
async fn list_predicates(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    owned(&state, &auth, id).await?;
    let rows = store::for_project(&state.db, id).await?;
    let total = rows.len() as i64;
    Ok(with_total(rows, total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectPredicate {
    pub is_selected: bool,
}

/// Selects or deselects a candidate (audited).
#[utoipa::path(patch, path = "/api/projects/{id}/predicates/{predicate_id}", tag = "predicates", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), ("predicate_id" = i64, Path, description = "Stored candidate id")),
    request_body = SelectPredicate,
    responses((status = 200, description = "The updated candidate", body = PredicateDevice)))]
async fn select_predicate(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, predicate_id)): Path<(i64, i64)>,
    Json(body): Json<SelectPredicate>,
) -> ApiResult<Json<PredicateDevice>> {
    owned(&state, &auth, id).await?;
    let not_found = || ApiError::not_found(format!("predicate {predicate_id} of project {id}"));
    let before = store::find(&state.db, id, predicate_id)
        .await?
        .ok_or_else(not_found)?;
    let mut tx = state.db.begin().await?;
    let after = store::set_selected(&mut tx, id, predicate_id, body.is_selected)
        .await?
        .ok_or_else(not_found)?;
    projects::touch(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &auth.actor,
        Change {
            action: if body.is_selected {
                "predicate.select"
            } else {
                "predicate.deselect"
            },
            entity_type: "predicate_device",
            entity_id: Some(predicate_id.to_string()),
            project_id: Some(id),
            before: Some(json!({"k_number": before.k_number, "is_selected": before.is_selected})),
            after: Some(json!({"k_number": after.k_number, "is_selected": after.is_selected})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// The substantial-equivalence table of a stored candidate against the project's device.
#[utoipa::path(get, path = "/api/projects/{id}/predicates/{predicate_id}/comparison", tag = "predicates", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), ("predicate_id" = i64, Path, description = "Stored candidate id")),
    responses((status = 200, description = "Comparison table, risk and testing recommendations", body = Comparison)))]
async fn compare_predicate(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, predicate_id)): Path<(i64, i64)>,
) -> ApiResult<Json<Comparison>> {
    let project = owned(&state, &auth, id).await?;
    let predicate = store::find(&state.db, id, predicate_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("predicate {predicate_id} of project {id}")))?;
    Ok(Json(comparison(&state, &project, &predicate).await?))
}
