//! The predicate-search use case: normalise the query -> cache (`predicate_search:v1:<sha256>`)
//! -> single flight -> source (openFDA, whose client takes the shared budget, or the local
//! mirror) -> rank. The cached value is the source's page, so ranking for a different subject
//! text reuses it; the result carries `fetched_at` and openFDA's `meta.last_updated`.

mod error;
mod flight;
mod pages;
pub mod project;
pub mod source;

mod mirror_source;
mod mirror_view;
use mirror_source as mirror;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use error::{Failure, SearchError};
pub use flight::Flights;
pub use pages::Prepared;
pub use source::{CandidateSource, SourcePage, SourceQuery};

use crate::app::AppState;
use crate::config::OpenFdaMode;
use crate::domain::candidate::ProductCodeInfo;
use crate::domain::ranking::{rank_top, Ranked, Subject};
use crate::openfda::query::significant_words;

/// Cache key prefix; the runbook's `predicate_search:*` pattern names these entries.
pub const CACHE_PREFIX: &str = "predicate_search:v1:";

/// Per-process search state: the flights under way, recently ranked pages, and what is known
/// of the mirror.
#[derive(Clone, Default)]
pub struct SearchState {
    pub flights: Flights,
    memo: pages::Memo,
    mirror_seen: mirror_view::MirrorSeen,
}

impl SearchState {
    /// Forgets this process's prepared pages whose key starts with `prefix` (the admin's
    /// cache clear; other replicas forget theirs within `pages::MEMO_TTL`).
    pub fn forget(&self, prefix: &str) {
        self.memo.forget(prefix);
    }
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
    let openfda = || CandidateSource::OpenFda(state.openfda.clone());
    if state.config.openfda_mode == OpenFdaMode::Live {
        return openfda();
    }
    let view = state
        .search
        .mirror_seen
        .view(&state.db, state.config.mirror_recheck)
        .await;
    if state.config.openfda_mode == OpenFdaMode::Auto && !view.holds_data {
        return openfda();
    }
    CandidateSource::Mirror {
        db: state.db.clone(),
        generation: view.generation,
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
    let outcome = pages::page(state, &source, sq).await;
    let (page, how) = match outcome {
        Ok(found) => found,
        Err(e) => {
            metrics::counter!("predicate_searches_total", "outcome" => "error", "source" => source.name(), "via" => "none").increment(1);
            return Err(e);
        }
    };
    // `outcome` is success/error (what the runbook's alert divides); `via` says how it was served.
    metrics::counter!("predicate_searches_total", "outcome" => "success", "source" => source.name(), "via" => how)
        .increment(1);
    Ok(rank_page(&page, q, subject_text, how == "cache_hit"))
}

/// Ranks a page for the subject and keeps the eligible, best `limit`.
pub fn rank_page(
    prepared: &Prepared,
    q: &PredicateQuery,
    subject_text: &str,
    cached: bool,
) -> SearchResult {
    let page = &prepared.page;
    let subject_code = q.product_code.as_deref();
    let subject = Subject {
        text: subject_text,
        product_code: subject_code,
        regulation_number: subject_code
            .and_then(|pc| page.product_codes.get(pc))
            .and_then(|i| i.regulation_number.as_deref()),
    };
    let top = rank_top(
        &subject,
        &prepared.corpus,
        Utc::now().date_naive(),
        q.limit.max(1),
    );
    // Only the classification facts of the candidates shown, not the whole page's.
    let product_codes = top
        .results
        .iter()
        .filter_map(|r| r.candidate.product_code.as_ref())
        .filter_map(|pc| page.product_codes.get_key_value(pc))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    SearchResult {
        results: top.results,
        meta: SearchMeta {
            source: page.source.clone(),
            cached,
            fetched_at: page.fetched_at,
            data_last_updated: page.data_last_updated.clone(),
            total_candidates: top.eligible,
            source_total: page.total,
            excluded_ineligible: top.excluded,
            recalls_checked: page.recalls_checked,
        },
        product_codes,
    }
}

/// Classification facts of one product code from the configured source (best effort).
pub async fn product_code_info(state: &AppState, code: &str) -> Option<ProductCodeInfo> {
    match choose_source(state).await {
        CandidateSource::Mirror { db, .. } => mirror::product_code(&db, code).await,
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
