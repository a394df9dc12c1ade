//! Storage of the audit trail: chain head, append, filtered reads, the full scan for verification.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use super::{Db, Tx};
use crate::{on_read, on_tx};

/// One stored row, exactly as hashed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor_email: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub project_id: Option<i64>,
    pub reason: Option<String>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "seq, occurred_at, actor_id, actor_email, action, entity_type, entity_id, \
    project_id, reason, before_json, after_json, request_id, prev_hash, hash";

/// Serialises writers on the chain head. PostgreSQL: a transaction-scoped advisory lock.
/// SQLite: nothing to do, its single writer connection already serialises every write.
pub async fn lock_head(tx: &mut Tx) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock(7332046174811)")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The newest row's `(seq, hash)`, read inside the writer's transaction.
pub async fn head(tx: &mut Tx) -> Result<Option<(i64, String)>, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query_as::<_, (i64, String)>(
        "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(conn).await)
}

/// The newest row's `(seq, hash)` outside a transaction (checkpoints).
pub async fn current_head(db: &Db) -> Result<Option<(i64, String)>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as::<_, (i64, String)>(
        "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(pool).await)
}

pub async fn insert(tx: &mut Tx, row: &AuditRow) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_events ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    on_tx!(tx, conn => sqlx::query(&sql)
        .bind(row.seq).bind(row.occurred_at).bind(row.actor_id).bind(&row.actor_email)
        .bind(&row.action).bind(&row.entity_type).bind(&row.entity_id).bind(row.project_id)
        .bind(&row.reason).bind(&row.before_json).bind(&row.after_json).bind(&row.request_id)
        .bind(&row.prev_hash).bind(&row.hash)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Which rows a read or export selects.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project_id: Option<i64>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

const WHERE: &str = "WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR action = $2) \
    AND ($3 IS NULL OR occurred_at >= $3) AND ($4 IS NULL OR occurred_at <= $4)";

/// Rows in chain order (oldest first) and the total matching the filter.
pub async fn list(
    db: &Db,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditRow>, i64), sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM audit_events {WHERE} ORDER BY seq LIMIT $5 OFFSET $6");
    let rows = on_read!(db, pool => sqlx::query_as::<_, AuditRow>(&sql)
        .bind(filter.project_id).bind(&filter.action).bind(filter.from).bind(filter.to)
        .bind(limit).bind(offset).fetch_all(pool).await)?;
    let count_sql = format!("SELECT COUNT(*) FROM audit_events {WHERE}");
    let total: i64 = on_read!(db, pool => sqlx::query_scalar(&count_sql)
        .bind(filter.project_id).bind(&filter.action).bind(filter.from).bind(filter.to)
        .fetch_one(pool).await)?;
    Ok((rows, total))
}

/// Every row matching the filter, in chain order (exports).
pub async fn all(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM audit_events {WHERE} ORDER BY seq");
    on_read!(db, pool => sqlx::query_as::<_, AuditRow>(&sql)
        .bind(filter.project_id).bind(&filter.action).bind(filter.from).bind(filter.to)
        .fetch_all(pool).await)
}

/// Streams the whole chain in `seq` order through `visit`, without holding it all in memory.
pub async fn scan<F>(db: &Db, mut visit: F) -> Result<(), sqlx::Error>
where
    F: FnMut(AuditRow),
{
    let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq");
    on_read!(db, pool => {
        let mut rows = sqlx::query_as::<_, AuditRow>(&sql).fetch(pool);
        while let Some(row) = rows.try_next().await? {
            visit(row);
        }
        Ok::<(), sqlx::Error>(())
    })
}
