//! What the service last saw of openFDA, kept in memory so `/health` can report it without a
//! call upstream.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Default)]
pub struct Health {
    inner: Mutex<Seen>,
}

#[derive(Default, Clone)]
struct Seen {
    last_success: Option<DateTime<Utc>>,
    last_error: Option<(DateTime<Utc>, String)>,
}

/// A copy of what was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// True when the newest event is a failure.
    pub fn failing(&self) -> bool {
        match (self.last_error_at, self.last_success) {
            (Some(err), Some(ok)) => err > ok,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

impl Health {
    fn with<R>(&self, f: impl FnOnce(&mut Seen) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn success(&self) {
        self.with(|s| s.last_success = Some(Utc::now()));
    }

    /// Records a failure; `message` must already be free of secrets.
    pub fn error(&self, message: &str) {
        let message: String = message.chars().take(300).collect();
        self.with(|s| s.last_error = Some((Utc::now(), message)));
    }

    pub fn snapshot(&self) -> Snapshot {
        let seen = self.with(|s| s.clone());
        Snapshot {
            last_success: seen.last_success,
            last_error_at: seen.last_error.as_ref().map(|(at, _)| *at),
            last_error: seen.last_error.map(|(_, m)| m),
        }
    }
}
