//! The composition root: builds the services from a config and an open database, starts what
//! runs beside the server (migrations, the classification table, sealing sweeps, checkpoints,
//! the mirror seed, the classifier warm-up), and serves with a graceful shutdown. `main` and the
//! tests start the service through [`start`], so the tests run what production runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::accounts::SignIn;
use crate::assistant::Assistant;
use crate::audit::AuditLog;
use crate::cache::Cache;
use crate::config::Config;
use crate::db::Db;
use crate::http::pages::PageCache;
use crate::http::{AppState, Services};
use crate::openfda::OpenFda;
use crate::rate_limit::RateLimiter;
use crate::redis_link::RedisLink;
use crate::search::PredicateSearch;

/// Prepares the database (migrations unless disabled, the built-in classification table), builds
/// the services and starts the background work. What `regassist serve` runs.
pub async fn start(config: Config, db: Db) -> anyhow::Result<AppState> {
    if !config.is_postgres() {
        // `regassist restore` refuses while this is held.
        let file = crate::backup::sqlite_path(config.database_url.expose())?;
        crate::backup::hold_server_lock(&file)?;
    }
    if config.auto_migrate {
        db.migrate().await.context("applying migrations")?;
    }
    if config.load_classification && db.migrations_applied().await.unwrap_or(false) {
        crate::mirror::ensure_classification(&db).await?;
    }
    // The trail is anchored by default: embedded mode creates its key, production needs one.
    crate::audit::ensure_key(&config)?;
    let state = build(config, db)?;
    state.sign_in.spawn_cache_listener();
    spawn_seal_sweeps(&state.audit);
    spawn_checkpoints(&state);
    if state.config.seed_510k {
        crate::mirror::seed::spawn_seed(
            state.db.clone(),
            state.config.seed_510k_dir.clone().into(),
        );
    }
    state.assistant.spawn_warm_up();
    Ok(state)
}

/// Builds the services around an open database, without touching it or starting anything
/// (`regassist check` and `cache clear` use it alone).
pub fn build(config: Config, db: Db) -> anyhow::Result<AppState> {
    let redis = match &config.redis_url {
        Some(url) => Some(RedisLink::connect(url.expose()).context("configuring REDIS_URL")?),
        None => None,
    };
    let (cache, limiter) = match &redis {
        Some(link) => (
            Cache::Redis(link.clone(), Arc::default()),
            RateLimiter::redis(link.clone()),
        ),
        None => (Cache::memory(), RateLimiter::memory()),
    };
    let openfda =
        OpenFda::new(&config, limiter.clone()).context("configuring the openFDA client")?;
    let audit = AuditLog::anchored(
        db.clone(),
        crate::audit::load_key(&config)?,
        config.audit_checkpoint_file.clone(),
    );
    let search = PredicateSearch::new(&config, db.clone(), cache.clone(), openfda.clone());
    Ok(AppState(Arc::new(Services {
        assistant: Assistant::new(audit.clone(), search.clone()),
        sign_in: SignIn::new(&config, audit.clone())?,
        pages: PageCache::new(config.page_cache_bytes),
        search,
        openfda,
        audit,
        config: Arc::new(config),
        db,
        redis,
        cache,
        limiter,
        metrics: crate::telemetry::metrics_handle(),
        draining: Arc::new(AtomicBool::new(false)),
        started: Instant::now(),
    })))
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
    if !state.config.is_postgres() {
        if let Ok(file) = crate::backup::sqlite_path(state.config.database_url.expose()) {
            crate::backup::release_server_lock(&file);
        }
    }
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
const SEAL_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Seals leftover queued audit rows now and every few seconds, and keeps the gauges of rows
/// waiting current.
fn spawn_seal_sweeps(audit: &AuditLog) {
    let audit = audit.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SEAL_SWEEP_EVERY);
        loop {
            tick.tick().await;
            match audit.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "sealed audit rows left queued"),
                Err(e) => tracing::warn!(error = %e, "could not seal queued audit rows"),
            }
            if let Err(e) = audit.refresh_pending_gauges().await {
                tracing::warn!(error = %e, "could not count queued audit rows");
            }
        }
    });
}

/// How often the checkpoint writer looks at the head: the window in which rows cut off the end
/// of the chain would not yet be covered by a signed checkpoint.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// Signs the chain head at start and then every few seconds while it moves (a refusal is logged,
/// counted and shown by `/health`; the next tick tries again).
fn spawn_checkpoints(state: &AppState) {
    let audit = state.audit.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = audit.checkpoint(crate::audit::Mode::Extend).await {
                tracing::warn!(error = %e, "could not write the audit checkpoint");
            }
        }
    });
}
