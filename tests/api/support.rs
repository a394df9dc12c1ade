//! Starting the service against the fake openFDA, and small request helpers for its tests.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

use serde_json::Value;

use crate::common::fake_openfda::FakeOpenFda;
use crate::common::*;

/// Settings that keep tests fast: no pacing, short backoff, a budget key of their own.
pub async fn start(backend: Backend, extra: &[(&str, &str)]) -> Option<(TestApp, FakeOpenFda)> {
    let fake = FakeOpenFda::start().await;
    let base = fake.base.clone();
    let prefix = format!("test:{}:openfda", uuid::Uuid::new_v4().simple());
    let mut pairs: Vec<(&str, &str)> = vec![
        ("OPENFDA_BASE_URL", base.as_str()),
        ("OPENFDA_MODE", "live"),
        ("REGASSIST_OPENFDA_RATE_PER_SECOND", "1000"),
        ("REGASSIST_OPENFDA_BACKOFF_MS", "5"),
        ("REGASSIST_OPENFDA_TIMEOUT_MS", "5000"),
        ("REGASSIST_OPENFDA_BUDGET_PREFIX", prefix.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let app = TestApp::start(backend, &pairs).await?;
    Some((app, fake))
}

/// GET with a bearer token; returns status, headers and JSON body.
pub async fn get(
    app: &TestApp,
    token: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = app.get(path).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

/// POST JSON with a bearer token.
pub async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Runs a test once per backend with the fake: `with_fake!(name, extra, |app, fake| async move {..})`.
#[macro_export]
macro_rules! with_fake {
    ($name:ident, $extra:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, fake) = $crate::support::start($crate::common::Backend::Sqlite, $extra)
                    .await
                    .unwrap();
                ($body)(app, fake).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::support::start($crate::common::Backend::Postgres, $extra).await {
                    Some((app, fake)) => ($body)(app, fake).await,
                    None => $crate::common::skipped("TEST_DATABASE_URL"),
                }
            }
        }
    };
}

/// The same, SQLite only (for tests that do not exercise storage).
#[macro_export]
macro_rules! with_fake_sqlite {
    ($name:ident, $extra:expr, $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (app, fake) = $crate::support::start($crate::common::Backend::Sqlite, $extra)
                .await
                .unwrap();
            ($body)(app, fake).await;
        }
    };
}
