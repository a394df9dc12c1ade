//! The classification index, built lazily from the mirror and rebuilt when an
//! import has changed it (any process's import: the newest `fda_imports` id is the version).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, RwLock};

use crate::db::mirror as store;
use crate::db::Db;
use crate::domain::classify::{ClassIndex, CodeInfo, Params};

/// A shared, lazily built [`ClassIndex`].
#[derive(Default)]
pub struct Classifier {
    current: RwLock<Option<(i64, Arc<ClassIndex>)>>,
    building: Mutex<()>,
}

impl Classifier {
    /// The index for the mirror's current data, building it on first use or after an import.
    pub async fn index(&self, db: &Db) -> anyhow::Result<Arc<ClassIndex>> {
        let generation = store::import_generation(db).await?;
        if let Some((g, index)) = self.current.read().await.as_ref() {
            if *g == generation {
                return Ok(index.clone());
            }
        }
        // One build at a time; whoever waited finds the fresh index.
        let _guard = self.building.lock().await;
        if let Some((g, index)) = self.current.read().await.as_ref() {
            if *g == generation {
                return Ok(index.clone());
            }
        }
        let index = Arc::new(load_index(db, &HashSet::new(), Params::default()).await?);
        *self.current.write().await = Some((generation, index.clone()));
        Ok(index)
    }
}

/// Builds an index from the mirror, leaving out the 510(k)s in `exclude` (the evaluation
/// leaves out the devices it asks about).
pub async fn load_index(
    db: &Db,
    exclude: &HashSet<String>,
    params: Params,
) -> anyhow::Result<ClassIndex> {
    let started = Instant::now();
    let codes: Vec<CodeInfo> = store::all_product_codes(db)
        .await?
        .into_iter()
        .map(|c| CodeInfo {
            product_code: c.product_code,
            device_name: c.device_name,
            device_class: c.device_class,
            regulation_number: c.regulation_number,
            submission_type_id: c.submission_type_id,
            definition: c.definition,
        })
        .collect();
    let mut trade = Vec::new();
    store::trade_names(db, |t| {
        if !exclude.contains(&t.k_number) {
            trade.push(t);
        }
    })
    .await?;
    let index =
        tokio::task::spawn_blocking(move || ClassIndex::build(codes, trade, params)).await?;
    tracing::info!(
        product_codes = index.product_codes(),
        trade_names = index.trade_names(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "built the classification index"
    );
    Ok(index)
}

/// Builds the index in the background so the first suggestion after a start answers at once.
pub fn spawn_warm_up(classifier: Arc<Classifier>, db: Db) {
    tokio::spawn(async move {
        if let Err(e) = classifier.index(&db).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not build the classification index"
            );
        }
    });
}
