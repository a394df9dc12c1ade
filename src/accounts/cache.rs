//! A per-process cache of whom a credential signs in, so an authenticated request costs no
//! account lookup, emptied at once on every replica by any change to an account or a key.
//!
//! Why a stale entry cannot outlive a change:
//! - an entry is stored only if no invalidation happened since its database read began (the
//!   generation counter), and only while this process is sure to hear of every change;
//! - this process's own changes (admin updates, key revocations, profile syncs) empty it after
//!   their commit;
//! - on PostgreSQL, every replica's changes arrive as a NOTIFY on [`users::ACCOUNT_CHANNEL`] from
//!   triggers on `users` and `api_keys`; while the listener is down the cache is bypassed, and
//!   it is emptied when the listener is back (notifications sent in the gap are lost);
//! - embedded SQLite has one server process, and the CLI commands that write accounts only add
//!   users and keys, which no entry can contradict (a miss is never cached).
//!
//! Entries also expire after [`ENTRY_TTL`], a bound on any staleness not thought of here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::users::{self, ApiKey, User};
use crate::db::PgDb;

/// How long an entry may serve before it is read again whatever happened.
pub const ENTRY_TTL: Duration = Duration::from_secs(60);
/// At most this many entries; a full cache starts over, so memory stays bounded.
const MAX_ENTRIES: usize = 10_000;
/// The longest wait between two attempts to listen again after the connection was lost.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What a credential is looked up by: a JWT's subject or an API key's hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialId {
    Subject(String),
    KeyHash(String),
}

/// The account a credential signs in, and its key row for an API key.
#[derive(Debug, Clone)]
pub struct Cached {
    pub user: User,
    pub key: Option<ApiKey>,
}

struct Entry {
    value: Arc<Cached>,
    stored: Instant,
}

pub struct SignInCache {
    entries: RwLock<HashMap<CredentialId, Entry>>,
    generation: AtomicU64,
    /// Whether every change to accounts reaches this process (see the module's notes).
    listening: AtomicBool,
}

/// A reading of the generation, taken before the database read whose result may be stored.
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

impl SignInCache {
    /// A cache that serves at once (one process sees every change: embedded SQLite).
    pub fn in_process() -> Self {
        Self::new(true)
    }

    /// A cache that serves only once [`SignInCache::spawn_listener`] is listening (PostgreSQL).
    pub fn until_listening() -> Self {
        Self::new(false)
    }

    fn new(listening: bool) -> Self {
        SignInCache {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(listening),
        }
    }

    /// Whether entries are served (on PostgreSQL: whether the listener is connected).
    pub fn is_serving(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The entry for `id`, if one is stored, fresh, and the cache is serving.
    pub fn get(&self, id: &CredentialId) -> Option<Arc<Cached>> {
        if !self.listening.load(Ordering::Acquire) {
            metrics::counter!("sign_in_cache_total", "result" => "bypass").increment(1);
            return None;
        }
        let found = self
            .entries
            .read()
            .ok()?
            .get(id)
            .filter(|e| e.stored.elapsed() < ENTRY_TTL)
            .map(|e| e.value.clone());
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("sign_in_cache_total", "result" => result).increment(1);
        found
    }

    /// Read before the database lookup whose result goes to [`SignInCache::store`].
    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Acquire))
    }

    /// Stores what was read, unless an invalidation came since `read_at` (the read may predate
    /// the change) or the cache is not serving.
    pub fn store(&self, read_at: Generation, id: CredentialId, value: Cached) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        // Checked under the lock: `invalidate` moves the generation before it takes the lock
        // to clear, so an entry stored here is either refused or cleared after.
        if self.generation.load(Ordering::Acquire) != read_at.0
            || !self.listening.load(Ordering::Acquire)
        {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let value = Arc::new(value);
        entries.insert(
            id,
            Entry {
                value,
                stored: Instant::now(),
            },
        );
    }

    /// Records a key's new usage stamp in its entry, so the next request does not write again.
    pub fn note_key_used(&self, id: &CredentialId, at: DateTime<Utc>) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if let Some(entry) = entries.get_mut(id) {
            let mut value = (*entry.value).clone();
            if let Some(key) = value.key.as_mut() {
                key.last_used_at = Some(at);
            }
            entry.value = Arc::new(value);
        }
    }

    /// Forgets every entry, and every read in flight (see [`SignInCache::store`]).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    fn set_listening(&self, listening: bool) {
        // Emptied on both edges: going down, nothing may serve; coming back, changes made while
        // no one listened were never announced.
        self.listening.store(listening, Ordering::Release);
        self.invalidate();
    }

    /// Listens for account changes on PostgreSQL for as long as the process runs, reconnecting
    /// with a growing pause; the cache serves only while the listener is connected.
    pub fn spawn_listener(self: &Arc<Self>, pg: PgDb) {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                match users::listen_for_account_changes(&pg).await {
                    Ok(mut listener) => {
                        cache.set_listening(true);
                        pause = Duration::from_millis(100);
                        // `try_recv` answers `None` when the connection is lost, instead of
                        // reconnecting silently and losing what was sent in between.
                        while let Ok(Some(_)) = listener.try_recv().await {
                            cache.invalidate();
                        }
                        cache.set_listening(false);
                        tracing::warn!(
                            "lost the account-change listener; sign-in cache off until it is back"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for account changes; sign-in cache off");
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> Cached {
        Cached {
            user: User {
                id,
                subject: format!("s{id}"),
                email: format!("u{id}@example.com"),
                name: String::new(),
                role: "user".into(),
                disabled: false,
                created_at: Utc::now(),
            },
            key: None,
        }
    }

    fn subject(s: &str) -> CredentialId {
        CredentialId::Subject(s.into())
    }

    #[test]
    fn a_read_that_began_before_an_invalidation_is_not_stored() {
        let cache = SignInCache::in_process();
        let before = cache.generation();
        cache.invalidate();
        cache.store(before, subject("a"), user(1));
        assert!(cache.get(&subject("a")).is_none());

        let now = cache.generation();
        cache.store(now, subject("a"), user(1));
        assert_eq!(cache.get(&subject("a")).map(|c| c.user.id), Some(1));
        cache.invalidate();
        assert!(cache.get(&subject("a")).is_none());
    }

    #[test]
    fn nothing_is_served_or_stored_while_not_listening() {
        let cache = SignInCache::until_listening();
        cache.store(cache.generation(), subject("a"), user(1));
        assert!(cache.get(&subject("a")).is_none());

        cache.set_listening(true);
        cache.store(cache.generation(), subject("a"), user(1));
        assert!(cache.get(&subject("a")).is_some());
        cache.set_listening(false);
        assert!(cache.get(&subject("a")).is_none());
        cache.set_listening(true);
        assert!(
            cache.get(&subject("a")).is_none(),
            "emptied when listening again"
        );
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = SignInCache::in_process();
        for i in 0..=MAX_ENTRIES as i64 {
            cache.store(cache.generation(), subject(&i.to_string()), user(i));
        }
        let len = cache.entries.read().map(|e| e.len()).unwrap_or(0);
        assert_eq!(len, 1);
    }
}
