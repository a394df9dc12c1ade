//! A predicate candidate stored for a project, and the facts its search recorded about it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use utoipa::ToSchema;

use super::candidate::{ProductCodeInfo, RecallFlag};
use super::ranking::Breakdown;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct PredicateDevice {
    pub id: i64,
    pub project_id: i64,
    pub k_number: String,
    pub device_name: String,
    pub intended_use: Option<String>,
    pub product_code: Option<String>,
    pub clearance_date: Option<NaiveDate>,
    pub confidence_score: f64,
    /// What the search knew of the candidate when it was stored.
    #[schema(value_type = PredicateFacts)]
    pub comparison_data: Json<PredicateFacts>,
    pub is_selected: bool,
    /// When the assistant last recorded a substantial-equivalence comparison of it (a
    /// `predicate_comparison` task); null when never.
    pub compared_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The facts a search recorded about a stored candidate: what its comparison is built from. Every
/// field has a default, so rows stored before a field existed still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PredicateFacts {
    pub applicant: Option<String>,
    pub decision_code: Option<String>,
    pub decision_description: Option<String>,
    pub clearance_type: Option<String>,
    pub device_class: Option<String>,
    pub regulation_number: Option<String>,
    /// The recalls of its safety block (kept for rows stored before `safety` existed).
    pub recalls: Vec<RecallFlag>,
    /// Its safety block when the search stored it: recalls, adverse events, and whether each
    /// was checked. `None` for rows stored before it existed (read as "not checked").
    pub safety: Option<super::safety::Safety>,
    pub score_breakdown: Option<Breakdown>,
    pub reasons: Vec<String>,
    pub source_url: Option<String>,
    /// The FDA definition of the candidate's product code.
    pub definition: Option<String>,
    /// True when its product code is an implant.
    pub implant: bool,
    /// What the search learned of the subject's own product code.
    pub subject_classification: Option<ProductCodeInfo>,
    /// Where and when the candidate was found.
    pub search: Option<SearchProvenance>,
}

/// The source of a stored search and its data's date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchProvenance {
    /// `openfda` or `mirror`.
    pub source: String,
    pub fetched_at: DateTime<Utc>,
    pub data_last_updated: Option<String>,
}

/// A selected predicate's safety block, as a project's dashboard and export show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PredicateSafety {
    pub predicate_id: i64,
    pub k_number: String,
    pub device_name: String,
    /// As the search that stored it found it (see `safety.recalls_data_date`).
    pub safety: super::safety::Safety,
}

impl PredicateDevice {
    /// The stored safety block; a row stored before the block existed reads as "not checked"
    /// unless its search flagged recalls.
    pub fn safety(&self) -> super::safety::Safety {
        use super::safety::{Availability, Safety};
        let facts = &self.comparison_data.0;
        facts.safety.clone().unwrap_or_else(|| Safety {
            recalls_status: if facts.recalls.is_empty() {
                Availability::NotChecked
            } else {
                Availability::Checked
            },
            recalls: facts.recalls.clone(),
            note: Some("stored before safety data was recorded; search again to check".into()),
            ..Default::default()
        })
    }
}

/// The safety blocks of the selected predicates.
pub fn selected_safety(predicates: &[PredicateDevice]) -> Vec<PredicateSafety> {
    predicates
        .iter()
        .filter(|p| p.is_selected)
        .map(|p| PredicateSafety {
            predicate_id: p.id,
            k_number: p.k_number.clone(),
            device_name: p.device_name.clone(),
            safety: p.safety(),
        })
        .collect()
}
