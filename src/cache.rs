//! The response cache: Redis when `REDIS_URL` is set, else in-process. A failure never fails a
//! request: it is logged, counted, and the caller goes to the source (a stalled Redis costs a
//! read at most the link's response timeout, then nothing while its breaker is open).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::redis_link::RedisLink;
/// The namespaces of the response cache: every key the cache stores starts with one of these,
/// and only these may be cleared by an operator. Other keys in the same Redis (the rate
/// limits' `rl:…`, the openFDA budget's `openfda:budget…`) are not the cache's to delete.
pub const NAMESPACES: &[&str] = &[PREDICATE_SEARCH];

/// Predicate-search pages (`search::CACHE_PREFIX` is a version inside it).
pub const PREDICATE_SEARCH: &str = "predicate_search:";

/// The prefix to clear for an operator's `prefix`: itself when it lies inside a namespace, the
/// namespace when it names one without its `:` (`predicate_search`); `None` for anything else.
pub fn clearable_prefix(prefix: &str) -> Option<&str> {
    NAMESPACES.iter().find_map(|ns| {
        if prefix.starts_with(ns) {
            Some(prefix)
        } else if ns.strip_suffix(':') == Some(prefix) {
            Some(*ns)
        } else {
            None
        }
    })
}

#[derive(Clone)]
pub enum Cache {
    Redis(RedisLink, Arc<CacheStats>),
    Memory(Arc<MemoryCache>, Arc<CacheStats>),
}

#[derive(Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
}

/// Entries with an expiry; bounded in bytes so a flood of distinct queries cannot exhaust memory.
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<MemoryEntries>,
}

#[derive(Default)]
struct MemoryEntries {
    map: HashMap<String, (Instant, String)>,
    bytes: usize,
}

/// The in-process cache's size limit (keys and values).
const MEMORY_MAX_BYTES: usize = 64 * 1024 * 1024;

impl MemoryEntries {
    fn remove(&mut self, key: &str) {
        if let Some((_, v)) = self.map.remove(key) {
            self.bytes -= key.len() + v.len();
        }
    }

    /// Drops expired entries, then the soonest to expire, until `extra` more bytes fit.
    fn make_room(&mut self, extra: usize) {
        if self.bytes + extra <= MEMORY_MAX_BYTES {
            return;
        }
        let now = Instant::now();
        let expired: Vec<String> = self
            .map
            .iter()
            .filter(|(_, (e, _))| *e <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
        if self.bytes + extra <= MEMORY_MAX_BYTES {
            return;
        }
        let mut by_expiry: Vec<(Instant, String)> =
            self.map.iter().map(|(k, (e, _))| (*e, k.clone())).collect();
        by_expiry.sort();
        for (_, key) in by_expiry {
            if self.bytes + extra <= MEMORY_MAX_BYTES {
                break;
            }
            self.remove(&key);
        }
    }
}

impl Cache {
    pub fn memory() -> Self {
        Cache::Memory(Arc::default(), Arc::default())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Cache::Redis(..) => "redis",
            Cache::Memory(..) => "memory",
        }
    }

    pub fn stats(&self) -> &CacheStats {
        match self {
            Cache::Redis(_, s) | Cache::Memory(_, s) => s,
        }
    }

    fn record(&self, result: &'static str) {
        let stats = self.stats();
        let counter = match result {
            "hit" => &stats.hits,
            "miss" => &stats.misses,
            _ => &stats.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cache_requests_total", "result" => result).increment(1);
    }

    /// The cached text for `key`, or `None` on a miss or a backend failure.
    pub async fn get(&self, key: &str) -> Option<String> {
        let found = match self {
            Cache::Redis(pool, _) => match redis_get(pool, key).await {
                Ok(v) => v,
                Err(e) => {
                    if !crate::redis_link::is_refusal(&e) {
                        tracing::warn!(error = %e, "cache read failed; going to the source");
                    }
                    self.record("error");
                    return None;
                }
            },
            Cache::Memory(mem, _) => {
                let mut entries = mem.entries.lock().await;
                match entries.map.get(key) {
                    Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
                    Some(_) => {
                        entries.remove(key);
                        None
                    }
                    None => None,
                }
            }
        };
        self.record(if found.is_some() { "hit" } else { "miss" });
        found
    }

    /// Stores `value` for `ttl`; failures are logged and otherwise ignored.
    pub async fn set(&self, key: &str, value: &str, ttl: Duration) {
        match self {
            Cache::Redis(pool, _) => {
                if let Err(e) = redis_set(pool, key, value, ttl).await {
                    if !crate::redis_link::is_refusal(&e) {
                        tracing::warn!(error = %e, "cache write failed");
                    }
                    self.record("error");
                }
            }
            Cache::Memory(mem, _) => {
                let size = key.len() + value.len();
                if size > MEMORY_MAX_BYTES / 8 {
                    return; // one entry may not crowd out everything else
                }
                let mut entries = mem.entries.lock().await;
                entries.remove(key);
                entries.make_room(size);
                entries.bytes += size;
                entries
                    .map
                    .insert(key.to_string(), (Instant::now() + ttl, value.to_string()));
            }
        }
    }

    /// Deletes every key starting with `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<u64> {
        match self {
            Cache::Redis(link, _) => {
                let pattern = format!("{}*", escape_glob(prefix));
                let mut deleted = 0u64;
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = link
                        .query(
                            deadpool_redis::redis::cmd("SCAN")
                                .arg(cursor)
                                .arg("MATCH")
                                .arg(&pattern)
                                .arg("COUNT")
                                .arg(500),
                        )
                        .await?;
                    if !keys.is_empty() {
                        let n: u64 = link
                            .query(deadpool_redis::redis::cmd("DEL").arg(&keys))
                            .await?;
                        deleted += n;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                Ok(deleted)
            }
            Cache::Memory(mem, _) => {
                let mut entries = mem.entries.lock().await;
                let doomed: Vec<String> = entries
                    .map
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect();
                for key in &doomed {
                    entries.remove(key);
                }
                Ok(doomed.len() as u64)
            }
        }
    }
}

/// Escapes Redis glob characters so a prefix matches literally.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn redis_get(link: &RedisLink, key: &str) -> anyhow::Result<Option<String>> {
    Ok(link
        .query(deadpool_redis::redis::cmd("GET").arg(key))
        .await?)
}

async fn redis_set(link: &RedisLink, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()> {
    let secs = ttl.as_secs().max(1);
    link.query::<()>(
        deadpool_redis::redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("EX")
            .arg(secs),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_response_cache_prefixes_are_clearable() {
        assert_eq!(
            clearable_prefix("predicate_search"),
            Some("predicate_search:")
        );
        assert_eq!(
            clearable_prefix("predicate_search:v1:ab"),
            Some("predicate_search:v1:ab")
        );
        for other in [
            "rl:",
            "rl:api:user:1",
            "openfda:budget",
            "openfda",
            "p",
            "predicate",
            "predicate_searchx",
            "*",
            "",
        ] {
            assert_eq!(clearable_prefix(other), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn the_memory_cache_stays_within_its_byte_budget() {
        let cache = Cache::memory();
        let value = "x".repeat(1024 * 1024);
        for i in 0..200 {
            cache
                .set(&format!("k{i}"), &value, Duration::from_secs(60))
                .await;
        }
        let Cache::Memory(mem, _) = &cache else {
            unreachable!()
        };
        let entries = mem.entries.lock().await;
        assert!(entries.bytes <= MEMORY_MAX_BYTES);
        assert!(entries.map.len() >= 60, "keeps as much as fits");
        drop(entries);
        assert!(
            cache.get("k199").await.is_some(),
            "the newest entry is kept"
        );
        assert!(cache.get("k0").await.is_none(), "the oldest made room");
        assert_eq!(
            cache.delete_prefix("k19").await.unwrap(),
            10,
            "k190..k199; k19 itself was evicted"
        );
    }
}
