//! A project's dashboard and its export (JSON or RFC 4180 CSV) as a download.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::db::agent::{self, AgentInteraction};
use crate::db::{classifications, predicates};
use crate::domain::classification::DeviceClassification;
use crate::domain::predicate::PredicateDevice;
use crate::domain::project::Project;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::extract::{Json, Path, Query};
use crate::http::projects::owned;
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(export))
}

/// One of the four steps of a 510(k) preparation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressStep {
    /// `classification`, `predicate_search`, `predicate_comparison` or `documents`.
    pub step: String,
    pub completed: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub steps: Vec<ProgressStep>,
    pub completed_steps: u32,
    pub total_steps: u32,
    /// 0..100.
    pub percentage: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Statistics {
    pub total_predicates: i64,
    pub selected_predicates: i64,
    pub average_confidence: Option<f64>,
    pub agent_interactions: i64,
    pub documents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub project: Project,
    pub classification: Option<DeviceClassification>,
    pub predicate_devices: Vec<PredicateDevice>,
    pub progress: Progress,
    /// The newest assistant interactions (at most 10).
    pub recent_activity: Vec<AgentInteraction>,
    pub statistics: Statistics,
}

fn step(name: &str, completed: bool, detail: String) -> ProgressStep {
    ProgressStep {
        step: name.to_string(),
        completed,
        detail,
    }
}

/// Everything the project page shows; correct for a brand-new project.
#[utoipa::path(get, path = "/api/projects/{id}/dashboard", operation_id = "getProjectDashboard", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses((status = 200, description = "The dashboard", body = Dashboard)))]
async fn dashboard(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Dashboard>> {
    let project = owned(&state, &auth, id).await?;
    let (classification, predicate_devices, recent_activity, interactions, documents) = tokio::try_join!(
        classifications::latest(&state.db, id),
        predicates::for_project(&state.db, id),
        agent::for_project(&state.db, id, 10),
        agent::count_for_project(&state.db, id),
        predicates::document_count(&state.db, id),
    )?;
    let selected = predicate_devices.iter().filter(|p| p.is_selected).count() as i64;
    let total = predicate_devices.len() as i64;
    let average_confidence = (total > 0).then(|| {
        predicate_devices
            .iter()
            .map(|p| p.confidence_score)
            .sum::<f64>()
            / total as f64
    });
    let compared = predicate_devices
        .iter()
        .filter(|p| p.is_selected && p.compared_at.is_some())
        .count();
    let steps = vec![
        step(
            "classification",
            classification.is_some(),
            match &classification {
                Some(c) => format!("product code {}, class {}", c.product_code, c.device_class),
                None => "not classified yet".into(),
            },
        ),
        step(
            "predicate_search",
            total > 0,
            format!("{total} candidates found"),
        ),
        step(
            "predicate_comparison",
            selected > 0,
            format!("{selected} predicates selected, {compared} with a comparison"),
        ),
        step("documents", documents > 0, format!("{documents} documents")),
    ];
    let completed_steps = steps.iter().filter(|s| s.completed).count() as u32;
    let total_steps = steps.len() as u32;
    Ok(Json(Dashboard {
        project,
        classification,
        predicate_devices,
        progress: Progress {
            percentage: f64::from(completed_steps) * 100.0 / f64::from(total_steps),
            steps,
            completed_steps,
            total_steps,
        },
        recent_activity,
        statistics: Statistics {
            total_predicates: total,
            selected_predicates: selected,
            average_confidence,
            agent_interactions: interactions,
            documents,
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectExport {
    pub project: Project,
    pub classification: Option<DeviceClassification>,
    pub predicate_devices: Vec<PredicateDevice>,
    pub agent_interactions: Vec<AgentInteraction>,
    pub exported_at: chrono::DateTime<chrono::Utc>,
}

/// The project with its classification, predicates and assistant interactions, as a download.
#[utoipa::path(get, path = "/api/projects/{id}/export", operation_id = "exportProject", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), ExportQuery),
    responses((status = 200, description = "A download: JSON, or RFC 4180 CSV with format=csv",
               content((ProjectExport = "application/json"), (String = "text/csv")))))]
async fn export(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = q.format.as_deref().unwrap_or("json");
    if format != "json" && format != "csv" {
        return Err(ApiError::field("format", "must be json or csv"));
    }
    let project = owned(&state, &auth, id).await?;
    let (classification, predicate_devices, agent_interactions) = tokio::try_join!(
        classifications::latest(&state.db, id),
        predicates::for_project(&state.db, id),
        agent::for_project(&state.db, id, 10_000),
    )?;
    let data = ProjectExport {
        project,
        classification,
        predicate_devices,
        agent_interactions,
        exported_at: crate::db::now(),
    };
    let stamp = data.exported_at.format("%Y%m%d");
    if format == "json" {
        let filename = format!("project-{id}-{stamp}.json");
        Ok(download(Json(data).into_response(), &filename))
    } else {
        let csv = export_csv(&data).map_err(|e| ApiError::Internal(e.into()))?;
        let filename = format!("project-{id}-{stamp}.csv");
        let response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response();
        Ok(download(response, &filename))
    }
}

/// Marks a response as a file download.
pub fn download(mut response: Response, filename: &str) -> Response {
    if let Ok(value) = format!("attachment; filename=\"{filename}\"").parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// One table: `section, key, field, value` rows, so every part fits RFC 4180 CSV.
fn export_csv(data: &ProjectExport) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(["section", "key", "field", "value"])?;
    let write_object = |w: &mut csv::Writer<Vec<u8>>,
                        section: &str,
                        key: &str,
                        value: serde_json::Value|
     -> Result<(), csv::Error> {
        if let serde_json::Value::Object(map) = value {
            for (field, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                w.write_record([section, key, field.as_str(), text.as_str()])?;
            }
        }
        Ok(())
    };
    write_object(
        &mut w,
        "project",
        &data.project.id.to_string(),
        to_json(&data.project),
    )?;
    if let Some(c) = &data.classification {
        write_object(&mut w, "classification", &c.product_code, to_json(c))?;
    }
    for p in &data.predicate_devices {
        write_object(&mut w, "predicate", &p.k_number, to_json(p))?;
    }
    for a in &data.agent_interactions {
        write_object(&mut w, "agent_interaction", &a.id.to_string(), to_json(a))?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
