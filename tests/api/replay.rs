//! Replayable answers: a stored classification and a stored predicate search record their data
//! and ranking version, and the admin's replay computes them again: identical on the same data,
//! and it says so when the data has changed since.

use regassist::assistant::RANKING_VERSION;
use regassist::db::agent::{self, NewInteraction};
use regassist::mirror::{ensure_classification, import_file};
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::*;
use crate::mirror::data;

async fn replay(app: &TestApp, token: &str, id: i64) -> (u16, Value) {
    let res = app
        .post(&format!("/api/admin/interactions/{id}/replay"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

both_backends!(
    recorded_answers_replay_identically_on_the_same_data,
    &[
        ("OPENFDA_MODE", "mirror"),
        ("OPENFDA_BASE_URL", "http://127.0.0.1:1"),
        ("REGASSIST_MIRROR_RECHECK_SECS", "0")
    ],
    |app: TestApp| async move {
        ensure_classification(&app.state.db).await.unwrap();
        import_file(
            &app.state.db,
            &data("510k/510k_2015-2026_sample.csv"),
            false,
        )
        .await
        .unwrap();
        let owner = app.jwt_for("replay-owner");
        let admin = app
            .user_with_role("replay-admin@example.com", "admin")
            .await;
        let project = app
            .create_project(
                &owner,
                json!({"name": "Ambulatory infusion pump", "device_type": "infusion pump",
                       "intended_use": "Intravenous infusion of fluids and drugs"}),
            )
            .await;
        let id = project["id"].as_i64().unwrap();
        for path in ["classification/start", "predicates/search"] {
            let res = app
                .post(&format!("/api/projects/{id}/{path}"))
                .bearer_auth(&owner)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path}");
        }
        let interactions = agent::for_project(&app.state.db, id, 10).await.unwrap();
        assert_eq!(interactions.len(), 2);

        let mut recorded = Vec::new();
        for i in &interactions {
            let provenance = &i.output.0["provenance"];
            assert_eq!(
                provenance["ranking_version"], RANKING_VERSION,
                "{provenance}"
            );
            assert_eq!(provenance["data"]["source"], "mirror");
            let files = provenance["data"]["files"].as_array().unwrap();
            assert!(
                files
                    .iter()
                    .any(|f| f["file_name"] == "510k_2015-2026_sample.csv"
                        && f["sha256"].as_str().is_some_and(|s| s.len() == 64)),
                "{provenance}"
            );
            let (status, body) = replay(&app, &admin, i.id).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["task_type"], i.task_type.as_str());
            assert_eq!(body["identical"], true, "{body}");
            assert_eq!(body["same_data"], true, "{body}");
            assert_eq!(body["same_ranking_version"], true, "{body}");
            let answer = body["recorded_answer"].as_array().unwrap();
            assert!(!answer.is_empty(), "{body}");
            assert_eq!(body["replayed_answer"], body["recorded_answer"]);
            recorded.push((i.id, body));
        }

        // Only an admin replays; an unknown interaction is a 404.
        let (status, _) = replay(&app, &owner, interactions[0].id).await;
        assert_eq!(status, 403);
        let (status, body) = replay(&app, &admin, 999_999).await;
        assert_eq!(status, 404, "{body}");

        // New data: the replay still answers, and says the data is not what it was.
        import_file(
            &app.state.db,
            &data("api_json/device_510k_limit100_2026-01-12.json"),
            false,
        )
        .await
        .unwrap();
        for (iid, before) in &recorded {
            let (status, after) = replay(&app, &admin, *iid).await;
            assert_eq!(status, 200, "{after}");
            assert_eq!(after["same_data"], false, "{after}");
            assert!(
                after["current_data"]["import_generation"].as_i64()
                    > before["recorded"]["data"]["import_generation"].as_i64(),
                "{after}"
            );
            assert_eq!(after["recorded_answer"], before["recorded_answer"]);
        }

        // An answer recorded without provenance cannot be replayed: a 409 that says why.
        let mut tx = app.state.db.begin().await.unwrap();
        let old = agent::insert(
            &mut tx,
            &NewInteraction {
                project_id: Some(id),
                user_id: project["user_id"].as_i64().unwrap(),
                session_id: "old",
                task_type: "device_classification",
                input: &json!({}),
                output: &json!({"suggestions": []}),
                confidence: None,
                sources: &[],
                reasoning: "",
                execution_time_ms: 1.0,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (status, body) = replay(&app, &admin, old.id).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("provenance"),
            "{body}"
        );
    }
);
