//! Users and API keys.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{now, total_from_lookahead, Db, Tx};
use crate::{on_read, on_tx, on_write};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct User {
    pub id: i64,
    #[serde(skip)]
    pub subject: String,
    pub email: String,
    pub name: String,
    /// `user`, `auditor` or `admin`.
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
    /// Admins and auditors read every audit trail.
    pub fn reads_all_audit(&self) -> bool {
        self.role == "admin" || self.role == "auditor"
    }
}

const USER_COLUMNS: &str = "id, subject, email, name, role, disabled, created_at";

pub async fn find_by_subject(db: &Db, subject: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE subject = $1");
    on_read!(db, pool => sqlx::query_as::<_, User>(&sql).bind(subject).fetch_optional(pool).await)
}

pub async fn find(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    on_read!(db, pool => sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(pool).await)
}

pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<(Vec<User>, i64), sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2");
    let mut rows = on_read!(db, pool => sqlx::query_as::<_, User>(&sql)
        .bind(limit.saturating_add(1)).bind(offset).fetch_all(pool).await)?;
    if let Some(total) = total_from_lookahead(&mut rows, limit, offset) {
        return Ok((rows, total));
    }
    let total: i64 = on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
    Ok((rows, total))
}

/// Inserts a user; `None` when the subject already exists (a concurrent first request).
pub async fn insert(
    tx: &mut Tx,
    subject: &str,
    email: &str,
    name: &str,
    role: &str,
) -> Result<Option<User>, sqlx::Error> {
    let at = now();
    let sql = format!(
        "INSERT INTO users (subject, email, name, role, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, FALSE, $5, $5) ON CONFLICT (subject) DO NOTHING \
         RETURNING {USER_COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, User>(&sql)
        .bind(subject).bind(email).bind(name).bind(role).bind(at)
        .fetch_optional(conn).await)
}

pub async fn update_profile(
    tx: &mut Tx,
    id: i64,
    email: &str,
    name: &str,
) -> Result<User, sqlx::Error> {
    let sql = format!(
        "UPDATE users SET email = $1, name = $2, updated_at = $3 WHERE id = $4 RETURNING {USER_COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, User>(&sql)
        .bind(email).bind(name).bind(now()).bind(id).fetch_one(conn).await)
}

pub async fn update_admin_fields(
    tx: &mut Tx,
    id: i64,
    role: Option<&str>,
    disabled: Option<bool>,
) -> Result<Option<User>, sqlx::Error> {
    let sql = format!(
        "UPDATE users SET role = COALESCE($1, role), disabled = COALESCE($2, disabled), updated_at = $3 \
         WHERE id = $4 RETURNING {USER_COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, User>(&sql)
        .bind(role).bind(disabled).bind(now()).bind(id).fetch_optional(conn).await)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ApiKey {
    pub id: i64,
    #[serde(skip)]
    pub user_id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it; never the whole key.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str =
    "id, user_id, name, prefix, created_at, expires_at, revoked_at, last_used_at";

pub async fn insert_key(
    tx: &mut Tx,
    user_id: i64,
    name: &str,
    prefix: &str,
    key_hash: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<ApiKey, sqlx::Error> {
    let sql = format!(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, ApiKey>(&sql)
        .bind(user_id).bind(name).bind(prefix).bind(key_hash).bind(now()).bind(expires_at)
        .fetch_one(conn).await)
}

/// The key row and the hash stored for it, looked up by hash.
pub async fn find_key_by_hash(
    db: &Db,
    key_hash: &str,
) -> Result<Option<(ApiKey, String)>, sqlx::Error> {
    let sql = format!("SELECT {KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = $1");
    let row: Option<KeyWithHash> = on_read!(db, pool => sqlx::query_as::<_, KeyWithHash>(&sql)
        .bind(key_hash).fetch_optional(pool).await)?;
    Ok(row.map(|r| (r.key, r.key_hash)))
}

#[derive(sqlx::FromRow)]
struct KeyWithHash {
    #[sqlx(flatten)]
    key: ApiKey,
    key_hash: String,
}

/// Stamps a key's use at `at`, unless a stamp newer than `stale` is there already (so that
/// concurrent requests write once); returns whether it wrote.
pub async fn touch_key(
    db: &Db,
    id: i64,
    at: DateTime<Utc>,
    stale: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE api_keys SET last_used_at = $1 \
               WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)";
    let done = on_write!(db, pool => sqlx::query(sql).bind(at).bind(id).bind(stale).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn list_keys(db: &Db, user_id: i64) -> Result<Vec<ApiKey>, sqlx::Error> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id");
    on_read!(db, pool => sqlx::query_as::<_, ApiKey>(&sql).bind(user_id).fetch_all(pool).await)
}

pub async fn find_key(tx: &mut Tx, id: i64) -> Result<Option<ApiKey>, sqlx::Error> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    on_tx!(tx, conn => sqlx::query_as::<_, ApiKey>(&sql).bind(id).fetch_optional(conn).await)
}

pub async fn revoke_key(tx: &mut Tx, id: i64) -> Result<ApiKey, sqlx::Error> {
    let sql = format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {KEY_COLUMNS}"
    );
    on_tx!(tx, conn => sqlx::query_as::<_, ApiKey>(&sql).bind(now()).bind(id).fetch_one(conn).await)
}

/// The channel on which PostgreSQL triggers announce a change to `users` or to a key's
/// revocation or expiry (migration 0008), so every replica's sign-in cache empties at once.
pub const ACCOUNT_CHANNEL: &str = "regassist_accounts";

/// A connection of its own, listening on [`ACCOUNT_CHANNEL`].
pub async fn listen_for_account_changes(
    pg: &super::PgDb,
) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pg.pool.sqlx()).await?;
    listener.listen(ACCOUNT_CHANNEL).await?;
    Ok(listener)
}
