//! Storage of the audit trail: the queue of rows to seal, chain head, sealed appends, filtered
//! reads, the full scan for verification.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use super::filter::{Param, Where};
use super::{total_from_lookahead, total_if_shown, Db, Tx, TxConn};
use crate::{bind_params, on_read, on_tx};

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
    if let TxConn::Postgres(tx) = &mut tx.conn {
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

/// The columns a queued row carries: everything but its place on the chain.
const PENDING_COLUMNS: &str =
    "occurred_at, actor_id, actor_email, action, entity_type, entity_id, \
    project_id, reason, before_json, after_json, request_id";

/// A row waiting in `audit_pending`, with its queue id; its chain fields are still empty.
#[derive(sqlx::FromRow)]
struct Queued {
    id: i64,
    #[sqlx(flatten)]
    row: AuditRow,
}

/// Queues a row (its `seq`, `prev_hash` and `hash` are assigned when it is sealed).
pub async fn queue(tx: &mut Tx, row: &AuditRow) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_pending ({PENDING_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    on_tx!(tx, conn => sqlx::query(&sql)
        .bind(row.occurred_at).bind(row.actor_id).bind(&row.actor_email)
        .bind(&row.action).bind(&row.entity_type).bind(&row.entity_id).bind(row.project_id)
        .bind(&row.reason).bind(&row.before_json).bind(&row.after_json).bind(&row.request_id)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Up to `limit` queued rows, oldest first, with their queue ids.
pub async fn pending(tx: &mut Tx, limit: i64) -> Result<Vec<(i64, AuditRow)>, sqlx::Error> {
    let sql = format!(
        "SELECT id, CAST(0 AS BIGINT) AS seq, {PENDING_COLUMNS}, '' AS prev_hash, '' AS hash \
         FROM audit_pending ORDER BY id LIMIT $1"
    );
    let rows: Vec<Queued> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(limit).fetch_all(conn).await)?;
    Ok(rows.into_iter().map(|q| (q.id, q.row)).collect())
}

/// Rows per multi-row statement: few distinct statement texts for the prepared-statement cache.
const CHUNK: usize = 32;

/// `($1, ..., $w), ($w+1, ...)` for `rows` rows of `width` values.
fn placeholders(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let values: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Appends sealed rows to the chain.
pub async fn insert_sealed(tx: &mut Tx, rows: &[AuditRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES {}",
            placeholders(chunk.len(), 14)
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(row.seq).bind(row.occurred_at).bind(row.actor_id).bind(&row.actor_email)
                    .bind(&row.action).bind(&row.entity_type).bind(&row.entity_id)
                    .bind(row.project_id).bind(&row.reason).bind(&row.before_json)
                    .bind(&row.after_json).bind(&row.request_id).bind(&row.prev_hash)
                    .bind(&row.hash);
            }
            query.execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Removes sealed rows from the queue (exactly these: a row queued earlier may commit later).
pub async fn delete_pending(tx: &mut Tx, ids: &[i64]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(CHUNK) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "DELETE FROM audit_pending WHERE id IN ({})",
            list.join(", ")
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
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

impl AuditFilter {
    /// The conditions in use (see [`Where`]).
    fn clause(&self) -> Where<'_> {
        let mut w = Where::default();
        if let Some(p) = self.project_id {
            w = w.and("project_id = ?", Param::Int(p));
        }
        if let Some(a) = &self.action {
            w = w.and("action = ?", Param::Text(a));
        }
        if let Some(from) = self.from {
            w = w.and("occurred_at >= ?", Param::Time(from));
        }
        if let Some(to) = self.to {
            w = w.and("occurred_at <= ?", Param::Time(to));
        }
        w
    }
}

/// Rows in chain order (oldest first) and the total matching the filter.
pub async fn list(
    db: &Db,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditRow>, i64), sqlx::Error> {
    let filter = filter.clause();
    let (clause, next) = (filter.sql(), filter.next_placeholder());
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events {clause} ORDER BY seq LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let mut rows = on_read!(db, pool => bind_params!(sqlx::query_as::<_, AuditRow>(&sql), &filter.params)
        .bind(limit.saturating_add(1)).bind(offset).fetch_all(pool).await)?;
    if let Some(total) = total_from_lookahead(&mut rows, limit, offset) {
        return Ok((rows, total));
    }
    Ok((rows, count(db, &filter).await?))
}

/// The time as the API shows it ([`crate::audit::format_at`]: six digits and `Z`), from the
/// text sqlx stores (`+00:00`, and none, 3, 6 or 9 digits after the second).
const SQLITE_AT: &str = "CASE length(occurred_at) \
    WHEN 25 THEN substr(occurred_at, 1, 19) || '.000000Z' \
    WHEN 29 THEN substr(occurred_at, 1, 23) || '000Z' \
    ELSE substr(occurred_at, 1, 26) || 'Z' END";

/// `occurred_at` has one of the shapes [`SQLITE_AT`] reads: a GLOB per sub-second length.
fn sqlite_time_shapes() -> String {
    let seconds = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]";
    ["", ".###", ".######", ".#########"]
        .iter()
        .map(|fraction| {
            let fraction = fraction.replace('#', "[0-9]");
            format!("occurred_at GLOB '{seconds}{fraction}+00:00'")
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// One page of entries as the API's JSON array, and the total; `None` where the typed [`list`]
/// must answer: PostgreSQL, or a page with a row SQLite cannot show exactly as serde does (a
/// time of another shape, or stored text that is not JSON, which only an edit of the table
/// writes and the typed path shows as a string).
///
/// Why: as for `projects::list_json`, a page built by SQLite crosses from its worker thread as
/// one row instead of one per entry. `tests/storage` checks the text against serde's.
pub async fn list_json(
    db: &Db,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let Db::Sqlite(sqlite) = db else {
        return Ok(None);
    };
    let filter = filter.clause();
    let (clause, next) = (filter.sql(), filter.next_placeholder());
    // An entry as the API's JSON object, field for field as serde writes `http::audit::AuditEntry`.
    // Concatenated rather than `json_object`, so that the stored JSON passes through byte for
    // byte without being parsed and written again.
    let entry = format!(
        "'{{\"seq\":' || seq || ',\"at\":\"' || ({SQLITE_AT}) || '\"' \
         || ',\"actor_id\":' || COALESCE(actor_id, 'null') || ',\"actor_email\":' || json_quote(actor_email) \
         || ',\"action\":' || json_quote(action) || ',\"entity_type\":' || json_quote(entity_type) \
         || ',\"entity_id\":' || json_quote(entity_id) || ',\"project_id\":' || COALESCE(project_id, 'null') \
         || ',\"reason\":' || json_quote(reason) || ',\"before\":' || COALESCE(before_json, 'null') \
         || ',\"after\":' || COALESCE(after_json, 'null') || ',\"request_id\":' || json_quote(request_id) \
         || ',\"prev_hash\":' || json_quote(prev_hash) || ',\"hash\":' || json_quote(hash) || '}}'"
    );
    let odd = format!(
        "NOT ({}) OR NOT json_valid(COALESCE(before_json, 'null')) \
         OR NOT json_valid(COALESCE(after_json, 'null'))",
        sqlite_time_shapes()
    );
    // Whether a row follows the page tells whether the total needs a COUNT (`total_if_shown`).
    let sql = format!(
        "SELECT '[' || COALESCE(group_concat(entry, ',' ORDER BY seq), '') || ']', COUNT(*), \
         COALESCE(SUM(odd), 0), EXISTS (SELECT 1 FROM audit_events {clause} ORDER BY seq LIMIT 1 OFFSET ${}) \
         FROM (SELECT seq, {entry} AS entry, {odd} AS odd \
         FROM audit_events {clause} ORDER BY seq LIMIT ${next} OFFSET ${})",
        next + 2,
        next + 1,
    );
    let (json, rows, odd, more): (String, i64, i64, bool) = crate::on_lease!(sqlite.read, conn => bind_params!(sqlx::query_as(&sql), &filter.params)
            .bind(limit)
            .bind(offset)
            .bind(offset.saturating_add(limit))
            .fetch_one(conn)
            .await)?;
    if odd > 0 {
        return Ok(None);
    }
    let total = match total_if_shown(rows + i64::from(more), limit, offset) {
        Some(total) => total,
        None => count(db, &filter).await?,
    };
    Ok(Some((json, total)))
}

/// The hash of the newest entry a filter's rows can hold: one project's newest, or the chain's
/// head. Entries are only ever appended, and each hash covers every entry before it, so an equal
/// hash means equal rows under any filter of that scope. Empty when there are none.
pub async fn newest_hash(db: &Db, project_id: Option<i64>) -> Result<String, sqlx::Error> {
    let hash: Option<String> = match project_id {
        Some(p) => on_read!(db, pool => sqlx::query_scalar(
            "SELECT hash FROM audit_events WHERE project_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(p).fetch_optional(pool).await)?,
        None => on_read!(db, pool => sqlx::query_scalar(
            "SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool).await)?,
    };
    Ok(hash.unwrap_or_default())
}

/// How many rows a filter's clause matches.
async fn count(db: &Db, filter: &Where<'_>) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) FROM audit_events {}", filter.sql());
    on_read!(db, pool => bind_params!(sqlx::query_scalar(&sql), &filter.params).fetch_one(pool).await)
}

/// The rows matching the filter, in chain order (exports): at most `max + 1`, so a caller can
/// tell "more than `max`" without reading them all.
pub async fn all(db: &Db, filter: &AuditFilter, max: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let filter = filter.clause();
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events {} ORDER BY seq LIMIT ${}",
        filter.sql(),
        filter.next_placeholder()
    );
    on_read!(db, pool => bind_params!(sqlx::query_as::<_, AuditRow>(&sql), &filter.params)
        .bind(max.saturating_add(1)).fetch_all(pool).await)
}

/// `(seq, hash)` of the rows at these places of the chain (those that exist).
pub async fn hashes_at(db: &Db, seqs: &[i64]) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let mut out = Vec::with_capacity(seqs.len());
    // A few hundred placeholders per statement: within every backend's limit.
    for chunk in seqs.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT seq, hash FROM audit_events WHERE seq IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(i64, String)> = on_read!(db, pool => {
            let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
            for s in chunk {
                q = q.bind(*s);
            }
            q.fetch_all(pool).await
        })?;
        out.extend(rows);
    }
    Ok(out)
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

/// A signed checkpoint as recorded in `audit_checkpoints`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredCheckpoint {
    pub head_seq: i64,
    pub head_hash: String,
    pub at: String,
    pub signature: String,
}

/// Records a checkpoint that is being written (inside the writer's transaction).
pub async fn insert_checkpoint(tx: &mut Tx, cp: &StoredCheckpoint) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO audit_checkpoints (head_seq, head_hash, at, signature) VALUES ($1, $2, $3, $4)")
        .bind(cp.head_seq).bind(&cp.head_hash).bind(&cp.at).bind(&cp.signature)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

const LATEST_CHECKPOINT: &str = "SELECT head_seq, head_hash, at, signature FROM audit_checkpoints \
    ORDER BY head_seq DESC, id DESC LIMIT 1";

/// The recorded checkpoint with the highest `head_seq`, inside a transaction.
pub async fn latest_checkpoint_tx(tx: &mut Tx) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query_as(LATEST_CHECKPOINT).fetch_optional(conn).await)
}

/// The recorded checkpoint with the highest `head_seq`.
pub async fn latest_checkpoint(db: &Db) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(LATEST_CHECKPOINT).fetch_optional(pool).await)
}

fn rows_after_sql() -> String {
    format!("SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
}

const HASH_AT: &str = "SELECT hash FROM audit_events WHERE seq = $1";

/// Up to `limit` chain rows after `seq`, in order, read inside the writer's transaction.
pub async fn rows_after(tx: &mut Tx, seq: i64, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let sql = rows_after_sql();
    on_tx!(tx, conn => sqlx::query_as(&sql).bind(seq).bind(limit).fetch_all(conn).await)
}

/// Up to `limit` chain rows after `seq`, in order, read on their own (one statement).
pub async fn rows_after_read(db: &Db, seq: i64, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let sql = rows_after_sql();
    on_read!(db, pool => sqlx::query_as(&sql).bind(seq).bind(limit).fetch_all(pool).await)
}

/// The stored hash of the row at `seq`, inside a transaction.
pub async fn hash_at(tx: &mut Tx, seq: i64) -> Result<Option<String>, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query_scalar(HASH_AT).bind(seq).fetch_optional(conn).await)
}

/// The stored hash of the row at `seq`, read on its own.
pub async fn hash_at_read(db: &Db, seq: i64) -> Result<Option<String>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar(HASH_AT).bind(seq).fetch_optional(pool).await)
}

/// A row still waiting in `audit_pending` for its place on the chain.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PendingRow {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub request_id: String,
}

/// How many rows wait in the queue, and when the oldest of them was written.
pub async fn pending_summary(db: &Db) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    let count: i64 = on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
        .fetch_one(pool).await)?;
    if count == 0 {
        return Ok((0, None));
    }
    let oldest: Option<DateTime<Utc>> = on_read!(db, pool => sqlx::query_scalar(
        "SELECT occurred_at FROM audit_pending ORDER BY occurred_at LIMIT 1")
        .fetch_optional(pool).await)?;
    Ok((count, oldest))
}

/// The oldest `limit` queued rows, named for people.
pub async fn pending_rows(db: &Db, limit: i64) -> Result<Vec<PendingRow>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(
        "SELECT id, occurred_at, action, entity_type, entity_id, request_id FROM audit_pending \
         ORDER BY id LIMIT $1").bind(limit).fetch_all(pool).await)
}

/// `(seq, prev_hash, hash)` of the chain rows in `from..=to`, for exports that carry the links
/// between the rows they select.
pub async fn links(db: &Db, from: i64, to: i64) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(
        "SELECT seq, prev_hash, hash FROM audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq")
        .bind(from).bind(to).fetch_all(pool).await)
}
