//! Assistant interactions: every assistant action's input, output, confidence, sources and timing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use utoipa::ToSchema;

use super::{now, Db, Tx};
use crate::{on_read, on_tx};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct AgentInteraction {
    pub id: i64,
    pub project_id: Option<i64>,
    pub user_id: i64,
    pub session_id: String,
    /// `device_classification`, `predicate_search` or `predicate_comparison`.
    pub task_type: String,
    #[schema(value_type = Object)]
    pub input: Json<Value>,
    #[schema(value_type = Object)]
    pub output: Json<Value>,
    pub confidence: Option<f64>,
    #[schema(value_type = Vec<String>)]
    pub sources: Json<Value>,
    pub reasoning: String,
    pub execution_time_ms: f64,
    pub created_at: DateTime<Utc>,
}

/// What a new interaction records.
pub struct NewInteraction<'a> {
    pub project_id: Option<i64>,
    pub user_id: i64,
    pub session_id: &'a str,
    pub task_type: &'a str,
    pub input: &'a Value,
    pub output: &'a Value,
    pub confidence: Option<f64>,
    pub sources: &'a [String],
    pub reasoning: &'a str,
    pub execution_time_ms: f64,
}

const COLUMNS: &str = "id, project_id, user_id, session_id, task_type, input, output, confidence, \
    sources, reasoning, execution_time_ms, created_at";

pub async fn insert(tx: &mut Tx, n: &NewInteraction<'_>) -> Result<AgentInteraction, sqlx::Error> {
    let sql = format!(
        "INSERT INTO agent_interactions (project_id, user_id, session_id, task_type, input, output, \
         confidence, sources, reasoning, execution_time_ms, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, AgentInteraction>(&sql)
        .bind(n.project_id).bind(n.user_id).bind(n.session_id).bind(n.task_type)
        .bind(Json(n.input)).bind(Json(n.output)).bind(n.confidence).bind(Json(n.sources))
        .bind(n.reasoning).bind(n.execution_time_ms).bind(now())
        .fetch_one(conn).await)
}

/// One interaction by id.
pub async fn find(db: &Db, id: i64) -> Result<Option<AgentInteraction>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM agent_interactions WHERE id = $1");
    on_read!(db, pool => sqlx::query_as::<_, AgentInteraction>(&sql).bind(id).fetch_optional(pool).await)
}

/// A project's interactions, newest first.
pub async fn for_project(
    db: &Db,
    project_id: i64,
    limit: i64,
) -> Result<Vec<AgentInteraction>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agent_interactions WHERE project_id = $1 ORDER BY id DESC LIMIT $2"
    );
    on_read!(db, pool => sqlx::query_as::<_, AgentInteraction>(&sql).bind(project_id).bind(limit).fetch_all(pool).await)
}

/// Up to `limit` of a project's interactions older than `before` (an id; `None` for the
/// newest), newest first: the pages of an export.
pub async fn page_before(
    db: &Db,
    project_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AgentInteraction>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agent_interactions WHERE project_id = $1 AND id < $2 \
         ORDER BY id DESC LIMIT $3"
    );
    on_read!(db, pool => sqlx::query_as::<_, AgentInteraction>(&sql).bind(project_id)
        .bind(before.unwrap_or(i64::MAX)).bind(limit).fetch_all(pool).await)
}

pub async fn count_for_project(db: &Db, project_id: i64) -> Result<i64, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM agent_interactions WHERE project_id = $1")
        .bind(project_id).fetch_one(pool).await)
}
