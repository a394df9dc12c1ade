//! Predicate candidates stored for a project, with the user's selections.

use chrono::NaiveDate;
use sqlx::types::Json;

use super::{now, total_from_lookahead, Db, Tx};
use crate::domain::predicate::{PredicateDevice, PredicateFacts};
use crate::{on_read, on_tx};

/// A candidate to store for a project.
pub struct NewPredicate<'a> {
    pub k_number: &'a str,
    pub device_name: &'a str,
    pub intended_use: Option<&'a str>,
    pub product_code: Option<&'a str>,
    pub clearance_date: Option<NaiveDate>,
    pub confidence_score: f64,
    pub comparison_data: &'a PredicateFacts,
}

const COLUMNS: &str =
    "id, project_id, k_number, device_name, intended_use, product_code, clearance_date, \
    confidence_score, comparison_data, is_selected, compared_at, created_at, updated_at";

/// Inserts or refreshes a candidate; an existing row keeps its `is_selected`.
pub async fn upsert(
    tx: &mut Tx,
    project_id: i64,
    p: &NewPredicate<'_>,
) -> Result<PredicateDevice, sqlx::Error> {
    let at = now();
    let sql = format!(
        "INSERT INTO predicate_devices (project_id, k_number, device_name, intended_use, product_code, \
         clearance_date, confidence_score, comparison_data, is_selected, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, $9) \
         ON CONFLICT (project_id, k_number) DO UPDATE SET device_name = excluded.device_name, \
         intended_use = excluded.intended_use, product_code = excluded.product_code, \
         clearance_date = excluded.clearance_date, confidence_score = excluded.confidence_score, \
         comparison_data = excluded.comparison_data, updated_at = excluded.updated_at \
         RETURNING {COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, PredicateDevice>(&sql)
        .bind(project_id).bind(p.k_number).bind(p.device_name).bind(p.intended_use).bind(p.product_code)
        .bind(p.clearance_date).bind(p.confidence_score).bind(Json(p.comparison_data)).bind(at)
        .fetch_one(conn).await)
}

/// One page of a project's candidates, best first, and how many there are in all.
pub async fn page(
    db: &Db,
    project_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PredicateDevice>, i64), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM predicate_devices WHERE project_id = $1 \
         ORDER BY confidence_score DESC, k_number LIMIT $2 OFFSET $3"
    );
    let mut rows = on_read!(db, pool => sqlx::query_as::<_, PredicateDevice>(&sql)
        .bind(project_id).bind(limit.saturating_add(1)).bind(offset).fetch_all(pool).await)?;
    if let Some(total) = total_from_lookahead(&mut rows, limit, offset) {
        return Ok((rows, total));
    }
    let total: i64 = on_read!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM predicate_devices WHERE project_id = $1")
        .bind(project_id).fetch_one(pool).await)?;
    Ok((rows, total))
}

/// The candidate a comparison asks for: by id, else by 510(k) number, else the best selected
/// one. One row read, however many candidates the project holds.
pub async fn find_wanted(
    db: &Db,
    project_id: i64,
    id: Option<i64>,
    k_number: Option<&str>,
) -> Result<Option<PredicateDevice>, sqlx::Error> {
    if let Some(id) = id {
        return find(db, project_id, id).await;
    }
    let (condition, value) = match k_number {
        Some(k) => ("k_number = $2", Some(k)),
        None => ("is_selected = $2", None),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM predicate_devices WHERE project_id = $1 AND {condition} \
         ORDER BY confidence_score DESC, k_number LIMIT 1"
    );
    match value {
        Some(k) => on_read!(db, pool => sqlx::query_as::<_, PredicateDevice>(&sql)
            .bind(project_id).bind(k).fetch_optional(pool).await),
        None => on_read!(db, pool => sqlx::query_as::<_, PredicateDevice>(&sql)
            .bind(project_id).bind(true).fetch_optional(pool).await),
    }
}

/// A project's candidates, best first.
pub async fn for_project(db: &Db, project_id: i64) -> Result<Vec<PredicateDevice>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM predicate_devices WHERE project_id = $1 \
         ORDER BY confidence_score DESC, k_number"
    );
    on_read!(db, pool => sqlx::query_as::<_, PredicateDevice>(&sql).bind(project_id).fetch_all(pool).await)
}

pub async fn find(
    db: &Db,
    project_id: i64,
    id: i64,
) -> Result<Option<PredicateDevice>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM predicate_devices WHERE project_id = $1 AND id = $2");
    on_read!(db, pool => sqlx::query_as::<_, PredicateDevice>(&sql).bind(project_id).bind(id).fetch_optional(pool).await)
}

pub async fn set_selected(
    tx: &mut Tx,
    project_id: i64,
    id: i64,
    selected: bool,
) -> Result<Option<PredicateDevice>, sqlx::Error> {
    let sql = format!(
        "UPDATE predicate_devices SET is_selected = $1, updated_at = $2 WHERE project_id = $3 AND id = $4 \
         RETURNING {COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, PredicateDevice>(&sql)
        .bind(selected).bind(now()).bind(project_id).bind(id).fetch_optional(conn).await)
}

/// Records that a comparison of the candidate was made now.
pub async fn mark_compared(tx: &mut Tx, project_id: i64, id: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE predicate_devices SET compared_at = $1 WHERE project_id = $2 AND id = $3";
    on_tx!(tx, conn => sqlx::query(sql).bind(now()).bind(project_id).bind(id).execute(conn).await.map(|_| ()))
}

/// Documents stored for a project (for the dashboard's documents step).
pub async fn document_count(db: &Db, project_id: i64) -> Result<i64, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM project_documents WHERE project_id = $1")
        .bind(project_id).fetch_one(pool).await)
}
