//! Projects: owner-scoped reads, optimistic-concurrency updates, soft delete.

use sqlx::types::Json;

use super::filter::{Param, Where};
use super::{now, total_from_lookahead, total_if_shown, Db, Tx};
use crate::domain::project::{NewProject, Project, ProjectChanges};
use crate::{bind_params, on_read, on_tx};

const COLUMNS: &str = "id, user_id, name, description, device_type, intended_use, product_code, \
    status, priority, tags, version, created_at, updated_at";

pub async fn insert(tx: &mut Tx, user_id: i64, p: &NewProject) -> Result<Project, sqlx::Error> {
    let at = now();
    let sql = format!(
        "INSERT INTO projects (user_id, name, description, device_type, intended_use, product_code, \
         status, priority, tags, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8, 1, $9, $9) RETURNING {COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, Project>(&sql)
        .bind(user_id).bind(&p.name).bind(&p.description).bind(&p.device_type)
        .bind(&p.intended_use).bind(&p.product_code).bind(&p.priority).bind(Json(&p.tags)).bind(at)
        .fetch_one(conn).await)
}

/// A live project of this owner.
pub async fn find_owned(db: &Db, id: i64, user_id: i64) -> Result<Option<Project>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    );
    on_read!(db, pool => sqlx::query_as::<_, Project>(&sql).bind(id).bind(user_id).fetch_optional(pool).await)
}

/// A live project by id whoever owns it (auditors and admins reading audit trails).
pub async fn find_any(db: &Db, id: i64) -> Result<Option<Project>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE id = $1 AND deleted_at IS NULL");
    on_read!(db, pool => sqlx::query_as::<_, Project>(&sql).bind(id).fetch_optional(pool).await)
}

/// The owner's live project, locked for the rest of the transaction on PostgreSQL.
pub async fn find_owned_for_update(
    tx: &mut Tx,
    id: i64,
    user_id: i64,
) -> Result<Option<Project>, sqlx::Error> {
    let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL{lock}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, Project>(&sql).bind(id).bind(user_id).fetch_optional(conn).await)
}

#[derive(Debug, Default, Clone)]
pub struct ProjectFilter {
    pub search: Option<String>,
    pub status: Option<String>,
    pub device_type: Option<String>,
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl ProjectFilter {
    /// The owner's live projects and the filters in use (see [`Where`]): unfiltered, the page
    /// and the count walk the owner's partial index with no term left to test on each row.
    fn clause<'a>(&'a self, user_id: i64, pattern: Option<&'a str>) -> Where<'a> {
        let mut w = Where::default()
            .and("user_id = ?", Param::Int(user_id))
            .and_always("deleted_at IS NULL");
        if let Some(p) = pattern {
            w = w.and(
                "(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(description, '')) LIKE ? ESCAPE '\\' \
                 OR LOWER(COALESCE(device_type, '')) LIKE ? ESCAPE '\\')",
                Param::Text(p),
            );
        }
        if let Some(status) = &self.status {
            w = w.and("status = ?", Param::Text(status));
        }
        if let Some(device_type) = &self.device_type {
            w = w.and("LOWER(device_type) = LOWER(?)", Param::Text(device_type));
        }
        w
    }
}

/// The owner's projects, newest change first, and the total.
pub async fn list(
    db: &Db,
    user_id: i64,
    filter: &ProjectFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Project>, i64), sqlx::Error> {
    let pattern = filter.search.as_deref().map(like_pattern);
    let filter = filter.clause(user_id, pattern.as_deref());
    let (clause, next) = (filter.sql(), filter.next_placeholder());
    let sql = format!(
        "SELECT {COLUMNS} FROM projects {clause} ORDER BY updated_at DESC, id DESC LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let mut rows = on_read!(db, pool => bind_params!(sqlx::query_as::<_, Project>(&sql), &filter.params)
        .bind(limit.saturating_add(1)).bind(offset).fetch_all(pool).await)?;
    if let Some(total) = total_from_lookahead(&mut rows, limit, offset) {
        return Ok((rows, total));
    }
    Ok((rows, count(db, &filter).await?))
}

/// The version of the owner's project list: slots of random numbers, one replaced in the same
/// transaction as any change to one of the owner's projects (triggers, migration 0009), so equal
/// versions mean an equal list.
pub async fn list_version(db: &Db, user_id: i64) -> Result<String, sqlx::Error> {
    let slots: Vec<i64> = on_read!(db, pool => sqlx::query_scalar(
        "SELECT version FROM project_list_versions WHERE user_id = $1 ORDER BY slot")
        .bind(user_id).fetch_all(pool).await)?;
    let mut version = String::with_capacity(slots.len() * 20);
    for slot in slots {
        use std::fmt::Write;
        let _ = write!(version, "{slot},");
    }
    Ok(version)
}

/// How many projects a filter's clause matches.
async fn count(db: &Db, filter: &Where<'_>) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) FROM projects {}", filter.sql());
    on_read!(db, pool => bind_params!(sqlx::query_scalar(&sql), &filter.params).fetch_one(pool).await)
}

/// A project as the API's JSON object, built by SQLite, field for field what serde writes for
/// [`Project`]. sqlx stores a time as RFC 3339 with `+00:00`, serde writes the same digits with `Z`.
const SQLITE_PROJECT_JSON: &str = "json_object('id', id, 'user_id', user_id, 'name', name, \
    'description', description, 'device_type', device_type, 'intended_use', intended_use, \
    'product_code', product_code, 'status', status, 'priority', priority, 'tags', json(tags), \
    'version', version, 'created_at', replace(created_at, '+00:00', 'Z'), \
    'updated_at', replace(updated_at, '+00:00', 'Z'))";

/// The shape of every time this service stores (see [`SQLITE_PROJECT_JSON`]).
const SQLITE_UTC_TIME: &str =
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*+00:00'";

/// One page of the owner's projects as the API's JSON array, and the total; `None` where the
/// typed [`list`] must answer (PostgreSQL, or a page holding a time this service never writes).
///
/// Why: sqlx hands each SQLite row from the connection's worker thread to the request's task, a
/// thread switch per row that made a page of 20 cost ten single-row reads (bench/profiles). Built
/// by SQLite, the page is one row. `tests/storage` checks the text against serde's, byte for byte.
pub async fn list_json(
    db: &Db,
    user_id: i64,
    filter: &ProjectFilter,
    limit: i64,
    offset: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let Db::Sqlite(sqlite) = db else {
        return Ok(None);
    };
    let pattern = filter.search.as_deref().map(like_pattern);
    let filter = filter.clause(user_id, pattern.as_deref());
    let (clause, next) = (filter.sql(), filter.next_placeholder());
    // One row past the page tells whether the total needs a COUNT (see `total_if_shown`).
    let sql = format!(
        "WITH page AS (SELECT {COLUMNS}, ROW_NUMBER() OVER (ORDER BY updated_at DESC, id DESC) AS n \
         FROM projects {clause} ORDER BY updated_at DESC, id DESC LIMIT ${next} OFFSET ${}) \
         SELECT json_group_array({SQLITE_PROJECT_JSON} ORDER BY n) FILTER (WHERE n <= ${}), COUNT(*), \
         COALESCE(SUM(created_at NOT GLOB {SQLITE_UTC_TIME} OR updated_at NOT GLOB {SQLITE_UTC_TIME}), 0) \
         FROM page",
        next + 1,
        next + 2
    );
    let (json, rows, odd_times): (String, i64, i64) = crate::on_lease!(sqlite.read, conn => bind_params!(sqlx::query_as(&sql), &filter.params)
            .bind(limit.saturating_add(1))
            .bind(offset)
            // Row numbers count from the first filtered row, before the offset.
            .bind(offset.saturating_add(limit))
            .fetch_one(conn)
            .await)?;
    if odd_times > 0 {
        return Ok(None);
    }
    let total = match total_if_shown(rows, limit, offset) {
        Some(total) => total,
        None => count(db, &filter).await?,
    };
    Ok(Some((json, total)))
}

/// Writes the changed project if it is still at `version`; `None` when another change won.
pub async fn update(
    tx: &mut Tx,
    current: &Project,
    changes: &ProjectChanges,
) -> Result<Option<Project>, sqlx::Error> {
    let p = changes.apply(current);
    let sql = format!(
        "UPDATE projects SET name = $1, description = $2, device_type = $3, intended_use = $4, \
         product_code = $5, status = $6, priority = $7, tags = $8, version = version + 1, updated_at = $9 \
         WHERE id = $10 AND version = $11 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, Project>(&sql)
        .bind(&p.name).bind(&p.description).bind(&p.device_type).bind(&p.intended_use)
        .bind(&p.product_code).bind(&p.status).bind(&p.priority).bind(Json(&p.tags)).bind(now())
        .bind(current.id).bind(current.version)
        .fetch_optional(conn).await)
}

/// Marks the project deleted (its rows and history stay).
pub async fn soft_delete(tx: &mut Tx, current: &Project) -> Result<bool, sqlx::Error> {
    let done = on_tx!(tx, conn => sqlx::query(
        "UPDATE projects SET deleted_at = $1, version = version + 1 WHERE id = $2 AND version = $3 AND deleted_at IS NULL")
        .bind(now()).bind(current.id).bind(current.version).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Bumps `updated_at` after a change to something the project owns (predicates, classification).
pub async fn touch(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("UPDATE projects SET updated_at = $1 WHERE id = $2")
        .bind(now()).bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}
