//! Stand-in for the local 510(k) mirror until `db::mirror` (branch `mirror`) is merged: it holds
//! no data, so `auto` mode uses openFDA. At merge, `mirror_source.rs` replaces this file (see the
//! seam in `search/mod.rs`); the signatures are the same.

use std::collections::BTreeMap;

use super::{SearchError, SourcePage, SourceQuery};
use crate::db::Db;
use crate::domain::candidate::{Candidate, ProductCodeInfo};

pub async fn holds_data(_db: &Db) -> bool {
    false
}

pub async fn search(_db: &Db, _q: &SourceQuery) -> Result<SourcePage, SearchError> {
    Err(SearchError::MirrorUnavailable)
}

pub async fn find(_db: &Db, _k_number: &str) -> Result<Option<Candidate>, SearchError> {
    Err(SearchError::MirrorUnavailable)
}

pub async fn product_code(_db: &Db, _code: &str) -> Option<ProductCodeInfo> {
    None
}

#[allow(dead_code)] // same surface as mirror_source.rs
pub async fn product_codes(_db: &Db, _codes: &[&str]) -> BTreeMap<String, ProductCodeInfo> {
    BTreeMap::new()
}
