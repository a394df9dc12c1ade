//! The classification index the assistant suggests product codes from; it lives with predicate
//! search, which ranks within the product codes it suggests (see `search::classifier`).

pub use crate::search::classifier::{load_index, spawn_warm_up, Classifier};
