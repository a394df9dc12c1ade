//! The SQLite text search's two plans give the same page: without filters only the matches at or
//! above the page's last score are joined to their records; with a filter every match is. Ties
//! at the page's edge (many 510(k)s share a device name) are where they could part.

use chrono::NaiveDate;
use regassist::db::mirror::{search_510k, MirrorQuery};

use crate::common::{fresh_db, Backend};

#[tokio::test]
async fn the_fast_plan_gives_the_filtered_plans_page() {
    let test_db = fresh_db(Backend::Sqlite).await.unwrap();
    let db = &test_db.db;
    let csv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-fda/510k/510k_2015-2026_sample.csv");
    regassist::mirror::import_file(db, &csv, false)
        .await
        .unwrap();
    let mut compared = 0;
    for text in [
        "mask",
        "surgical face mask",
        "catheter",
        "infusion pump",
        "glove nitrile",
        "zzqx",
    ] {
        for limit in [1, 5, 37, 100, 1000] {
            let plain = MirrorQuery {
                text: Some(text.into()),
                limit,
                ..Default::default()
            };
            // A filter every record passes: the other plan, the same rows.
            let filtered = MirrorQuery {
                decision_date_from: NaiveDate::from_ymd_opt(1900, 1, 1),
                ..plain.clone()
            };
            let (fast, fast_total) = search_510k(db, &plain).await.unwrap();
            let (slow, slow_total) = search_510k(db, &filtered).await.unwrap();
            let keys = |rows: &[regassist::db::mirror::Fda510k]| {
                rows.iter().map(|r| r.k_number.clone()).collect::<Vec<_>>()
            };
            assert_eq!(keys(&fast), keys(&slow), "{text:?} limit {limit}");
            assert_eq!(fast_total, slow_total, "{text:?} limit {limit}");
            compared += usize::from(!fast.is_empty());
        }
    }
    assert!(compared >= 20, "the queries must find records ({compared})");
}
