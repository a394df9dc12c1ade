//! What searches know of the mirror: whether it holds records (`auto` mode prefers it then) and
//! its import generation, which scopes cached pages so that an import, by any process, retires
//! the pages read before it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::db::mirror as store;
use crate::db::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorView {
    pub holds_data: bool,
    /// The newest import's id (0 before any); -1 when the database could not say.
    pub generation: i64,
}

/// The last look at the mirror, shared by a process's searches.
#[derive(Clone, Default)]
pub struct MirrorSeen(Arc<Mutex<Option<(Instant, MirrorView)>>>);

impl MirrorSeen {
    /// The mirror as last seen, looking again when the last look is older than `recheck`.
    /// Searches racing past an expired look each look once; the answers are the same.
    pub async fn view(&self, db: &Db, recheck: Duration) -> MirrorView {
        let last = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, view)) = last {
            if at.elapsed() < recheck {
                return view;
            }
        }
        match look(db).await {
            Ok(view) => {
                *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((Instant::now(), view));
                view
            }
            Err(e) => {
                // Not remembered: the next search looks again.
                tracing::warn!(error = %e, "cannot look at the mirror; treating it as empty");
                MirrorView {
                    holds_data: false,
                    generation: -1,
                }
            }
        }
    }
}

async fn look(db: &Db) -> Result<MirrorView, sqlx::Error> {
    Ok(MirrorView {
        holds_data: store::has_510k(db).await?,
        generation: store::import_generation(db).await?,
    })
}
