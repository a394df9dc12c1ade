//! The `Db` enum over PostgreSQL and SQLite pools, connections, migrations and transactions.
//!
//! SQL is written once in the portable subset (`$1..$n` in order, `RETURNING`, `ON CONFLICT`) and
//! run on whichever pool is live through the [`on_read!`], [`on_write!`] and [`on_tx!`] macros.
//! SQLite gets a single-connection writer pool so writes queue in-process instead of failing
//! with "database is locked", and a pool of readers that WAL mode lets run beside it.

pub mod agent;
pub mod audit;
pub mod classifications;
pub mod filter;
pub mod mirror;
pub mod predicates;
pub mod projects;
pub mod users;
pub mod warm;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use self::warm::WarmPool;

use crate::config::Config;

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The PostgreSQL pools.
#[derive(Clone, Debug)]
pub struct PgDb {
    /// The requests' connections (single statements keep theirs warm, see [`warm`]).
    pub pool: WarmPool<Postgres>,
    /// One connection of its own for work that others wait on (the audit chain's sealing
    /// rounds), so it never queues for a connection behind the requests waiting for it.
    pub round_pool: PgPool,
}

/// SQLite's two pools (many readers, one writer).
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pub read: WarmPool<Sqlite>,
    pub write: SqlitePool,
}

#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgDb),
    Sqlite(SqliteDb),
}

/// An open transaction on either backend; dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub conn: TxConn,
}

/// A transaction's connection.
pub enum TxConn {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs `$body`, one statement whose value is a `Result<_, sqlx::Error>`, with `$pool` bound to
/// an executor for reading: a warm connection (see [`warm`]).
#[macro_export]
macro_rules! on_read {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres(pg) => $crate::on_lease!(pg.pool, $pool => $body),
            $crate::db::Db::Sqlite(sqlite) => $crate::on_lease!(sqlite.read, $pool => $body),
        }
    };
}

/// Runs `$body` on a connection leased from a [`warm::WarmPool`], and keeps the connection warm
/// when `$body` returned `Ok`.
#[macro_export]
macro_rules! on_lease {
    ($warm:expr, $conn:ident => $body:expr) => {
        match $warm.acquire().await {
            Ok(mut lease) => {
                let out = {
                    let $conn = lease.conn();
                    $body
                };
                lease.finish(&out);
                out
            }
            Err(error) => Err(error),
        }
    };
}

/// Runs `$body`, one statement whose value is a `Result<_, sqlx::Error>`, with `$pool` bound to
/// an executor that writes.
#[macro_export]
macro_rules! on_write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres(pg) => $crate::on_lease!(pg.pool, $pool => $body),
            $crate::db::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.write;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.conn {
            $crate::db::TxConn::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::TxConn::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// The current time as stored: UTC, truncated to microseconds so both backends keep it exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Pool figures for the health check.
#[derive(Debug, serde::Serialize)]
pub struct PoolStats {
    pub backend: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// A PostgreSQL connection unused for longer than this is tested (a round trip) before it is
/// handed out; one in steady use is not. The same window as HikariCP's `aliveBypassWindowMs`.
const PG_TEST_IF_IDLE_FOR: Duration = Duration::from_millis(500);

/// Pool options for PostgreSQL. sqlx by default sends a `Sync` and waits for the server's answer
/// before every acquire: a second round trip for every single-query request, and on two cores
/// a wake-up of the server process each time. A connection that has been idle for a while may
/// have been cut (a restart, a failover, an idle timeout), so only those are tested; one cut
/// while in steady use fails its query, and sqlx's own test on release closes it.
fn pg_pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PG_TEST_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Db {
    /// Connects without running migrations.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let url = config.database_url.expose();
        if config.is_postgres() {
            // Every connection (the sealing round's too) bounds its statements and lock waits,
            // so no query or lock held elsewhere can hold a request or the chain head for ever.
            let options = PgConnectOptions::from_str(url)
                .context("parsing DATABASE_URL")?
                .options([
                    (
                        "statement_timeout",
                        config.db_statement_timeout.as_millis().to_string(),
                    ),
                    (
                        "lock_timeout",
                        config.db_lock_timeout.as_millis().to_string(),
                    ),
                ]);
            let pool = pg_pool_options()
                .max_connections(config.db_max_connections)
                .min_connections(1)
                .acquire_timeout(config.db_acquire_timeout)
                .connect_with(options.clone())
                .await
                .context("connecting to PostgreSQL")?;
            let round_pool = pg_pool_options()
                .max_connections(1)
                .acquire_timeout(config.db_acquire_timeout)
                .connect_lazy_with(options);
            let pool = WarmPool::new(pool, Some(PG_TEST_IF_IDLE_FOR));
            Ok(Db::Postgres(PgDb { pool, round_pool }))
        } else {
            Self::connect_sqlite(url, config.db_max_connections, config.db_acquire_timeout).await
        }
    }

    /// Opens (creating if needed) a SQLite database file in WAL mode.
    pub async fn connect_sqlite(
        url: &str,
        readers: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("parsing DATABASE_URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("cache_size", "-4000")
            .pragma("temp_store", "memory");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
        }
        // A connection to a file in this process cannot have gone away: no test before each use
        // (by default sqlx pings it first, a round trip to the connection's worker thread).
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .acquire_timeout(acquire_timeout.max(Duration::from_secs(30)))
            .connect_with(options.clone())
            .await
            .context("opening SQLite database")?;
        let read = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(readers)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await
            .context("opening SQLite database")?;
        let read = WarmPool::new(read, None);
        Ok(Db::Sqlite(SqliteDb { read, write }))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(pg) => PG_MIGRATOR.run(pg.pool.sqlx()).await?,
            Db::Sqlite(s) => SQLITE_MIGRATOR.run(&s.write).await?,
        }
        Ok(())
    }

    /// True when every migration this binary knows is applied.
    pub async fn migrations_applied(&self) -> Result<bool, sqlx::Error> {
        let (expected, sql) = match self {
            Db::Postgres(_) => (PG_MIGRATOR.iter().count(), MIGRATIONS_DONE),
            Db::Sqlite(_) => (SQLITE_MIGRATOR.iter().count(), MIGRATIONS_DONE),
        };
        let applied: i64 = on_read!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?;
        Ok(applied as usize >= expected)
    }

    /// The cheap liveness query of the health check.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_read!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        match self {
            Db::Postgres(pg) => PoolStats {
                backend: "postgres",
                size: pg.pool.sqlx().size(),
                idle: (pg.pool.sqlx().num_idle() + pg.pool.kept()) as u32,
                max: pg.pool.sqlx().options().get_max_connections(),
            },
            Db::Sqlite(s) => PoolStats {
                backend: "sqlite",
                size: s.read.sqlx().size() + s.write.size(),
                idle: (s.read.sqlx().num_idle() + s.read.kept() + s.write.num_idle()) as u32,
                max: s.read.sqlx().options().get_max_connections() + 1,
            },
        }
    }

    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let conn = match self {
            Db::Postgres(pg) => TxConn::Postgres(pg.pool.begin().await?),
            Db::Sqlite(s) => TxConn::Sqlite(s.write.begin().await?),
        };
        Ok(Tx { conn })
    }

    /// A transaction on the connection kept for work others wait on (see [`PgDb::round_pool`]).
    pub async fn begin_round(&self) -> Result<Tx, sqlx::Error> {
        let conn = match self {
            Db::Postgres(pg) => TxConn::Postgres(pg.round_pool.begin().await?),
            Db::Sqlite(s) => TxConn::Sqlite(s.write.begin().await?),
        };
        Ok(Tx { conn })
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(pg) => {
                pg.pool.close().await;
                pg.round_pool.close().await;
            }
            Db::Sqlite(s) => {
                s.read.close().await;
                s.write.close().await;
            }
        }
    }
}

const MIGRATIONS_DONE: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.conn {
            TxConn::Postgres(tx) => tx.commit().await,
            TxConn::Sqlite(tx) => tx.commit().await,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.conn, TxConn::Postgres(_))
    }
}

/// For a page read with `LIMIT limit + 1`: drops the look-ahead row and returns the total when
/// the page shows it (see [`total_if_shown`]).
pub fn total_from_lookahead<T>(rows: &mut Vec<T>, limit: i64, offset: i64) -> Option<i64> {
    let read = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    total_if_shown(read, limit, offset)
}

/// The total a page read with `LIMIT limit + 1` shows, from the number of rows it read: known
/// when nothing follows the page and it is not past the end, so the `COUNT(*)` query runs only
/// when more rows follow.
pub fn total_if_shown(read: i64, limit: i64, offset: i64) -> Option<i64> {
    if read > limit || (read == 0 && offset > 0) {
        return None;
    }
    Some(offset + read)
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::total_from_lookahead;

    fn page(fetched: usize, limit: i64, offset: i64) -> (usize, Option<i64>) {
        let mut rows = vec![0; fetched];
        let total = total_from_lookahead(&mut rows, limit, offset);
        (rows.len(), total)
    }

    #[test]
    fn a_page_without_a_row_after_it_tells_its_total() {
        assert_eq!(page(0, 20, 0), (0, Some(0)));
        assert_eq!(page(7, 20, 0), (7, Some(7)));
        assert_eq!(page(20, 20, 0), (20, Some(20)));
        assert_eq!(page(7, 20, 40), (7, Some(47)));
        // A row after the page: more follow. Empty past the start: the end may be anywhere.
        assert_eq!(page(21, 20, 0), (20, None));
        assert_eq!(page(0, 20, 40), (0, None));
    }
}
