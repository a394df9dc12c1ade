//! Classification routes (product codes, suggestions, a project's classification) and the
//! 510(k) lookup, served from the local mirror.

use regassist::mirror::{ensure_classification, import_file};
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::*;
use crate::mirror::data;

/// The shipped classification table plus the modern 510(k) sample.
async fn load(app: &TestApp) {
    let loaded = ensure_classification(&app.state.db).await.unwrap().unwrap();
    assert_eq!(
        (loaded.rows_read, loaded.inserted, loaded.rejected),
        (7039, 7039, 0)
    );
    assert!(
        ensure_classification(&app.state.db)
            .await
            .unwrap()
            .is_none(),
        "loads once"
    );
    import_file(
        &app.state.db,
        &data("510k/510k_2015-2026_sample.csv"),
        false,
    )
    .await
    .unwrap();
}

both_backends!(
    product_codes_and_510k_records,
    &[],
    |app: TestApp| async move {
        load(&app).await;
        let token = app.jwt_for("reader");
        let res = app
            .get("/api/classification/product-codes/FRN")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let code: Value = res.json().await.unwrap();
        assert_eq!(code["device_name"], "Pump, Infusion");
        assert_eq!(code["device_class"], "2");
        assert_eq!(code["regulation_number"], "880.5725");
        assert_eq!(code["submission_type_id"], "1");
        for field in [
            "medical_specialty",
            "review_panel",
            "definition",
            "implant_flag",
            "life_sustain_support_flag",
            "gmp_exempt_flag",
            "third_party_flag",
        ] {
            assert!(code.get(field).is_some(), "{field}");
        }
        for (path, status) in [
            ("/api/classification/product-codes/frn", 422),
            ("/api/classification/product-codes/FRNX", 422),
            ("/api/classification/product-codes/F1N", 422),
            ("/api/classification/product-codes/ZZZ", 404),
            ("/api/devices/510k/K20147", 422),
            ("/api/devices/510k/k201470", 422),
            ("/api/devices/510k/K999999", 404),
        ] {
            let res = app.get(path).bearer_auth(&token).send().await.unwrap();
            assert_eq!(res.status(), status, "{path}");
            let body: Value = res.json().await.unwrap();
            assert!(
                body["request_id"].is_string() && body["message"].is_string(),
                "{path}: {body}"
            );
        }
        let res = app
            .get("/api/classification/product-codes/FRN")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        let res = app
            .get("/api/devices/510k/K201470")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let k: Value = res.json().await.unwrap();
        assert_eq!(k["k_number"], "K201470");
        assert_eq!(k["device_name"], "Disposable Medical Face Mask");
        assert_eq!(k["product_code"], "FXX");
        assert_eq!(k["decision_date"], "2020-09-08");
        assert_eq!(k["decision_code"], "SESE");
        assert_eq!(k["decision_description"], "Substantially Equivalent");
    }
);

both_backends!(
    suggestions_rank_real_device_names,
    &[],
    |app: TestApp| async move {
        load(&app).await;
        let token = app.jwt_for("reader");
        // Device names from FDA's 2026 "last month" file, which is not in the mirror.
        for (name, code) in [
            ("Microlife Wrist Blood Pressure Monitor", "DXN"),
            ("Manual Wheelchair", "IOR"),
            ("Merit MAK Nitinol/Gold-Tungsten Guide Wire", "DQX"),
            ("Transcend Bulk Fill Flowable Composite", "EBF"),
            ("Ultra-Fine SAFETY Insulin Syringe", "FMF"),
        ] {
            let res = app
                .get("/api/classification/suggest")
                .query(&[("q", name), ("limit", "5")])
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{name}");
            let body: Value = res.json().await.unwrap();
            let results = body["results"].as_array().unwrap();
            assert!(results.len() <= 5);
            let codes: Vec<&str> = results
                .iter()
                .map(|r| r["product_code"].as_str().unwrap())
                .collect();
            assert!(
                codes.contains(&code),
                "{name}: expected {code} in {codes:?}"
            );
            let best = &results[0];
            let confidence = best["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&confidence), "{confidence}");
            // "No confident suggestion" is said, per result and for the answer, by one rule.
            for r in results {
                let sure = r["confidence"].as_f64().unwrap() >= 0.5;
                assert_eq!(r["confident"], sure, "{r}");
            }
            assert_eq!(body["confident"], best["confident"], "{body}");
            assert!(["510k", "De Novo", "PMA", "Exempt"]
                .contains(&best["regulatory_pathway"].as_str().unwrap()));
            assert!(!best["reasons"].as_array().unwrap().is_empty());
            assert!(best["cfr_sections"].is_array());
        }
        let res = app
            .get("/api/classification/suggest")
            .query(&[("q", "infusion pump"), ("limit", "1")])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["results"][0]["product_code"], "FRN");
        assert_eq!(body["results"][0]["regulatory_pathway"], "510k");
        assert_eq!(
            body["results"][0]["cfr_sections"],
            json!(["21 CFR 880.5725"])
        );

        let long = "x".repeat(2001);
        for (query, field) in [
            (vec![], "q"),
            (vec![("q", "   ")], "q"),
            (vec![("q", long.as_str())], "q"),
            (vec![("q", "pump"), ("limit", "0")], "limit"),
            (vec![("q", "pump"), ("limit", "21")], "limit"),
        ] {
            let res = app
                .get("/api/classification/suggest")
                .query(&query)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{query:?}");
            let body: Value = res.json().await.unwrap();
            assert!(body["fields"][field].is_array(), "{body}");
        }
        let res = app
            .get("/api/classification/suggest")
            .query(&[("q", "the of and")])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["results"], json!([]));
    }
);

both_backends!(
    a_project_is_classified_and_recorded,
    &[],
    |app: TestApp| async move {
        load(&app).await;
        let owner = app.jwt_for("owner");
        let other = app.jwt_for("other");
        let project = app.create_project(&owner, json!({
        "name": "Ambulatory infusion pump",
        "description": "A volumetric infusion pump delivering fluids and drugs intravenously",
        "intended_use": "Intravenous infusion of medications and fluids in hospitals",
        "device_type": "infusion pump"
    })).await;
        let id = project["id"].as_i64().unwrap();
        let path = format!("/api/projects/{id}/classification");

        let res = app.get(&path).bearer_auth(&owner).send().await.unwrap();
        assert_eq!(res.status(), 404, "no classification yet");
        for token in [&other] {
            let res = app
                .post(&format!("{path}/start"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 404, "someone else's project");
        }

        let res = app
            .post(&format!("{path}/start"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("FRN"), "{body}");
        let c = &body["classification"];
        assert_eq!(c["product_code"], "FRN");
        assert_eq!(c["device_class"], "2");
        assert_eq!(c["regulatory_pathway"], "510k");
        assert_eq!(c["cfr_sections"], json!(["21 CFR 880.5725"]));
        assert!(c["confidence_score"].as_f64().unwrap() > 0.0);
        assert!(!c["reasoning"].as_str().unwrap().is_empty());
        assert!(!c["sources"].as_array().unwrap().is_empty());

        let res = app.get(&path).bearer_auth(&owner).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let latest: Value = res.json().await.unwrap();
        assert_eq!(&latest, c);
        let res = app.get(&path).bearer_auth(&other).send().await.unwrap();
        assert_eq!(res.status(), 404);

        // One assistant interaction and one audit row came with it.
        let interactions = regassist::db::agent::for_project(&app.state.db, id, 10)
            .await
            .unwrap();
        assert_eq!(interactions.len(), 1);
        assert_eq!(interactions[0].task_type, "device_classification");
        let res = app
            .get(&format!("/api/audit/trail/{id}"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let trail: Value = res.json().await.unwrap();
        let actions: Vec<&str> = trail["audit_entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"classification.create"), "{actions:?}");

        // A project whose text names no device cannot be classified.
        let vague = app.create_project(&owner, json!({"name": "The one"})).await;
        let res = app
            .post(&format!(
                "/api/projects/{}/classification/start",
                vague["id"]
            ))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
    }
);
