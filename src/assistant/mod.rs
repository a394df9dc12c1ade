//! The assistant's use cases: device classification, predicate search with the candidates stored,
//! the substantial-equivalence comparison of a stored predicate, and the agent route's tasks.
//! Each change is recorded as an assistant interaction with one audit row.

mod agent;
pub mod classifier;
mod classify;
mod predicates;
pub mod replay;
mod request;

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::db::Db;
use crate::search::PredicateSearch;

pub use classifier::Classifier;
pub use classify::project_text;
pub use predicates::{subject_text, InteractionContext, StoredSearch};
pub use replay::{Replay, RANKING_VERSION};
pub use request::{ExecuteRequest, ExecuteResponse, TaskParameters, TaskType};

/// The handles the assistant's tasks work with. Cheap to clone.
#[derive(Clone)]
pub struct Assistant {
    db: Db,
    audit: AuditLog,
    search: PredicateSearch,
    classifier: Arc<Classifier>,
}

impl Assistant {
    pub fn new(audit: AuditLog, search: PredicateSearch) -> Self {
        Assistant {
            db: audit.db().clone(),
            audit,
            classifier: search.classifier().clone(),
            search,
        }
    }

    /// The predicate search the assistant ranks with.
    pub fn search(&self) -> &PredicateSearch {
        &self.search
    }

    /// The classification index (built on first use, rebuilt after imports).
    pub fn classifier(&self) -> &Arc<Classifier> {
        &self.classifier
    }

    /// Builds the classification index in the background, so the first suggestion after a start
    /// answers at once.
    pub fn spawn_warm_up(&self) {
        classifier::spawn_warm_up(self.classifier.clone(), self.db.clone());
    }
}
