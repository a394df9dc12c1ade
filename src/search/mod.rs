//! The predicate-search use case: normalise the query -> cache (`predicate_search:v1:<sha256>`)
//! -> single flight -> source (openFDA, whose client takes the shared budget, or the local
//! mirror) -> rank. The cached value is the source's page, so ranking for a different subject
//! text reuses it; the result carries `fetched_at` and openFDA's `meta.last_updated`.

mod flight;
pub mod project;
pub mod source;

// Seam for the local mirror. At merge with branch `mirror` (which adds `db::mirror`), replace
// the next two lines with `mod mirror_source;` and `use mirror_source as mirror;`, and delete
// `mirror_stub.rs`.
mod mirror_stub;
use mirror_stub as mirror;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use flight::Flights;
pub use source::{CandidateSource, SourcePage, SourceQuery};

use crate::app::AppState;
use crate::config::OpenFdaMode;
use crate::domain::candidate::{Candidate, ProductCodeInfo};
use crate::domain::ranking::{rank, Ranked, Subject};
use crate::error::ApiError;
use crate::openfda::query::significant_words;
use crate::openfda::OpenFdaError;

/// Cache key prefix; the runbook's `predicate_search:*` pattern names these entries.
pub const CACHE_PREFIX: &str = "predicate_search:v1:";

/// Per-process search state: the flights under way and what is known of the mirror.
#[derive(Clone, Default)]
pub struct SearchState {
    pub flights: Flights,
    mirror_seen: Arc<Mutex<Option<(Instant, bool)>>>,
}

/// A validated search.
#[derive(Debug, Clone, Default)]
pub struct PredicateQuery {
    pub text: Option<String>,
    pub product_code: Option<String>,
    pub decision_date_from: Option<NaiveDate>,
    pub decision_date_to: Option<NaiveDate>,
    /// Results returned (1..=100).
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchMeta {
    /// `openfda` or `mirror`.
    pub source: String,
    /// True when answered from the cache.
    pub cached: bool,
    /// When the source was read.
    pub fetched_at: DateTime<Utc>,
    /// openFDA's `meta.last_updated` (the data's date).
    pub data_last_updated: Option<String>,
    /// Eligible (substantially equivalent) candidates ranked, before `limit`.
    pub total_candidates: usize,
    /// Records matching at the source, of which `fetch_limit` were read.
    pub source_total: u64,
    /// Candidates left out because their decision is not substantially equivalent.
    pub excluded_ineligible: usize,
    /// False when recalls could not be checked (mirror mode, or the lookup failed).
    pub recalls_checked: bool,
}

/// Ranked candidates with what ranking knew of their product codes.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub results: Vec<Ranked>,
    pub meta: SearchMeta,
    pub product_codes: BTreeMap<String, ProductCodeInfo>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Upstream(#[from] OpenFdaError),
    #[error("the local 510(k) mirror is not available; set OPENFDA_MODE=auto or live")]
    MirrorUnavailable,
    #[error("{0}")]
    Internal(String),
}

impl SearchError {
    /// `Retry-After` for answers that carry none in `ApiError` (504).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            SearchError::Upstream(OpenFdaError::Timeout { retry_after_secs }) => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }
}

/// A failed search use case: the API error and the `Retry-After` it should carry (a 504 from
/// an upstream timeout has no place for it in `ApiError`).
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub retry_after_secs: Option<u64>,
}

impl From<SearchError> for Failure {
    fn from(err: SearchError) -> Self {
        Failure {
            retry_after_secs: err.retry_after_secs(),
            error: err.into(),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            retry_after_secs: None,
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        ApiError::from(err).into()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        ApiError::from(err).into()
    }
}

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        let unavailable = |message: String, secs: u64| ApiError::Unavailable {
            message,
            retry_after_secs: Some(secs),
        };
        match err {
            SearchError::Upstream(e) => match e {
                OpenFdaError::BadQuery(m) => {
                    ApiError::field("q", format!("openFDA could not run this search ({m})"))
                }
                OpenFdaError::InvalidRequest(m) => ApiError::field("limit", m),
                OpenFdaError::Timeout { .. } => ApiError::Timeout(e.to_string()),
                OpenFdaError::Protocol(m) => {
                    ApiError::BadGateway(format!("unexpected answer from openFDA: {m}"))
                }
                OpenFdaError::RateLimited { retry_after_secs }
                | OpenFdaError::BudgetExhausted {
                    retry_after_secs, ..
                }
                | OpenFdaError::CircuitOpen { retry_after_secs }
                | OpenFdaError::Unavailable {
                    retry_after_secs, ..
                } => unavailable(e.to_string(), retry_after_secs),
            },
            SearchError::MirrorUnavailable => ApiError::Unavailable {
                message: err.to_string(),
                retry_after_secs: None,
            },
            SearchError::Internal(m) => ApiError::Internal(anyhow::anyhow!(m)),
        }
    }
}

/// The source query a search normalises to: case, spacing, word order and parameter order do
/// not matter; free text is ignored for fetching when a product code filters.
pub fn normalise(q: &PredicateQuery, fetch_limit: u32) -> SourceQuery {
    let product_code = q
        .product_code
        .as_deref()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty());
    let mut words: Vec<String> = match (&product_code, &q.text) {
        (None, Some(text)) => significant_words(text)
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        _ => Vec::new(),
    };
    words.sort();
    SourceQuery {
        words,
        product_code,
        decision_date_from: q.decision_date_from,
        decision_date_to: q.decision_date_to,
        fetch_limit,
    }
}

/// `predicate_search:v1:<sha256 hex>` of the source and the normalised query.
pub fn cache_key(source: &str, q: &SourceQuery) -> String {
    let canonical = serde_json::json!({"source": source, "query": q}).to_string();
    format!(
        "{CACHE_PREFIX}{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// Where searches are answered from, per `OPENFDA_MODE`.
pub async fn choose_source(state: &AppState) -> CandidateSource {
    let mirror = CandidateSource::Mirror(state.db.clone());
    match state.config.openfda_mode {
        OpenFdaMode::Live => CandidateSource::OpenFda(state.openfda.clone()),
        OpenFdaMode::Mirror => mirror,
        OpenFdaMode::Auto => {
            let known = *state
                .search
                .mirror_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let holds = match known {
                // The answer changes only when an import runs; a minute of staleness is fine.
                Some((at, holds)) if at.elapsed() < Duration::from_secs(60) => holds,
                _ => {
                    let holds = mirror::holds_data(&state.db).await;
                    *state
                        .search
                        .mirror_seen
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), holds));
                    holds
                }
            };
            if holds {
                mirror
            } else {
                CandidateSource::OpenFda(state.openfda.clone())
            }
        }
    }
}

/// The source page for `q`: from the cache, a flight under way, or the source.
async fn page(
    state: &AppState,
    source: &CandidateSource,
    sq: SourceQuery,
) -> Result<(Arc<SourcePage>, &'static str), SearchError> {
    let key = cache_key(source.name(), &sq);
    if let Some(page) = cached(state, &key).await {
        return Ok((page, "cache_hit"));
    }
    let (cache, ttl, src) = (state.cache.clone(), state.config.cache_ttl, source.clone());
    let work_key = key.clone();
    let work = async move {
        // A flight that ended between our cache miss and now has filled the cache.
        if let Some(text) = cache.get(&work_key).await {
            if let Ok(page) = serde_json::from_str::<SourcePage>(&text) {
                return Ok(Arc::new(page));
            }
        }
        let page = src.fetch(&sq).await?;
        if let Ok(text) = serde_json::to_string(&page) {
            cache.set(&work_key, &text, ttl).await;
        }
        Ok(Arc::new(page))
    };
    let (result, joined) = state.search.flights.run(&key, work).await;
    Ok((result?, if joined { "shared" } else { "fetched" }))
}

async fn cached(state: &AppState, key: &str) -> Option<Arc<SourcePage>> {
    let text = state.cache.get(key).await?;
    match serde_json::from_str::<SourcePage>(&text) {
        Ok(page) => Some(Arc::new(page)),
        Err(e) => {
            tracing::warn!(error = %e, key, "unreadable cache entry ignored");
            None
        }
    }
}

/// Searches and ranks predicate candidates for a subject described by `subject_text`.
pub async fn predicates(
    state: &AppState,
    q: &PredicateQuery,
    subject_text: &str,
) -> Result<SearchResult, SearchError> {
    let source = choose_source(state).await;
    let sq = normalise(q, state.config.openfda_tuning.fetch_limit);
    let outcome = page(state, &source, sq).await;
    let (page, how) = match outcome {
        Ok(found) => found,
        Err(e) => {
            metrics::counter!("predicate_searches_total", "outcome" => "error", "source" => source.name()).increment(1);
            return Err(e);
        }
    };
    metrics::counter!("predicate_searches_total", "outcome" => how, "source" => source.name())
        .increment(1);
    Ok(rank_page(&page, q, subject_text, how == "cache_hit"))
}

/// Ranks a page for the subject and keeps the eligible, best `limit`.
pub fn rank_page(
    page: &SourcePage,
    q: &PredicateQuery,
    subject_text: &str,
    cached: bool,
) -> SearchResult {
    let definitions: BTreeMap<String, String> = page
        .product_codes
        .iter()
        .filter_map(|(pc, info)| info.definition.clone().map(|d| (pc.clone(), d)))
        .collect();
    let subject_code = q.product_code.as_deref();
    let subject = Subject {
        text: subject_text,
        product_code: subject_code,
        regulation_number: subject_code
            .and_then(|pc| page.product_codes.get(pc))
            .and_then(|i| i.regulation_number.as_deref()),
    };
    let candidates: Vec<Candidate> = page.candidates.clone();
    let ranked = rank(&subject, candidates, &definitions, Utc::now().date_naive());
    let (mut eligible, excluded): (Vec<Ranked>, Vec<Ranked>) =
        ranked.into_iter().partition(|r| r.score_breakdown.eligible);
    let total_candidates = eligible.len();
    eligible.truncate(q.limit.max(1));
    SearchResult {
        results: eligible,
        meta: SearchMeta {
            source: page.source.clone(),
            cached,
            fetched_at: page.fetched_at,
            data_last_updated: page.data_last_updated.clone(),
            total_candidates,
            source_total: page.total,
            excluded_ineligible: excluded.len(),
            recalls_checked: page.recalls_checked,
        },
        product_codes: page.product_codes.clone(),
    }
}

/// Classification facts of one product code from the configured source (best effort).
pub async fn product_code_info(state: &AppState, code: &str) -> Option<ProductCodeInfo> {
    match choose_source(state).await {
        CandidateSource::Mirror(db) => mirror::product_code(&db, code).await,
        CandidateSource::OpenFda(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_queries_share_a_key() {
        let a = PredicateQuery {
            text: Some("  Infusion   PUMP ".into()),
            limit: 10,
            ..Default::default()
        };
        let b = PredicateQuery {
            text: Some("pump, infusion".into()),
            limit: 50,
            ..Default::default()
        };
        let ka = cache_key("openfda", &normalise(&a, 100));
        assert_eq!(ka, cache_key("openfda", &normalise(&b, 100)));
        assert!(ka.starts_with(CACHE_PREFIX));
        assert_eq!(ka.len(), CACHE_PREFIX.len() + 64);
        assert_ne!(ka, cache_key("mirror", &normalise(&a, 100)));
        let c = PredicateQuery {
            text: Some("pump".into()),
            ..Default::default()
        };
        assert_ne!(ka, cache_key("openfda", &normalise(&c, 100)));
        // With a product code the text only ranks, so it does not split the cache.
        let d = PredicateQuery {
            text: Some("anything".into()),
            product_code: Some("dqy".into()),
            ..Default::default()
        };
        let e = PredicateQuery {
            product_code: Some("DQY".into()),
            ..Default::default()
        };
        assert_eq!(
            cache_key("openfda", &normalise(&d, 100)),
            cache_key("openfda", &normalise(&e, 100))
        );
    }
}
