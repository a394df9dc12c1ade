//! `POST /api/agent/execute`: the frontend copilot's entry to the assistant's tasks.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::assistant::{ExecuteRequest, ExecuteResponse};
use crate::error::ApiResult;
use crate::http::auth::AuthUser;
use crate::http::extract::Json;
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(execute))
}

/// Runs a task (predicate search, predicate comparison, device classification) and records it
/// as an assistant interaction.
#[utoipa::path(post, path = "/api/agent/execute", operation_id = "executeTask", tag = "assistant", security(("bearer" = [])),
    request_body = ExecuteRequest,
    responses((status = 200, description = "The task's result", body = ExecuteResponse),
              (status = 404, description = "The project or predicate does not exist (or is someone else's)", body = crate::http::error::ErrorBody),
              (status = 422, description = "A field is invalid, or the task lacks what it needs: `predicate_comparison` without `project_id`, `predicate_search` with neither text nor a product code, `device_classification` whose text matches no product code; see fields", body = crate::http::error::ErrorBody),
              (status = 502, description = "openFDA answered something unreadable", body = crate::http::error::ErrorBody),
              (status = 503, description = "openFDA unavailable, rate limited or budget spent; see Retry-After", body = crate::http::error::ErrorBody),
              (status = 504, description = "openFDA did not answer in time; see Retry-After", body = crate::http::error::ErrorBody)))]
async fn execute(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<ExecuteRequest>,
) -> ApiResult<Json<ExecuteResponse>> {
    Ok(Json(
        state
            .assistant
            .execute(&auth.actor, auth.user.id, body)
            .await?,
    ))
}
