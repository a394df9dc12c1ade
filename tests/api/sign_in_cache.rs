//! The sign-in cache: it serves, and a disabled account or a revoked key stops at once on every
//! replica (PostgreSQL's account-change triggers), also after the listener lost its connection.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};

/// How long a change may take to reach another replica before the test fails; the cache itself
/// would serve a stale entry for a minute.
const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `check` until it holds or [`DEADLINE`] passes: the notification crosses processes'
/// connections asynchronously, so the test waits for the condition, never for a fixed time.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::task::yield_now().await;
    }
}

async fn me(replica: &Replica, token: &str) -> (u16, Value) {
    let res = replica
        .get("/api/users/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A change made with the triggers off, as nothing in the service ever does: only the cache
/// can then hide it.
async fn silently_set_role(app: &TestApp, user_id: i64, role: &str) {
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_reach_every_replica_at_once() {
    let Some(a) = TestApp::start(Backend::Postgres, &[]).await else {
        skipped("TEST_DATABASE_URL");
        return;
    };
    let b = a.replica().await;
    let admin = a.user_with_role("admin@example.com", "admin").await;
    let user = a.jwt_for("roaming");
    let created = a
        .post("/api/users/me/api-keys")
        .bearer_auth(&user)
        .json(&json!({"name": "script"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let (key, key_id) = (created["key"].as_str().unwrap().to_string(), &created["id"]);
    eventually("replica b's listener", || async {
        b.state.sign_in.cache_is_serving()
    })
    .await;

    // B caches the user: a change its listener never hears of stays hidden.
    let (status, body) = me(&b, &user).await;
    assert_eq!((status, body["role"].as_str()), (200, Some("user")));
    let user_id = body["id"].as_i64().unwrap();
    assert_eq!(me(&b, &key).await.0, 200);
    silently_set_role(&a, user_id, "auditor").await;
    assert_eq!(
        me(&b, &user).await.1["role"],
        "user",
        "served from the cache"
    );

    // A revokes the key: B refuses it without waiting for its entry to expire.
    let res = a
        .delete(&format!("/api/users/me/api-keys/{key_id}"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        status_of(&a, &key, "/api/users/me").await,
        401,
        "refused at once where revoked"
    );
    eventually("the revoked key on replica b", || async {
        me(&b, &key).await.0 == 401
    })
    .await;

    // An admin on A disables the user: B refuses the JWT too.
    let res = a
        .patch(&format!("/api/users/{user_id}"))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        status_of(&a, &user, "/api/users/me").await,
        403,
        "refused at once where disabled"
    );
    eventually("the disabled user on replica b", || async {
        me(&b, &user).await.0 == 403
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_empties_the_cache_when_it_is_back() {
    let Some(a) = TestApp::start(Backend::Postgres, &[]).await else {
        skipped("TEST_DATABASE_URL");
        return;
    };
    let user = a.jwt_for("steady");
    let replica = a.replica().await;
    eventually("the listener", || async {
        replica.state.sign_in.cache_is_serving()
    })
    .await;
    // The first request provisions the user, the second caches it.
    assert_eq!(me(&replica, &user).await.0, 200);
    let (status, body) = me(&replica, &user).await;
    assert_eq!(status, 200);
    let user_id = body["id"].as_i64().unwrap();
    silently_set_role(&a, user_id, "auditor").await;
    assert_eq!(
        me(&replica, &user).await.1["role"],
        "user",
        "served from the cache"
    );

    // The listeners' connections are cut, as a PostgreSQL restart or a network fault would:
    // what changed while nobody listened is never announced, so the cache must start over.
    let pool = sqlx::PgPool::connect(&a.db_url).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "a listener was connected");
    // Answered by a serving cache (not while it is bypassed, which would read the database).
    let serving = || replica.state.sign_in.cache_is_serving();
    eventually("the change made while the listener was cut", || async {
        let before = serving();
        let role = me(&replica, &user).await.1["role"].clone();
        before && serving() && role == "auditor"
    })
    .await;
}
