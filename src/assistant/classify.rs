//! The classification assistant's use case: suggest product codes for a project and record the
//! result (classification, assistant interaction, audit row) in one transaction.

use std::time::Instant;

use serde_json::json;

use super::Assistant;
use crate::audit::{Actor, Change};
use crate::db::agent::{self, NewInteraction};
use crate::db::classifications::{self, NewClassification};
use crate::domain::classification::DeviceClassification;
use crate::domain::classify::Suggestion;
use crate::domain::project::Project;

/// How many alternatives the assistant records beside its choice.
const ALTERNATIVES: usize = 5;

/// The text the assistant classifies: everything the project says about the device.
pub fn project_text(project: &Project) -> String {
    crate::domain::project::device_text(project, None)
}

impl Assistant {
    /// Classifies `project` and stores the result. `Ok(None)` when no product code matches its text.
    pub async fn classify_project(
        &self,
        actor: &Actor,
        user_id: i64,
        project: &Project,
    ) -> anyhow::Result<Option<(DeviceClassification, Vec<Suggestion>)>> {
        let started = Instant::now();
        let text = project_text(project);
        let index = self.classifier.index(&self.db).await?;
        let suggestions = index.suggest(&text, ALTERNATIVES);
        let Some(best) = suggestions.first() else {
            return Ok(None);
        };
        let mut reasoning = format!(
            "Suggested product code {} ({}), class {}, pathway {}, confidence {:.2}: {}.",
            best.product_code,
            best.device_name,
            best.device_class,
            best.regulatory_pathway,
            best.confidence,
            best.reasons.join("; ")
        );
        if suggestions.len() > 1 {
            let others: Vec<String> = suggestions[1..]
                .iter()
                .map(|s| {
                    format!(
                        "{} ({}, {:.2})",
                        s.product_code, s.device_name, s.confidence
                    )
                })
                .collect();
            reasoning.push_str(&format!(" Alternatives: {}.", others.join(", ")));
        }
        let mut sources = vec![format!(
            "FDA product classification database: product code {}",
            best.product_code
        )];
        sources.extend(best.cfr_sections.iter().cloned());
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;

        let mut work = self.audit.begin().await?;
        let stored = classifications::insert(
            work.tx(),
            project.id,
            &NewClassification {
                device_class: &best.device_class,
                product_code: &best.product_code,
                regulatory_pathway: &best.regulatory_pathway,
                cfr_sections: &best.cfr_sections,
                confidence_score: best.confidence,
                reasoning: &reasoning,
                sources: &sources,
            },
        )
        .await?;
        let input = json!({
            "project_id": project.id,
            "name": project.name,
            "device_type": project.device_type,
            "description": project.description,
            "intended_use": project.intended_use,
        });
        let provenance = self.classification_provenance(&text, ALTERNATIVES).await;
        let output = json!({ "classification": stored, "suggestions": suggestions, "provenance": provenance });
        agent::insert(
            work.tx(),
            &NewInteraction {
                project_id: Some(project.id),
                user_id,
                session_id: &uuid::Uuid::new_v4().to_string(),
                task_type: "device_classification",
                input: &input,
                output: &output,
                confidence: Some(best.confidence),
                sources: &sources,
                reasoning: &reasoning,
                execution_time_ms: elapsed_ms,
            },
        )
        .await?;
        work.commit(
            actor,
            Change {
                action: "classification.create",
                entity_type: "device_classification",
                entity_id: Some(stored.id.to_string()),
                project_id: Some(project.id),
                before: None,
                after: Some(json!(stored)),
            },
        )
        .await?;
        Ok(Some((stored, suggestions)))
    }
}
