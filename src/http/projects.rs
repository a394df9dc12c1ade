//! `/api/projects`: create, list, read, update with `If-Match`, soft delete.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::audit::Change;
use crate::db::projects::{self, ProjectFilter};
use crate::domain::project::Project;
use crate::domain::project::{CreateProject, UpdateProject, STATUSES};
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::error::ErrorBody;
use crate::http::extract::{json_with_total, max_chars, Json, Page, Path, Query};
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(
            get_project,
            replace_project,
            update_project,
            delete_project
        ))
        .merge(super::project_reports::routes())
}

/// A project with its `ETag`.
fn with_etag(project: Project, status: StatusCode) -> Response {
    let etag = format!("\"{}\"", project.version);
    let mut response = (status, Json(project)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The caller's live project or 404 (also when someone else owns it).
pub async fn owned(state: &AppState, auth: &AuthUser, id: i64) -> ApiResult<Project> {
    projects::find_owned(&state.db, id, auth.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {id}")))
}

/// Creates a project (status `draft`).
#[utoipa::path(post, path = "/api/projects", operation_id = "createProject", tag = "projects", security(("bearer" = [])),
    request_body = CreateProject,
    responses((status = 201, description = "Created; Location and ETag set", body = Project)))]
pub async fn create_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateProject>,
) -> ApiResult<Response> {
    let new = body.validate()?;
    let mut work = state.audit.begin().await?;
    let project = projects::insert(work.tx(), auth.user.id, &new).await?;
    work.commit(
        &auth.actor,
        Change {
            action: "project.create",
            entity_type: "project",
            entity_id: Some(project.id.to_string()),
            project_id: Some(project.id),
            before: None,
            after: Some(json!(project)),
        },
    )
    .await?;
    let location = format!("/api/projects/{}", project.id);
    let mut response = with_etag(project, StatusCode::CREATED);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProjects {
    /// Words to find in name, description or device type, at most 200 characters.
    #[param(max_length = 200)]
    pub search: Option<String>,
    /// `draft`, `active`, `in_progress` or `completed` (empty means any).
    #[param(pattern = "^(draft|active|in_progress|completed)?$", max_length = 11)]
    pub status: Option<String>,
    /// At most 255 characters.
    #[param(max_length = 255)]
    pub device_type: Option<String>,
    /// 1..100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// The caller's projects, most recently changed first; total in `X-Total-Count`.
#[utoipa::path(get, path = "/api/projects", operation_id = "listProjects", tag = "projects", security(("bearer" = [])),
    params(ListProjects),
    responses((status = 200, description = "Projects", body = [Project])))]
pub async fn list_projects(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<ListProjects>,
) -> ApiResult<Response> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .validate()?;
    let status = q.status.filter(|s| !s.is_empty());
    if let Some(status) = &status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::field(
                "status",
                "must be draft, active, in_progress or completed",
            ));
        }
    }
    let trimmed = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    max_chars("search", q.search.as_deref(), 200)?;
    max_chars("device_type", q.device_type.as_deref(), 255)?;
    let filter = ProjectFilter {
        search: trimmed(q.search),
        status,
        device_type: trimmed(q.device_type),
    };
    let user = auth.user.id;
    let key = format!(
        "projects {user} {limit} {offset} {:?} {:?} {:?}",
        filter.search, filter.status, filter.device_type
    );
    let version = projects::list_version(&state.db, user).await?;
    let (body, total) = state
        .pages
        .serve(
            key,
            version,
            render_list(&state, user, &filter, limit, offset),
        )
        .await?;
    Ok(json_with_total(body, total))
}

/// One page of the owner's projects as JSON, and the total.
async fn render_list(
    state: &AppState,
    user: i64,
    filter: &ProjectFilter,
    limit: i64,
    offset: i64,
) -> ApiResult<(String, i64)> {
    if let Some(page) = projects::list_json(&state.db, user, filter, limit, offset).await? {
        return Ok(page);
    }
    let (rows, total) = projects::list(&state.db, user, filter, limit, offset).await?;
    Ok((
        serde_json::to_string(&rows).map_err(anyhow::Error::from)?,
        total,
    ))
}

/// One project, with `ETag: "<version>"`.
#[utoipa::path(get, path = "/api/projects/{id}", operation_id = "getProject", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses((status = 200, description = "The project", body = Project)))]
async fn get_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(with_etag(owned(&state, &auth, id).await?, StatusCode::OK))
}

/// The version an `If-Match` header names; `None` when absent or `*`.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not valid".into()))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    // `W/"` + 18 digits + `"`: anything longer is no ETag of ours.
    if text.len() > 22 {
        return Err(ApiError::BadRequest(
            "If-Match must be an ETag from this API, e.g. \"3\"".into(),
        ));
    }
    let tag = text.trim_start_matches("W/").trim_matches('"');
    tag.parse::<i64>().map(Some).map_err(|_| {
        ApiError::BadRequest("If-Match must be an ETag from this API, e.g. \"3\"".into())
    })
}

async fn apply_update(
    state: AppState,
    auth: AuthUser,
    id: i64,
    headers: HeaderMap,
    body: UpdateProject,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let changes = body.validate()?;
    let mut work = state.audit.begin().await?;
    let current = projects::find_owned_for_update(work.tx(), id, auth.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {id}")))?;
    if let Some(version) = expected {
        if version != current.version {
            return Err(ApiError::PreconditionFailed(format!(
                "project {id} is at version {}, not {version}; reload and retry",
                current.version
            )));
        }
    }
    let updated = projects::update(work.tx(), &current, &changes)
        .await?
        .ok_or_else(|| {
            ApiError::PreconditionFailed(format!(
                "project {id} changed meanwhile; reload and retry"
            ))
        })?;
    work.commit(
        &auth.actor,
        Change {
            action: "project.update",
            entity_type: "project",
            entity_id: Some(id.to_string()),
            project_id: Some(id),
            before: Some(json!(current)),
            after: Some(json!(updated)),
        },
    )
    .await?;
    Ok(with_etag(updated, StatusCode::OK))
}

/// Partial update (same as PATCH). With `If-Match`, a stale version answers 412 and changes nothing.
#[utoipa::path(put, path = "/api/projects/{id}", operation_id = "replaceProject", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag last read, e.g. \"3\"", pattern = "^(\\*|(W/)?\"?[0-9]{1,18}\"?)$", max_length = 22)),
    request_body = UpdateProject,
    responses((status = 200, description = "The updated project", body = Project),
              (status = 412, description = "If-Match names an older version", body = ErrorBody)))]
async fn replace_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(body): Json<UpdateProject>,
) -> ApiResult<Response> {
    apply_update(state, auth, id, headers, body).await
}

/// Partial update. With `If-Match`, a stale version answers 412 and changes nothing.
#[utoipa::path(patch, path = "/api/projects/{id}", operation_id = "updateProject", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag last read, e.g. \"3\"", pattern = "^(\\*|(W/)?\"?[0-9]{1,18}\"?)$", max_length = 22)),
    request_body = UpdateProject,
    responses((status = 200, description = "The updated project", body = Project),
              (status = 412, description = "If-Match names an older version", body = ErrorBody)))]
async fn update_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(body): Json<UpdateProject>,
) -> ApiResult<Response> {
    apply_update(state, auth, id, headers, body).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

/// Soft delete: the project answers 404 afterwards; its rows and audit history stay.
#[utoipa::path(delete, path = "/api/projects/{id}", operation_id = "deleteProject", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag last read", pattern = "^(\\*|(W/)?\"?[0-9]{1,18}\"?)$", max_length = 22),
           ("X-Change-Reason" = Option<String>, Header, nullable = false, max_length = 500, description = "Why; required when the deployment demands reasons for deletes")),
    responses((status = 200, description = "Deleted", body = Message),
              (status = 412, description = "If-Match names an older version", body = ErrorBody),
              (status = 422, description = "A reason is required and missing", body = ErrorBody)))]
async fn delete_project(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Json<Message>> {
    if state.config.audit_require_delete_reason && auth.actor.reason.is_none() {
        return Err(ApiError::field(
            "X-Change-Reason",
            "a reason is required to delete",
        ));
    }
    let expected = if_match(&headers)?;
    let mut work = state.audit.begin().await?;
    let current = projects::find_owned_for_update(work.tx(), id, auth.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {id}")))?;
    if expected.is_some_and(|v| v != current.version) {
        return Err(ApiError::PreconditionFailed(format!(
            "project {id} is at version {}",
            current.version
        )));
    }
    if !projects::soft_delete(work.tx(), &current).await? {
        return Err(ApiError::PreconditionFailed(format!(
            "project {id} changed meanwhile"
        )));
    }
    work.commit(
        &auth.actor,
        Change {
            action: "project.delete",
            entity_type: "project",
            entity_id: Some(id.to_string()),
            project_id: Some(id),
            before: Some(json!(current)),
            after: None,
        },
    )
    .await?;
    Ok(Json(Message {
        message: format!("project {id} deleted"),
    }))
}
