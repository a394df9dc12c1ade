//! Test support: a real server on a loopback port over a fresh database (a SQLite file, or a new
//! PostgreSQL database when `TEST_DATABASE_URL` is set), JWT minting and a small HTTP client.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failed setup should panic loudly

pub mod fake_openfda;

use std::net::SocketAddr;
use std::str::FromStr;

use regassist::app;
use regassist::config::Config;
use regassist::db::Db;
use regassist::http::AppState;
use serde_json::{json, Value};
use sqlx::ConnectOptions;

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";
/// The checkpoint key of PostgreSQL test servers (production requires one; embedded servers
/// create their own beside the database, as by default).
pub const CHECKPOINT_KEY: &str = "9c4f2a7e1b8d3f6a0c5e9b2d7f4a1c8e3b6d0f5a2c7e9b4d1f8a3c6e0b5d2f7a";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database of the given backend; `None` for PostgreSQL without
/// `TEST_DATABASE_URL` (then the PostgreSQL half of a test is skipped).
pub struct TestDb {
    pub url: String,
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_db(backend: Backend) -> Option<TestDb> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/test.db", dir.path().display());
            let db = Db::connect_sqlite(&url, 8, std::time::Duration::from_secs(5))
                .await
                .unwrap();
            db.migrate().await.unwrap();
            Some(TestDb {
                url,
                db,
                _dir: Some(dir),
            })
        }
        Backend::Postgres => {
            let base = std::env::var("TEST_DATABASE_URL").ok()?;
            let name = format!("regassist_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::postgres::PgConnectOptions::from_str(&base)
                .unwrap()
                .connect()
                .await
                .expect("TEST_DATABASE_URL is set but PostgreSQL is unreachable");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
            let url = with_database(&base, &name);
            let config = Config::from_pairs([
                ("DATABASE_URL", url.as_str()),
                ("REGASSIST_DB_MAX_CONNECTIONS", "20"),
            ])
            .unwrap();
            let db = Db::connect(&config).await.unwrap();
            db.migrate().await.unwrap();
            Some(TestDb {
                url,
                db,
                _dir: None,
            })
        }
    }
}

/// Says, past the test harness's output capture, that this test's run on an absent service was
/// skipped: `cargo test` then shows every skipped PostgreSQL or Redis case, not a silent pass.
pub fn skipped(variable: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(
        std::io::stderr().lock(),
        "note: {test}: skipped, {variable} is not set"
    );
}

/// `base` with its database name replaced.
fn with_database(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A server started over its config's database, as `regassist serve` would start it.
struct Launched {
    addr: SocketAddr,
    state: AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Launched {
    async fn start(config: Config) -> Launched {
        let db = Db::connect(&config).await.unwrap();
        let listener = app::bind(&config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = app::start(config, db).await.unwrap();
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        Launched {
            addr,
            state,
            shutdown,
            handle,
        }
    }
}

/// Another server over a [`TestApp`]'s database (see [`TestApp::replica`]).
pub struct Replica {
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Replica {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }
    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path))
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }
}

/// The status of a GET of `path` with `token`.
pub async fn status_of(app: &TestApp, token: &str, path: &str) -> u16 {
    status_after(app.get(path), token).await
}

/// The status of a request sent as `token`.
pub async fn status_after(request: reqwest::RequestBuilder, token: &str) -> u16 {
    request
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A running server on 127.0.0.1:<random port>.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub db_url: String,
    pub backend: Backend,
    _db: TestDb,
    _files: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A server on `backend` with the test JWT secret and extra settings.
    pub async fn start(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
        let test_db = fresh_db(backend).await?;
        // Files the service writes (audit checkpoints) go to a directory of this test's own.
        let files = tempfile::tempdir().unwrap();
        let checkpoint = files.path().join("audit-checkpoint.json");
        let checkpoint = checkpoint.to_str().unwrap().to_string();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("REGASSIST_AUDIT_CHECKPOINT_FILE", checkpoint.as_str()),
            ("DATABASE_URL", test_db.url.as_str()),
            ("JWT_SECRET", JWT_SECRET),
            ("REGASSIST_LOAD_CLASSIFICATION", "false"),
            ("REGASSIST_SEED_510K", "false"),
            ("API_RATE_PER_MINUTE", "0"),
            ("PORT", "0"),
            ("REGASSIST_HOST", "127.0.0.1"),
        ];
        if backend == Backend::Postgres {
            pairs.push(("AUDIT_CHECKPOINT_KEY", CHECKPOINT_KEY));
        }
        pairs.extend_from_slice(extra);
        let config = Config::from_pairs(pairs).unwrap();
        let listener = app::bind(&config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // What `regassist serve` starts, over the test database.
        let state = app::start(config, test_db.db.clone()).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        Some(TestApp {
            addr,
            base: format!("http://{addr}"),
            state,
            client: reqwest::Client::new(),
            db_url: test_db.url.clone(),
            backend,
            _db: test_db,
            _files: files,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }
    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path))
    }
    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path))
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// Signals shutdown and waits for the server to stop.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Stops the server and starts it again over the same database and files, as a restart of
    /// the process would.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = Launched::start(self.state.config.as_ref().clone()).await;
        self.addr = server.addr;
        self.base = format!("http://{}", server.addr);
        self.state = server.state;
        self.server = Some(server.handle);
        self.shutdown = Some(server.shutdown);
    }

    /// A second server over the same database and settings, as another replica behind nginx;
    /// it stops when dropped.
    pub async fn replica(&self) -> Replica {
        let server = Launched::start(self.state.config.as_ref().clone()).await;
        Replica {
            base: format!("http://{}", server.addr),
            state: server.state,
            client: reqwest::Client::new(),
            _shutdown: server.shutdown,
        }
    }

    /// A user signed in through a JWT with this subject (provisioned on first use).
    pub fn jwt_for(&self, sub: &str) -> String {
        mint(
            json!({"sub": sub, "email": format!("{sub}@example.com"), "name": sub, "exp": now() + 3600}),
        )
    }

    /// Creates a user with a role through the CLI's code path and returns an API key for them.
    pub async fn user_with_role(&self, email: &str, role: &str) -> String {
        let actor = regassist::audit::Actor {
            request_id: "test".into(),
            ..Default::default()
        };
        let user = regassist::accounts::create_user(&self.state.audit, &actor, email, email, role)
            .await
            .unwrap();
        let (_, key) =
            regassist::accounts::issue_key(&self.state.audit, &actor, user.id, "test", None)
                .await
                .unwrap();
        key
    }

    /// Creates a project as `token`'s user and returns its JSON.
    pub async fn create_project(&self, token: &str, body: Value) -> Value {
        let res = self
            .post("/api/projects")
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "creating a project");
        res.json().await.unwrap()
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `claims` with the test secret (HS256).
pub fn mint(claims: Value) -> String {
    mint_with(
        claims,
        JWT_SECRET.as_bytes(),
        jsonwebtoken::Algorithm::HS256,
    )
}

pub fn mint_with(claims: Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

/// Runs an async test body once per backend: `both_backends!(name, |app| async move { ... })`.
/// The PostgreSQL run happens when `TEST_DATABASE_URL` is set (CI sets it).
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $extra:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::TestApp::start($crate::common::Backend::Sqlite, $extra)
                    .await
                    .unwrap();
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::common::TestApp::start($crate::common::Backend::Postgres, $extra)
                    .await
                {
                    Some(app) => ($body)(app).await,
                    None => $crate::common::skipped("TEST_DATABASE_URL"),
                }
            }
        }
    };
}
