//! `AppState` (one shared handle to the services), building the app from a config, serving with a
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::auth::JwtVerifier;
use crate::cache::{redis_pool, Cache};
use crate::config::Config;
use crate::db::Db;
use crate::http::health::Check;
use crate::rate_limit::RateLimiter;

/// What every handler reaches. axum clones the state for each extractor and middleware of each
/// request, so it is one reference count over [`Services`] rather than one per handle.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub redis: Option<deadpool_redis::Pool>,
    pub cache: Cache,
    pub limiter: RateLimiter,
    /// The openFDA client (budget, breaker and health inside).
    pub openfda: crate::openfda::OpenFda,
    /// Predicate-search flights under way.
    pub search: crate::search::SearchState,
    pub jwt: Arc<JwtVerifier>,
    pub metrics: PrometheusHandle,
    /// Set on SIGTERM/SIGINT: readiness answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    pub started: Instant,
    /// The classification assistant's in-memory index (built on first use, after imports).
    pub classifier: Arc<crate::mirror::classifier::Classifier>,
}

impl AppState {
    /// Connects to the database (migrating unless disabled) and Redis, as configured.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config).await?;
        if config.auto_migrate {
            db.migrate().await.context("applying migrations")?;
        }
        // Only on a migrated schema: `regassist check` builds the state without migrating.
        if config.load_classification && db.migrations_applied().await.unwrap_or(false) {
            crate::mirror::ensure_classification(&db).await?;
        }
        Self::with_db(config, db)
    }

    /// Builds the state around an open database (tests use this).
    pub fn with_db(config: Config, db: Db) -> anyhow::Result<Self> {
        let redis = match &config.redis_url {
            Some(url) => Some(redis_pool(url.expose()).context("configuring REDIS_URL")?),
            None => None,
        };
        let (cache, limiter) = match &redis {
            Some(pool) => (
                Cache::Redis(pool.clone(), Arc::default()),
                RateLimiter::redis(pool.clone()),
            ),
            None => (Cache::memory(), RateLimiter::memory()),
        };
        let openfda = crate::openfda::OpenFda::new(&config, limiter.clone())
            .context("configuring the openFDA client")?;
        Ok(AppState(Arc::new(Services {
            openfda,
            search: crate::search::SearchState::default(),
            jwt: Arc::new(JwtVerifier::new(&config)),
            config: Arc::new(config),
            db,
            redis,
            cache,
            limiter,
            metrics: crate::telemetry::metrics_handle(),
            draining: Arc::new(AtomicBool::new(false)),
            started: Instant::now(),
            classifier: Arc::default(),
        })))
    }

    /// What the service last saw of openFDA, for `/health` (no upstream call).
    pub fn openfda_check(&self) -> Option<Check> {
        Some(crate::http::openfda_admin::openfda_check(self))
    }
}

/// Binds the configured address.
pub async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    let addr = format!("{}:{}", config.host, config.port);
    TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr} (set PORT or REGASSIST_HOST)"))
}

/// Serves until `shutdown` resolves, then drains: readiness 503 for the drain period, the listener
/// closes, in-flight requests get up to the grace period, and the call returns.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = crate::http::router(state.clone());
    let draining = state.draining.clone();
    let drain = state.config.shutdown_drain;
    let grace = state.config.shutdown_grace;
    let (closing_tx, closing_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        draining.store(true, Ordering::SeqCst);
        tracing::info!(drain_secs = drain.as_secs(), "shutdown requested: draining");
        tokio::time::sleep(drain).await;
        let _ = closing_tx.send(());
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(graceful);
    let server = tokio::spawn(async move { server.await });
    tokio::select! {
        result = server => { result??; }
        _ = async {
            let _ = closing_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests outlived the grace period");
        }
    }
    state.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// How often queued audit rows nobody is waiting for (their writer's process stopped between
/// commit and round) are sealed.
const SEAL_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Seals leftover queued audit rows now and every few seconds.
pub fn spawn_seal_sweeps(state: &AppState) {
    let db = state.db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SEAL_SWEEP_EVERY);
        loop {
            tick.tick().await;
            match db.sealer().sweep(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "sealed audit rows left queued"),
                Err(e) => tracing::warn!(error = %e, "could not seal queued audit rows"),
            }
        }
    });
}

/// Writes a signed audit checkpoint every minute while the head moves.
pub fn spawn_checkpoints(state: &AppState) {
    let Some(key) = state.config.audit_checkpoint_key.clone() else {
        return;
    };
    let db = state.db.clone();
    let path = state.config.audit_checkpoint_file.clone();
    tokio::spawn(async move {
        let mut last = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            let head = crate::db::audit::current_head(&db).await.ok().flatten();
            if head.is_some() && head != last {
                if let Err(e) =
                    crate::audit::write_checkpoint(&db, key.expose().as_bytes(), &path).await
                {
                    tracing::warn!(error = %e, "could not write the audit checkpoint");
                }
                last = head;
            }
        }
    });
}
