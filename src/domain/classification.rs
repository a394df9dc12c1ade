//! A stored classification of a project's device: product code, class, pathway, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeviceClassification {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub project_id: i64,
    /// `1`, `2`, `3`, `U`, `N` or `F`.
    pub device_class: String,
    pub product_code: String,
    /// `510k`, `De Novo`, `PMA` or `Exempt`.
    pub regulatory_pathway: String,
    #[schema(value_type = Vec<String>)]
    pub cfr_sections: Json<Vec<String>>,
    pub confidence_score: f64,
    pub reasoning: String,
    #[schema(value_type = Vec<String>)]
    pub sources: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
}
