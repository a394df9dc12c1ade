//! Predicate search answered from the local mirror (OPENFDA_MODE=mirror): the same result shape as
//! openFDA, classification facts joined from the product-code table, no network.

use serde_json::Value;

use crate::both_backends;
use crate::common::*;

const CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data-fda/510k/510k_2015-2026_sample.csv"
);

both_backends!(
    searches_the_mirror_offline,
    &[
        ("OPENFDA_MODE", "mirror"),
        ("OPENFDA_BASE_URL", "http://127.0.0.1:1")
    ],
    |app: TestApp| async move {
        regassist::mirror::ensure_classification(&app.state.db)
            .await
            .unwrap();
        regassist::mirror::import_file(&app.state.db, std::path::Path::new(CSV), false)
            .await
            .unwrap();
        let token = app.jwt_for("searcher");
        let res = app
            .get("/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=5")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["meta"]["source"], "mirror", "{body}");
        let results = body["results"].as_array().unwrap();
        assert!(!results.is_empty() && results.len() <= 5, "{body}");
        for r in results {
            assert_eq!(r["product_code"], "FRN");
            assert_eq!(
                r["device_class"], "2",
                "class joined from the classification table: {r}"
            );
            assert_eq!(r["regulation_number"], "880.5725", "{r}");
            let score = r["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score));
        }
        let scores: Vec<f64> = results
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "best first: {scores:?}"
        );
        // The same query again is served from the cache.
        let again: Value = app
            .get("/api/predicates/search?q=INFUSION%20%20pump&product_code=FRN&limit=5")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["meta"]["cached"], true);
        assert_eq!(again["results"], body["results"]);
    }
);

const OLDER_PMN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data-fda/510k/pmn7680_2026-08.txt"
);

both_backends!(
    an_import_retires_cached_mirror_searches,
    &[
        ("OPENFDA_MODE", "mirror"),
        ("OPENFDA_BASE_URL", "http://127.0.0.1:1"),
        ("REGASSIST_MIRROR_RECHECK_SECS", "0")
    ],
    |app: TestApp| async move {
        let db = &app.state.db;
        regassist::mirror::ensure_classification(db).await.unwrap();
        regassist::mirror::import_file(db, std::path::Path::new(CSV), false)
            .await
            .unwrap();
        let token = app.jwt_for("searcher");
        let search = || async {
            let res = app
                .get("/api/predicates/search?product_code=FRN&limit=100")
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        };
        let before = search().await;
        let cached = search().await;
        assert_eq!(cached["meta"]["cached"], true, "{cached}");
        assert_eq!(
            cached["meta"]["source_total"],
            before["meta"]["source_total"]
        );

        // 1976-1980 decisions: FRN devices the 2015-2026 sample does not hold.
        regassist::mirror::import_file(db, std::path::Path::new(OLDER_PMN), false)
            .await
            .unwrap();
        let after = search().await;
        assert_eq!(
            after["meta"]["cached"], false,
            "the import retired the cached page"
        );
        let (old_total, new_total) = (
            before["meta"]["source_total"].as_i64().unwrap(),
            after["meta"]["source_total"].as_i64().unwrap(),
        );
        assert!(new_total > old_total, "{old_total} -> {new_total}");
        assert_eq!(
            search().await["meta"]["cached"],
            true,
            "the new page is cached in turn"
        );
    }
);

both_backends!(
    a_text_search_ranks_within_the_suggested_product_codes,
    &[
        ("OPENFDA_MODE", "mirror"),
        ("OPENFDA_BASE_URL", "http://127.0.0.1:1")
    ],
    |app: TestApp| async move {
        regassist::mirror::ensure_classification(&app.state.db)
            .await
            .unwrap();
        for file in [CSV, OLDER_PMN, MIDDLE_PMN] {
            regassist::mirror::import_file(&app.state.db, std::path::Path::new(file), false)
                .await
                .unwrap();
        }
        let token = app.jwt_for("searcher");
        let body: Value = app
            .get("/api/predicates/search?q=blood%20glucose%20meter&limit=10")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let suggested: Vec<&str> = body["meta"]["suggested_product_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(!suggested.is_empty(), "{body}");
        let results = body["results"].as_array().unwrap();
        let names: Vec<&str> = results
            .iter()
            .map(|r| r["device_name"].as_str().unwrap())
            .collect();
        // The one-shared-word meters (K792155 "CO 2 METER", K840487 "T-METER") never lead.
        assert!(names[0].to_lowercase().contains("glucose"), "{names:?}");
        assert!(
            !names.contains(&"CO 2 METER") && !names.contains(&"T-METER"),
            "{names:?}"
        );
        let first = &results[0];
        let code = first["product_code"].as_str().unwrap();
        assert!(suggested.contains(&code), "{code} not in {suggested:?}");
        let reasons = first["reasons"].to_string();
        assert!(reasons.contains("classification's suggestion"), "{reasons}");
        // With a product code of the caller's own, nothing is suggested.
        let coded: Value = app
            .get("/api/predicates/search?q=blood%20glucose%20meter&product_code=CGA&limit=3")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            coded["meta"]["suggested_product_codes"],
            serde_json::json!([])
        );
    }
);

const MIDDLE_PMN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data-fda/510k/pmn8185_2026-08.txt"
);
