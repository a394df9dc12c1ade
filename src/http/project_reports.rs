//! A project's dashboard and its export (JSON or RFC 4180 CSV) as a download.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::db::agent::{self, AgentInteraction};
use crate::db::{classifications, predicates};
use crate::domain::classification::DeviceClassification;
use crate::domain::predicate::{selected_safety, PredicateDevice, PredicateSafety};
use crate::domain::project::Project;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::AuthUser;
use crate::http::csv_out::CsvOut;
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
    /// The selected predicates' recalls and adverse events, and whether they were checked.
    pub selected_predicate_safety: Vec<PredicateSafety>,
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
        selected_predicate_safety: selected_safety(&predicate_devices),
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
    #[param(pattern = "^(json|csv)$", max_length = 4)]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectExport {
    pub project: Project,
    pub classification: Option<DeviceClassification>,
    pub predicate_devices: Vec<PredicateDevice>,
    /// The selected predicates' recalls and adverse events, and whether they were checked.
    pub selected_predicate_safety: Vec<PredicateSafety>,
    pub agent_interactions: Vec<AgentInteraction>,
    pub exported_at: chrono::DateTime<chrono::Utc>,
}

/// The project with its classification, predicates and assistant interactions, as a download.
#[utoipa::path(get, path = "/api/projects/{id}/export", operation_id = "exportProject", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), ExportQuery),
    responses((status = 200, description = "A download: JSON, or RFC 4180 CSV with format=csv (a cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so spreadsheets do not run it as a formula)",
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
    let (classification, predicate_devices) = tokio::try_join!(
        classifications::latest(&state.db, id),
        predicates::for_project(&state.db, id),
    )?;
    let safety = selected_safety(&predicate_devices);
    let exported_at = crate::db::now();
    let stamp = exported_at.format("%Y%m%d");
    let csv = format == "csv";
    // The parts read at once are bounded (one project, its candidates); the interactions, up to
    // EXPORT_INTERACTIONS of them, are read and written EXPORT_PAGE at a time.
    let head = if csv {
        let mut w = csv_writer();
        w.row(["section", "key", "field", "value"])
            .and_then(|_| {
                write_object(
                    &mut w,
                    "project",
                    &project.id.to_string(),
                    to_json(&project),
                )
            })
            .map_err(|e| ApiError::Internal(e.into()))?;
        if let Some(c) = &classification {
            write_object(&mut w, "classification", &c.product_code, to_json(c))
                .map_err(|e| ApiError::Internal(e.into()))?;
        }
        for p in &predicate_devices {
            write_object(&mut w, "predicate", &p.k_number, to_json(p))
                .map_err(|e| ApiError::Internal(e.into()))?;
        }
        write_safety(&mut w, &safety).map_err(|e| ApiError::Internal(e.into()))?;
        csv_bytes(w).map_err(|e| ApiError::Internal(e.into()))?
    } else {
        // The fields in `ProjectExport`'s order, so the document reads as that type.
        format!(
            "{{\"project\":{},\"classification\":{},\"predicate_devices\":{},\"selected_predicate_safety\":{},\"agent_interactions\":[",
            to_json(&project),
            to_json(&classification),
            to_json(&predicate_devices),
            to_json(&safety)
        )
        .into_bytes()
    };
    let tail = if csv {
        Vec::new()
    } else {
        format!("],\"exported_at\":{}}}", to_json(&exported_at)).into_bytes()
    };
    let pages = interaction_pages(state.db.clone(), id, csv);
    let body = futures::stream::once(async move { Ok(axum::body::Bytes::from(head)) })
        .chain(pages)
        .chain(futures::stream::once(async move {
            Ok(axum::body::Bytes::from(tail))
        }));
    let (content_type, filename) = if csv {
        (
            "text/csv; charset=utf-8",
            format!("project-{id}-{stamp}.csv"),
        )
    } else {
        ("application/json", format!("project-{id}-{stamp}.json"))
    };
    let response = (
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(body),
    )
        .into_response();
    Ok(download(response, &filename))
}

/// Interactions an export carries at most, and how many it reads at a time.
const EXPORT_INTERACTIONS: i64 = 10_000;
const EXPORT_PAGE: i64 = 200;

/// The interactions of project `id`, newest first, as JSON array items (comma-separated) or
/// CSV rows, one page per chunk.
fn interaction_pages(
    db: crate::db::Db,
    id: i64,
    csv: bool,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    // (the id the next page starts below, interactions written so far); None when done.
    futures::stream::try_unfold(Some((None::<i64>, 0i64)), move |state| {
        let db = db.clone();
        async move {
            let Some((before, sent)) = state else {
                return Ok(None);
            };
            let limit = EXPORT_PAGE.min(EXPORT_INTERACTIONS - sent);
            let rows = if limit > 0 {
                agent::page_before(&db, id, before, limit)
                    .await
                    .map_err(std::io::Error::other)?
            } else {
                Vec::new()
            };
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(None);
            };
            let mut chunk = Vec::new();
            if csv {
                let mut w = csv_writer();
                for a in &rows {
                    write_object(&mut w, "agent_interaction", &a.id.to_string(), to_json(a))
                        .map_err(std::io::Error::other)?;
                }
                chunk = csv_bytes(w).map_err(std::io::Error::other)?;
            } else {
                for (i, a) in rows.iter().enumerate() {
                    if sent > 0 || i > 0 {
                        chunk.push(b',');
                    }
                    serde_json::to_writer(&mut chunk, a).map_err(std::io::Error::other)?;
                }
            }
            let sent = sent + rows.len() as i64;
            let next = (rows.len() as i64 == limit).then_some((Some(last), sent));
            Ok(Some((axum::body::Bytes::from(chunk), next)))
        }
    })
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

/// The export's CSV is one table: `section, key, field, value` rows, so every part fits
/// RFC 4180 CSV. Written in parts (a writer per chunk), with no header of their own.
/// Every cell goes through `CsvOut`, which neutralises spreadsheet formulas.
fn csv_writer() -> CsvOut {
    CsvOut::default()
}

fn csv_bytes(w: CsvOut) -> Result<Vec<u8>, csv::Error> {
    w.finish().map(String::into_bytes)
}

/// One object as `section, key, field, value` rows, one per field.
fn write_object(
    w: &mut CsvOut,
    section: &str,
    key: &str,
    value: serde_json::Value,
) -> Result<(), csv::Error> {
    if let serde_json::Value::Object(map) = value {
        for (field, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            w.row([section, key, field.as_str(), text.as_str()])?;
        }
    }
    Ok(())
}

/// The selected predicates' safety: one status row each, then one row per recall.
fn write_safety(w: &mut CsvOut, safety: &[PredicateSafety]) -> Result<(), csv::Error> {
    for s in safety {
        let b = &s.safety;
        let status = serde_json::json!({
            "recalls_status": b.recalls_status,
            "recalls": b.recalls.len(),
            "recalls_data_date": b.recalls_data_date,
            "events_status": b.events_status,
            "note": b.note,
        });
        write_object(w, "predicate_safety", &s.k_number, status)?;
        for r in &b.recalls {
            write_object(w, "predicate_recall", &s.k_number, to_json(r))?;
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
