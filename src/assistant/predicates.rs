//! Predicate work on a project: a search whose ranked candidates are stored (earlier
//! selections kept) together with an assistant interaction and one audit row, in one
//! transaction; and the comparison of a stored predicate with the project's device.

use std::time::Instant;

use serde_json::{json, Value};

use super::Assistant;
use crate::audit::{Actor, Change};
use crate::db::agent::{self, AgentInteraction, NewInteraction};
use crate::db::predicates::{self as store, NewPredicate};
use crate::db::projects;
use crate::domain::candidate::ProductCodeInfo;
use crate::domain::comparison::{
    compare, Comparison, PredicateDevice as ComparedPredicate, SubjectDevice,
};
use crate::domain::predicate::PredicateDevice;
use crate::domain::predicate::{PredicateFacts, SearchProvenance};
use crate::domain::project::Project;
use crate::error::ApiError;
use crate::search::{PredicateQuery, SearchResult};

/// The text a project's device is ranked against: name, type, description, intended use.
pub fn subject_text(project: &Project, extra: Option<&str>) -> String {
    crate::domain::project::device_text(project, extra)
}

/// What was stored.
pub struct StoredSearch {
    pub result: SearchResult,
    pub predicates: Vec<PredicateDevice>,
    pub interaction: AgentInteraction,
}

/// Where an interaction came from and what it was asked.
pub struct InteractionContext<'a> {
    pub session_id: &'a str,
    pub task_type: &'a str,
    pub input: Value,
}

impl Assistant {
    /// Searches for `project`'s device and stores the ranked candidates, the interaction and one
    /// audit row atomically.
    pub async fn search_and_store(
        &self,
        actor: &Actor,
        user_id: i64,
        project: &Project,
        query: &PredicateQuery,
        subject: &str,
        ctx: InteractionContext<'_>,
    ) -> Result<StoredSearch, ApiError> {
        let started = Instant::now();
        // Ranked as of a recorded day, so that a replay ranks recency the same way.
        let query = &query.pinned();
        let result = self.search.predicates(query, subject).await?;
        let subject_info = query
            .product_code
            .as_deref()
            .and_then(|pc| result.product_codes.get(pc))
            .cloned();
        let provenance = SearchProvenance {
            source: result.meta.source.clone(),
            fetched_at: result.meta.fetched_at,
            data_last_updated: result.meta.data_last_updated.clone(),
        };
        let mut work = self.audit.begin().await?;
        let mut stored = Vec::with_capacity(result.results.len());
        for r in &result.results {
            let c = &r.candidate;
            let info = c
                .product_code
                .as_ref()
                .and_then(|pc| result.product_codes.get(pc));
            let facts = PredicateFacts {
                applicant: c.applicant.clone(),
                decision_code: c.decision_code.clone(),
                decision_description: c.decision_description.clone(),
                clearance_type: c.clearance_type.clone(),
                device_class: c.device_class.clone(),
                regulation_number: c.regulation_number.clone(),
                recalls: c.safety.recalls.clone(),
                safety: Some(c.safety.clone()),
                score_breakdown: Some(r.score_breakdown.clone()),
                reasons: r.reasons.clone(),
                source_url: Some(r.source_url.clone()),
                definition: info.and_then(|i| i.definition.clone()),
                implant: info.is_some_and(|i| i.implant),
                subject_classification: subject_info.clone(),
                search: Some(provenance.clone()),
            };
            let row = store::upsert(
                work.tx(),
                project.id,
                &NewPredicate {
                    k_number: &c.k_number,
                    device_name: &c.device_name,
                    intended_use: None,
                    product_code: c.product_code.as_deref(),
                    clearance_date: c.decision_date,
                    confidence_score: r.score,
                    comparison_data: &facts,
                },
            )
            .await?;
            stored.push(row);
        }
        let sources: Vec<String> = result
            .results
            .iter()
            .map(|r| r.source_url.clone())
            .collect();
        let confidence = result.results.first().map(|r| r.score);
        let reasoning = format!(
            "{} substantially equivalent candidates ranked from {} ({} matches at the source); \
         {} stored, best score {}.",
            result.meta.total_candidates,
            result.meta.source,
            result.meta.source_total,
            stored.len(),
            confidence.map_or("n/a".to_string(), |s| format!("{s:.2}")),
        );
        let output = json!({
            "results": result.results.iter().map(|r| json!({"k_number": r.candidate.k_number, "score": r.score})).collect::<Vec<_>>(),
            "meta": result.meta,
            "provenance": self.search_provenance(query, subject, &result).await,
        });
        let interaction = agent::insert(
            work.tx(),
            &NewInteraction {
                project_id: Some(project.id),
                user_id,
                session_id: ctx.session_id,
                task_type: ctx.task_type,
                input: &ctx.input,
                output: &output,
                confidence,
                sources: &sources,
                reasoning: &reasoning,
                execution_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            },
        )
        .await?;
        projects::touch(work.tx(), project.id).await?;
        work.commit(
        actor,
        Change {
            action: "predicates.search",
            entity_type: "project",
            entity_id: Some(project.id.to_string()),
            project_id: Some(project.id),
            before: None,
            after: Some(json!({
                "interaction_id": interaction.id,
                "query": ctx.input,
                "stored": stored.iter().map(|p| json!({"k_number": p.k_number, "confidence_score": p.confidence_score})).collect::<Vec<_>>(),
            })),
        },
    )
    .await?;
        Ok(StoredSearch {
            result,
            predicates: stored,
            interaction,
        })
    }

    /// The comparison table of a stored predicate against the project's device. The subject's class
    /// and regulation come from its latest classification, else from what the search learned.
    pub async fn comparison(
        &self,
        project: &Project,
        predicate: &PredicateDevice,
    ) -> Result<Comparison, ApiError> {
        let facts = &predicate.comparison_data.0;
        let classified = crate::db::classifications::latest(&self.db, project.id).await?;
        let learned: Option<&ProductCodeInfo> = facts.subject_classification.as_ref();
        let subject_code = project
            .product_code
            .clone()
            .or_else(|| classified.as_ref().map(|c| c.product_code.clone()));
        let subject_class = classified
            .as_ref()
            .map(|c| c.device_class.clone())
            .or_else(|| learned.as_ref().and_then(|i| i.device_class.clone()));
        let subject_regulation = classified
            .as_ref()
            .and_then(|c| c.cfr_sections.0.first().cloned())
            .map(|s| s.trim_start_matches("21 CFR").trim().to_string())
            .or_else(|| learned.as_ref().and_then(|i| i.regulation_number.clone()));
        let subject = SubjectDevice {
            name: &project.name,
            description: project.description.as_deref().unwrap_or(""),
            intended_use: project.intended_use.as_deref().unwrap_or(""),
            product_code: subject_code.as_deref(),
            device_class: subject_class.as_deref(),
            regulation_number: subject_regulation.as_deref(),
        };
        let compared = ComparedPredicate {
            k_number: &predicate.k_number,
            device_name: &predicate.device_name,
            intended_use: predicate.intended_use.as_deref(),
            product_code: predicate.product_code.as_deref(),
            device_class: facts.device_class.as_deref(),
            regulation_number: facts.regulation_number.as_deref(),
            definition: facts.definition.as_deref(),
            implant_flag: facts.implant,
            safety: facts.safety.as_ref(),
        };
        Ok(compare(&subject, &compared))
    }
}
