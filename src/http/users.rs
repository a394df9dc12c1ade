//! `/api/users`: the caller, user administration, API keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::accounts;
use crate::audit::Change;
use crate::db::users::{self, ApiKey, User};
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{AdminUser, AuthUser};
use crate::http::extract::{with_total, Json, Page, Path, Query};
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users))
        .routes(routes!(update_user))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

/// The caller.
#[utoipa::path(get, path = "/api/users/me", operation_id = "getCurrentUser", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The authenticated user", body = User)))]
async fn me(auth: AuthUser) -> Json<User> {
    Json(auth.user)
}

/// Every user (admin).
#[utoipa::path(get, path = "/api/users", operation_id = "listUsers", tag = "users", security(("bearer" = [])), params(Page),
    responses((status = 200, description = "Users by id; total in X-Total-Count", body = [User])))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> ApiResult<Response> {
    let (limit, offset) = page.validate()?;
    let (rows, total) = users::list(&state.db, limit, offset).await?;
    Ok(with_total(rows, total))
}

/// Admin changes to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// `user`, `auditor` or `admin`.
    #[schema(pattern = "^(user|auditor|admin)$", max_length = 7)]
    pub role: Option<String>,
    /// A disabled user is refused on every request at once.
    pub disabled: Option<bool>,
}

/// Changes a user's role or disables them (admin).
#[utoipa::path(patch, path = "/api/users/{id}", operation_id = "updateUser", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")), request_body = UpdateUser,
    responses((status = 200, description = "The updated user", body = User),
              (status = 409, description = "An admin cannot disable or demote themselves", body = crate::http::error::ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    Json(body): Json<UpdateUser>,
) -> ApiResult<Json<User>> {
    if let Some(role) = &body.role {
        if !crate::accounts::ROLES.contains(&role.as_str()) {
            return Err(ApiError::field("role", "must be user, auditor or admin"));
        }
    }
    if id == admin.user.id
        && (body.disabled == Some(true) || body.role.as_deref().is_some_and(|r| r != "admin"))
    {
        return Err(ApiError::Conflict(
            "admins cannot disable or demote themselves".into(),
        ));
    }
    let before = users::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    let mut work = state.audit.begin().await?;
    let after = users::update_admin_fields(work.tx(), id, body.role.as_deref(), body.disabled)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    work.commit(
        &admin.actor,
        Change {
            action: "user.update",
            entity_type: "user",
            entity_id: Some(id.to_string()),
            project_id: None,
            before: Some(json!(before)),
            after: Some(json!(after)),
        },
    )
    .await?;
    state.sign_in.account_changed();
    Ok(Json(after))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1..100 characters, to tell keys apart.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Optional expiry; a time already past gives a key that never works.
    #[schema(max_length = 64)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new key: the only answer that ever contains the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedApiKey {
    pub id: i64,
    pub name: String,
    /// `rk_...`; store it now, it is not shown again.
    pub key: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issues an API key for the caller.
#[utoipa::path(post, path = "/api/users/me/api-keys", operation_id = "createApiKey", tag = "users", security(("bearer" = [])),
    request_body = CreateApiKey,
    responses((status = 201, description = "The key, shown once", body = IssuedApiKey),
              (status = 403, description = "The caller signed in with an API key: keys are issued to a JWT sign-in (or by the CLI)", body = crate::http::error::ErrorBody)))]
async fn create_key(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateApiKey>,
) -> ApiResult<Response> {
    auth.require_jwt("issue API keys")?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "must be 1..100 characters"));
    }
    let (row, key) = accounts::issue_key(
        &state.audit,
        &auth.actor,
        auth.user.id,
        name,
        body.expires_at,
    )
    .await?;
    let issued = IssuedApiKey {
        id: row.id,
        name: row.name,
        key,
        created_at: row.created_at,
        expires_at: row.expires_at,
    };
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// The caller's keys (never the secrets).
#[utoipa::path(get, path = "/api/users/me/api-keys", operation_id = "listApiKeys", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Keys, oldest first", body = [ApiKey])))]
async fn list_keys(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(users::list_keys(&state.db, auth.user.id).await?))
}

/// Revokes a key at once, on every replica (admins may revoke any key).
#[utoipa::path(delete, path = "/api/users/me/api-keys/{id}", operation_id = "revokeApiKey", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "API key id")),
    responses((status = 200, description = "The revoked key", body = ApiKey)))]
async fn revoke_key(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApiKey>> {
    let revoked = accounts::revoke_key(&state.audit, &auth.actor, &auth.user, id).await?;
    state.sign_in.account_changed();
    Ok(Json(revoked))
}
