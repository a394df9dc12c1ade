//! Predicate search over the fake openFDA's real records, a project's stored candidates, the
//! comparison table, the assistant endpoint and the admin routes.

use serde_json::{json, Value};

use crate::common::fake_openfda::{FakeOpenFda, LAST_UPDATED};
use crate::common::*;
use crate::support::{get, post};
use crate::{with_fake, with_fake_sqlite};

with_fake_sqlite!(
    search_ranks_real_records_by_product_code,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("ranker");
        let (status, _, body) = get(
            &app,
            &token,
            "/api/predicates/search?q=surgical%20face%20mask&product_code=FXX&limit=5",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 5);
        let meta = &body["meta"];
        assert_eq!(meta["source"], "openfda");
        assert_eq!(meta["cached"], false);
        assert_eq!(meta["data_last_updated"], LAST_UPDATED);
        assert!(meta["fetched_at"].as_str().unwrap().ends_with('Z'));
        assert!(meta["total_candidates"].as_u64().unwrap() >= 5);
        for r in results {
            assert_eq!(r["product_code"], "FXX");
            assert_eq!(r["regulation_number"], "878.4040");
            assert!(r["score"].as_f64().unwrap() > 0.5);
            assert!(r["source_url"]
                .as_str()
                .unwrap()
                .contains(r["k_number"].as_str().unwrap()));
            assert!(r["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == "same product code (FXX)"));
        }
        let scores: Vec<f64> = results
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

        // The same search, differently cased and ordered, is a cache hit in the same order.
        let (_, _, again) = get(
            &app,
            &token,
            "/api/predicates/search?limit=5&product_code=FXX&q=MASK%20face%20%20surgical",
        )
        .await;
        assert_eq!(again["meta"]["cached"], true);
        let keys = |b: &Value| {
            b["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["k_number"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&body), keys(&again));
        assert_eq!(fake.calls_to("510k"), 1);
    }
);

with_fake_sqlite!(
    free_text_finds_devices_and_no_match_is_empty,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("texter");
        let (status, _, body) = get(
            &app,
            &token,
            "/api/predicates/search?q=infusion%20pump&limit=10",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let first = &body["results"][0];
        let name = first["device_name"].as_str().unwrap().to_lowercase();
        assert!(name.contains("infusion") || name.contains("pump"), "{name}");

        // openFDA answers 404 NOT_FOUND when nothing matches: an empty result, not an error.
        let before = fake
            .state
            .counters
            .not_found
            .load(std::sync::atomic::Ordering::SeqCst);
        let (status, _, body) = get(&app, &token, "/api/predicates/search?q=zzqxwv%20qqzzvw").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"], json!([]));
        assert_eq!(body["meta"]["total_candidates"], 0);
        assert!(
            fake.state
                .counters
                .not_found
                .load(std::sync::atomic::Ordering::SeqCst)
                > before
        );
    }
);

with_fake_sqlite!(
    hostile_text_reaches_openfda_only_as_quoted_words,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("mallory");
        let q = "pump\" OR product_code:\"XYZ\") AND (k_number:* NOT [1 TO 2] \\ catheter";
        let url = format!(
            "/api/predicates/search?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let (status, _, body) = get(&app, &token, &url).await;
        assert_eq!(status, 200, "{body}");
        let sent = fake.searches();
        assert_eq!(
        sent[0],
        "(device_name:\"catheter\" device_name:\"code\" device_name:\"not\" device_name:\"number\" \
         device_name:\"pump\" device_name:\"xyz\")"
    );
    }
);

with_fake_sqlite!(
    recalls_flag_real_candidates,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let token = app.jwt_for("recalls");
        let (status, _, body) = get(&app, &token,
        "/api/predicates/search?product_code=FOZ&q=catheter&decision_date_from=1990-01-01&decision_date_to=1990-12-31&limit=100").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["meta"]["recalls_checked"], true);
        let hit = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["k_number"] == "K900263")
            .expect("K900263 in 1990 FOZ");
        assert_eq!(hit["safety"]["recalls"][0]["recall_number"], "Z-0053-2020");
        assert_eq!(hit["safety"]["recalls_status"], "checked");
        assert_eq!(hit["safety"]["events_status"], "not_checked", "{hit}");
        assert_eq!(
            hit["safety"]["recalls"][0]["reason"]
                .as_str()
                .map(|r| r.starts_with("Lidstock")),
            Some(true)
        );
        assert!(hit["score_breakdown"]["recall_factor"].as_f64().unwrap() < 1.0);
        for r in body["results"].as_array().unwrap() {
            let d = r["decision_date"].as_str().unwrap();
            assert!(d.starts_with("1990-"), "{d}");
        }
    }
);

with_fake_sqlite!(
    bad_input_is_422,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("validator");
        for (query, field) in [
            ("", "q"),
            ("q=%20%20", "q"),
            ("q=the%20and%20of", "q"),
            ("product_code=dqy", "product_code"),
            ("product_code=DQYY", "product_code"),
            ("q=pump&limit=0", "limit"),
            ("q=pump&limit=101", "limit"),
            ("q=pump&decision_date_from=2020-13-01", "decision_date_from"),
            (
                "q=pump&decision_date_from=2021-01-01&decision_date_to=2020-01-01",
                "decision_date_to",
            ),
        ] {
            let (status, _, body) =
                get(&app, &token, &format!("/api/predicates/search?{query}")).await;
            assert_eq!(status, 422, "{query}: {body}");
            assert!(body["fields"][field].is_array(), "{query}: {body}");
        }
        assert_eq!(fake.calls(), 0, "nothing invalid reaches openFDA");
        let res = app
            .get("/api/predicates/search?q=pump")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
);

with_fake!(
    project_search_stores_candidates_and_keeps_selections,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let owner = app.jwt_for("owner");
        let project = app.create_project(&owner, json!({
        "name": "ShieldMask", "device_type": "surgical face mask",
        "description": "Disposable three-ply surgical face mask of nonwoven polypropylene with ear loops",
        "intended_use": "Protect patients and healthcare personnel from transfer of microorganisms, body fluids and particulate material",
        "product_code": "FXX"})).await;
        let id = project["id"].as_i64().unwrap();
        let (status, body) = post(
            &app,
            &owner,
            &format!("/api/projects/{id}/predicates/search"),
            json!({"limit": 5}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let stored = body["results"].as_array().unwrap();
        assert_eq!(stored.len(), 5);
        assert!(stored
            .iter()
            .all(|p| p["product_code"] == "FXX" && p["is_selected"] == false));
        let chosen = stored[1]["id"].as_i64().unwrap();
        let res = app
            .patch(&format!("/api/projects/{id}/predicates/{chosen}"))
            .bearer_auth(&owner)
            .json(&json!({"is_selected": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);

        // A second search (no body at all) refreshes scores and keeps the selection.
        let res = app
            .post(&format!("/api/projects/{id}/predicates/search"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (status, headers, list) =
            get(&app, &owner, &format!("/api/projects/{id}/predicates")).await;
        assert_eq!(status, 200);
        // The second search used the default limit (50): more candidates, the same selection.
        let total = list.as_array().unwrap().len();
        assert!(total > 5);
        assert_eq!(headers["x-total-count"], total.to_string().as_str());
        let selected: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["is_selected"] == true)
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(selected, vec![chosen]);
        assert_eq!(
            fake.calls_to("510k"),
            1,
            "the second search came from the cache"
        );

        // Two searches and a selection: three audit rows, two assistant interactions.
        let (_, _, trail) = get(&app, &owner, &format!("/api/audit/trail/{id}")).await;
        let actions: Vec<&str> = trail["audit_entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "predicates.search")
                .count(),
            2,
            "{actions:?}"
        );
        assert!(actions.contains(&"predicate.select"));
        let interactions = regassist::db::agent::count_for_project(&app.state.db, id)
            .await
            .unwrap();
        assert_eq!(interactions, 2);

        // The comparison of the chosen predicate with the project's device.
        let (status, _, cmp) = get(
            &app,
            &owner,
            &format!("/api/projects/{id}/predicates/{chosen}/comparison"),
        )
        .await;
        assert_eq!(status, 200, "{cmp}");
        let row = |name: &str| {
            cmp["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["characteristic"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(row("Product code")["assessment"], "same");
        assert_eq!(row("Device class")["assessment"], "same");
        assert_eq!(row("Regulation (21 CFR)")["assessment"], "same");
        assert_eq!(row("Regulation (21 CFR)")["subject_device"], "878.4040");
        assert_eq!(
            row("Materials (patient contact)")["subject_device"],
            "nonwoven fabric, polypropylene"
        );
        assert_eq!(row("Software")["assessment"], "same");
        let standards: Vec<&str> = cmp["testing_recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["standard"].as_str().unwrap())
            .collect();
        assert!(standards.contains(&"ISO 10993-1"), "{standards:?}");
        assert!(cmp["summary"]
            .as_str()
            .unwrap()
            .contains(stored[1]["k_number"].as_str().unwrap()));

        // Someone else sees none of it.
        let other = app.jwt_for("stranger");
        for path in [
            format!("/api/projects/{id}/predicates"),
            format!("/api/projects/{id}/predicates/{chosen}/comparison"),
        ] {
            assert_eq!(get(&app, &other, &path).await.0, 404, "{path}");
        }
        assert_eq!(
            post(
                &app,
                &other,
                &format!("/api/projects/{id}/predicates/search"),
                json!({})
            )
            .await
            .0,
            404
        );
        let res = app
            .patch(&format!("/api/projects/{id}/predicates/{chosen}"))
            .bearer_auth(&other)
            .json(&json!({"is_selected": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(
            get(
                &app,
                &owner,
                &format!("/api/projects/{id}/predicates/999999/comparison")
            )
            .await
            .0,
            404
        );
    }
);

with_fake!(
    assistant_runs_search_and_comparison,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let token = app.jwt_for("copilot");
        let project = app.create_project(&token, json!({"name": "Pump", "product_code": "FRN",
        "description": "Large volume infusion pump with wireless connectivity and software dose limits"})).await;
        let id = project["id"].as_i64().unwrap();
        let (status, body) = post(&app, &token, "/api/agent/execute", json!({
        "task_type": "predicate_search", "project_id": id,
        "device_description": "Volumetric infusion pump with Wi-Fi and dose error reduction software",
        "intended_use": "Controlled delivery of fluids and medications", "parameters": {"limit": 3}})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["task_type"], "predicate_search");
        assert!(body["confidence"].as_f64().unwrap() > 0.0);
        assert_eq!(body["result"]["results"].as_array().unwrap().len(), 3);
        let k = body["result"]["results"][0]["k_number"]
            .as_str()
            .unwrap()
            .to_string();

        let (status, cmp) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({
        "task_type": "predicate_comparison", "project_id": id, "parameters": {"k_number": k}}),
        )
        .await;
        assert_eq!(status, 200, "{cmp}");
        let rows = cmp["result"]["rows"].as_array().unwrap();
        let wireless = rows
            .iter()
            .find(|r| r["characteristic"] == "Connectivity / wireless")
            .unwrap();
        assert_ne!(wireless["assessment"], "same");
        assert!(cmp["result"]["testing_recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["standard"] == "IEC 62304"));
        assert_eq!(
            regassist::db::agent::count_for_project(&app.state.db, id)
                .await
                .unwrap(),
            2
        );

        // With the classification table loaded, the copilot classifies and records it.
        regassist::mirror::ensure_classification(&app.state.db)
            .await
            .unwrap();
        let before = regassist::db::agent::count_for_project(&app.state.db, id)
            .await
            .unwrap();
        let (status, body) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({"task_type": "device_classification", "project_id": id,
        "device_description": "infusion pump for intravenous fluids"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["result"]["classification"]["product_code"], "FRN",
            "{body}"
        );
        assert!(body["confidence"].as_f64().unwrap() > 0.0);
        assert_eq!(
            regassist::db::agent::count_for_project(&app.state.db, id)
                .await
                .unwrap(),
            before + 1
        );
        let (status, _) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({"task_type": "predicate_comparison"}),
        )
        .await;
        assert_eq!(status, 422);
        let (status, _) = post(&app, &token, "/api/agent/execute", json!({"task_type": "predicate_search", "project_id": 999999, "device_description": "x pump"})).await;
        assert_eq!(status, 404);
        let (status, _) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({"task_type": "telepathy"}),
        )
        .await;
        assert_eq!(status, 422);
    }
);

with_fake_sqlite!(
    admin_sees_the_budget_and_clears_the_cache,
    &[("OPENFDA_RATE_PER_MINUTE", "120")],
    |app: TestApp, fake: FakeOpenFda| async move {
        let admin = app.user_with_role("ops@example.com", "admin").await;
        let user = app.jwt_for("plain");
        assert_eq!(
            get(&app, &user, "/api/predicates/search?product_code=DQY")
                .await
                .0,
            200
        );
        let (status, _, s) = get(&app, &admin, "/api/admin/openfda/status").await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["limit_per_minute"], 120);
        assert!(s["used_last_minute"].as_u64().unwrap() >= 1);
        assert_eq!(s["used_last_minute"], s["used_today"]);
        assert_eq!(s["circuit"], "closed");
        assert_eq!(s["cache"]["backend"], "memory");
        assert!(s["cache"]["misses"].as_u64().unwrap() >= 1);
        assert_eq!(get(&app, &user, "/api/admin/openfda/status").await.0, 403);
        let metrics = app
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for name in [
            "regassist_openfda_requests_total{endpoint=\"510k\",outcome=\"ok\"}",
            "regassist_openfda_budget_remaining{window=\"minute\"}",
            "regassist_openfda_budget_remaining{window=\"day\"}",
            "regassist_predicate_searches_total{outcome=\"success\",source=\"openfda\",via=\"fetched\"}",
        ] {
            assert!(metrics.contains(name), "{name} missing");
        }
        let spec: Value = app
            .get("/openapi.json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for path in [
            "/api/predicates/search",
            "/api/projects/{id}/predicates/search",
            "/api/projects/{id}/predicates",
            "/api/projects/{id}/predicates/{predicate_id}",
            "/api/projects/{id}/predicates/{predicate_id}/comparison",
            "/api/agent/execute",
            "/api/admin/openfda/status",
            "/api/admin/cache",
        ] {
            assert!(
                spec["paths"][path].is_object(),
                "{path} missing from the spec"
            );
        }

        let res = app
            .delete("/api/admin/cache?prefix=predicate_search")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["deleted"], 1);
        let res = app
            .delete("/api/admin/cache")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let calls = fake.calls_to("510k");
        let (_, _, again) = get(&app, &user, "/api/predicates/search?product_code=DQY").await;
        assert_eq!(again["meta"]["cached"], false);
        assert_eq!(fake.calls_to("510k"), calls + 1);
    }
);

with_fake!(
    every_search_entry_point_refuses_the_same_input_the_same_way,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let owner = app.jwt_for("owner");
        // No product code, so a text without searchable words has nothing to search by.
        let project = app
            .create_project(&owner, json!({"name": "Infusion pump"}))
            .await;
        let id = project["id"].as_i64().unwrap();
        let over_long = "infusion pump ".repeat(200);
        for (what, q) in [
            ("over-long", over_long.as_str()),
            ("word-less", "the ... and 42 !"),
        ] {
            let get_q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
            let (status, _, by_get) =
                get(&app, &owner, &format!("/api/predicates/search?q={get_q}")).await;
            assert_eq!(status, 422, "GET, {what}: {by_get}");
            let (status, by_project) = post(
                &app,
                &owner,
                &format!("/api/projects/{id}/predicates/search"),
                json!({"q": q}),
            )
            .await;
            assert_eq!(status, 422, "project, {what}: {by_project}");
            let (status, by_agent) = post(
                &app,
                &owner,
                "/api/agent/execute",
                json!({"task_type": "predicate_search", "project_id": id, "parameters": {"q": q}}),
            )
            .await;
            assert_eq!(status, 422, "agent, {what}: {by_agent}");
            for body in [&by_get, &by_project] {
                assert_eq!(body["code"], "validation_failed");
                assert_eq!(body["fields"]["q"], by_get["fields"]["q"], "{what}: {body}");
            }
            assert_eq!(
                by_agent["fields"]["parameters.q"], by_get["fields"]["q"],
                "{what}: {by_agent}"
            );
        }
        assert_eq!(fake.calls_to("510k"), 0, "nothing reached the source");
    }
);

with_fake!(
    the_dashboard_counts_selected_predicates_with_a_recorded_comparison,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let owner = app.jwt_for("owner");
        let project = app
            .create_project(
                &owner,
                json!({"name": "ShieldMask", "device_type": "surgical face mask", "product_code": "FXX"}),
            )
            .await;
        let id = project["id"].as_i64().unwrap();
        let (status, body) = post(
            &app,
            &owner,
            &format!("/api/projects/{id}/predicates/search"),
            json!({"limit": 3}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let ids: Vec<i64> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        for chosen in &ids[..2] {
            let res = app
                .patch(&format!("/api/projects/{id}/predicates/{chosen}"))
                .bearer_auth(&owner)
                .json(&json!({"is_selected": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        let step = |dashboard: &Value| {
            dashboard["progress"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["step"] == "predicate_comparison")
                .unwrap()["detail"]
                .clone()
        };
        let (_, _, dashboard) = get(&app, &owner, &format!("/api/projects/{id}/dashboard")).await;
        assert_eq!(
            step(&dashboard),
            "2 predicates selected, 0 with a comparison"
        );
        let (status, compared) = post(
            &app,
            &owner,
            "/api/agent/execute",
            json!({"task_type": "predicate_comparison", "project_id": id,
                   "parameters": {"predicate_id": ids[1]}}),
        )
        .await;
        assert_eq!(status, 200, "{compared}");
        let (_, _, dashboard) = get(&app, &owner, &format!("/api/projects/{id}/dashboard")).await;
        assert_eq!(
            step(&dashboard),
            "2 predicates selected, 1 with a comparison"
        );
        let stored = dashboard["predicate_devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == ids[1])
            .unwrap()
            .clone();
        assert!(stored["compared_at"].is_string(), "{stored}");
        assert_eq!(stored["comparison_data"]["search"]["source"], "openfda");
    }
);
