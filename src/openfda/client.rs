//! The openFDA HTTP client: limits checked before any call, one budget unit per attempt,
//! retries with jittered exponential backoff inside a deadline, the circuit breaker, and error
//! texts from which the API key is always removed.

mod transport;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng;
use serde::de::DeserializeOwned;

use self::transport::{Attempt, RetryKind};
use super::breaker::{Admission, Breaker, CircuitState};
use super::budget::{Budget, Window};
use super::health::Health;
use super::types::validate;
pub use super::types::{Endpoint, OpenFdaError, Page, Paging, Request};
use crate::config::{Config, OpenFdaTuning, Secret};
use crate::rate_limit::RateLimiter;

/// The client; cheap to clone.
#[derive(Clone)]
pub struct OpenFda {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    api_key: Option<Secret>,
    budget: Budget,
    breaker: Mutex<Breaker>,
    health: Health,
    tuning: OpenFdaTuning,
    timeout: Duration,
}

impl fmt::Debug for OpenFda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFda")
            .field("base", &self.inner.base)
            .field("api_key", &self.inner.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn count(endpoint: Endpoint, outcome: &'static str) {
    metrics::counter!("openfda_requests_total", "endpoint" => endpoint.label(), "outcome" => outcome)
        .increment(1);
}

impl OpenFda {
    pub fn new(config: &Config, limiter: RateLimiter) -> anyhow::Result<Self> {
        let base = config.openfda_base_url.trim_end_matches('/').to_string();
        let origin = url::Url::parse(&base)
            .map(|u| u.origin())
            .context("OPENFDA_BASE_URL is not a URL")?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("regassist/", env!("CARGO_PKG_VERSION")))
            .redirect(transport::same_origin_redirects(origin))
            .connect_timeout(config.openfda_timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(16)
            .build()?;
        let tuning = config.openfda_tuning.clone();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                api_key: config.openfda_api_key.clone(),
                budget: Budget::new(config, limiter),
                breaker: Mutex::new(Breaker::new(
                    tuning.breaker_threshold,
                    tuning.breaker_cooldown,
                )),
                health: Health::default(),
                tuning,
                timeout: config.openfda_timeout,
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    pub fn circuit(&self) -> CircuitState {
        self.breaker(|b| b.state(Instant::now()))
    }

    fn breaker<R>(&self, f: impl FnOnce(&mut Breaker) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update; the state is still usable.
        let mut guard = self
            .inner
            .breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Removes the API key from any text bound for logs, errors or health.
    pub fn redact(&self, text: &str) -> String {
        match &self.inner.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "***"),
            _ => text.to_string(),
        }
    }

    /// One logical call: retried, budgeted, guarded by the breaker.
    pub async fn get<T: DeserializeOwned>(&self, req: &Request) -> Result<Page<T>, OpenFdaError> {
        validate(req)?;
        let tuning = &self.inner.tuning;
        let deadline = Instant::now() + tuning.deadline;
        let mut retries = 0u32;
        loop {
            let probe = match self.breaker(|b| b.allow(Instant::now())) {
                Admission::Refused(wait) => {
                    count(req.endpoint, "circuit_open");
                    return Err(OpenFdaError::CircuitOpen {
                        retry_after_secs: secs(wait).max(1),
                    });
                }
                Admission::Probe => true,
                Admission::Call => false,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(refusal) = self
                .inner
                .budget
                .acquire(tuning.budget_wait.min(left))
                .await
            {
                self.breaker(|b| b.on_neutral(probe));
                count(req.endpoint, "budget_exhausted");
                let window = match refusal.window {
                    Window::Minute => "minute",
                    Window::Day => "day",
                    Window::Pace => "pace",
                };
                return Err(OpenFdaError::BudgetExhausted {
                    window,
                    retry_after_secs: secs(refusal.retry_after).max(1),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = self.attempt::<T>(req, self.inner.timeout.min(left)).await;
            match attempt {
                Attempt::Page(page) => {
                    self.breaker(Breaker::on_success);
                    self.inner.health.success();
                    count(
                        req.endpoint,
                        if page.total == 0 { "not_found" } else { "ok" },
                    );
                    return Ok(page);
                }
                Attempt::Final(err) => {
                    self.breaker(Breaker::on_success);
                    self.inner.health.success();
                    count(req.endpoint, "bad_query");
                    return Err(err);
                }
                Attempt::Refused(message) => {
                    self.breaker(|b| b.on_neutral(probe));
                    self.inner.health.error(&message);
                    count(req.endpoint, "refused");
                    return Err(OpenFdaError::Unavailable {
                        message,
                        retry_after_secs: 60,
                    });
                }
                Attempt::Retry {
                    kind,
                    retry_after,
                    message,
                } => {
                    if kind == RetryKind::RateLimited {
                        self.breaker(|b| b.on_neutral(probe));
                    } else {
                        self.breaker(|b| b.on_failure(Instant::now()));
                    }
                    self.inner.health.error(&message);
                    count(req.endpoint, kind.label());
                    retries += 1;
                    let wait = self.backoff(retries).max(retry_after.unwrap_or_default());
                    let open = self.circuit() == CircuitState::Open;
                    let fits = Instant::now() + wait < deadline;
                    if retries > tuning.max_retries || !fits || open {
                        tracing::warn!(endpoint = req.endpoint.label(), retries, %message, "openFDA call failed");
                        return Err(self.give_up(kind, retry_after, message));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Backoff before retry `n` (1-based): base * 2^(n-1), with jitter in its upper half.
    fn backoff(&self, n: u32) -> Duration {
        let base = self.inner.tuning.backoff.as_millis() as u64;
        let full = base
            .saturating_mul(1u64 << n.saturating_sub(1).min(10))
            .min(10_000);
        let low = full / 2;
        Duration::from_millis(rand::thread_rng().gen_range(low..=full.max(low)))
    }

    fn give_up(
        &self,
        kind: RetryKind,
        retry_after: Option<Duration>,
        message: String,
    ) -> OpenFdaError {
        let cooldown = secs(self.inner.tuning.breaker_cooldown).max(1);
        match kind {
            RetryKind::RateLimited => OpenFdaError::RateLimited {
                retry_after_secs: retry_after.map(secs).unwrap_or(60).max(1),
            },
            RetryKind::Timeout => OpenFdaError::Timeout {
                retry_after_secs: 5,
            },
            RetryKind::Server | RetryKind::Connect => OpenFdaError::Unavailable {
                message,
                retry_after_secs: if self.circuit() == CircuitState::Open {
                    cooldown
                } else {
                    5
                },
            },
        }
    }

    /// One real call (the first 510(k) record), for `regassist check openfda`.
    pub async fn ping(&self) -> Result<Page<serde_json::Value>, OpenFdaError> {
        let req = Request::new(Endpoint::Device510k, super::query::Search::new(), 1);
        self.get(&req).await
    }

    /// Follows `search_after` cursors until `max_records` are read or the results end.
    pub async fn collect<T: DeserializeOwned>(
        &self,
        req: &Request,
        max_records: usize,
    ) -> Result<Page<T>, OpenFdaError> {
        let mut first = self.get::<T>(req).await?;
        while first.results.len() < max_records {
            let Some(cursor) = first.next.take() else {
                break;
            };
            let next_req = Request {
                paging: Paging::After(cursor),
                ..req.clone()
            };
            let page = self.get::<T>(&next_req).await?;
            if page.results.is_empty() {
                break;
            }
            first.results.extend(page.results);
            first.next = page.next;
        }
        first.results.truncate(max_records);
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::transport::next_cursor;
    use super::*;
    use crate::openfda::query::{Field, Search, Term};

    fn client(pairs: &[(&str, &str)]) -> OpenFda {
        let config = Config::from_pairs(pairs.iter().copied()).unwrap();
        OpenFda::new(&config, RateLimiter::memory()).unwrap()
    }

    #[tokio::test]
    async fn limits_are_enforced_before_any_call() {
        // Port 9 (discard) is never reached: validation fails first.
        let c = client(&[("OPENFDA_BASE_URL", "http://127.0.0.1:9")]);
        let search = Search::new().is(Field::ProductCode, Term::product_code("DQY").unwrap());
        let too_many = Request::new(Endpoint::Device510k, search.clone(), 1001);
        assert!(matches!(
            c.get::<serde_json::Value>(&too_many).await,
            Err(OpenFdaError::InvalidRequest(_))
        ));
        let mut deep = Request::new(Endpoint::Device510k, search, 10);
        deep.paging = Paging::Skip(25_001);
        assert!(matches!(
            c.get::<serde_json::Value>(&deep).await,
            Err(OpenFdaError::InvalidRequest(_))
        ));
        assert_eq!(c.budget().usage().await, (0, 0));
    }

    #[tokio::test]
    async fn the_key_never_appears_in_errors() {
        let key = "sekret-key-0123456789";
        let c = client(&[
            ("OPENFDA_BASE_URL", "http://127.0.0.1:9"),
            ("OPENFDA_API_KEY", key),
            ("REGASSIST_OPENFDA_MAX_RETRIES", "0"),
            ("REGASSIST_OPENFDA_TIMEOUT_MS", "500"),
        ]);
        let req = Request::new(Endpoint::Device510k, Search::new(), 1);
        let err = c.get::<serde_json::Value>(&req).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains(key));
        let snap = c.health().snapshot();
        assert!(snap.last_error.is_some());
        assert!(!format!("{snap:?}").contains(key));
        assert!(!format!("{c:?}").contains(key));
        assert_eq!(c.redact(&format!("x?api_key={key}")), "x?api_key=***");
    }

    #[test]
    fn link_headers_give_the_cursor() {
        let link = "<https://api.fda.gov/device/510k.json?search=x&limit=100&search_after=0%3DK1%3B1%3D2>; rel=\"next\"";
        assert_eq!(next_cursor(link).as_deref(), Some("0=K1;1=2"));
        assert_eq!(next_cursor("<https://x/?a=1>; rel=\"prev\""), None);
    }
}
