//! The outbound openFDA budget, shared by every replica through Redis: a per-minute window, a
//! daily quota and pacing (at most N calls a second), taken atomically in one Lua script so
//! that two replicas can never both take the last unit. Without Redis, or while Redis is down,
//! the same rules run in process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use tokio::sync::Mutex;

use crate::config::Config;
use crate::rate_limit::RateLimiter;

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Minute,
    Day,
    Pace,
}

/// A refusal: the earliest moment it is worth asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub window: Window,
    pub retry_after: Duration,
}

/// A granted unit: wait `delay` (pacing) before calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub delay: Duration,
    pub used_minute: u64,
    pub used_day: u64,
}

#[derive(Clone)]
pub struct Budget {
    limiter: RateLimiter,
    local: Arc<Mutex<Local>>,
    /// (used this minute, used today) as last seen, for health without I/O.
    seen: Arc<[AtomicU64; 2]>,
    prefix: String,
    pub per_minute: u64,
    pub per_second: u64,
    pub daily: u64,
    pub max_wait: Duration,
}

/// The in-process version of the same three limits.
#[derive(Default)]
struct Local {
    minute: Option<(Instant, u64)>,
    day: Option<(String, u64)>,
    next_slot: Option<Instant>,
}

const MINUTE: Duration = Duration::from_secs(60);
/// Daily keys outlive their UTC day by an hour so a late replica still sees the count.
const DAY_TTL: Duration = Duration::from_secs(25 * 3600);

/// Returns {granted, window (0 none, 1 minute, 2 day, 3 pace), wait_ms, used_minute, used_day}.
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
if d + 1 > tonumber(ARGV[3]) then
  return {0, 2, 0, m, d}
end
if m + 1 > tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = tonumber(ARGV[2]) end
  return {0, 1, ttl, m, d}
end
local slot = tonumber(redis.call('GET', KEYS[3]) or '0')
if slot < now then slot = now end
local delay = slot - now
if delay > tonumber(ARGV[6]) then
  return {0, 3, delay, m, d}
end
redis.call('SET', KEYS[3], slot + tonumber(ARGV[5]), 'PX', delay + tonumber(ARGV[5]) + 1000)
m = redis.call('INCR', KEYS[1])
if m == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
d = redis.call('INCR', KEYS[2])
if d == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return {1, 0, delay, m, d}
"#;

/// Time until the next UTC midnight, when the daily quota resets.
fn until_midnight() -> Duration {
    let now = Utc::now();
    let secs = 86_400 - u64::from(now.num_seconds_from_midnight());
    Duration::from_secs(secs.max(1))
}

fn today() -> String {
    Utc::now().format("%Y%m%d").to_string()
}

impl Budget {
    pub fn new(config: &Config, limiter: RateLimiter) -> Self {
        let tuning = &config.openfda_tuning;
        Self {
            limiter,
            local: Arc::default(),
            seen: Arc::default(),
            prefix: tuning.budget_prefix.clone(),
            per_minute: u64::from(config.openfda_rate_per_minute),
            per_second: u64::from(tuning.rate_per_second),
            daily: u64::from(config.openfda_daily_limit),
            max_wait: tuning.budget_wait,
        }
    }

    fn keys(&self) -> [String; 3] {
        [
            format!("{}:minute", self.prefix),
            format!("{}:day:{}", self.prefix, today()),
            format!("{}:pace", self.prefix),
        ]
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(1000 / self.per_second.max(1))
    }

    /// Takes one unit, waiting (pacing, or for the minute window to roll over) at most
    /// `max_wait` in all; refuses when that is not enough.
    pub async fn acquire(&self, max_wait: Duration) -> Result<Grant, Refusal> {
        let started = Instant::now();
        loop {
            let left = max_wait.saturating_sub(started.elapsed());
            match self.reserve(left).await {
                Ok(grant) => {
                    self.publish(grant.used_minute, grant.used_day);
                    if !grant.delay.is_zero() {
                        tokio::time::sleep(grant.delay).await;
                    }
                    return Ok(grant);
                }
                Err(refusal) if refusal.window == Window::Minute && refusal.retry_after <= left => {
                    // The window rolls over within our allowance: wait for it, then ask again.
                    tokio::time::sleep(refusal.retry_after).await;
                }
                Err(refusal) => return Err(refusal),
            }
        }
    }

    async fn reserve(&self, max_wait: Duration) -> Result<Grant, Refusal> {
        if let RateLimiter::Redis(link, _) = &self.limiter {
            match self.reserve_redis(link, max_wait).await {
                Ok(answer) => return answer,
                Err(e) => {
                    metrics::counter!("openfda_budget_fallback_total").increment(1);
                    if !crate::redis_link::is_refusal(&e) {
                        tracing::warn!(error = %e, "openFDA budget: Redis unavailable, counting in process");
                    }
                }
            }
        }
        self.reserve_local(Instant::now(), max_wait).await
    }

    async fn reserve_redis(
        &self,
        link: &crate::redis_link::RedisLink,
        max_wait: Duration,
    ) -> anyhow::Result<Result<Grant, Refusal>> {
        let [minute, day, pace] = self.keys();
        let script = deadpool_redis::redis::Script::new(RESERVE);
        let mut invocation = script.key(minute);
        invocation
            .key(day)
            .key(pace)
            .arg(self.per_minute)
            .arg(MINUTE.as_millis() as u64)
            .arg(self.daily)
            .arg(DAY_TTL.as_millis() as u64)
            .arg(self.interval().as_millis() as u64)
            .arg(max_wait.as_millis() as u64);
        let (granted, window, wait_ms, m, d): (i64, i64, i64, u64, u64) =
            link.invoke(&invocation).await?;
        let wait = Duration::from_millis(wait_ms.max(0) as u64);
        Ok(match (granted, window) {
            (1, _) => Ok(Grant {
                delay: wait,
                used_minute: m,
                used_day: d,
            }),
            (_, 2) => Err(self.refused(Window::Day, until_midnight(), m, d)),
            (_, 1) => Err(self.refused(Window::Minute, wait, m, d)),
            _ => Err(self.refused(Window::Pace, wait, m, d)),
        })
    }

    async fn reserve_local(&self, now: Instant, max_wait: Duration) -> Result<Grant, Refusal> {
        let mut local = self.local.lock().await;
        let day = today();
        let used_day = match &local.day {
            Some((d, n)) if *d == day => *n,
            _ => 0,
        };
        let (minute_start, used_minute) = match local.minute {
            Some((start, n)) if now.duration_since(start) < MINUTE => (start, n),
            _ => (now, 0),
        };
        if used_day + 1 > self.daily {
            return Err(self.refused(Window::Day, until_midnight(), used_minute, used_day));
        }
        if used_minute + 1 > self.per_minute {
            let wait = MINUTE.saturating_sub(now.duration_since(minute_start));
            return Err(self.refused(Window::Minute, wait, used_minute, used_day));
        }
        let slot = local.next_slot.filter(|s| *s > now).unwrap_or(now);
        let delay = slot - now;
        if delay > max_wait {
            return Err(self.refused(Window::Pace, delay, used_minute, used_day));
        }
        local.next_slot = Some(slot + self.interval());
        local.minute = Some((minute_start, used_minute + 1));
        local.day = Some((day, used_day + 1));
        Ok(Grant {
            delay,
            used_minute: used_minute + 1,
            used_day: used_day + 1,
        })
    }

    fn refused(&self, window: Window, retry_after: Duration, m: u64, d: u64) -> Refusal {
        self.publish(m, d);
        Refusal {
            window,
            retry_after,
        }
    }

    fn publish(&self, used_minute: u64, used_day: u64) {
        self.seen[0].store(used_minute, Ordering::Relaxed);
        self.seen[1].store(used_day, Ordering::Relaxed);
        metrics::gauge!("openfda_budget_remaining", "window" => "minute")
            .set(self.per_minute.saturating_sub(used_minute) as f64);
        metrics::gauge!("openfda_budget_remaining", "window" => "day")
            .set(self.daily.saturating_sub(used_day) as f64);
    }

    /// `(left this minute, left today)` as of the last call this process made (no I/O).
    pub fn last_seen_remaining(&self) -> (u64, u64) {
        (
            self.per_minute
                .saturating_sub(self.seen[0].load(Ordering::Relaxed)),
            self.daily
                .saturating_sub(self.seen[1].load(Ordering::Relaxed)),
        )
    }

    /// `(used this minute, used today)` without taking anything.
    pub async fn usage(&self) -> (u64, u64) {
        if let RateLimiter::Redis(link, _) = &self.limiter {
            let [minute, day, _] = self.keys();
            let read = link
                .query::<(Option<u64>, Option<u64>)>(
                    deadpool_redis::redis::cmd("MGET").arg(&minute).arg(&day),
                )
                .await;
            if let Ok((m, d)) = read {
                return (m.unwrap_or(0), d.unwrap_or(0));
            }
        }
        let local = self.local.lock().await;
        let m = match local.minute {
            Some((start, n)) if start.elapsed() < MINUTE => n,
            _ => 0,
        };
        let d = match &local.day {
            Some((day, n)) if *day == today() => *n,
            _ => 0,
        };
        (m, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(pairs: &[(&str, &str)]) -> Budget {
        let config = Config::from_pairs(pairs.iter().copied()).unwrap();
        Budget::new(&config, RateLimiter::memory())
    }

    #[tokio::test]
    async fn minute_window_refuses_with_a_retry_after() {
        let b = budget(&[
            ("OPENFDA_RATE_PER_MINUTE", "3"),
            ("REGASSIST_OPENFDA_RATE_PER_SECOND", "1000"),
        ]);
        for _ in 0..3 {
            b.acquire(Duration::from_secs(1)).await.unwrap();
        }
        let refusal = b.acquire(Duration::ZERO).await.unwrap_err();
        assert_eq!(refusal.window, Window::Minute);
        assert!(refusal.retry_after <= MINUTE && !refusal.retry_after.is_zero());
        assert_eq!(b.usage().await, (3, 3));
    }

    #[tokio::test]
    async fn daily_quota_wins_over_the_minute() {
        let b = budget(&[
            ("OPENFDA_DAILY_LIMIT", "2"),
            ("REGASSIST_OPENFDA_RATE_PER_SECOND", "1000"),
        ]);
        b.acquire(Duration::from_secs(1)).await.unwrap();
        b.acquire(Duration::from_secs(1)).await.unwrap();
        let refusal = b.acquire(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(refusal.window, Window::Day);
    }

    #[tokio::test]
    async fn pacing_spaces_calls_and_refuses_beyond_the_wait() {
        let b = budget(&[("REGASSIST_OPENFDA_RATE_PER_SECOND", "4")]);
        let t0 = Instant::now();
        let first = b.reserve_local(t0, Duration::ZERO).await.unwrap();
        assert_eq!(first.delay, Duration::ZERO);
        // The next slot is 250 ms away: refused with no allowance, granted with one.
        let t1 = t0 + Duration::from_millis(50);
        let refusal = b.reserve_local(t1, Duration::ZERO).await.unwrap_err();
        assert_eq!(refusal.window, Window::Pace);
        assert_eq!(refusal.retry_after, Duration::from_millis(200));
        let second = b.reserve_local(t1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(second.delay, Duration::from_millis(200));
        let third = b.reserve_local(t1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(third.delay, Duration::from_millis(450));
    }
}
