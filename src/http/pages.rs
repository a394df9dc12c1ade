//! Rendered JSON pages of lists (projects, audit trails), kept per replica and served again only
//! while the database says nothing on them has changed.
//!
//! Why: a page of 20 projects or trail entries costs its rows' transfer and JSON building, ten
//! single-row reads' worth (bench/profiles), while the frontend asks for the same pages over and
//! over. Each request still asks the database first, for a version that changes in the same
//! transaction as anything the page shows (a project list's version is set by triggers on
//! `projects`; a trail's is the hash of its newest chained entry), so a page is never served
//! after a change, whichever replica made it. A hit costs that one small read and a reference
//! count; a miss costs the read on top of the page as before.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::body::Bytes;

/// The largest page kept, as a share of the budget: one huge page cannot empty the cache.
const MAX_PAGE_SHARE: usize = 8;

/// A rendered page and what it was built at.
#[derive(Clone)]
struct Page {
    version: String,
    body: Bytes,
    total: i64,
}

#[derive(Default)]
struct Pages {
    by_key: HashMap<String, Page>,
    /// Keys in the order they were first stored: the oldest goes first when over budget.
    order: VecDeque<String>,
    bytes: usize,
}

/// The replica's rendered pages, within a budget of bytes (keys and bodies).
pub struct PageCache {
    budget: usize,
    pages: Mutex<Pages>,
}

/// What a stored page weighs against the budget.
fn weight(key: &str, page: &Page) -> usize {
    key.len() + page.version.len() + page.body.len()
}

impl PageCache {
    /// A cache of at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            pages: Mutex::new(Pages::default()),
        }
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, Pages> {
        // A panic while holding the lock leaves only whole entries behind: keep serving them.
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page stored under `key` and its total, if it was built at `version`.
    pub fn get(&self, key: &str, version: &str) -> Option<(Bytes, i64)> {
        let pages = self.pages();
        let page = pages.by_key.get(key)?;
        (page.version == version).then(|| (page.body.clone(), page.total))
    }

    /// Stores a page built at `version` (read before the page itself, so that a change in
    /// between leaves a page newer than its version, never older).
    pub fn put(&self, key: String, version: String, body: Bytes, total: i64) {
        let page = Page {
            version,
            body,
            total,
        };
        let size = weight(&key, &page);
        if size > self.budget / MAX_PAGE_SHARE {
            return;
        }
        let mut pages = self.pages();
        let mut queued = match pages.by_key.remove(&key) {
            Some(old) => {
                pages.bytes -= weight(&key, &old);
                true
            }
            None => false,
        };
        while pages.bytes + size > self.budget {
            let Some(oldest) = pages.order.pop_front() else {
                break;
            };
            match pages.by_key.remove(&oldest) {
                Some(old) => pages.bytes -= weight(&oldest, &old),
                // The key being replaced, already out of the map.
                None => queued = false,
            }
        }
        if !queued {
            pages.order.push_back(key.clone());
        }
        pages.bytes += size;
        pages.by_key.insert(key, page);
    }

    /// The page under `key` if it was built at `version`, else `render`'s page, kept for the
    /// next request. `version` must be read before `render` reads the page.
    pub async fn serve<E, F>(
        &self,
        key: String,
        version: String,
        render: F,
    ) -> Result<(Bytes, i64), E>
    where
        F: std::future::Future<Output = Result<(String, i64), E>>,
    {
        if let Some(hit) = self.get(&key, &version) {
            metrics::counter!("page_cache_requests_total", "result" => "hit").increment(1);
            return Ok(hit);
        }
        metrics::counter!("page_cache_requests_total", "result" => "miss").increment(1);
        let (json, total) = render.await?;
        let body = Bytes::from(json);
        self.put(key, version, body.clone(), total);
        Ok((body, total))
    }

    /// Bytes held (keys, versions and bodies).
    pub fn bytes(&self) -> usize {
        self.pages().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn a_page_is_served_only_at_its_version() {
        let cache = PageCache::new(1 << 20);
        cache.put("k".into(), "v1".into(), body(10), 3);
        assert_eq!(
            cache.get("k", "v1").map(|(b, t)| (b.len(), t)),
            Some((10, 3))
        );
        assert!(cache.get("k", "v2").is_none());
        assert!(cache.get("other", "v1").is_none());
        cache.put("k".into(), "v2".into(), body(20), 4);
        assert!(cache.get("k", "v1").is_none());
        assert_eq!(
            cache.get("k", "v2").map(|(b, t)| (b.len(), t)),
            Some((20, 4))
        );
        assert_eq!(cache.bytes(), 1 + 2 + 20);
    }

    #[test]
    fn the_budget_holds_and_the_oldest_go_first() {
        let cache = PageCache::new(8 * 110);
        for i in 0..20 {
            cache.put(format!("k{i:02}"), "v".into(), body(100), i);
            assert!(cache.bytes() <= 8 * 110, "over budget after {i}");
        }
        assert!(cache.get("k00", "v").is_none(), "the oldest went");
        assert!(cache.get("k19", "v").is_some(), "the newest stayed");
        // A replaced key keeps its place and its weight is counted once.
        let before = cache.bytes();
        cache.put("k19".into(), "v".into(), body(100), 0);
        assert_eq!(cache.bytes(), before);
    }

    #[test]
    fn a_page_over_its_share_of_the_budget_is_not_kept() {
        let cache = PageCache::new(800);
        cache.put("big".into(), "v".into(), body(200), 1);
        assert!(cache.get("big", "v").is_none());
        assert_eq!(cache.bytes(), 0);
        let off = PageCache::new(0);
        off.put("k".into(), "v".into(), body(1), 1);
        assert!(off.get("k", "v").is_none());
    }
}
