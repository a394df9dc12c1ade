//! `/api/audit`: reading, exporting and verifying the tamper-evident trail.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::audit::offline::{csv_trailer, export_links, ChainLink};
use crate::audit::{self, format_at, Checkpoint, Verification};
use crate::db::audit::{self as store, AuditFilter, AuditRow};
use crate::db::projects;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{AuditorUser, AuthUser};
use crate::http::csv_out::CsvOut;
use crate::http::extract::{max_chars, serialised_json, Json, Page, Path, Query};
use crate::http::project_reports::download;
use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(project_trail))
        .routes(routes!(all_events))
        .routes(routes!(export))
        .routes(routes!(project_integrity))
        .routes(routes!(verify_all))
}

/// One row of the trail as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    /// Server UTC time, microseconds.
    pub at: String,
    pub actor_id: Option<i64>,
    pub actor_email: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub project_id: Option<i64>,
    pub reason: Option<String>,
    /// The entity before the change, as stored (canonical JSON).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Box<RawValue>>,
    /// The entity after the change, as stored (canonical JSON).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Box<RawValue>>,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        // The stored text is canonical JSON already: it is passed through, not re-parsed into
        // a tree. Text that is not JSON (possible only by editing the table) shows as a string.
        let parse = |t: Option<String>| {
            t.map(|t| {
                RawValue::from_string(t.clone()).unwrap_or_else(|_| {
                    RawValue::from_string(Value::String(t).to_string())
                        .unwrap_or_else(|_| Box::<RawValue>::default())
                })
            })
        };
        AuditEntry {
            seq: r.seq,
            at: format_at(&r.occurred_at),
            actor_id: r.actor_id,
            actor_email: r.actor_email,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            project_id: r.project_id,
            reason: r.reason,
            before: parse(r.before_json),
            after: parse(r.after_json),
            request_id: r.request_id,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub audit_entries: Vec<AuditEntry>,
    pub total_count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrailQuery {
    /// Only this action, e.g. `project.update`; at most 100 characters.
    #[param(max_length = 100)]
    pub action: Option<String>,
    /// From this time (inclusive, RFC 3339).
    #[param(max_length = 64)]
    pub from: Option<DateTime<Utc>>,
    /// Up to this time (inclusive, RFC 3339).
    #[param(max_length = 64)]
    pub to: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Only this project (global log only).
    pub project_id: Option<i64>,
}

async fn page_of(state: &AppState, filter: AuditFilter, q: &TrailQuery) -> ApiResult<Response> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .validate()?;
    max_chars("action", q.action.as_deref(), 100)?;
    let key = format!(
        "audit {limit} {offset} {:?} {:?} {:?} {:?}",
        filter.project_id, filter.action, filter.from, filter.to
    );
    let version = store::newest_hash(&state.db, filter.project_id).await?;
    let (body, _) = state
        .pages
        .serve(key, version, render_page(state, &filter, limit, offset))
        .await?;
    Ok(serialised_json(body))
}

/// One page of entries as the API's JSON `AuditPage`.
async fn render_page(
    state: &AppState,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> ApiResult<(String, i64)> {
    if let Some((entries, total)) = store::list_json(&state.db, filter, limit, offset).await? {
        // The same two fields, in the same order, as serde writes for `AuditPage`.
        let page = format!("{{\"audit_entries\":{entries},\"total_count\":{total}}}");
        return Ok((page, total));
    }
    let (rows, total) = store::list(&state.db, filter, limit, offset).await?;
    let page = AuditPage {
        audit_entries: rows.into_iter().map(AuditEntry::from).collect(),
        total_count: total,
    };
    Ok((
        serde_json::to_string(&page).map_err(anyhow::Error::from)?,
        total,
    ))
}

/// Owners see their project's trail; auditors and admins see any project's (deleted ones too).
async fn may_read_project(state: &AppState, auth: &AuthUser, project_id: i64) -> ApiResult<()> {
    if auth.user.reads_all_audit() {
        return Ok(());
    }
    match projects::find_owned(&state.db, project_id, auth.user.id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("project {project_id}"))),
    }
}

/// A project's trail, oldest first.
#[utoipa::path(get, path = "/api/audit/trail/{project_id}", operation_id = "listProjectAuditEvents", tag = "audit", security(("bearer" = [])),
    params(("project_id" = i64, Path, description = "Project id"), TrailQuery),
    responses((status = 200, description = "The project's audit entries", body = AuditPage)))]
async fn project_trail(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(project_id): Path<i64>,
    Query(q): Query<TrailQuery>,
) -> ApiResult<Response> {
    may_read_project(&state, &auth, project_id).await?;
    let filter = AuditFilter {
        project_id: Some(project_id),
        action: q.action.clone(),
        from: q.from,
        to: q.to,
    };
    page_of(&state, filter, &q).await
}

/// The whole log (auditor, admin).
#[utoipa::path(get, path = "/api/audit/events", operation_id = "listAuditEvents", tag = "audit", security(("bearer" = [])),
    params(TrailQuery),
    responses((status = 200, description = "Audit entries, oldest first", body = AuditPage)))]
async fn all_events(
    State(state): State<AppState>,
    _auditor: AuditorUser,
    Query(q): Query<TrailQuery>,
) -> ApiResult<Response> {
    let filter = AuditFilter {
        project_id: q.project_id,
        action: q.action.clone(),
        from: q.from,
        to: q.to,
    };
    page_of(&state, filter, &q).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// One project's rows (owner, auditor, admin); omit for the whole log (auditor, admin).
    pub project_id: Option<i64>,
    /// `json` or `csv`.
    #[schema(pattern = "^(json|csv)$", max_length = 4)]
    pub format: String,
    #[schema(max_length = 64)]
    pub from: Option<DateTime<Utc>>,
    #[schema(max_length = 64)]
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditExport {
    pub project_id: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub hash_algorithm: String,
    pub canonical_encoding: String,
    pub verification: ExportVerification,
    /// The signed chain head at export time (null when checkpoints are not configured).
    pub checkpoint: Option<Checkpoint>,
    /// `{seq, prev_hash, hash}` of every chain row from the first exported row to the
    /// checkpoint that is not itself exported: with them the export is checked offline
    /// (`regassist audit verify-export`, `docs/verify_audit_export.py`).
    pub links: Vec<ChainLink>,
    pub entries: Vec<AuditEntry>,
}

/// The verification result without the check time, so the same range exports byte-identically.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportVerification {
    pub is_valid: bool,
    pub first_invalid_seq: Option<i64>,
    pub head_seq: i64,
    pub head_hash: String,
    pub problem: Option<String>,
}

/// The most rows one export holds; a longer range is refused (narrow `from`..`to`).
pub const MAX_EXPORT_ROWS: i64 = 100_000;

/// A download of the selected rows with a verification result: for one project, its rows'
/// hashes and links; for the whole log, the whole chain.
#[utoipa::path(post, path = "/api/audit/export", operation_id = "exportAuditTrail", tag = "audit", security(("bearer" = [])),
    request_body = ExportRequest,
    responses((status = 200, description = "The export as JSON or CSV (RFC 4180) per `format`. In CSV a cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so spreadsheets do not run it as a formula; recompute hashes from the JSON export",
               content((AuditExport = "application/json"), (String = "text/csv"))),
              (status = 404, description = "`project_id` names a project that does not exist (or that the caller may not read)", body = crate::http::error::ErrorBody),
              (status = 422, description = "Bad format, or more rows than one export holds", body = crate::http::error::ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<ExportRequest>,
) -> ApiResult<Response> {
    if body.format != "json" && body.format != "csv" {
        return Err(ApiError::field("format", "must be json or csv"));
    }
    match body.project_id {
        Some(id) => may_read_project(&state, &auth, id).await?,
        None if !auth.user.reads_all_audit() => {
            return Err(ApiError::Forbidden(
                "exporting the whole log needs the auditor or admin role".into(),
            ))
        }
        None => {}
    }
    let filter = AuditFilter {
        project_id: body.project_id,
        action: None,
        from: body.from,
        to: body.to,
    };
    let rows = store::all(&state.db, &filter, MAX_EXPORT_ROWS).await?;
    if rows.len() as i64 > MAX_EXPORT_ROWS {
        return Err(ApiError::field(
            "from",
            format!("more than {MAX_EXPORT_ROWS} rows; export a narrower from..to range"),
        ));
    }
    let checkpoint = state
        .audit
        .export_checkpoint()
        .await
        .map_err(ApiError::Internal)?;
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let links = export_links(&state.db, &seqs, checkpoint.as_ref()).await?;
    let verification = match body.project_id {
        // One project's export checks its own rows and their links: its cost follows the
        // project, not every tenant's chain.
        Some(_) => {
            let check = audit::verify_rows(&state.db, &rows).await?;
            let (head_seq, head_hash) = store::current_head(&state.db)
                .await?
                .unwrap_or((0, audit::GENESIS_HASH.to_string()));
            ExportVerification {
                is_valid: check.is_valid(),
                first_invalid_seq: check.first_invalid_seq,
                head_seq,
                head_hash,
                problem: check.problem,
            }
        }
        None => {
            let v = run_verification(&state, None).await?;
            ExportVerification {
                is_valid: v.is_valid,
                first_invalid_seq: v.first_invalid_seq,
                head_seq: v.head_seq,
                head_hash: v.head_hash,
                problem: v.problem,
            }
        }
    };
    let scope = body
        .project_id
        .map(|p| format!("project-{p}"))
        .unwrap_or_else(|| "all".into());
    if body.format == "json" {
        let export = AuditExport {
            project_id: body.project_id,
            from: body.from.as_ref().map(format_at),
            to: body.to.as_ref().map(format_at),
            hash_algorithm: "SHA-256".into(),
            canonical_encoding:
                "see regassist src/audit.rs: SHA-256(prev_hash || JSON array of 12 fields)".into(),
            verification,
            checkpoint,
            links,
            entries: rows.into_iter().map(AuditEntry::from).collect(),
        };
        return Ok(download(
            Json(export).into_response(),
            &format!("audit-{scope}.json"),
        ));
    }
    let mut csv = audit_csv(&rows, &verification).map_err(|e| ApiError::Internal(e.into()))?;
    csv.push_str(&csv_trailer(checkpoint.as_ref(), &links));
    let response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response();
    Ok(download(response, &format!("audit-{scope}.csv")))
}

fn audit_csv(rows: &[AuditRow], v: &ExportVerification) -> Result<String, csv::Error> {
    let mut w = CsvOut::default();
    w.row([
        "seq",
        "at",
        "actor_id",
        "actor_email",
        "action",
        "entity_type",
        "entity_id",
        "project_id",
        "reason",
        "before",
        "after",
        "request_id",
        "prev_hash",
        "hash",
    ])?;
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    for r in rows {
        w.row([
            r.seq.to_string(),
            format_at(&r.occurred_at),
            opt(r.actor_id),
            r.actor_email.clone().unwrap_or_default(),
            r.action.clone(),
            r.entity_type.clone(),
            r.entity_id.clone().unwrap_or_default(),
            opt(r.project_id),
            r.reason.clone().unwrap_or_default(),
            r.before_json.clone().unwrap_or_default(),
            r.after_json.clone().unwrap_or_default(),
            r.request_id.clone(),
            r.prev_hash.clone(),
            r.hash.clone(),
        ])?;
    }
    let mut text = w.finish()?;
    // The verification result follows the rows, after a blank line, as one `#` line.
    text.push_str(&format!(
        "\r\n# verification: is_valid={} first_invalid_seq={} head_seq={} head_hash={}\r\n",
        v.is_valid,
        opt(v.first_invalid_seq),
        v.head_seq,
        v.head_hash
    ));
    Ok(text)
}

/// Verifies the chain against the newest signed checkpoint and names the rows still queued.
pub async fn run_verification(state: &AppState, project: Option<i64>) -> ApiResult<Verification> {
    state
        .audit
        .verify(project, None)
        .await
        .map_err(ApiError::Internal)
}

/// Recomputes the chain and reports on one project's rows (auditor, admin).
#[utoipa::path(get, path = "/api/audit/integrity/{project_id}", operation_id = "verifyProjectAuditTrail", tag = "audit", security(("bearer" = [])),
    params(("project_id" = i64, Path, description = "Project id")),
    responses((status = 200, description = "Verification result", body = Verification)))]
async fn project_integrity(
    State(state): State<AppState>,
    _auditor: AuditorUser,
    Path(project_id): Path<i64>,
) -> ApiResult<Json<Verification>> {
    Ok(Json(run_verification(&state, Some(project_id)).await?))
}

/// Recomputes the whole chain (auditor, admin).
#[utoipa::path(get, path = "/api/audit/verify", operation_id = "verifyAuditTrail", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "Verification result", body = Verification)))]
async fn verify_all(
    State(state): State<AppState>,
    _auditor: AuditorUser,
) -> ApiResult<Json<Verification>> {
    Ok(Json(run_verification(&state, None).await?))
}
