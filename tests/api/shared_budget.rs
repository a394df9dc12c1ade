//! The outbound budget shared through Redis by two service instances, and searches that keep
//! answering when Redis goes away. Redis tests need `TEST_REDIS_URL` (CI sets it) or, for the
//! outage test, the `redis-server` binary; without them they skip with a message.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::fake_openfda::FakeOpenFda;
use crate::common::*;
use crate::support::get;

fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        skipped("TEST_REDIS_URL");
    }
    url
}

/// Starts an instance of the service on `fake` with the given Redis and budget key prefix.
async fn instance(
    fake: &FakeOpenFda,
    redis: &str,
    prefix: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut pairs = vec![
        ("OPENFDA_BASE_URL", fake.base.as_str()),
        ("OPENFDA_MODE", "live"),
        ("REDIS_URL", redis),
        ("REGASSIST_OPENFDA_BUDGET_PREFIX", prefix),
        ("REGASSIST_OPENFDA_RATE_PER_SECOND", "1000"),
        ("REGASSIST_OPENFDA_BACKOFF_MS", "5"),
    ];
    pairs.extend_from_slice(extra);
    TestApp::start(Backend::Sqlite, &pairs).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_exceed_the_shared_budget() {
    let Some(redis) = redis_url() else { return };
    const BUDGET: u64 = 30;
    let fake = FakeOpenFda::start().await;
    // openFDA's own limit equals ours: one call too many would come back as a 429.
    fake.limit(BUDGET, Duration::from_secs(60));
    let prefix = format!("test:{}:openfda", uuid::Uuid::new_v4().simple());
    let extra = [
        ("OPENFDA_RATE_PER_MINUTE", "30"),
        ("REGASSIST_OPENFDA_BUDGET_WAIT_MS", "50"),
        ("REGASSIST_OPENFDA_MAX_RETRIES", "0"),
    ];
    let a = instance(&fake, &redis, &prefix, &extra).await;
    let b = instance(&fake, &redis, &prefix, &extra).await;
    let token = a.jwt_for("budget");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (mut ok, mut refused) = (0, 0);
    for batch in 0..20 {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let n = batch * 50 + i;
            let app = if n % 2 == 0 { &a } else { &b };
            // Distinct queries: every one misses the cache and needs openFDA.
            let url = app.url(&format!("/api/predicates/search?q=pump{run}x{n}"));
            let (client, token) = (app.client.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let res = client.get(url).bearer_auth(token).send().await.unwrap();
                (
                    res.status().as_u16(),
                    res.headers().get("retry-after").is_some(),
                )
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                (200, _) => ok += 1,
                (503, true) => refused += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    assert_eq!(ok + refused, 1000);
    assert!(ok >= 1, "some searches fit the budget");
    assert!(
        fake.calls() <= BUDGET,
        "{} calls reached openFDA",
        fake.calls()
    );
    assert_eq!(fake.over_budget(), 0, "openFDA never had to refuse us");
    // Either instance reports the shared count.
    let admin = b.user_with_role("budget-admin@example.com", "admin").await;
    let (_, _, status) = get(&b, &admin, "/api/admin/openfda/status").await;
    assert_eq!(
        status["used_last_minute"].as_u64().unwrap(),
        fake.calls(),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_answer_with_an_unreachable_redis() {
    let fake = FakeOpenFda::start().await;
    // Nothing listens on port 1: every Redis call fails at once.
    let app = instance(&fake, "redis://127.0.0.1:1", "test:unreachable", &[]).await;
    let token = app.jwt_for("noredis");
    let (status, _, body) = get(&app, &token, "/api/predicates/search?product_code=FXX").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["results"].as_array().unwrap().is_empty());
    let (status, _, health) = get(&app, &token, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["redis"]["status"], "disconnected");
}

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// A private redis-server on a free port, or `None` when the binary is missing.
    async fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer { child, port };
        // Wait for it to accept connections (bounded): readiness, not a race.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_keep_answering_when_redis_stops_mid_test() {
    let Some(mut server) = RedisServer::start().await else {
        eprintln!("redis-server not available: outage test skipped");
        return;
    };
    let fake = FakeOpenFda::start().await;
    let url = format!("redis://127.0.0.1:{}", server.port);
    let a = instance(&fake, &url, "test:outage", &[]).await;
    let b = instance(&fake, &url, "test:outage", &[]).await;
    let token = a.jwt_for("outage");
    let (status, _, first) = get(
        &a,
        &token,
        "/api/predicates/search?product_code=FXX&limit=3",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["meta"]["cached"], false);
    // The other instance finds it in Redis.
    let (_, _, shared) = get(
        &b,
        &token,
        "/api/predicates/search?product_code=FXX&limit=3",
    )
    .await;
    assert_eq!(shared["meta"]["cached"], true, "served from Redis");
    assert_eq!(shared["results"], first["results"]);
    let calls = fake.calls_to("510k");
    assert_eq!(calls, 1);

    server.stop();
    for (app, query) in [
        (&b, "q=catheter"),
        (&a, "product_code=DQY"),
        (&b, "product_code=FXX&limit=3"),
    ] {
        let (status, _, body) = get(app, &token, &format!("/api/predicates/search?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(!body["results"].as_array().unwrap().is_empty(), "{query}");
    }
    assert_eq!(
        fake.calls_to("510k"),
        calls + 2,
        "new queries went to the source"
    );
    let (_, _, health) = get(&b, &token, "/health").await;
    assert_eq!(health["checks"]["redis"]["status"], "disconnected");
    assert_eq!(health["status"], "degraded");
}
