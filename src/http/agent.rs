//! `POST /api/agent/execute`: the frontend copilot's entry to the assistant's tasks; and the
//! admin's replay of a recorded answer.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::assistant::{ExecuteRequest, ExecuteResponse, Replay};
use crate::error::ApiResult;
use crate::http::auth::{AdminUser, AuthUser};
use crate::http::extract::{Json, Path};
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(execute))
        .routes(routes!(replay))
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

/// Computes a recorded suggestion or predicate search again, on the data it records (mirror
/// imports or openFDA's date) and with today's rules, and says whether the answer is identical.
#[utoipa::path(post, path = "/api/admin/interactions/{id}/replay", operation_id = "replayInteraction", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Assistant interaction id")),
    responses((status = 200, description = "The recorded and the recomputed answer, and whether data and rules are the same", body = Replay),
              (status = 404, description = "No such interaction", body = crate::http::error::ErrorBody),
              (status = 409, description = "The interaction records no provenance (recorded before answers were replayable, or a comparison)", body = crate::http::error::ErrorBody),
              (status = 502, description = "openFDA answered something unreadable", body = crate::http::error::ErrorBody),
              (status = 503, description = "openFDA unavailable, rate limited or budget spent; see Retry-After", body = crate::http::error::ErrorBody),
              (status = 504, description = "openFDA did not answer in time; see Retry-After", body = crate::http::error::ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Replay>> {
    Ok(Json(state.assistant.replay(id).await?))
}
