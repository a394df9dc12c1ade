//! The assistant's tasks behind `POST /api/agent/execute`: predicate search, predicate
//! comparison and device classification, each recorded in `agent_interactions` with an audit
//! row, exactly as the project routes do.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::audit::{self, Change};
use crate::auth::AuthUser;
use crate::db::agent::{self, NewInteraction};
use crate::db::predicates as store;
use crate::db::projects::{self, Project};
use crate::domain::ids::{is_k_number, is_product_code};
use crate::error::{ApiError, FieldErrors};
use crate::search::project::{comparison, search_and_store, subject_text, InteractionContext};
use crate::search::{self, Failure, PredicateQuery};

pub const TASK_TYPES: [&str; 3] = [
    "device_classification",
    "predicate_search",
    "predicate_comparison",
];

/// Body of `POST /api/agent/execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// `device_classification`, `predicate_search` or `predicate_comparison`.
    pub task_type: String,
    /// The project the task is for (required for `predicate_comparison`).
    pub project_id: Option<i64>,
    /// What the device is (up to 5000 characters); defaults to the project's description.
    pub device_description: Option<String>,
    /// Its intended use (up to 2000 characters); defaults to the project's.
    pub intended_use: Option<String>,
    pub device_type: Option<String>,
    /// Task options: `product_code`, `limit`, `q` (search); `predicate_id` or `k_number`
    /// (comparison); `session_id` to group interactions.
    #[schema(value_type = Object)]
    pub parameters: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecuteResponse {
    pub session_id: String,
    pub task_type: String,
    /// Always `completed` (failures answer with an error status).
    pub status: String,
    #[schema(value_type = Object)]
    pub result: Value,
    pub confidence: Option<f64>,
    pub sources: Vec<String>,
    pub reasoning: String,
    pub execution_time_ms: f64,
}

fn param<'a>(req: &'a ExecuteRequest, key: &str) -> Option<&'a Value> {
    req.parameters.as_ref().and_then(|p| p.get(key))
}

fn param_str<'a>(req: &'a ExecuteRequest, key: &str) -> Option<&'a str> {
    param(req, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn validate(req: &ExecuteRequest) -> Result<(), ApiError> {
    let mut fields = FieldErrors::new();
    if !TASK_TYPES.contains(&req.task_type.as_str()) {
        fields.insert(
            "task_type".into(),
            vec![format!("must be one of {}", TASK_TYPES.join(", "))],
        );
    }
    let long = |v: &Option<String>, max: usize| v.as_ref().is_some_and(|s| s.chars().count() > max);
    if long(&req.device_description, 5000) {
        fields.insert(
            "device_description".into(),
            vec!["at most 5000 characters".into()],
        );
    }
    if long(&req.intended_use, 2000) {
        fields.insert(
            "intended_use".into(),
            vec!["at most 2000 characters".into()],
        );
    }
    if long(&req.device_type, 255) {
        fields.insert("device_type".into(), vec!["at most 255 characters".into()]);
    }
    if req.parameters.as_ref().is_some_and(|p| !p.is_object()) {
        fields.insert("parameters".into(), vec!["must be an object".into()]);
    }
    if let Some(pc) = req.parameters.as_ref().and_then(|p| p.get("product_code")) {
        if !pc.as_str().is_some_and(is_product_code) {
            fields.insert(
                "parameters.product_code".into(),
                vec!["must be three capital letters".into()],
            );
        }
    }
    if let Some(k) = req.parameters.as_ref().and_then(|p| p.get("k_number")) {
        if !k.as_str().is_some_and(is_k_number) {
            fields.insert(
                "parameters.k_number".into(),
                vec!["must be K, DEN or BK and six digits".into()],
            );
        }
    }
    ApiError::check(fields)
}

/// The project with the request's description and intended use laid over it.
fn subject_project(req: &ExecuteRequest, project: Option<Project>, user_id: i64) -> Project {
    let now = chrono::Utc::now();
    let mut p = project.unwrap_or(Project {
        id: 0,
        user_id,
        name: String::new(),
        description: None,
        device_type: None,
        intended_use: None,
        product_code: None,
        status: "draft".into(),
        priority: None,
        tags: sqlx::types::Json(Vec::new()),
        version: 0,
        created_at: now,
        updated_at: now,
    });
    let set = |v: &Option<String>| {
        v.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    p.description = set(&req.device_description).or(p.description);
    p.intended_use = set(&req.intended_use).or(p.intended_use);
    p.device_type = set(&req.device_type).or(p.device_type);
    p
}

/// Runs one task for `auth`'s user.
pub async fn execute(
    state: &AppState,
    auth: &AuthUser,
    req: ExecuteRequest,
) -> Result<ExecuteResponse, Failure> {
    let started = Instant::now();
    validate(&req)?;
    let project = match req.project_id {
        Some(id) => Some(
            projects::find_owned(&state.db, id, auth.user.id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("project {id}")))?,
        ),
        None => None,
    };
    let session_id = param_str(&req, "session_id")
        .map(|s| s.chars().take(100).collect())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let input = json!({"task_type": req.task_type, "project_id": req.project_id,
        "device_description": req.device_description, "intended_use": req.intended_use,
        "device_type": req.device_type, "parameters": req.parameters});
    let subject = subject_project(&req, project.clone(), auth.user.id);
    let limit = param(&req, "limit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .clamp(1, 100) as usize;
    let product_code = param_str(&req, "product_code")
        .map(String::from)
        .or(subject.product_code.clone());

    let (result, confidence, sources, reasoning) = match req.task_type.as_str() {
        "predicate_search" => {
            let text = param_str(&req, "q")
                .map(String::from)
                .or(subject.device_type.clone())
                .or(subject.description.clone());
            if text.is_none() && product_code.is_none() {
                return Err(ApiError::field(
                    "device_description",
                    "describe the device or give parameters.product_code",
                )
                .into());
            }
            let query = PredicateQuery {
                text,
                product_code,
                limit,
                ..PredicateQuery::default()
            };
            let subject_text = subject_text(&subject, param_str(&req, "q"));
            if let Some(project) = &project {
                // With a project the candidates are stored, as by the project route.
                let ctx = InteractionContext {
                    session_id: &session_id,
                    task_type: "predicate_search",
                    input,
                };
                let stored = search_and_store(
                    state,
                    &auth.actor,
                    auth.user.id,
                    project,
                    &query,
                    &subject_text,
                    ctx,
                )
                .await?;
                let i = stored.interaction;
                return Ok(ExecuteResponse {
                    session_id,
                    task_type: req.task_type,
                    status: "completed".into(),
                    result: json!({"results": stored.result.results, "meta": stored.result.meta, "stored": stored.predicates.len()}),
                    confidence: i.confidence,
                    sources: serde_json::from_value(i.sources.0).unwrap_or_default(),
                    reasoning: i.reasoning,
                    execution_time_ms: started.elapsed().as_secs_f64() * 1000.0,
                });
            }
            let found = search::predicates(state, &query, &subject_text).await?;
            let confidence = found.results.first().map(|r| r.score);
            let sources = found.results.iter().map(|r| r.source_url.clone()).collect();
            let reasoning = format!(
                "{} candidates ranked from {}.",
                found.meta.total_candidates, found.meta.source
            );
            (
                json!({"results": found.results, "meta": found.meta}),
                confidence,
                sources,
                reasoning,
            )
        }
        "predicate_comparison" => {
            let Some(project) = &project else {
                return Err(
                    ApiError::field("project_id", "required for predicate_comparison").into(),
                );
            };
            let stored = store::for_project(&state.db, project.id).await?;
            let wanted_id = param(&req, "predicate_id").and_then(Value::as_i64);
            let wanted_k = param_str(&req, "k_number");
            let predicate = stored
                .into_iter()
                .find(|p| match (wanted_id, wanted_k) {
                    (Some(id), _) => p.id == id,
                    (None, Some(k)) => p.k_number == k,
                    (None, None) => p.is_selected,
                })
                .ok_or_else(|| ApiError::not_found("a stored predicate matching parameters.predicate_id, parameters.k_number or a selected one"))?;
            let table = comparison(state, &subject, &predicate).await?;
            let alike = table
                .rows
                .iter()
                .filter(|r| {
                    matches!(
                        r.assessment,
                        crate::domain::comparison::Assessment::Same
                            | crate::domain::comparison::Assessment::Similar
                    )
                })
                .count();
            let confidence = Some(alike as f64 / table.rows.len().max(1) as f64);
            let sources = vec![crate::domain::candidate::source_url(&predicate.k_number)];
            let reasoning = table.summary.clone();
            (
                serde_json::to_value(&table).unwrap_or_default(),
                confidence,
                sources,
                reasoning,
            )
        }
        _ => classification_task(state, &subject).await?,
    };
    let execution_time_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut tx = state.db.begin().await?;
    let interaction = agent::insert(
        &mut tx,
        &NewInteraction {
            project_id: project.as_ref().map(|p| p.id),
            user_id: auth.user.id,
            session_id: &session_id,
            task_type: &req.task_type,
            input: &input,
            output: &result,
            confidence,
            sources: &sources,
            reasoning: &reasoning,
            execution_time_ms,
        },
    )
    .await?;
    audit::append(&mut tx, &auth.actor, Change {
        action: "agent.execute",
        entity_type: "agent_interaction",
        entity_id: Some(interaction.id.to_string()),
        project_id: project.as_ref().map(|p| p.id),
        before: None,
        after: Some(json!({"task_type": req.task_type, "session_id": session_id, "confidence": confidence})),
    })
    .await?;
    tx.commit().await?;
    Ok(ExecuteResponse {
        session_id,
        task_type: req.task_type,
        status: "completed".into(),
        result,
        confidence,
        sources,
        reasoning,
        execution_time_ms,
    })
}

/// Device classification: the product codes the local classification index ranks first for the
/// subject's text (see `mirror::classifier`).
async fn classification_task(
    state: &AppState,
    subject: &Project,
) -> Result<(Value, Option<f64>, Vec<String>, String), Failure> {
    let text = crate::mirror::assist::project_text(subject);
    let index = state
        .classifier
        .index(&state.db)
        .await
        .map_err(ApiError::from)?;
    let suggestions = index.suggest(&text, 5);
    let Some(best) = suggestions.first() else {
        return Err(ApiError::field(
            "device_description",
            "no FDA product code matches this description; describe the device in more detail",
        )
        .into());
    };
    let reasoning = format!(
        "Product code {} ({}), class {}, pathway {}: {}.",
        best.product_code,
        best.device_name,
        best.device_class,
        best.regulatory_pathway,
        best.reasons.join("; ")
    );
    let sources = suggestions
        .iter()
        .map(|s| {
            format!(
                "https://www.accessdata.fda.gov/scripts/cdrh/cfdocs/cfPCD/classification.cfm?id={}",
                s.product_code
            )
        })
        .collect();
    let confidence = Some(best.confidence);
    let result = json!({"classification": best, "alternatives": &suggestions[1..]});
    Ok((result, confidence, sources, reasoning))
}
