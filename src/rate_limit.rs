//! Fixed-window rate limits: in Redis (shared by every replica) or in process. A Redis failure
//! falls back to the process's own window rather than refusing or waving through everyone; a
//! stalled Redis costs a request at most the link's response timeout, then nothing while its
//! breaker is open (see `redis_link`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::redis_link::RedisLink;

#[derive(Clone)]
pub enum RateLimiter {
    Redis(RedisLink, Arc<MemoryWindows>),
    Memory(Arc<MemoryWindows>),
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests counted in this window, including this one.
    pub count: u64,
    /// Time until the window resets.
    pub reset_after: Duration,
}

#[derive(Default)]
pub struct MemoryWindows {
    windows: Mutex<HashMap<String, (Instant, u64)>>,
}

impl MemoryWindows {
    async fn hit(&self, key: &str, limit: u64, window: Duration, cost: u64) -> Decision {
        let now = Instant::now();
        let mut windows = self.windows.lock().await;
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        let allowed = entry.1 + cost <= limit;
        if allowed {
            entry.1 += cost;
        }
        Decision {
            allowed,
            count: entry.1,
            reset_after: window.saturating_sub(now.duration_since(entry.0)),
        }
    }

    async fn peek(&self, key: &str, window: Duration) -> u64 {
        let windows = self.windows.lock().await;
        match windows.get(key) {
            Some((start, count)) if start.elapsed() < window => *count,
            _ => 0,
        }
    }
}

/// Counts `cost` against the window only when the total stays within `limit`, atomically.
const REDIS_HIT: &str = r#"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[2]) end
if current + tonumber(ARGV[3]) > tonumber(ARGV[1]) then
  return {0, current, ttl}
end
local n = redis.call('INCRBY', KEYS[1], ARGV[3])
if n == tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, n, redis.call('PTTL', KEYS[1])}
"#;

impl RateLimiter {
    pub fn memory() -> Self {
        RateLimiter::Memory(Arc::default())
    }

    pub fn redis(link: RedisLink) -> Self {
        RateLimiter::Redis(link, Arc::default())
    }

    /// Counts one request of `cost` against `key`'s window of `window` holding at most `limit`.
    pub async fn hit(&self, key: &str, limit: u64, window: Duration, cost: u64) -> Decision {
        match self {
            RateLimiter::Memory(mem) => mem.hit(key, limit, window, cost).await,
            RateLimiter::Redis(link, fallback) => {
                match redis_hit(link, key, limit, window, cost).await {
                    Ok(d) => d,
                    Err(e) => {
                        if !crate::redis_link::is_refusal(&e) {
                            tracing::warn!(error = %e, key, "rate limiter: Redis unavailable, counting locally");
                        }
                        fallback.hit(key, limit, window, cost).await
                    }
                }
            }
        }
    }

    /// How much of `key`'s current window is used, without counting.
    pub async fn used(&self, key: &str, window: Duration) -> u64 {
        match self {
            RateLimiter::Memory(mem) => mem.peek(key, window).await,
            RateLimiter::Redis(link, fallback) => {
                match link
                    .query::<Option<u64>>(deadpool_redis::redis::cmd("GET").arg(key))
                    .await
                {
                    Ok(v) => v.unwrap_or(0),
                    Err(_) => fallback.peek(key, window).await,
                }
            }
        }
    }
}

async fn redis_hit(
    link: &RedisLink,
    key: &str,
    limit: u64,
    window: Duration,
    cost: u64,
) -> anyhow::Result<Decision> {
    let script = deadpool_redis::redis::Script::new(REDIS_HIT);
    let mut invocation = script.key(key);
    invocation
        .arg(limit)
        .arg(window.as_millis() as u64)
        .arg(cost);
    let (allowed, count, ttl_ms): (i64, u64, i64) = link.invoke(&invocation).await?;
    Ok(Decision {
        allowed: allowed == 1,
        count,
        reset_after: Duration::from_millis(ttl_ms.max(0) as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_window_refuses_past_the_limit_per_key() {
        let limiter = RateLimiter::memory();
        let window = Duration::from_millis(50);
        for i in 1..=3 {
            let d = limiter.hit("k", 3, window, 1).await;
            assert!(d.allowed, "request {i}");
        }
        let refused = limiter.hit("k", 3, window, 1).await;
        assert!(!refused.allowed);
        assert!(refused.reset_after <= window);
        assert!(limiter.hit("other", 3, window, 1).await.allowed);
    }
}
