//! `/api/classification/*` (product codes and suggestions from the local FDA mirror) and a
//! project's classification (`/api/projects/{id}/classification`).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::db::classifications;
use crate::db::mirror::{self, ProductCode};
use crate::domain::classification::DeviceClassification;
use crate::domain::classify::Suggestion;
use crate::domain::ids;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::extract::{Json, Path, Query};
use crate::http::projects::owned;
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_product_code))
        .routes(routes!(suggest))
        .routes(routes!(start_classification))
        .routes(routes!(get_classification))
}

/// One product code of FDA's classification database.
#[utoipa::path(get, path = "/api/classification/product-codes/{code}", operation_id = "getProductCode", tag = "classification",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Three capital letters, e.g. `FRN`", pattern = "^[A-Z]{3}$", max_length = 3)),
    responses((status = 200, description = "The product code", body = ProductCode),
              (status = 422, description = "Not three capital letters", body = crate::http::error::ErrorBody)))]
async fn get_product_code(
    State(state): State<AppState>,
    _auth: AuthUser,
    Path(code): Path<String>,
) -> ApiResult<Json<ProductCode>> {
    if ids::ProductCode::parse(&code).is_none() {
        return Err(ApiError::field(
            "code",
            "must be three capital letters, e.g. FRN",
        ));
    }
    mirror::find_product_code(&state.db, &code)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("product code {code}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestQuery {
    /// What the device is and does, in free text (1..2000 characters, not only whitespace).
    // The pattern spells out the characters `str::trim` removes (Unicode White_Space): `\S`
    // means different sets in ECMA, Python and Rust regexes.
    #[param(
        min_length = 1,
        max_length = 2000,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub q: String,
    /// 1..20, default 5.
    #[param(minimum = 1, maximum = 20)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions {
    /// Best first.
    pub results: Vec<Suggestion>,
    /// False means "no confident suggestion": no product code is more likely right than wrong
    /// for this text (the results are alternatives to review, or none matched).
    pub confident: bool,
}

/// Product codes ranked for a free-text description (empty when no word matches).
#[utoipa::path(get, path = "/api/classification/suggest", operation_id = "suggestProductCodes", tag = "classification",
    security(("bearer" = [])), params(SuggestQuery),
    responses((status = 200, description = "Ranked product codes", body = Suggestions)))]
async fn suggest(
    State(state): State<AppState>,
    _auth: AuthUser,
    Query(query): Query<SuggestQuery>,
) -> ApiResult<Json<Suggestions>> {
    // The length is the raw one, as the schema's maxLength counts it.
    let q = query.q.trim();
    if q.is_empty() || query.q.chars().count() > 2000 {
        return Err(ApiError::field(
            "q",
            "must be 1 to 2000 characters, not only whitespace",
        ));
    }
    let limit = query.limit.unwrap_or(5);
    if !(1..=20).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 20"));
    }
    let index = state.assistant.classifier().index(&state.db).await?;
    let results = index.suggest(q, limit);
    Ok(Json(Suggestions {
        confident: results.first().is_some_and(|s| s.confident),
        results,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClassificationStarted {
    pub message: String,
    pub classification: DeviceClassification,
}

/// Classifies the project from its name, device type, description and intended use, and stores
/// the result with an assistant interaction and an audit row.
#[utoipa::path(post, path = "/api/projects/{id}/classification/start", operation_id = "classifyProject", tag = "classification",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses((status = 200, description = "The stored classification", body = ClassificationStarted),
              (status = 422, description = "The project's name, device type, description and intended use match no product code (too little text); describe the device", body = crate::http::error::ErrorBody)))]
async fn start_classification(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<ClassificationStarted>> {
    let project = owned(&state, &auth, id).await?;
    let outcome = state
        .assistant
        .classify_project(&auth.actor, auth.user.id, &project)
        .await?;
    let Some((classification, _)) = outcome else {
        return Err(ApiError::field(
            "description",
            "no FDA product code matches the project's name, device type, description or intended use; describe the device",
        ));
    };
    Ok(Json(ClassificationStarted {
        message: format!(
            "project {id} classified as {} (class {}, {})",
            classification.product_code,
            classification.device_class,
            classification.regulatory_pathway
        ),
        classification,
    }))
}

/// The project's latest classification.
#[utoipa::path(get, path = "/api/projects/{id}/classification", operation_id = "getProjectClassification", tag = "classification",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses((status = 200, description = "The latest classification", body = DeviceClassification)))]
async fn get_classification(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<DeviceClassification>> {
    owned(&state, &auth, id).await?;
    classifications::latest(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("classification of project {id}")))
}
