//! The predicate-search use case: normalise the query -> cache (`predicate_search:v1:<sha256>`)
//! -> single flight -> source (openFDA, whose client takes the shared budget, or the local
//! mirror) -> rank. The cached value is the source's page, so ranking for a different subject
//! text reuses it; the result carries `fetched_at` and openFDA's `meta.last_updated`.

pub mod classifier;
mod error;
mod flight;
mod pages;
pub mod query;
pub mod source;

mod mirror_source;
mod mirror_view;
pub mod safety;
use mirror_source as mirror;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use error::SearchError;
pub use flight::Flights;
pub use pages::Prepared;
pub use query::{PredicateQuery, SearchDefaults, SearchRequest, MAX_TEXT_CHARS};
pub use source::{CandidateSource, SourcePage, SourceQuery};

use crate::cache::Cache;
use crate::config::{Config, OpenFdaMode};
use crate::db::Db;
use crate::domain::candidate::ProductCodeInfo;
use crate::domain::ranking::{rank_top, Corpus, Ranked, Subject, SuggestedCode};
use crate::openfda::query::significant_words;
use crate::openfda::OpenFda;

/// Cache key prefix; the runbook's `predicate_search:*` pattern names these entries.
pub const CACHE_PREFIX: &str = "predicate_search:v1:";

/// The predicate-search service: the handles it reads (database, cache, openFDA), its settings,
/// and its per-process state (the flights under way, recently ranked pages, what is known of
/// the mirror). Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct PredicateSearch {
    db: Db,
    cache: Cache,
    openfda: OpenFda,
    mode: OpenFdaMode,
    mirror_recheck: std::time::Duration,
    fetch_limit: u32,
    cache_ttl: std::time::Duration,
    pub flights: Flights,
    memo: pages::Memo,
    mirror_seen: mirror_view::MirrorSeen,
    classifier: std::sync::Arc<classifier::Classifier>,
}

impl PredicateSearch {
    pub fn new(config: &Config, db: Db, cache: Cache, openfda: OpenFda) -> Self {
        PredicateSearch {
            db,
            cache,
            openfda,
            mode: config.openfda_mode,
            mirror_recheck: config.mirror_recheck,
            fetch_limit: config.openfda_tuning.fetch_limit,
            cache_ttl: config.cache_ttl,
            flights: Flights::default(),
            memo: pages::Memo::default(),
            mirror_seen: mirror_view::MirrorSeen::default(),
            classifier: std::sync::Arc::default(),
        }
    }

    /// Forgets this process's prepared pages whose key starts with `prefix` (the admin's
    /// cache clear; other replicas forget theirs within `pages::MEMO_TTL`).
    pub fn forget(&self, prefix: &str) {
        self.memo.forget(prefix);
    }

    /// The classification index searches rank within (built on first use, rebuilt after imports).
    pub fn classifier(&self) -> &std::sync::Arc<classifier::Classifier> {
        &self.classifier
    }
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
    /// False when recalls could not be checked (no recall data in the mirror, or the lookup
    /// failed); each candidate's `safety` says what was checked for it.
    pub recalls_checked: bool,
    /// Without a `product_code`, the product codes the classification suggests for the text,
    /// best first: candidates under them rank higher (their reasons say so). Empty otherwise.
    pub suggested_product_codes: Vec<String>,
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
    let product_code = q.product_code.as_deref().map(String::from);
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

impl PredicateSearch {
    /// Where searches are answered from, per `OPENFDA_MODE`.
    pub async fn choose_source(&self) -> CandidateSource {
        let openfda = || CandidateSource::OpenFda(self.openfda.clone());
        if self.mode == OpenFdaMode::Live {
            return openfda();
        }
        let view = self.mirror_seen.view(&self.db, self.mirror_recheck).await;
        if self.mode == OpenFdaMode::Auto && !view.holds_data {
            return openfda();
        }
        CandidateSource::Mirror {
            db: self.db.clone(),
            generation: view.generation,
        }
    }

    /// Searches and ranks predicate candidates for a subject described by `subject_text`.
    pub async fn predicates(
        &self,
        q: &PredicateQuery,
        subject_text: &str,
    ) -> Result<SearchResult, SearchError> {
        search_predicates(self, q, subject_text).await
    }

    /// Classification facts of one product code from the configured source (best effort).
    pub async fn product_code_info(&self, code: &str) -> Option<ProductCodeInfo> {
        match self.choose_source().await {
            CandidateSource::Mirror { db, .. } => mirror::product_code(&db, code).await,
            CandidateSource::OpenFda(_) => None,
        }
    }
}

/// How many of the classification's suggestions a text search ranks within.
const SUGGESTED_CODES: usize = 3;

async fn search_predicates(
    search: &PredicateSearch,
    q: &PredicateQuery,
    subject_text: &str,
) -> Result<SearchResult, SearchError> {
    let source = search.choose_source().await;
    let sq = normalise(q, search.fetch_limit);
    // The suggestion is in-memory and fast; knowing the codes first lets the text page and the
    // codes' pages be read at once (each page is its own task), so an uncached search waits
    // for the slowest page, not for their sum.
    let suggested = if q.product_code.is_none() {
        suggest_codes(search, subject_text).await
    } else {
        Vec::new()
    };
    // On the mirror, the suggested codes' own newest decisions join the candidates: the text
    // page alone may hold none of them. (On openFDA each would spend the shared budget.)
    let code_queries: Vec<SourceQuery> = if matches!(source, CandidateSource::Mirror { .. }) {
        suggested
            .iter()
            .map(|s| SourceQuery {
                words: Vec::new(),
                product_code: Some(s.product_code.clone()),
                ..sq.clone()
            })
            .collect()
    } else {
        Vec::new()
    };
    let code_pages = futures::future::join_all(
        code_queries
            .into_iter()
            .map(|cq| pages::page(search, &source, cq)),
    );
    let (outcome, code_pages) = tokio::join!(pages::page(search, &source, sq), code_pages);
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
    let mut extra = Vec::new();
    for (found, s) in code_pages.into_iter().zip(&suggested) {
        match found {
            Ok((p, _)) => extra.push(p),
            Err(e) => {
                tracing::warn!(error = %e, code = %s.product_code, "suggested code's page not read")
            }
        }
    }
    Ok(rank_pages(
        &page,
        &extra,
        q,
        subject_text,
        &suggested,
        how == "cache_hit",
    ))
}

/// The classification's best product codes for `text` (none when it has no index yet).
async fn suggest_codes(search: &PredicateSearch, text: &str) -> Vec<SuggestedCode> {
    let index = match search.classifier.index(&search.db).await {
        Ok(index) => index,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "no classification index; ranking without suggested codes"
            );
            return Vec::new();
        }
    };
    index
        .suggest(text, SUGGESTED_CODES)
        .into_iter()
        .enumerate()
        .map(|(rank, s)| SuggestedCode {
            product_code: s.product_code,
            confidence: s.confidence,
            rank,
        })
        .collect()
}

/// Ranks the text page together with the pages of the suggested product codes and keeps the
/// eligible, best `limit`.
fn rank_pages(
    prepared: &Prepared,
    extra: &[std::sync::Arc<Prepared>],
    q: &PredicateQuery,
    subject_text: &str,
    suggested: &[SuggestedCode],
    cached: bool,
) -> SearchResult {
    let page = &prepared.page;
    let merged;
    let corpus = if extra.is_empty() {
        &prepared.corpus
    } else {
        let mut parts = vec![&prepared.corpus];
        parts.extend(extra.iter().map(|p| &p.corpus));
        merged = Corpus::merged(&parts);
        &merged
    };
    let subject_code = q.product_code.as_deref();
    let subject = Subject {
        text: subject_text,
        product_code: subject_code,
        regulation_number: subject_code
            .and_then(|pc| page.product_codes.get(pc))
            .and_then(|i| i.regulation_number.as_deref()),
        suggested_codes: suggested,
    };
    let top = rank_top(&subject, corpus, q.ranked_on(), q.limit.max(1));
    // Only the classification facts of the candidates shown, not the whole page's.
    let facts = |pc: &String| {
        std::iter::once(page)
            .chain(extra.iter().map(|p| &p.page))
            .find_map(|p| p.product_codes.get_key_value(pc))
    };
    let product_codes = top
        .results
        .iter()
        .filter_map(|r| r.candidate.product_code.as_ref())
        .filter_map(facts)
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
            suggested_product_codes: suggested.iter().map(|s| s.product_code.clone()).collect(),
        },
        product_codes,
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
        assert!(
            crate::cache::clearable_prefix(CACHE_PREFIX).is_some(),
            "search pages live in a cache namespace"
        );
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
            product_code: crate::domain::ids::ProductCode::parse("DQY"),
            ..Default::default()
        };
        let e = PredicateQuery {
            product_code: crate::domain::ids::ProductCode::parse("DQY"),
            ..Default::default()
        };
        assert_eq!(
            cache_key("openfda", &normalise(&d, 100)),
            cache_key("openfda", &normalise(&e, 100))
        );
    }
}
