//! Connections kept warm between single statements, because sqlx tests every connection on its way
//! back to its pool.
//!
//! That test is a round trip (PostgreSQL: a `Sync` and the server's answer; SQLite: a message to
//! the connection's worker thread and back), made after every statement: on two cores, as much
//! work as a short query itself. It exists for connections a cancelled or failed statement may
//! have left with unread replies. A statement that finished with `Ok` left none, so its connection
//! is kept here and handed to the next statement directly; any other goes back through sqlx and
//! its test.
//!
//! The kept connections still count against the pool's size, so whoever waits on the pool itself
//! must not wait behind them: a lease that ends while anyone waits on the pool returns its
//! connection to the pool, one who begins a transaction first hands a kept connection back, and
//! at most `max - 1` are kept, so one always circulates through sqlx for those that acquire
//! there directly (the accounts listener, migrations).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool, Transaction};

/// A sqlx pool with the connections of statements that finished cleanly kept beside it.
pub struct WarmPool<DB: Database> {
    shared: Arc<Shared<DB>>,
}

struct Shared<DB: Database> {
    pool: Pool<DB>,
    state: Mutex<State<DB>>,
    /// How many connections may be kept.
    cap: usize,
    /// A connection kept longer than this is tested before it is used again (it may have been
    /// cut meanwhile); `None`: never (an in-process SQLite connection cannot go away).
    test_if_idle_for: Option<Duration>,
}

struct State<DB: Database> {
    kept: Vec<(PoolConnection<DB>, Instant)>,
    /// Callers waiting on the sqlx pool itself.
    waiting: usize,
}

impl<DB: Database> Clone for WarmPool<DB> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<DB: Database> std::fmt::Debug for WarmPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("pool", &self.shared.pool)
            .field("kept", &self.kept())
            .finish()
    }
}

impl<DB: Database> WarmPool<DB> {
    pub fn new(pool: Pool<DB>, test_if_idle_for: Option<Duration>) -> Self {
        let cap = (pool.options().get_max_connections() as usize).saturating_sub(1);
        let state = Mutex::new(State {
            kept: Vec::with_capacity(cap),
            waiting: 0,
        });
        Self {
            shared: Arc::new(Shared {
                pool,
                state,
                cap,
                test_if_idle_for,
            }),
        }
    }

    /// The sqlx pool, for what takes a connection for long (migrations, listeners).
    pub fn sqlx(&self) -> &Pool<DB> {
        &self.shared.pool
    }

    /// Connections kept now.
    pub fn kept(&self) -> usize {
        self.state().kept.len()
    }

    /// A connection for one statement: the most recently kept one, else one from the pool.
    pub async fn acquire(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        loop {
            let popped = {
                let mut state = self.state();
                let popped = state.kept.pop();
                if popped.is_none() {
                    state.waiting += 1;
                }
                popped
            };
            let Some((mut conn, since)) = popped else {
                let _waiting = Waiting(&self.shared);
                let conn = self.shared.pool.acquire().await?;
                return Ok(Lease {
                    shared: &self.shared,
                    conn: Some(conn),
                    clean: false,
                });
            };
            let stale = self
                .shared
                .test_if_idle_for
                .is_some_and(|t| since.elapsed() > t);
            if stale && conn.ping().await.is_err() {
                conn.close_on_drop();
                continue;
            }
            return Ok(Lease {
                shared: &self.shared,
                conn: Some(conn),
                clean: false,
            });
        }
    }

    /// A transaction from the pool. A kept connection goes back to the pool first when the pool
    /// has none idle, so the transaction does not wait behind connections nobody is using.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>, sqlx::Error> {
        let spare = {
            let mut state = self.state();
            state.waiting += 1;
            if self.shared.pool.num_idle() == 0 {
                state.kept.pop()
            } else {
                None
            }
        };
        let _waiting = Waiting(&self.shared);
        drop(spare);
        self.shared.pool.begin().await
    }

    /// Gives every kept connection back and closes the pool.
    pub async fn close(&self) {
        let kept = std::mem::take(&mut self.state().kept);
        drop(kept);
        self.shared.pool.close().await;
    }

    fn state(&self) -> MutexGuard<'_, State<DB>> {
        self.shared.state()
    }
}

impl<DB: Database> Shared<DB> {
    fn state(&self) -> MutexGuard<'_, State<DB>> {
        // A panic while the lock was held left the list consistent (each change is one push or
        // pop), so a poisoned lock is used as it is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts a caller waiting on the sqlx pool until it has its connection or gives up.
struct Waiting<'a, DB: Database>(&'a Shared<DB>);

impl<DB: Database> Drop for Waiting<'_, DB> {
    fn drop(&mut self) {
        self.0.state().waiting -= 1;
    }
}

/// One statement's connection. Kept for the next statement when [`Lease::finish`] saw `Ok`;
/// otherwise (an error, a cancelled future) it goes back through sqlx's test.
pub struct Lease<'a, DB: Database> {
    shared: &'a Shared<DB>,
    conn: Option<PoolConnection<DB>>,
    clean: bool,
}

impl<DB: Database> Lease<'_, DB> {
    pub fn conn(&mut self) -> &mut DB::Connection {
        // `conn` is only taken in `drop`.
        self.conn
            .as_deref_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Records how the statement ended: only a connection whose statement returned `Ok` has
    /// read every reply and may skip the test.
    pub fn finish<T>(mut self, out: &Result<T, sqlx::Error>) {
        self.clean = out.is_ok();
    }
}

impl<DB: Database> Drop for Lease<'_, DB> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.clean || self.shared.pool.is_closed() {
            return;
        }
        let mut state = self.shared.state();
        if state.waiting == 0 && state.kept.len() < self.shared.cap {
            state.kept.push((conn, Instant::now()));
        }
        // Otherwise `conn` drops here, after the lock: back to the pool, for whoever waits there.
    }
}
