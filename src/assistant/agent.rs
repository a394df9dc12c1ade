//! The tasks behind `POST /api/agent/execute`: predicate search, predicate comparison and
//! device classification, each recorded in `agent_interactions` with an audit row, exactly as the
//! project routes do.

use std::time::Instant;

use serde_json::{json, Value};

use super::predicates::{subject_text, InteractionContext};
use super::request::{non_blank, ExecuteRequest, ExecuteResponse, TaskType};
use super::Assistant;
use crate::audit::{Actor, Change};
use crate::db::agent::{self, NewInteraction};
use crate::db::predicates as store;
use crate::db::projects;
use crate::domain::project::Project;
use crate::error::ApiError;
use crate::search::{PredicateQuery, SearchDefaults, SearchRequest};

/// How many product codes the classification task answers with (the first and alternatives).
const SUGGESTIONS: usize = 5;

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

impl Assistant {
    /// Runs one task for the user `user_id`, recorded as done by `actor`.
    pub async fn execute(
        &self,
        actor: &Actor,
        user_id: i64,
        req: ExecuteRequest,
    ) -> Result<ExecuteResponse, ApiError> {
        let started = Instant::now();
        req.validate()?;
        let params = req.params();
        let project = match req.project_id {
            Some(id) => Some(
                projects::find_owned(&self.db, id, user_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("project {id}")))?,
            ),
            None => None,
        };
        let session_id = non_blank(params.session_id.as_deref())
            .map(String::from)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let input = json!({"task_type": req.task_type, "project_id": req.project_id,
        "device_description": req.device_description, "intended_use": req.intended_use,
        "device_type": req.device_type, "parameters": req.parameters});
        let subject = subject_project(&req, project.clone(), user_id);
        let own_text = non_blank(params.q.as_deref());

        // The stored predicate a comparison task compared (recorded on it with the interaction).
        let mut compared = None;
        let (result, confidence, sources, reasoning) = match req.task_type {
            TaskType::PredicateSearch => {
                let defaults = SearchDefaults {
                    text: subject
                        .device_type
                        .as_deref()
                        .or(subject.description.as_deref()),
                    product_code: subject.product_code.as_deref(),
                    limit: 10,
                };
                let nothing_to_search = own_text.is_none()
                    && defaults.text.is_none()
                    && params.product_code.is_none()
                    && defaults.product_code.is_none();
                if nothing_to_search {
                    return Err(ApiError::field(
                        "device_description",
                        "describe the device or give parameters.product_code",
                    ));
                }
                let request = SearchRequest {
                    q: params.q.as_deref(),
                    product_code: params.product_code.as_deref(),
                    limit: params.limit,
                    ..SearchRequest::default()
                };
                // The same rules as every other predicate search, on the fields of `parameters`.
                let query = PredicateQuery::parse(&request, &defaults, "parameters.")?;
                let subject_text = subject_text(&subject, own_text);
                if let Some(project) = &project {
                    // With a project the candidates are stored, as by the project route.
                    let ctx = InteractionContext {
                        session_id: &session_id,
                        task_type: "predicate_search",
                        input,
                    };
                    let stored = self
                        .search_and_store(actor, user_id, project, &query, &subject_text, ctx)
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
                let query = query.pinned();
                let found = self.search.predicates(&query, &subject_text).await?;
                let confidence = found.results.first().map(|r| r.score);
                let sources = found.results.iter().map(|r| r.source_url.clone()).collect();
                let reasoning = format!(
                    "{} candidates ranked from {}.",
                    found.meta.total_candidates, found.meta.source
                );
                let provenance = self.search_provenance(&query, &subject_text, &found).await;
                (
                    json!({"results": found.results, "meta": found.meta, "provenance": provenance}),
                    confidence,
                    sources,
                    reasoning,
                )
            }
            TaskType::PredicateComparison => {
                let Some(project) = &project else {
                    return Err(ApiError::field(
                        "project_id",
                        "required for predicate_comparison",
                    ));
                };
                let predicate = store::find_wanted(
                    &self.db,
                    project.id,
                    params.predicate_id,
                    params.k_number.as_deref(),
                )
                .await?
                .ok_or_else(|| ApiError::not_found("a stored predicate matching parameters.predicate_id, parameters.k_number or a selected one"))?;
                let table = self.comparison(&subject, &predicate).await?;
                compared = Some(predicate.id);
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
            TaskType::DeviceClassification => self.classification_task(&subject).await?,
        };
        let execution_time_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut work = self.audit.begin().await?;
        if let (Some(project), Some(id)) = (&project, compared) {
            store::mark_compared(work.tx(), project.id, id).await?;
        }
        let interaction = agent::insert(
            work.tx(),
            &NewInteraction {
                project_id: project.as_ref().map(|p| p.id),
                user_id,
                session_id: &session_id,
                task_type: req.task_type.as_str(),
                input: &input,
                output: &result,
                confidence,
                sources: &sources,
                reasoning: &reasoning,
                execution_time_ms,
            },
        )
        .await?;
        work.commit(actor, Change {
        action: "agent.execute",
        entity_type: "agent_interaction",
        entity_id: Some(interaction.id.to_string()),
        project_id: project.as_ref().map(|p| p.id),
        before: None,
        after: Some(json!({"task_type": req.task_type, "session_id": session_id, "confidence": confidence})),
    })
    .await?;
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
}

impl Assistant {
    /// Device classification: the product codes the local classification index ranks first for the
    /// subject's text (see `assistant::classifier`).
    async fn classification_task(
        &self,
        subject: &Project,
    ) -> Result<(Value, Option<f64>, Vec<String>, String), ApiError> {
        let text = super::classify::project_text(subject);
        let index = self.classifier.index(&self.db).await?;
        let suggestions = index.suggest(&text, SUGGESTIONS);
        let Some(best) = suggestions.first() else {
            return Err(ApiError::field(
                "device_description",
                "no FDA product code matches this description; describe the device in more detail",
            ));
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
        let provenance = self.classification_provenance(&text, SUGGESTIONS).await;
        let result = json!({"classification": best, "alternatives": &suggestions[1..], "provenance": provenance});
        Ok((result, confidence, sources, reasoning))
    }
}
