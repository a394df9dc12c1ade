//! The bundled 510(k) files: imported in the background on a first start whose mirror is empty,
//! so an embedded install searches predicates without any network.

use std::path::{Path, PathBuf};

use crate::db::mirror as store;
use crate::db::Db;

/// The bundled files in `dir`, in name order (FDA text files and CSV).
fn bundled_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "csv")))
        .collect();
    files.sort();
    files
}

/// Imports the bundled files when the mirror holds no 510(k) records. Runs in the background:
/// the service answers meanwhile (predicate searches use openFDA until the mirror has data).
pub fn spawn_seed(db: Db, dir: PathBuf) {
    tokio::spawn(async move {
        match store::has_510k(&db).await {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether the mirror holds 510(k) records; not seeding");
                return;
            }
        }
        let files = bundled_files(&dir);
        if files.is_empty() {
            tracing::info!(dir = %dir.display(), "no bundled 510(k) files to load");
            return;
        }
        let started = std::time::Instant::now();
        for file in files {
            match super::import_file(&db, &file, false).await {
                Ok(summary) => tracing::info!(%summary, "bundled 510(k) file loaded"),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %format!("{e:#}"), "bundled 510(k) file not loaded")
                }
            }
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "bundled 510(k) data loaded"
        );
    });
}
