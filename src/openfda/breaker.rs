//! The circuit breaker: closed, open after N consecutive failures, half-open after a cool-down
//! with exactly one probe in flight. A pure state machine; the caller passes the time.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

/// What [`Breaker::allow`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (closed).
    Call,
    /// Go ahead as the one half-open probe; report its outcome.
    Probe,
    /// Refused; try again after this long.
    Refused(Duration),
}

#[derive(Debug)]
pub struct Breaker {
    state: State,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: State::Closed { failures: 0 },
            threshold: threshold.max(1),
            cooldown,
        }
    }

    /// The state as seen at `now` (an expired open state reads as half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if now < until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn allow(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Call,
            State::Open { until } if now < until => Admission::Refused(until - now),
            State::Open { .. }
            | State::HalfOpen {
                probe_in_flight: false,
            } => {
                self.state = State::HalfOpen {
                    probe_in_flight: true,
                };
                Admission::Probe
            }
            // Others wait for the probe's verdict; a second is a fair guess at its duration.
            State::HalfOpen {
                probe_in_flight: true,
            } => Admission::Refused(Duration::from_secs(1)),
        }
    }

    /// Upstream answered (any answer that shows it is working, including 404 and 400).
    pub fn on_success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// Upstream failed (5xx, timeout, connection error).
    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open {
                until: now + self.cooldown,
            },
        };
    }

    /// The call ended without telling anything about upstream's health (budget refusal, 429):
    /// a probe slot is handed back so the next caller may probe.
    pub fn on_neutral(&mut self, was_probe: bool) {
        if was_probe {
            if let State::HalfOpen { probe_in_flight } = &mut self.state {
                *probe_in_flight = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers_through_one_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert_eq!(b.allow(t0), Admission::Call);
            b.on_failure(t0);
        }
        assert_eq!(b.state(t0), CircuitState::Closed);
        b.on_failure(t0);
        assert_eq!(b.state(t0), CircuitState::Open);
        assert!(
            matches!(b.allow(t0 + Duration::from_secs(4)), Admission::Refused(d) if d == Duration::from_secs(6))
        );

        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        assert_eq!(b.allow(later), Admission::Probe);
        assert!(
            matches!(b.allow(later), Admission::Refused(_)),
            "one probe at a time"
        );
        b.on_failure(later);
        assert_eq!(b.state(later), CircuitState::Open, "a failed probe reopens");

        let again = later + Duration::from_secs(10);
        assert_eq!(b.allow(again), Admission::Probe);
        b.on_success();
        assert_eq!(b.state(again), CircuitState::Closed);
        assert_eq!(b.allow(again), Admission::Call);
    }

    #[test]
    fn a_success_resets_the_count_and_neutral_returns_the_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(1));
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.state(t0), CircuitState::Closed);
        b.on_failure(t0);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(b.allow(later), Admission::Probe);
        b.on_neutral(true);
        assert_eq!(b.allow(later), Admission::Probe);
    }
}
