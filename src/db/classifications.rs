//! Stored classification results of projects.

use sqlx::types::Json;

use super::{now, Db, Tx};
use crate::domain::classification::DeviceClassification;
use crate::{on_read, on_tx};

pub struct NewClassification<'a> {
    pub device_class: &'a str,
    pub product_code: &'a str,
    pub regulatory_pathway: &'a str,
    pub cfr_sections: &'a [String],
    pub confidence_score: f64,
    pub reasoning: &'a str,
    pub sources: &'a [String],
}

const COLUMNS: &str =
    "id, project_id, device_class, product_code, regulatory_pathway, cfr_sections, \
    confidence_score, reasoning, sources, created_at";

pub async fn insert(
    tx: &mut Tx,
    project_id: i64,
    c: &NewClassification<'_>,
) -> Result<DeviceClassification, sqlx::Error> {
    let sql = format!(
        "INSERT INTO device_classifications (project_id, device_class, product_code, regulatory_pathway, \
         cfr_sections, confidence_score, reasoning, sources, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, DeviceClassification>(&sql)
        .bind(project_id).bind(c.device_class).bind(c.product_code).bind(c.regulatory_pathway)
        .bind(Json(c.cfr_sections)).bind(c.confidence_score).bind(c.reasoning).bind(Json(c.sources))
        .bind(now()).fetch_one(conn).await)
}

/// The newest classification of a project.
pub async fn latest(db: &Db, project_id: i64) -> Result<Option<DeviceClassification>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM device_classifications WHERE project_id = $1 ORDER BY id DESC LIMIT 1"
    );
    on_read!(db, pool => sqlx::query_as::<_, DeviceClassification>(&sql).bind(project_id).fetch_optional(pool).await)
}
