//! `db::warm::WarmPool` on a real PostgreSQL: which connections it keeps, and that nobody waits
//! behind the ones it keeps.

use std::time::Duration;

use regassist::db::warm::WarmPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use crate::common::skipped;

/// A pool of `max` connections to the test server, and its URL.
async fn pool(max: u32) -> Option<(PgPool, String)> {
    let url = std::env::var("TEST_DATABASE_URL").ok()?;
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
        .unwrap();
    Some((pool, url))
}

async fn backend_pid(warm: &WarmPool<Postgres>) -> Result<i32, sqlx::Error> {
    regassist::on_lease!(warm, conn => sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await)
}

#[tokio::test]
async fn a_statement_that_succeeded_leaves_its_connection_for_the_next() {
    let Some((pool, _db)) = pool(4).await else {
        return skipped("TEST_DATABASE_URL");
    };
    let warm = WarmPool::new(pool, None);
    let first = backend_pid(&warm).await.unwrap();
    assert_eq!(warm.kept(), 1);
    assert_eq!(backend_pid(&warm).await.unwrap(), first);
    assert_eq!(warm.kept(), 1);
}

#[tokio::test]
async fn a_failed_or_cancelled_statement_returns_its_connection_through_sqlx() {
    let Some((pool, _db)) = pool(4).await else {
        return skipped("TEST_DATABASE_URL");
    };
    let warm = WarmPool::new(pool, None);
    let failed: Result<i32, sqlx::Error> = regassist::on_lease!(warm, conn =>
        sqlx::query_scalar("SELECT no_such_column").fetch_one(conn).await);
    assert!(failed.is_err());
    assert_eq!(warm.kept(), 0);

    // Dropped mid-statement: the connection may still have a reply to read.
    let slow = async {
        let _: Result<(), sqlx::Error> = regassist::on_lease!(warm, conn =>
            sqlx::query("SELECT pg_sleep(5)").execute(conn).await.map(drop));
    };
    assert!(tokio::time::timeout(Duration::from_millis(50), slow)
        .await
        .is_err());
    assert_eq!(warm.kept(), 0);
    // And the pool still answers.
    backend_pid(&warm).await.unwrap();
}

#[tokio::test]
async fn a_transaction_does_not_wait_behind_kept_connections() {
    // Two connections: one kept, one held by a statement in flight. A transaction must get the
    // kept one back from the warm pool rather than wait out the pool's 2-second timeout.
    let Some((pool, _db)) = pool(2).await else {
        return skipped("TEST_DATABASE_URL");
    };
    let warm = WarmPool::new(pool, None);
    let held = warm.acquire().await.unwrap();
    backend_pid(&warm).await.unwrap();
    assert_eq!(warm.kept(), 1);
    let tx = warm.begin().await;
    assert!(tx.is_ok(), "{:?}", tx.err());
    drop(held);
}

#[tokio::test]
async fn a_kept_connection_cut_meanwhile_is_replaced_before_use() {
    let Some((pool, url)) = pool(4).await else {
        return skipped("TEST_DATABASE_URL");
    };
    // Every kept connection is tested before it is used again.
    let warm = WarmPool::new(pool, Some(Duration::ZERO));
    let first = backend_pid(&warm).await.unwrap();
    assert_eq!(warm.kept(), 1);
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let cut: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(cut);
    let next = backend_pid(&warm).await.unwrap();
    assert_ne!(next, first);
}
