//! Safety data in the mirror: openFDA's recall, enforcement and adverse-event bulk files
//! imported (idempotent, bad files refused with nothing changed), and the safety block every
//! mirror candidate carries, which says "no data" before anything is imported.

use std::io::Write;
use std::path::PathBuf;

use regassist::db::mirror::safety::count_safety;
use regassist::mirror::{ensure_classification, import_file, ImportSummary};
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::*;
use crate::mirror::data;

const RECALLS: &str = "safety/device-recall-fixture.json";
const ENFORCEMENT: &str = "safety/device-enforcement-fixture.json";
const EVENTS: &str = "safety/device-event-fixture.json";
const MIRROR: &[(&str, &str)] = &[
    ("OPENFDA_MODE", "mirror"),
    ("OPENFDA_BASE_URL", "http://127.0.0.1:1"),
    ("REGASSIST_MIRROR_RECHECK_SECS", "0"),
];

async fn import(app: &TestApp, rel: &str) -> ImportSummary {
    import_file(&app.state.db, &data(rel), false)
        .await
        .unwrap_or_else(|e| panic!("importing {rel}: {e:#}"))
}

async fn load_510k(app: &TestApp) {
    ensure_classification(&app.state.db).await.unwrap();
    import(app, "510k/510k_2015-2026_sample.csv").await;
}

async fn search_frn(app: &TestApp, token: &str) -> Value {
    let res = app
        .get("/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=20")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn hit<'a>(body: &'a Value, k: &str) -> &'a Value {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["k_number"] == k)
        .unwrap_or_else(|| panic!("{k} not in {body}"))
}

fn reasons(r: &Value) -> Vec<String> {
    r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

both_backends!(
    recalls_and_events_reach_mirror_candidates,
    MIRROR,
    |app: TestApp| async move {
        let db = &app.state.db;
        load_510k(&app).await;
        let token = app.jwt_for("safety");

        // Before any safety file: every candidate says it was not checked, not "no recalls".
        let before = search_frn(&app, &token).await;
        assert_eq!(before["meta"]["recalls_checked"], false);
        for r in before["results"].as_array().unwrap() {
            assert_eq!(r["safety"]["recalls_status"], "no_data", "{r}");
            assert_eq!(r["safety"]["events_status"], "no_data", "{r}");
            assert!(r["safety"]["note"]
                .as_str()
                .unwrap()
                .contains("no recall data"));
            assert!(reasons(r).contains(&"recalls not checked".to_string()));
        }
        let score_before = hit(&before, "K243855")["score"].as_f64().unwrap();

        // The three files: counts, rejected rows with file and position, the data's date.
        let recalls = import(&app, RECALLS).await;
        assert_eq!(
            (
                recalls.kind.as_str(),
                recalls.rows_read,
                recalls.inserted,
                recalls.rejected
            ),
            ("recall", 6, 5, 1),
            "{recalls}"
        );
        assert!(
            recalls.errors[0]
                .starts_with("device-recall-fixture.json:record 6: no product_res_number"),
            "{:?}",
            recalls.errors
        );
        assert_eq!(
            recalls.data_date,
            chrono::NaiveDate::from_ymd_opt(2026, 8, 1)
        );
        let enforcement = import(&app, ENFORCEMENT).await;
        assert_eq!(
            (
                enforcement.kind.as_str(),
                enforcement.rows_read,
                enforcement.inserted,
                enforcement.rejected
            ),
            ("enforcement", 5, 4, 1),
            "{enforcement}"
        );
        assert!(enforcement.errors[0].contains(":record 5: no recall_number"));
        let events = import(&app, EVENTS).await;
        assert_eq!(
            (events.kind.as_str(), events.rows_read, events.rejected),
            ("event", 5, 0)
        );
        assert!(events.inserted > 0, "{events}");
        let counts = count_safety(db).await.unwrap();
        assert_eq!((counts.0, counts.2), (5, 4), "{counts:?}");

        // Re-importing changes nothing.
        for rel in [RECALLS, ENFORCEMENT, EVENTS] {
            let again = import(&app, rel).await;
            assert_eq!((again.inserted, again.updated), (0, 0), "{again}");
        }
        assert_eq!(count_safety(db).await.unwrap(), counts);

        // The import retired the cached page; the candidates now carry their recalls.
        let after = search_frn(&app, &token).await;
        assert_eq!(after["meta"]["recalls_checked"], true);
        let alaris = hit(&after, "K243855");
        let safety = &alaris["safety"];
        assert_eq!(safety["recalls_status"], "checked");
        let recall = &safety["recalls"][0];
        assert_eq!(recall["recall_number"], "Z-9901-2025");
        assert_eq!(
            recall["class"], 1,
            "the class comes from the enforcement report"
        );
        assert_eq!(recall["status"], "Open, Classified");
        assert_eq!(recall["initiated"], "2025-06-02");
        assert_eq!(recall["event_number"], "99901");
        assert_eq!(recall["scope"], "this_device");
        assert!(recall["reason"]
            .as_str()
            .unwrap()
            .contains("Software fault"));
        assert_eq!(safety["recalls_data_date"], "2026-08-01");
        assert_eq!(safety["events_status"], "checked");
        assert_eq!(safety["events_data_date"], "2026-08-01");
        let device = &safety["events"]["device"];
        assert_eq!(
            (
                device["death"].as_i64(),
                device["malfunction"].as_i64(),
                device["total"].as_i64()
            ),
            (Some(1), Some(2), Some(3))
        );
        assert_eq!(device["by_year"][0]["year"], 2025);
        let code = &safety["events"]["product_code"];
        assert_eq!(
            (
                code["key"].as_str(),
                code["injury"].as_i64(),
                code["total"].as_i64()
            ),
            (Some("FRN"), Some(1), Some(4))
        );

        // A Class I recall lowers the score, with the reason stated.
        assert_eq!(alaris["score_breakdown"]["recall_factor"], 0.4);
        assert!(alaris["score"].as_f64().unwrap() < score_before);
        assert!(reasons(alaris).contains(&"Class I recall on record (Z-9901-2025)".to_string()));

        // Another device of the same applicant and product code had a Class I recall.
        let sibling = hit(&after, "K230022");
        assert_eq!(
            sibling["safety"]["recalls"][0]["scope"],
            "same_applicant_product_code"
        );
        assert_eq!(
            sibling["safety"]["recalls"][0]["recall_number"],
            "Z-9902-2024"
        );
        assert_eq!(sibling["score_breakdown"]["recall_factor"], 0.7);
        assert!(reasons(sibling).iter().any(|r| r.starts_with("Class I recall of another device of the same applicant and product code (Z-9902-2024, K220417")), "{:?}", reasons(sibling));
        assert_eq!(
            hit(&after, "K220417")["score_breakdown"]["recall_factor"],
            0.4
        );
        // A Class II recall weighs less.
        let plum = hit(&after, "K242114");
        assert_eq!(plum["safety"]["recalls"][0]["class"], 2);
        assert_eq!(plum["score_breakdown"]["recall_factor"], 0.85);

        // Checked and none found is said as such.
        let clean: Vec<&Value> = after["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["safety"]["recalls"].as_array().unwrap().is_empty())
            .collect();
        assert!(!clean.is_empty(), "{after}");
        for r in clean {
            assert_eq!(r["safety"]["recalls_status"], "checked");
            assert_eq!(r["score_breakdown"]["recall_factor"], 1.0);
            assert!(reasons(r).contains(&"no recalls on record".to_string()));
        }

        // The device route carries the same block.
        let res = app
            .get("/api/devices/510k/K243855")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let device: Value = res.json().await.unwrap();
        assert_eq!(device["k_number"], "K243855");
        assert_eq!(device["safety"]["recalls"][0]["class"], 1);
        assert_eq!(device["safety"]["events"]["device"]["total"], 3);
    }
);

both_backends!(
    bad_safety_files_change_nothing,
    &[],
    |app: TestApp| async move {
        let db = &app.state.db;
        import(&app, RECALLS).await;
        import(&app, ENFORCEMENT).await;
        import(&app, EVENTS).await;
        let counts = count_safety(db).await.unwrap();
        let naming = || regassist::db::mirror::safety::recalls_naming(db, &["K243855"]);
        let recall = naming().await.unwrap()[0].reason_for_recall.clone();
        let events = regassist::db::mirror::safety::event_counts(db, &["K243855"], &["FRN"])
            .await
            .unwrap();
        let last = regassist::db::mirror::last_import(db)
            .await
            .unwrap()
            .unwrap()
            .id;

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::File::create(&path)
                .unwrap()
                .write_all(bytes)
                .unwrap();
            path
        };
        let original = std::fs::read(data(RECALLS)).unwrap();
        // Changed reasons, cut off: the changes must not survive.
        let changed = String::from_utf8_lossy(&original)
            .replace("Software fault", "Changed")
            .into_bytes();
        let event_bytes = std::fs::read(data(EVENTS)).unwrap();
        let doubled = String::from_utf8_lossy(&event_bytes)
            .replace("\"Death\"", "\"Injury\"")
            .into_bytes();
        let drug = |i: usize| {
            json!({"recall_number": format!("D-{i:04}-2020"), "product_type": "Drugs",
            "classification": "Class II", "status": "Ongoing", "reason_for_recall": "cGMP deviations"})
        };
        let drugs = json!({"meta": {"last_updated": "2026-08-01"}, "results": (0..10).map(drug).collect::<Vec<_>>()});
        let drug_events = json!({"meta": {}, "results": [{"safetyreportid": "10003300", "serious": "1"}, {"safetyreportid": "10003301"}]});
        let cases: Vec<(&str, PathBuf, &str)> = vec![
            (
                "truncated recall JSON",
                write("device-recall.json", &changed[..changed.len() * 2 / 3]),
                "truncated",
            ),
            (
                "truncated event JSON",
                write("device-event-fixture.json", &doubled[..doubled.len() - 10]),
                "truncated",
            ),
            (
                "JSON without results",
                write(
                    "other.json",
                    br#"{"meta": {"last_updated": "2026-01-01"}, "data": []}"#,
                ),
                "results",
            ),
            (
                "drug enforcement reports",
                write("drug-enforcement.json", drugs.to_string().as_bytes()),
                "malformed",
            ),
            (
                "drug adverse events",
                write("drug-event.json", drug_events.to_string().as_bytes()),
                "malformed",
            ),
            (
                "a JSON array",
                write("array.json", b"[1, 2, 3]"),
                "unrecognised",
            ),
        ];
        for (what, path, expected) in cases {
            let err = import_file(db, &path, false).await.expect_err(what);
            let text = format!("{err:#}");
            assert!(text.contains(expected), "{what}: {text}");
        }
        assert_eq!(count_safety(db).await.unwrap(), counts);
        assert_eq!(
            naming().await.unwrap()[0].reason_for_recall,
            recall,
            "no partial update survives"
        );
        assert_eq!(
            regassist::db::mirror::safety::event_counts(db, &["K243855"], &["FRN"])
                .await
                .unwrap()
                .len(),
            events.len()
        );
        assert_eq!(
            regassist::db::mirror::last_import(db)
                .await
                .unwrap()
                .unwrap()
                .id,
            last
        );

        // openFDA's downloads are zips of one JSON file: read like the file, nothing new.
        let zip_path = dir.path().join("device-recall-0001-of-0001.json.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        zip.start_file(
            "device-recall-0001-of-0001.json",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&original).unwrap();
        zip.finish().unwrap();
        let summary = import_file(db, &zip_path, false).await.unwrap();
        assert_eq!(
            (
                summary.format,
                summary.rows_read,
                summary.inserted,
                summary.updated
            ),
            ("zip", 6, 0, 0),
            "{summary}"
        );
        assert!(
            summary.errors[0].contains(
                "device-recall-0001-of-0001.json.zip!device-recall-0001-of-0001.json:record 6"
            ),
            "{:?}",
            summary.errors
        );
    }
);

both_backends!(
    selected_predicates_show_their_recalls,
    MIRROR,
    |app: TestApp| async move {
        load_510k(&app).await;
        import(&app, RECALLS).await;
        import(&app, ENFORCEMENT).await;
        let owner = app.jwt_for("owner");
        let project = app.create_project(&owner, json!({
            "name": "FlowSafe", "device_type": "infusion pump",
            "description": "Large-volume infusion pump with drug library software",
            "intended_use": "Controlled delivery of fluids and medications to patients in hospitals",
            "product_code": "FRN"})).await;
        let id = project["id"].as_i64().unwrap();
        let res = app
            .post(&format!("/api/projects/{id}/predicates/search"))
            .bearer_auth(&owner)
            .json(&json!({"limit": 20}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        let stored = body["results"].as_array().unwrap();
        let alaris = stored
            .iter()
            .find(|p| p["k_number"] == "K243855")
            .expect("K243855 stored");
        let pid = alaris["id"].as_i64().unwrap();
        let res = app
            .patch(&format!("/api/projects/{id}/predicates/{pid}"))
            .bearer_auth(&owner)
            .json(&json!({"is_selected": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);

        // The comparison's risk assessment names the Class I recall and is high.
        let cmp: Value = app
            .get(&format!("/api/projects/{id}/predicates/{pid}/comparison"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let concerns: Vec<&str> = cmp["risk_assessment"]["concerns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(
            concerns
                .iter()
                .any(|c| c.starts_with("Safety: Class I recall Z-9901-2025 of the predicate")),
            "{concerns:?}"
        );
        assert_eq!(cmp["risk_assessment"]["level"], "high");

        // Dashboard and export list the selected predicate's recalls.
        let dash: Value = app
            .get(&format!("/api/projects/{id}/dashboard"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let selected = dash["selected_predicate_safety"].as_array().unwrap();
        assert_eq!(selected.len(), 1, "{dash}");
        assert_eq!(selected[0]["k_number"], "K243855");
        assert_eq!(selected[0]["safety"]["recalls"][0]["class"], 1);
        let export: Value = app
            .get(&format!("/api/projects/{id}/export"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            export["selected_predicate_safety"][0]["safety"]["recalls"][0]["recall_number"],
            "Z-9901-2025"
        );
        let csv = app
            .get(&format!("/api/projects/{id}/export?format=csv"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            csv.contains("predicate_recall,K243855,recall_number,Z-9901-2025"),
            "{csv}"
        );
        assert!(
            csv.contains("predicate_safety,K243855,recalls_status,checked"),
            "{csv}"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_download_fetches_recalls_and_enforcement() {
    // Only the fake openFDA server's download routes: nothing live.
    let fake = crate::common::fake_openfda::FakeOpenFda::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/cli.db", dir.path().display());
    let base = format!("{}/download", fake.base);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_regassist"))
        .current_dir(dir.path())
        .args(["import", "--download", "--download-base", &base])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", dir.path())
        .env("DATABASE_URL", &db_url)
        .env("JWT_SECRET", JWT_SECRET)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("device-recall-0001-of-0001.json.zip: recall 6 rows read, 5 inserted, 0 updated, 1 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "device-enforcement-0001-of-0001.json.zip: enforcement 5 rows read, 4 inserted"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("foiclass.zip: classification 6617 rows read"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "rejected device-recall-0001-of-0001.json.zip!device-recall-0001-of-0001.json:record 6"
        ),
        "{stderr}"
    );
}
