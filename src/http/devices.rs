//! `/api/devices/510k/{k_number}`: one 510(k) record from the local mirror.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::db::mirror::{self, Fda510k};
use crate::domain::ids::KNumber;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::extract::{Json, Path};
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_510k))
}

/// One 510(k) or De Novo decision, with openFDA's field names.
#[utoipa::path(get, path = "/api/devices/510k/{k_number}", operation_id = "get510kRecord", tag = "devices",
    security(("bearer" = [])),
    params(("k_number" = String, Path, description = "`K`, `DEN` or `BK` and six digits, e.g. `K872032`", pattern = "^(K|DEN|BK)[0-9]{6}$")),
    responses((status = 200, description = "The 510(k) record", body = Fda510k),
              (status = 422, description = "Not a 510(k) number", body = crate::http::error::ErrorBody)))]
async fn get_510k(
    State(state): State<AppState>,
    _auth: AuthUser,
    Path(k_number): Path<String>,
) -> ApiResult<Json<Fda510k>> {
    if KNumber::parse(&k_number).is_none() {
        return Err(ApiError::field(
            "k_number",
            "must be K, DEN or BK followed by six digits, e.g. K872032",
        ));
    }
    mirror::find_510k(&state.db, &k_number)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("510(k) {k_number}")))
}
