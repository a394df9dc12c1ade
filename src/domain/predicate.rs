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
    pub recalls: Vec<RecallFlag>,
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
