//! Inputs at the edge of what the OpenAPI document promises, found by fuzzing it with
//! schemathesis: an empty optional query value means absent, blank free text falls back to the
//! defaults, identifiers, dates and closed sets are exact, and a missing required query
//! parameter answers 422 naming it.

use serde_json::{json, Value};

use crate::common::fake_openfda::FakeOpenFda;
use crate::common::*;
use crate::support::{get, post};
use crate::with_fake_sqlite;

/// Asserts a 422 whose `fields` name `field`.
fn assert_field(status: u16, body: &Value, field: &str, what: &str) {
    assert_eq!(status, 422, "{what}: {body}");
    assert!(body["fields"][field].is_array(), "{what}: {body}");
}

with_fake_sqlite!(
    empty_query_values_mean_absent_and_shapes_are_exact,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("blank-fields");
        let (status, _, body) = get(
            &app,
            &token,
            "/api/predicates/search?q=surgical%20face%20mask&product_code=&decision_date_from=&decision_date_to=&limit=3",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"].as_array().unwrap().len(), 3);

        let calls = fake.calls();
        let (status, _, body) = get(
            &app,
            &token,
            "/api/predicates/search?q=&product_code=&decision_date_from=&decision_date_to=",
        )
        .await;
        assert_field(status, &body, "q", "nothing to search for");
        for (query, field) in [
            ("q=pump&product_code=%20FXX", "product_code"),
            ("q=pump&decision_date_from=2020-1-01", "decision_date_from"),
            ("q=pump&decision_date_to=%2B2020-01-01", "decision_date_to"),
            ("q=pump&decision_date_to=2021-02-29", "decision_date_to"),
        ] {
            let (status, _, body) =
                get(&app, &token, &format!("/api/predicates/search?{query}")).await;
            assert_field(status, &body, field, query);
        }
        assert_eq!(fake.calls(), calls, "nothing invalid reaches openFDA");

        for (path, field) in [
            ("/api/classification/suggest?limit=1", "q"),
            ("/api/classification/suggest?q=%C2%85", "q"),
            ("/api/classification/product-codes/0", "code"),
            ("/api/devices/510k/0", "k_number"),
        ] {
            let (status, _, body) = get(&app, &token, path).await;
            assert_field(status, &body, field, path);
        }

        let admin = app.user_with_role("fuzz-admin@example.com", "admin").await;
        for path in ["/api/admin/cache", "/api/admin/cache?prefix="] {
            let res = app.delete(path).bearer_auth(&admin).send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert_field(status, &body, "prefix", path);
        }
    }
);

with_fake_sqlite!(
    project_search_reads_blank_text_as_the_projects,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let owner = app.jwt_for("blank-owner");
        let project = app
            .create_project(
                &owner,
                json!({"name": "ShieldMask", "device_type": "surgical face mask", "product_code": "FXX"}),
            )
            .await;
        let path = format!("/api/projects/{}/predicates/search", project["id"]);
        for body in [
            json!({"q": "", "limit": 2}),
            json!({"q": "   ", "limit": 2.0, "product_code": null, "decision_date_from": null}),
        ] {
            let (status, found) = post(&app, &owner, &path, body.clone()).await;
            assert_eq!(status, 200, "{body}: {found}");
            assert_eq!(found["results"].as_array().unwrap().len(), 2, "{body}");
        }
        for (body, field) in [
            (json!({"product_code": ""}), "product_code"),
            (
                json!({"decision_date_from": "2020-02-30"}),
                "decision_date_from",
            ),
            (json!({"limit": 0}), "limit"),
        ] {
            let (status, answer) = post(&app, &owner, &path, body.clone()).await;
            assert_field(status, &answer, field, &body.to_string());
        }
        let (status, answer) = post(&app, &owner, &path, json!([])).await;
        assert_field(status, &answer, "body", "an array body");

        // A project whose name holds no searchable word and that has no product code.
        let vague = app
            .create_project(&owner, json!({"name": "The and of"}))
            .await;
        let path = format!("/api/projects/{}/predicates/search", vague["id"]);
        let (status, answer) = post(&app, &owner, &path, json!({"q": ""})).await;
        assert_field(status, &answer, "q", "no searchable word");
    }
);

with_fake_sqlite!(
    the_copilot_takes_a_closed_set_of_tasks_and_typed_parameters,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let token = app.jwt_for("copilot-edges");
        let (status, body) =
            post(&app, &token, "/api/agent/execute", json!({"task_type": ""})).await;
        assert_field(status, &body, "task_type", "empty task type");

        let (status, body) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({"task_type": "predicate_search", "device_description": "surgical face mask",
                "project_id": null, "intended_use": null, "device_type": null, "parameters": null}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["task_type"], "predicate_search");

        let (status, body) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({"task_type": "predicate_search", "device_description": "surgical face mask",
                "parameters": {"limit": 2, "session_id": "s-1", "from_the_frontend": true}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["session_id"], "s-1");
        assert_eq!(body["result"]["results"].as_array().unwrap().len(), 2);

        let long = "s".repeat(101);
        for (parameters, field) in [
            (json!({"limit": 0}), "parameters.limit"),
            (json!({"limit": "ten"}), "parameters.limit"),
            (json!({"product_code": ""}), "parameters.product_code"),
            (json!({"k_number": "K1"}), "parameters.k_number"),
            (json!({"session_id": long}), "parameters.session_id"),
            (json!("limit=2"), "parameters"),
        ] {
            let (status, body) = post(
                &app,
                &token,
                "/api/agent/execute",
                json!({"task_type": "predicate_search", "device_description": "mask",
                    "parameters": parameters}),
            )
            .await;
            assert_field(status, &body, field, &parameters.to_string());
        }
    }
);

with_fake_sqlite!(
    a_whole_float_in_a_path_or_query_is_that_integer,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let owner = app.jwt_for("float-ids");
        let project = app.create_project(&owner, json!({"name": "Pump"})).await;
        let id = project["id"].as_i64().unwrap();
        let (status, _, body) = get(&app, &owner, &format!("/api/projects/{id}.0")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], id);
        let (status, _, body) =
            get(&app, &owner, &format!("/api/projects/{id}.0/predicates")).await;
        assert_eq!(status, 200, "{body}");
        for path in [
            format!("/api/projects/{id}.5"),
            format!("/api/projects/{id}e0"),
        ] {
            let (status, _, body) = get(&app, &owner, &path).await;
            assert_eq!(status, 400, "{path}: {body}");
        }
        let (status, _, body) = get(&app, &owner, "/api/projects?limit=1.0&offset=0.00").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.as_array().unwrap().len(), 1);
        let (status, _, body) = get(&app, &owner, "/api/projects?limit=1.5").await;
        assert_eq!(status, 400, "{body}");
        let (status, _, _) = get(
            &app,
            &owner,
            &format!("/api/projects/{id}.0/predicates/7.0/comparison"),
        )
        .await;
        assert_eq!(status, 404, "both ids read, no such candidate");
    }
);
