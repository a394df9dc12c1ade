//! The openFDA client's finer settings, read with the rest of the configuration.

use std::time::Duration;

use super::{invalid, ConfigError, Sources};

/// The openFDA client's finer settings (all under `REGASSIST_OPENFDA_*`).
#[derive(Clone, Debug)]
pub struct OpenFdaTuning {
    /// Pacing: at most this many calls per second across every replica (default 4).
    pub rate_per_second: u32,
    /// How long a search may wait for the outbound budget before answering 503.
    pub budget_wait: Duration,
    /// Redis key prefix of the shared budget (tests give each run its own).
    pub budget_prefix: String,
    /// Retries after the first attempt, for 429, transient 5xx and timeouts.
    pub max_retries: u32,
    /// First backoff; doubles per retry, with full jitter.
    pub backoff: Duration,
    /// Overall deadline of one logical call, retries included.
    pub deadline: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one probe is let through.
    pub breaker_cooldown: Duration,
    /// Records fetched per search before ranking (1..=1000).
    pub fetch_limit: u32,
}

impl OpenFdaTuning {
    pub(super) fn from_sources(s: &Sources) -> Result<Self, ConfigError> {
        let rate_per_second: u32 = s.parse("REGASSIST_OPENFDA_RATE_PER_SECOND", 4)?;
        if rate_per_second == 0 {
            return Err(invalid(
                "REGASSIST_OPENFDA_RATE_PER_SECOND",
                "must be at least 1",
            ));
        }
        let fetch_limit: u32 = s.parse("REGASSIST_OPENFDA_FETCH_LIMIT", 100)?;
        if !(1..=1000).contains(&fetch_limit) {
            return Err(invalid(
                "REGASSIST_OPENFDA_FETCH_LIMIT",
                "must be between 1 and 1000 (openFDA's page limit)",
            ));
        }
        let breaker_threshold: u32 = s.parse("REGASSIST_OPENFDA_BREAKER_THRESHOLD", 5)?;
        if breaker_threshold == 0 {
            return Err(invalid(
                "REGASSIST_OPENFDA_BREAKER_THRESHOLD",
                "must be at least 1",
            ));
        }
        let prefix = s.string("REGASSIST_OPENFDA_BUDGET_PREFIX", "openfda:budget");
        Ok(Self {
            rate_per_second,
            budget_wait: Duration::from_millis(s.parse("REGASSIST_OPENFDA_BUDGET_WAIT_MS", 2_000)?),
            budget_prefix: prefix,
            max_retries: s.parse("REGASSIST_OPENFDA_MAX_RETRIES", 3)?,
            backoff: Duration::from_millis(s.parse("REGASSIST_OPENFDA_BACKOFF_MS", 250)?),
            deadline: Duration::from_millis(s.parse("REGASSIST_OPENFDA_DEADLINE_MS", 20_000)?),
            breaker_threshold,
            breaker_cooldown: Duration::from_millis(
                s.parse("REGASSIST_OPENFDA_BREAKER_COOLDOWN_MS", 30_000)?,
            ),
            fetch_limit,
        })
    }
}
