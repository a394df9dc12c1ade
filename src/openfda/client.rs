//! The openFDA HTTP client: limits checked before any call, one budget unit per attempt,
//! retries with jittered exponential backoff inside a deadline, the circuit breaker, and error
//! texts from which the API key is always removed.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::de::DeserializeOwned;

use super::breaker::{Admission, Breaker, CircuitState};
use super::budget::{Budget, Window};
use super::health::Health;
use super::query::{Search, Sort, MAX_LIMIT, MAX_SKIP};
use super::wire::{Envelope, ErrorEnvelope};
use crate::config::{Config, OpenFdaTuning, Secret};
use crate::rate_limit::RateLimiter;

/// The endpoints this service reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Device510k,
    Classification,
    Recall,
    Enforcement,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Device510k => "/device/510k.json",
            Endpoint::Classification => "/device/classification.json",
            Endpoint::Recall => "/device/recall.json",
            Endpoint::Enforcement => "/device/enforcement.json",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Endpoint::Device510k => "510k",
            Endpoint::Classification => "classification",
            Endpoint::Recall => "recall",
            Endpoint::Enforcement => "enforcement",
        }
    }
}

/// Where a page starts: an offset (at most 25000) or openFDA's `search_after` cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paging {
    Skip(u32),
    After(String),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub endpoint: Endpoint,
    pub search: Option<Search>,
    pub sort: Option<Sort>,
    pub limit: u32,
    pub paging: Paging,
}

impl Request {
    pub fn new(endpoint: Endpoint, search: Search, limit: u32) -> Self {
        Self {
            endpoint,
            search: (!search.is_empty()).then_some(search),
            sort: None,
            limit,
            paging: Paging::Skip(0),
        }
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub results: Vec<T>,
    /// `meta.results.total` (0 for "no match").
    pub total: u64,
    /// `meta.last_updated`.
    pub last_updated: Option<String>,
    /// The `search_after` cursor of the next page, when openFDA offered one.
    pub next: Option<String>,
}

impl<T> Page<T> {
    fn empty() -> Self {
        Self {
            results: Vec::new(),
            total: 0,
            last_updated: None,
            next: None,
        }
    }
}

/// Why a call gave no page. Texts never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenFdaError {
    #[error("openFDA rejected the query: {0}")]
    BadQuery(String),
    #[error("invalid openFDA request: {0}")]
    InvalidRequest(String),
    #[error("openFDA is rate limiting this service")]
    RateLimited { retry_after_secs: u64 },
    #[error("the openFDA request budget ({window}) is spent")]
    BudgetExhausted {
        window: &'static str,
        retry_after_secs: u64,
    },
    #[error("openFDA is unavailable: {message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    #[error("openFDA did not answer in time")]
    Timeout { retry_after_secs: u64 },
    #[error("openFDA calls are paused after repeated failures (circuit open)")]
    CircuitOpen { retry_after_secs: u64 },
    #[error("unexpected answer from openFDA: {0}")]
    Protocol(String),
}

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

/// How one attempt ended.
enum Attempt<T> {
    Page(Page<T>),
    /// Not retried; upstream is healthy (400, bad-query 500, unparseable 200).
    Final(OpenFdaError),
    /// Not retried; upstream refused us (401/403): says nothing about its health.
    Refused(String),
    Retry {
        kind: RetryKind,
        retry_after: Option<Duration>,
        message: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RetryKind {
    RateLimited,
    Server,
    Timeout,
    Connect,
}

impl RetryKind {
    fn label(self) -> &'static str {
        match self {
            RetryKind::RateLimited => "rate_limited",
            RetryKind::Server => "server_error",
            RetryKind::Timeout => "timeout",
            RetryKind::Connect => "connect_error",
        }
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
        let http = reqwest::Client::builder()
            .user_agent(concat!("regassist/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.openfda_timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(16)
            .build()?;
        let tuning = config.openfda_tuning.clone();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: config.openfda_base_url.trim_end_matches('/').to_string(),
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

    async fn attempt<T: DeserializeOwned>(&self, req: &Request, timeout: Duration) -> Attempt<T> {
        let url = format!("{}{}", self.inner.base, req.endpoint.path());
        let mut params: Vec<(&str, String)> = Vec::with_capacity(5);
        if let Some(search) = &req.search {
            params.push(("search", search.to_string()));
        }
        if let Some(sort) = req.sort {
            params.push(("sort", sort.as_param().to_string()));
        }
        params.push(("limit", req.limit.to_string()));
        match &req.paging {
            Paging::Skip(0) => {}
            Paging::Skip(n) => params.push(("skip", n.to_string())),
            Paging::After(cursor) => params.push(("search_after", cursor.clone())),
        }
        if let Some(key) = &self.inner.api_key {
            params.push(("api_key", key.expose().to_string()));
        }
        let call = async {
            let response = self.inner.http.get(&url).query(&params).send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_cursor);
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, retry_after, next, body))
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Attempt::Retry {
                kind: RetryKind::Timeout,
                retry_after: None,
                message: format!("no answer within {} ms", timeout.as_millis()),
            },
            Ok(Err(e)) => {
                let kind = if e.is_timeout() {
                    RetryKind::Timeout
                } else {
                    RetryKind::Connect
                };
                // `without_url` keeps the query string (and the key) out of the message.
                let message = self.redact(&format!("{:#}", anyhow::Error::new(e.without_url())));
                Attempt::Retry {
                    kind,
                    retry_after: None,
                    message,
                }
            }
            Ok(Ok((status, retry_after, next, body))) => {
                self.classify(status.as_u16(), retry_after, next, &body)
            }
        }
    }

    fn classify<T: DeserializeOwned>(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        next: Option<String>,
        body: &str,
    ) -> Attempt<T> {
        let error = serde_json::from_str::<ErrorEnvelope>(body)
            .ok()
            .map(|e| e.error);
        let code = error
            .as_ref()
            .and_then(|e| e.code.clone())
            .unwrap_or_default();
        let detail = || {
            let e = error.as_ref();
            let parts: Vec<&str> = [
                e.and_then(|e| e.message.as_deref()),
                e.and_then(|e| e.details.as_deref()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let text = if parts.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status} {code}: {}", parts.join(" - "))
            };
            self.redact(&text.chars().take(300).collect::<String>())
        };
        match status {
            200 => match serde_json::from_str::<Envelope<T>>(body) {
                Ok(env) => {
                    let meta = env.meta.unwrap_or_default();
                    Attempt::Page(Page {
                        total: meta.results.map_or(env.results.len() as u64, |r| r.total),
                        results: env.results,
                        last_updated: meta.last_updated,
                        next,
                    })
                }
                Err(e) => {
                    Attempt::Final(OpenFdaError::Protocol(format!("unreadable results: {e}")))
                }
            },
            404 if code == "NOT_FOUND" => Attempt::Page(Page::empty()),
            400 => Attempt::Final(OpenFdaError::BadQuery(detail())),
            // openFDA answers 500 SERVER_ERROR with parser details for a query it cannot read.
            500 if code == "SERVER_ERROR"
                && error.as_ref().is_some_and(|e| e.details.is_some()) =>
            {
                Attempt::Final(OpenFdaError::BadQuery(detail()))
            }
            429 => Attempt::Retry {
                kind: RetryKind::RateLimited,
                retry_after,
                message: detail(),
            },
            401 | 403 => Attempt::Refused(format!("openFDA refused the request ({})", detail())),
            500..=599 => Attempt::Retry {
                kind: RetryKind::Server,
                retry_after,
                message: detail(),
            },
            _ => Attempt::Final(OpenFdaError::Protocol(detail())),
        }
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

/// `limit` and `skip` within openFDA's bounds, before anything is spent on a call.
fn validate(req: &Request) -> Result<(), OpenFdaError> {
    if req.limit == 0 || req.limit > MAX_LIMIT {
        return Err(OpenFdaError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Paging::Skip(skip) = req.paging {
        if skip > MAX_SKIP {
            return Err(OpenFdaError::InvalidRequest(format!(
                "skip must be at most {MAX_SKIP}; page deeper with search_after"
            )));
        }
    }
    Ok(())
}

/// The `search_after` value of a `Link: <...>; rel="next"` header.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let url = url::Url::parse(target).ok()?;
        let cursor = url
            .query_pairs()
            .find(|(k, _)| k == "search_after")
            .map(|(_, v)| v.into_owned());
        cursor
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openfda::query::{Field, Term};

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
