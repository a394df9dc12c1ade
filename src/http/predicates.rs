//! Predicate search and a project's predicates: search, store, list, select, compare.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::projects::owned;
use crate::assistant::{subject_text, InteractionContext};
use crate::audit::Change;
use crate::db::predicates as store;
use crate::db::projects;
use crate::domain::comparison::Comparison;
use crate::domain::predicate::PredicateDevice;
use crate::domain::ranking::Ranked;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::extract::{with_total, Json, Page, Path, Query};
use crate::http::predicate_input::{optional_json, ProjectSearchBody, SearchParams};
use crate::http::AppState;
use crate::search::{PredicateQuery, SearchDefaults, SearchMeta};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_predicates))
        .routes(routes!(search_for_project))
        .routes(routes!(list_predicates))
        .routes(routes!(select_predicate))
        .routes(routes!(compare_predicate))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<Ranked>,
    pub meta: SearchMeta,
}

/// Ranked 510(k) predicate candidates (only substantially equivalent decisions), best first;
/// ties by K-number.
#[utoipa::path(get, path = "/api/predicates/search", operation_id = "searchPredicates", tag = "predicates", security(("bearer" = [])),
    params(SearchParams),
    responses((status = 200, description = "Ranked candidates", body = SearchResponse),
              (status = 422, description = "A parameter is invalid, neither `q` nor `product_code` was given, `q` alone has no searchable word, or `decision_date_to` is before `decision_date_from`; see fields", body = crate::http::error::ErrorBody),
              (status = 502, description = "openFDA answered something unreadable", body = crate::http::error::ErrorBody),
              (status = 503, description = "openFDA unavailable, rate limited or budget spent; see Retry-After", body = crate::http::error::ErrorBody),
              (status = 504, description = "openFDA did not answer in time; see Retry-After", body = crate::http::error::ErrorBody)))]
async fn search_predicates(
    State(state): State<AppState>,
    _auth: AuthUser,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchResponse>> {
    let params = params.empty_as_absent();
    let defaults = SearchDefaults {
        text: None,
        product_code: None,
        limit: 50,
    };
    let query = PredicateQuery::parse(&params.request(), &defaults, "")?;
    let subject = query.text.clone().unwrap_or_default();
    let found = state.search.predicates(&query, &subject).await?;
    Ok(Json(SearchResponse {
        results: found.results,
        meta: found.meta,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectSearchResponse {
    pub message: String,
    pub results: Vec<PredicateDevice>,
    pub meta: SearchMeta,
}

/// Searches for the project's device and stores the ranked candidates (earlier selections are
/// kept), with an assistant interaction and an audit row.
#[utoipa::path(post, path = "/api/projects/{id}/predicates/search", operation_id = "searchProjectPredicates", tag = "predicates", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    request_body(content = Option<ProjectSearchBody>, description = "Optional; q defaults to the project's device type, else its name; product_code to the project's"),
    responses((status = 200, description = "Stored candidates", body = ProjectSearchResponse),
              (status = 422, description = "A field is invalid, `decision_date_to` is before `decision_date_from`, or the search (with the project's defaults) has neither a product code nor a searchable word; see fields", body = crate::http::error::ErrorBody),
              (status = 502, description = "openFDA answered something unreadable", body = crate::http::error::ErrorBody),
              (status = 503, description = "openFDA unavailable, rate limited or budget spent; see Retry-After", body = crate::http::error::ErrorBody),
              (status = 504, description = "openFDA did not answer in time; see Retry-After", body = crate::http::error::ErrorBody)))]
async fn search_for_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ProjectSearchResponse>> {
    let body: ProjectSearchBody = optional_json(&headers, &body)?;
    let project = owned(&state, &auth, id).await?;
    // A blank `q` means "no text of my own", like an absent one: the project's defaults apply.
    let own_text = body.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let defaults = SearchDefaults {
        text: project
            .device_type
            .as_deref()
            .or(Some(project.name.as_str())),
        product_code: project.product_code.as_deref(),
        limit: 50,
    };
    let query = PredicateQuery::parse(&body.request(), &defaults, "")?;
    let subject = subject_text(&project, own_text);
    let session = uuid::Uuid::new_v4().to_string();
    let input = json!({"q": query.text, "product_code": query.product_code, "limit": query.limit,
        "decision_date_from": query.decision_date_from, "decision_date_to": query.decision_date_to});
    let ctx = InteractionContext {
        session_id: &session,
        task_type: "predicate_search",
        input,
    };
    let stored = state
        .assistant
        .search_and_store(&auth.actor, auth.user.id, &project, &query, &subject, ctx)
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

/// A page of the project's stored candidates, best first; the total in `X-Total-Count`.
#[utoipa::path(get, path = "/api/projects/{id}/predicates", operation_id = "listProjectPredicates", tag = "predicates", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), Page),
    responses((status = 200, description = "Stored candidates", body = [PredicateDevice])))]
async fn list_predicates(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> ApiResult<Response> {
    let (limit, offset) = page.validate()?;
    owned(&state, &auth, id).await?;
    let (rows, total) = store::page(&state.db, id, limit, offset).await?;
    Ok(with_total(rows, total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectPredicate {
    pub is_selected: bool,
}

/// Selects or deselects a candidate (audited).
#[utoipa::path(patch, path = "/api/projects/{id}/predicates/{predicate_id}", operation_id = "selectPredicate", tag = "predicates", security(("bearer" = [])),
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
    let mut work = state.audit.begin().await?;
    let after = store::set_selected(work.tx(), id, predicate_id, body.is_selected)
        .await?
        .ok_or_else(not_found)?;
    projects::touch(work.tx(), id).await?;
    work.commit(
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
    Ok(Json(after))
}

/// The substantial-equivalence table of a stored candidate against the project's device.
#[utoipa::path(get, path = "/api/projects/{id}/predicates/{predicate_id}/comparison", operation_id = "compareProjectPredicate", tag = "predicates", security(("bearer" = [])),
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
    Ok(Json(
        state.assistant.comparison(&project, &predicate).await?,
    ))
}
