//! `/api/devices/510k/{k_number}`: one 510(k) record from the local mirror, with its safety
//! block (recalls, adverse-event counts, and whether each was checked).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::db::mirror::{self, Fda510k};
use crate::domain::ids::KNumber;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::extract::{Json, Path};
use crate::http::AppState;

/// A mirrored 510(k) with its safety block.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceRecord {
    #[serde(flatten)]
    pub record: Fda510k,
    pub safety: crate::domain::safety::Safety,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_510k))
}

/// One 510(k) or De Novo decision, with openFDA's field names, and its safety block from the
/// mirror (`recalls_status`/`events_status` say `no_data` when nothing of the kind was imported).
#[utoipa::path(get, path = "/api/devices/510k/{k_number}", operation_id = "get510kRecord", tag = "devices",
    security(("bearer" = [])),
    params(("k_number" = String, Path, description = "`K`, `DEN` or `BK` and six digits, e.g. `K872032`", pattern = "^(K|DEN|BK)[0-9]{6}$", max_length = 9)),
    responses((status = 200, description = "The 510(k) record", body = DeviceRecord),
              (status = 404, description = "No such 510(k) in the mirror", body = crate::http::error::ErrorBody),
              (status = 422, description = "Not a 510(k) number", body = crate::http::error::ErrorBody)))]
async fn get_510k(
    State(state): State<AppState>,
    _auth: AuthUser,
    Path(k_number): Path<String>,
) -> ApiResult<Json<DeviceRecord>> {
    if KNumber::parse(&k_number).is_none() {
        return Err(ApiError::field(
            "k_number",
            "must be K, DEN or BK followed by six digits, e.g. K872032",
        ));
    }
    let record = mirror::find_510k(&state.db, &k_number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("510(k) {k_number}")))?;
    let safety = crate::search::safety::of_device(
        &state.db,
        &record.k_number,
        record.applicant.as_deref(),
        record.product_code.as_deref(),
    )
    .await;
    Ok(Json(DeviceRecord { record, safety }))
}
