//! Getting a ranked-ready page: this process's memo of prepared pages, then the shared cache
//! (Redis or memory), then one flight to the source per key.
//!
//! The memo keeps parsed, text-analysed pages for a short while: a cached search then costs a
//! ranking pass instead of a JSON parse and a stemming pass over every name and definition.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{cache_key, CandidateSource, PredicateSearch, SearchError, SourcePage, SourceQuery};
use crate::domain::ranking::Corpus;

/// How long a prepared page is reused without looking at the shared cache. Short, because an
/// admin's cache clear reaches other replicas' memos only through this expiry.
pub const MEMO_TTL: Duration = Duration::from_secs(30);
/// A prepared page of a few hundred candidates weighs about a megabyte; this bounds the memo.
const MEMO_MAX: usize = 48;

/// A source page with its candidates' text analysed for ranking.
pub struct Prepared {
    pub page: SourcePage,
    pub corpus: Corpus,
}

impl Prepared {
    pub fn new(page: SourcePage) -> Self {
        let definitions: BTreeMap<String, String> = page
            .product_codes
            .iter()
            .filter_map(|(pc, info)| info.definition.clone().map(|d| (pc.clone(), d)))
            .collect();
        let corpus = Corpus::new(page.candidates.clone(), &definitions);
        Self { page, corpus }
    }
}

/// A prepared page and when it was put in the memo.
type Entry = (Instant, Arc<Prepared>);

#[derive(Clone, Default)]
pub struct Memo {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Memo {
    fn get(&self, key: &str) -> Option<Arc<Prepared>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < MEMO_TTL)
            .map(|(_, p)| p.clone())
    }

    fn put(&self, key: &str, prepared: Arc<Prepared>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MEMO_MAX {
            entries.retain(|_, (at, _)| at.elapsed() < MEMO_TTL);
            if entries.len() >= MEMO_MAX {
                entries.clear();
            }
        }
        entries.insert(key.to_string(), (Instant::now(), prepared));
    }

    pub fn forget(&self, prefix: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|k, _| !k.starts_with(prefix));
    }
}

fn parse(key: &str, text: &str) -> Option<SourcePage> {
    match serde_json::from_str::<SourcePage>(text) {
        Ok(page) => Some(page),
        Err(e) => {
            tracing::warn!(error = %e, key, "unreadable cache entry ignored");
            None
        }
    }
}

/// The prepared page for `sq` and how it was found: `cache_hit`, `fetched` or `shared` (joined
/// another request's fetch).
pub async fn page(
    search: &PredicateSearch,
    source: &CandidateSource,
    sq: SourceQuery,
) -> Result<(Arc<Prepared>, &'static str), SearchError> {
    let key = cache_key(&source.cache_scope(), &sq);
    let memo = &search.memo;
    if let Some(prepared) = memo.get(&key) {
        return Ok((prepared, "cache_hit"));
    }
    if let Some(page) = search.cache.get(&key).await.and_then(|t| parse(&key, &t)) {
        let prepared = Arc::new(Prepared::new(page));
        memo.put(&key, prepared.clone());
        return Ok((prepared, "cache_hit"));
    }
    let (cache, ttl, src) = (search.cache.clone(), search.cache_ttl, source.clone());
    let (work_key, work_memo) = (key.clone(), memo.clone());
    let work = async move {
        // A flight that ended between our cache miss and now has filled the cache.
        let page = match cache
            .get(&work_key)
            .await
            .and_then(|t| parse(&work_key, &t))
        {
            Some(page) => page,
            None => {
                let page = src.fetch(&sq).await?;
                if let Ok(text) = serde_json::to_string(&page) {
                    cache.set(&work_key, &text, ttl).await;
                }
                page
            }
        };
        let prepared = Arc::new(Prepared::new(page));
        work_memo.put(&work_key, prepared.clone());
        Ok(prepared)
    };
    let (result, joined) = search.flights.run(&key, work).await;
    Ok((result?, if joined { "shared" } else { "fetched" }))
}
