//! Projects: CRUD, validation, listing, optimistic concurrency, ownership, dashboard, export.

use crate::both_backends;
use crate::common::*;
use serde_json::{json, Value};

both_backends!(create_read_update_delete, &[], |app: TestApp| async move {
    let token = app.jwt_for("owner");
    let res = app.post("/api/projects").bearer_auth(&token)
        .json(&json!({"name": "  Infusion pump ", "description": "Volumetric pump", "product_code": "FRN", "tags": ["pump"], "priority": "high"}))
        .send().await.unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["name"], "Infusion pump");
    assert_eq!(p["status"], "draft");
    assert_eq!(p["version"], 1);
    assert_eq!(location, format!("/api/projects/{}", p["id"]));
    assert!(p["created_at"].as_str().unwrap().ends_with('Z'));

    let res = app.get(&location).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"1\"");

    let res = app
        .patch(&location)
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({"status": "active", "description": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let p2: Value = res.json().await.unwrap();
    assert_eq!(p2["status"], "active");
    assert_eq!(p2["description"], Value::Null);
    assert_eq!(p2["name"], "Infusion pump", "untouched fields stay");

    let res = app
        .put(&location)
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412, "stale If-Match");
    let now: Value = app
        .get(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["name"], "Infusion pump", "412 changed nothing");

    let res = app
        .delete(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.json::<Value>().await.unwrap()["message"].is_string());
    assert_eq!(
        app.get(&location)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.delete(&location)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
});

both_backends!(
    validation_and_malformed_requests,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("v");
        let res = app.post("/api/projects").bearer_auth(&token)
        .json(&json!({"name": "", "product_code": "abc", "tags": ["a","b","c","d","e","f","g","h","i","j","k"]}))
        .send().await.unwrap();
        assert_eq!(res.status(), 422);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "validation_failed");
        for f in ["name", "product_code", "tags"] {
            assert!(body["fields"][f].is_array(), "{f}: {body}");
        }
        for field in ["id", "user_id", "version", "status", "created_at"] {
            let mut b = json!({"name": "x"});
            b[field] = json!(7);
            let res = app
                .post("/api/projects")
                .bearer_auth(&token)
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{field} must be refused");
        }
        let res = app
            .post("/api/projects")
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["code"], "bad_request");
        let res = app
            .post("/api/projects")
            .bearer_auth(&token)
            .body("name=x")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 415);
        // Bigger than the socket buffers, several times: the client must read the 413 every
        // time, never a reset while it is still writing the body.
        let big = "x".repeat(8 * 1024 * 1024);
        for _ in 0..4 {
            let res = app
                .post("/api/projects")
                .bearer_auth(&token)
                .json(&json!({"name": big}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 413);
            assert_eq!(
                res.json::<Value>().await.unwrap()["code"],
                "payload_too_large"
            );
        }
        let res = app
            .get("/api/projects/not-a-number")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let res = app
            .get("/api/projects?limit=0")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let res = app
            .get("/api/projects?limit=abc")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let res = app
            .get("/api/projects?status=archived")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let res = app
            .delete("/api/projects")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "method_not_allowed"
        );
        // Nothing was written by any failed request.
        let res = app
            .get("/api/projects")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-total-count"], "0");
    }
);

both_backends!(listing_filters_and_pages, &[], |app: TestApp| async move {
    let token = app.jwt_for("lister");
    for (name, device_type) in [
        ("Cardiac catheter", "catheter"),
        ("Glucose meter", "meter"),
        ("Insulin pump", "pump"),
        ("100% pure_test", "meter"),
    ] {
        app.create_project(&token, json!({"name": name, "device_type": device_type}))
            .await;
    }
    let res = app
        .get("/api/projects?limit=2")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-total-count"], "4");
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["name"], "100% pure_test", "newest first");
    let page2: Vec<Value> = app
        .get("/api/projects?limit=2&offset=2")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2[1]["name"], "Cardiac catheter");
    // The total is right whether the page shows it (the last page, an exact fit) or a count is
    // needed (more follow, or the offset is past the end).
    for (query, total, len) in [
        ("limit=2&offset=2", "4", 2),
        ("limit=4", "4", 4),
        ("limit=3&offset=1", "4", 3),
        ("limit=2&offset=3", "4", 1),
        ("limit=2&offset=10", "4", 0),
    ] {
        let res = app
            .get(&format!("/api/projects?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-total-count"], total, "{query}");
        let page: Vec<Value> = res.json().await.unwrap();
        assert_eq!(page.len(), len, "{query}");
    }
    let found: Vec<Value> = app
        .get("/api/projects?search=GLUCOSE")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let found: Vec<Value> = app
        .get("/api/projects?search=%25")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "% is matched literally");
    let found: Vec<Value> = app
        .get("/api/projects?device_type=meter")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let res = app
        .get("/api/projects/")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "trailing slash answers the same");
    assert_eq!(res.headers()["x-total-count"], "4");
    let other: Vec<Value> = app
        .get("/api/projects")
        .bearer_auth(app.jwt_for("stranger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(other.is_empty(), "others see nothing");
});

both_backends!(
    other_users_get_404_on_every_id_route,
    &[],
    |app: TestApp| async move {
        let owner = app.jwt_for("owner");
        let stranger = app.jwt_for("stranger");
        let p = app.create_project(&owner, json!({"name": "Secret"})).await;
        let id = p["id"].to_string();
        let spec: Value = app
            .get("/openapi.json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut checked = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            let project_route = path.contains("{id}") && path.starts_with("/api/projects");
            if !project_route && !path.contains("{project_id}") {
                continue;
            }
            if path.starts_with("/api/audit/integrity") {
                continue; // auditor-only: a plain user gets 403 whoever owns the project
            }
            let concrete = path
                .replace("{id}", &id)
                .replace("{project_id}", &id)
                .replace("{predicate_id}", "1");
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_none() {
                    continue;
                }
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut req = app
                    .client
                    .request(m, app.url(&concrete))
                    .bearer_auth(&stranger);
                if ["post", "put", "patch"].contains(&method) {
                    // A body that is valid for the route, so only ownership can refuse it.
                    let body = if path.ends_with("{predicate_id}") {
                        json!({"is_selected": true})
                    } else {
                        json!({})
                    };
                    req = req.json(&body);
                }
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 404, "{method} {path}");
                checked += 1;
            }
        }
        assert!(checked >= 7, "only {checked} routes checked");
        let still: Value = app
            .get(&format!("/api/projects/{id}"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(still["version"], 1, "nothing changed");
    }
);

both_backends!(
    concurrent_if_match_updates_lose_nothing,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("racer");
        let p = app.create_project(&token, json!({"name": "Race"})).await;
        let path = format!("/api/projects/{}", p["id"]);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let req = app
                .patch(&path)
                .bearer_auth(&token)
                .header("If-Match", "\"1\"")
                .json(&json!({"name": format!("writer {i}")}));
            tasks.push(tokio::spawn(async move {
                req.send().await.unwrap().status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 412).count(),
            49,
            "{statuses:?}"
        );
        let now: Value = app
            .get(&path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(now["version"], 2);
        let trail: Value = app
            .get(&format!(
                "/api/audit/trail/{}?action=project.update",
                p["id"]
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(trail["total_count"], 1);
        assert_eq!(trail["audit_entries"][0]["after"]["name"], now["name"]);
    }
);

both_backends!(
    dashboard_and_export_of_a_new_project,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("dash");
        let p = app
            .create_project(
                &token,
                json!({"name": "Fresh, \"quoted\" name", "intended_use": "line1\nline2"}),
            )
            .await;
        let id = p["id"].as_i64().unwrap();
        let d: Value = app
            .get(&format!("/api/projects/{id}/dashboard"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["project"]["id"], id);
        assert_eq!(d["classification"], Value::Null);
        assert_eq!(d["predicate_devices"], json!([]));
        assert_eq!(d["progress"]["completed_steps"], 0);
        assert_eq!(d["progress"]["total_steps"], 4);
        assert_eq!(d["statistics"]["total_predicates"], 0);

        let res = app
            .get(&format!("/api/projects/{id}/export?format=json"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cd = res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cd.starts_with("attachment; filename=\"project-") && cd.ends_with(".json\""),
            "{cd}"
        );
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["project"]["name"], "Fresh, \"quoted\" name");

        let res = app
            .get(&format!("/api/projects/{id}/export?format=csv"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let text = res.text().await.unwrap();
        assert!(text.starts_with("section,key,field,value\r\n"));
        assert!(
            text.contains("\"Fresh, \"\"quoted\"\" name\""),
            "RFC 4180 quoting: {text}"
        );
        assert!(text.contains("\"line1\nline2\""));
        let res = app
            .get(&format!("/api/projects/{id}/export?format=xml"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
    }
);
