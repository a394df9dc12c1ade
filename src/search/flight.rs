//! Single flight: concurrent identical cache misses share one upstream fetch.
//!
//! The fetch runs in its own task, so it completes (and fills the cache) even if the request
//! that started it goes away; the task removes its own entry when done, after the cache is set,
//! so a latecomer either joins the flight or finds the cache filled.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

use super::{Prepared, SearchError};

pub type FlightResult = Result<Arc<Prepared>, SearchError>;
type Flight = Shared<BoxFuture<'static, FlightResult>>;

#[derive(Clone, Default)]
pub struct Flights {
    inner: Arc<Mutex<HashMap<String, (u64, Flight)>>>,
    next_id: Arc<AtomicU64>,
}

impl Flights {
    /// Runs `work` for `key`, or joins the run already under way. The flag says whether this
    /// call joined someone else's run.
    pub async fn run<F>(&self, key: &str, work: F) -> (FlightResult, bool)
    where
        F: Future<Output = FlightResult> + Send + 'static,
    {
        let (flight, joined) = {
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                Some((_, flight)) => (flight.clone(), true),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let inner = self.inner.clone();
                    let owned_key = key.to_string();
                    // Holding the map lock while spawning means the task cannot remove its
                    // entry before the entry exists.
                    let task = tokio::spawn(async move {
                        let result = work.await;
                        let mut map = inner.lock().unwrap_or_else(|p| p.into_inner());
                        if map.get(&owned_key).is_some_and(|(i, _)| *i == id) {
                            map.remove(&owned_key);
                        }
                        result
                    });
                    let flight = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(SearchError::Internal(format!("search task failed: {e}")))
                        })
                    }
                    .boxed()
                    .shared();
                    map.insert(key.to_string(), (id, flight.clone()));
                    (flight, false)
                }
            }
        };
        (flight.await, joined)
    }

    /// Flights under way (for tests and status).
    pub fn in_flight(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_run() {
        let flights = Flights::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let (registered_tx, mut registered) = tokio::sync::mpsc::unbounded_channel();
        let mut handles = Vec::new();
        for _ in 0..50 {
            let flights = flights.clone();
            let calls = calls.clone();
            let mut gate = gate.clone();
            let registered_tx = registered_tx.clone();
            handles.push(tokio::spawn(async move {
                let run = flights.run("k", async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    Ok(Arc::new(Prepared::new(crate::search::SourcePage::empty(
                        "openfda",
                    ))))
                });
                let mut run = std::pin::pin!(run);
                // The first poll starts or joins the flight; only then report in.
                let first = futures::poll!(run.as_mut());
                assert!(first.is_pending());
                registered_tx.send(()).unwrap();
                run.await
            }));
        }
        for _ in 0..50 {
            registered.recv().await.unwrap();
        }
        release.send(true).unwrap();
        let mut joined = 0;
        for h in handles {
            let (result, j) = h.await.unwrap();
            assert!(result.is_ok());
            joined += usize::from(j);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(joined, 49);
        assert_eq!(flights.in_flight(), 0);
    }
}
