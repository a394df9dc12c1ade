//! The service shell: request ids, security headers, gzip, metrics, panics, shutdown, outages.

use axum::routing::get;
use axum::Router;
use regassist::http::AppState;
use serde_json::Value;

use crate::both_backends;
use crate::common::*;

both_backends!(
    request_ids_headers_gzip_and_metrics,
    &[],
    |app: TestApp| async move {
        let res = app
            .get("/health/live")
            .header("X-Request-ID", "client-id-123")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], "client-id-123");
        let res = app
            .get("/health/live")
            .header("X-Request-ID", "bad id with spaces")
            .send()
            .await
            .unwrap();
        assert_ne!(res.headers()["x-request-id"], "bad id with spaces");
        let res = app
            .get("/api/users/me")
            .header("X-Request-ID", "trace-me")
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["request_id"], "trace-me",
            "error bodies carry the request id"
        );

        let res = app.get("/health").send().await.unwrap();
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        assert!(res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));

        let res = app
            .get("/openapi.json")
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["content-encoding"],
            "gzip",
            "large responses are compressed"
        );
        let res = app
            .get("/health/live")
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert!(
            res.headers().get("content-encoding").is_none(),
            "small ones are not"
        );

        let res = app.get("/docs/").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("swagger"));

        let metrics = app
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("regassist_http_requests_total"),
            "{metrics}"
        );
        assert!(metrics.contains("route=\"/health/live\""));
        assert!(metrics.contains("regassist_http_request_duration_seconds_bucket"));
        assert!(metrics.contains("regassist_db_pool_max_connections"));

        let spec: Value = app
            .get("/openapi.json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    }
);

/// Serves `extra` routes through the real middleware stack.
async fn serve_with(
    state: AppState,
    extra: Router<AppState>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let router = regassist::http::middleware::apply(extra, &state).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}"), tx, handle)
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let app = TestApp::start(Backend::Sqlite, &[]).await.unwrap();
    let routes = Router::new()
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("boom")
                }
                "never"
            }),
        )
        .route("/fine", get(|| async { "fine" }));
    let (base, _stop, _h) = serve_with(app.state.clone(), routes).await;
    let res = reqwest::get(format!("{base}/boom")).await.unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "internal_error");
    assert!(!body["request_id"].as_str().unwrap().is_empty());
    assert_eq!(
        reqwest::get(format!("{base}/fine")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn slow_requests_time_out_with_504() {
    let app = TestApp::start(Backend::Sqlite, &[("REGASSIST_REQUEST_TIMEOUT_SECS", "1")])
        .await
        .unwrap();
    let routes = Router::new().route(
        "/slow",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    );
    let (base, _stop, _h) = serve_with(app.state.clone(), routes).await;
    let res = reqwest::get(format!("{base}/slow")).await.unwrap();
    assert_eq!(res.status(), 504);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "timeout");
}

#[tokio::test]
async fn shutdown_flips_readiness_while_serving_then_stops() {
    let app = TestApp::start(Backend::Sqlite, &[]).await.unwrap();
    let mut config = (*app.state.config).clone();
    config.shutdown_drain = std::time::Duration::from_secs(1);
    let state = regassist::app::start(config, app.state.db.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(regassist::app::serve(state, listener, async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    stop_tx.send(()).unwrap();
    // Readiness flips to 503 while the listener still answers (the drain period), so a load
    // balancer stops sending before connections are refused.
    let mut flipped = false;
    for _ in 0..500 {
        let res = client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap();
        if res.status() == 503 {
            flipped = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(flipped, "readiness never went 503");
    assert_eq!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still serving while draining"
    );
    // After the drain the server stops cleanly.
    server.await.unwrap().unwrap();
    assert!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_err(),
        "listener closed"
    );
}

both_backends!(
    a_database_outage_turns_health_503_and_recovers,
    &[],
    |app: TestApp| async move {
        let regassist::db::Db::Postgres(pg) = &app.state.db else {
            // SQLite is a file in the process: it cannot become unreachable.
            return;
        };
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pg.pool.sqlx())
            .await
            .unwrap();
        let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name).execute(&admin).await.unwrap();
        for path in ["/health", "/health/database", "/health/ready"] {
            let res = app.get(path).send().await.unwrap();
            assert_eq!(res.status(), 503, "{path}");
        }
        let body: Value = app
            .get("/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["checks"]["database"]["status"], "disconnected");
        assert!(
            !body.to_string().contains("postgres://"),
            "no connection string in the body"
        );
        assert_eq!(app.get("/health/live").send().await.unwrap().status(), 200);
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .execute(&admin)
            .await
            .unwrap();
        assert_eq!(
            app.get("/health/database").send().await.unwrap().status(),
            200,
            "recovers without a restart"
        );
        assert_eq!(app.get("/health").send().await.unwrap().status(), 200);
    }
);

/// A private redis-server on a free port, for outage tests.
pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    pub(crate) fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
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
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the Redis tests");
        let redis = PrivateRedis { port, child };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {port}");
    }
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_redis_outage_degrades_health_and_recovers() {
    if std::env::var("TEST_REDIS_URL").is_err() {
        skipped("TEST_REDIS_URL");
        return;
    }
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = TestApp::start(
        Backend::Sqlite,
        &[("REDIS_URL", url.as_str()), ("API_RATE_PER_MINUTE", "100")],
    )
    .await
    .unwrap();
    let body: Value = app
        .get("/health/redis")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checks"]["redis"]["status"], "connected");
    assert_eq!(app.get("/health").send().await.unwrap().status(), 200);

    redis.stop();
    let res = app.get("/health/redis").send().await.unwrap();
    assert_eq!(res.status(), 503);
    let res = app.get("/health").send().await.unwrap();
    assert_eq!(res.status(), 200, "the service still serves");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"]["status"], "disconnected");
    // Authenticated requests still pass: the limiter falls back to counting locally.
    assert_eq!(
        app.get("/api/users/me")
            .bearer_auth(app.jwt_for("r"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let _redis = PrivateRedis::start(port);
    let mut recovered = false;
    for _ in 0..100 {
        if app.get("/health/redis").send().await.unwrap().status() == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "/health/redis recovers without a restart");
    assert_eq!(
        app.get("/health")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["status"],
        "ok"
    );
}
