//! The one way to Redis: every command under a response timeout and behind a circuit breaker,
//! so a stalled Redis costs a request at most the timeout, and nothing once the breaker is open.
//!
//! A Redis that accepts connections but never answers is the dangerous failure: the pool hands
//! out connections and a command already sent waits without bound. The cache, the rate limits,
//! the openFDA budget and the health check all go through [`RedisLink`], which bounds the
//! wait for a connection and the answer together, and after [`FAILURES_TO_OPEN`] failures in a
//! row answers at once with [`LinkError::Open`] for [`OPEN_FOR`], letting one probe through per
//! period until Redis answers again. Each caller decides what a failure means (the cache goes to
//! the source, the limits count in process).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::future::Future;

use deadpool_redis::redis::{Cmd, ErrorKind, FromRedisValue, RedisError, ScriptInvocation};

/// The longest a command waits for a connection and its answer together.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// Consecutive failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// How long an open breaker refuses before it lets a probe through.
pub const OPEN_FOR: Duration = Duration::from_secs(5);

/// Why a command did not answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("Redis circuit open after {FAILURES_TO_OPEN} failures in a row; not asking")]
    Open,
    #[error("Redis did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("no Redis connection: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("Redis error: {0}")]
    Redis(#[from] deadpool_redis::redis::RedisError),
}

/// True for the breaker's refusal: callers log real failures, not one line per request while
/// the breaker is open (it logs once when it opens).
pub fn is_refusal(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<LinkError>(), Some(LinkError::Open))
}

/// A pool with its timeout and breaker; cheap to clone (shared state).
#[derive(Clone)]
pub struct RedisLink {
    pool: deadpool_redis::Pool,
    timeout: Duration,
    breaker: Arc<Breaker>,
}

#[derive(Default)]
struct Breaker {
    failures: AtomicU32,
    /// While the breaker is open: when the next probe may go.
    next_probe: Mutex<Option<Instant>>,
}

impl Breaker {
    /// Whether a command may go now. While open, one caller per [`OPEN_FOR`] goes as the probe.
    fn admit(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) < FAILURES_TO_OPEN {
            return true;
        }
        let mut next = self.next_probe.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match *next {
            Some(at) if at > now => false,
            _ => {
                *next = Some(now + OPEN_FOR);
                true
            }
        }
    }

    fn success(&self) {
        if self.failures.swap(0, Ordering::Relaxed) >= FAILURES_TO_OPEN {
            tracing::info!("Redis answers again; circuit closed");
            metrics::gauge!("redis_circuit_open").set(0.0);
        }
        *self.next_probe.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n == FAILURES_TO_OPEN {
            tracing::warn!(
                failures = n,
                open_for_s = OPEN_FOR.as_secs(),
                "Redis failing; circuit open"
            );
            metrics::gauge!("redis_circuit_open").set(1.0);
            *self.next_probe.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + OPEN_FOR);
        }
    }
}

impl RedisLink {
    /// A link over a pool for `url`, with the default response timeout.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self::new(pool(url)?, RESPONSE_TIMEOUT))
    }

    pub fn new(pool: deadpool_redis::Pool, timeout: Duration) -> Self {
        Self {
            pool,
            timeout,
            breaker: Arc::default(),
        }
    }

    /// Runs `cmd` within the response timeout, through the breaker.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, LinkError> {
        self.guarded(true, async {
            let mut conn = self.pool.get().await?;
            Ok(cmd.query_async(&mut conn).await?)
        })
        .await
    }

    /// Runs a Lua script within the response timeout, through the breaker.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &ScriptInvocation<'_>,
    ) -> Result<T, LinkError> {
        self.guarded(true, async {
            let mut conn = self.pool.get().await?;
            Ok(script.invoke_async(&mut conn).await?)
        })
        .await
    }

    /// PING within the response timeout. It goes even while the breaker is open (the health
    /// check is the natural probe), and its answer closes or keeps open the breaker.
    pub async fn ping(&self) -> Result<(), LinkError> {
        let pong: String = self
            .guarded(false, async {
                let mut conn = self.pool.get().await?;
                Ok(deadpool_redis::redis::cmd("PING")
                    .query_async(&mut conn)
                    .await?)
            })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(LinkError::Redis(RedisError::from((
                ErrorKind::ResponseError,
                "unexpected PING answer",
            ))))
        }
    }

    /// `work` (which takes a connection and runs a command) under the timeout and the breaker.
    /// A command cut off is dropped mid-flight; the multiplexed connection discards its answer.
    async fn guarded<T>(
        &self,
        through_breaker: bool,
        work: impl Future<Output = Result<T, LinkError>>,
    ) -> Result<T, LinkError> {
        if through_breaker && !self.breaker.admit() {
            metrics::counter!("redis_commands_total", "result" => "refused_open").increment(1);
            return Err(LinkError::Open);
        }
        let outcome = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(LinkError::Timeout(self.timeout)),
        };
        match &outcome {
            Ok(_) => self.breaker.success(),
            Err(_) => self.breaker.failure(),
        }
        let label = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!("redis_commands_total", "result" => label).increment(1);
        outcome
    }

    /// True while the breaker refuses commands.
    pub fn is_open(&self) -> bool {
        self.breaker.failures.load(Ordering::Relaxed) >= FAILURES_TO_OPEN
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.breaker.failures.load(Ordering::Relaxed)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The pool's `(size, available, max_size)`.
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size, s.available, s.max_size)
    }
}

/// A deadpool-redis pool whose own waits are short; [`RedisLink::run`] bounds them further.
fn pool(url: &str) -> anyhow::Result<deadpool_redis::Pool> {
    let mut cfg = deadpool_redis::Config::from_url(url);
    let mut pool_cfg = deadpool_redis::PoolConfig::new(32);
    pool_cfg.timeouts = deadpool_redis::Timeouts {
        wait: Some(Duration::from_secs(1)),
        create: Some(Duration::from_secs(1)),
        recycle: Some(Duration::from_secs(1)),
    };
    cfg.pool = Some(pool_cfg);
    Ok(cfg.create_pool(Some(deadpool_redis::Runtime::Tokio1))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_failures_and_lets_one_probe_through() {
        let b = Breaker::default();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            b.failure();
            assert!(b.admit(), "still closed");
        }
        b.failure();
        assert!(!b.admit(), "open: refuses at once");
        // The probe time has come: exactly one caller goes.
        *b.next_probe.lock().unwrap() = Some(Instant::now() - Duration::from_millis(1));
        assert!(b.admit());
        assert!(!b.admit(), "only one probe per period");
        b.success();
        assert!(b.admit(), "closed again after an answer");
    }

    #[test]
    fn only_the_breakers_refusal_is_quiet() {
        assert!(is_refusal(&anyhow::Error::new(LinkError::Open)));
        assert!(!is_refusal(&anyhow::Error::new(LinkError::Timeout(
            RESPONSE_TIMEOUT
        ))));
    }
}
