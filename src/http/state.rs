//! The web layer's state: one reference-counted handle to the services the handlers reach. The
//! composition root (`app`) builds it; nothing below the web layer names it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::accounts::SignIn;
use crate::assistant::Assistant;
use crate::audit::AuditLog;
use crate::cache::Cache;
use crate::config::Config;
use crate::db::Db;
use crate::http::pages::PageCache;
use crate::openfda::OpenFda;
use crate::rate_limit::RateLimiter;
use crate::search::PredicateSearch;

/// What every handler reaches. axum clones the state for each extractor and middleware of each
/// request, so it is one reference count over [`Services`] rather than one per handle.
#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    /// Every audited change goes through it.
    pub audit: AuditLog,
    pub redis: Option<crate::redis_link::RedisLink>,
    pub cache: Cache,
    pub limiter: RateLimiter,
    /// The openFDA client (budget, breaker and health inside).
    pub openfda: OpenFda,
    pub search: PredicateSearch,
    pub assistant: Assistant,
    pub sign_in: SignIn,
    /// Rendered list pages, served again while the database says they are current.
    pub pages: PageCache,
    pub metrics: PrometheusHandle,
    /// Set on SIGTERM/SIGINT: readiness answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    pub started: Instant,
}
