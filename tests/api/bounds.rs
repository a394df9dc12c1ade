//! Bounded work for hostile input and stalled dependencies (issue 15): sizes refused where they
//! are parsed, every request string bounded in the OpenAPI document, paged lists, a stalled
//! Redis that holds no request, PostgreSQL statement and lock timeouts answered as 503.

use serde_json::{json, Value};

use crate::both_backends;
use crate::common::fake_openfda::FakeOpenFda;
use crate::common::*;
use crate::support::{get, post};
use crate::with_fake;

/// The messages of one field of a 422.
fn field_messages(body: &Value, field: &str) -> Vec<String> {
    body["fields"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no field {field} in {body}"))
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

both_backends!(
    oversized_input_is_refused_where_it_is_parsed,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("hostile");
        // 60,000 empty tags: refused on the count alone, with one message, not one per tag.
        let tags = vec![""; 60_000];
        let (status, body) = post(
            &app,
            &token,
            "/api/projects",
            json!({"name": "Pump", "tags": tags}),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(field_messages(&body, "tags"), vec!["at most 10 tags"]);

        // A bad tag stops the check: one message however many bad tags follow.
        let (status, body) = post(
            &app,
            &token,
            "/api/projects",
            json!({"name": "Pump", "tags": ["", " ", "x".repeat(51)]}),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(field_messages(&body, "tags").len(), 1, "{body}");

        // The assistant's q is refused for every task (it would be stored with the interaction).
        let (status, body) = post(
            &app,
            &token,
            "/api/agent/execute",
            json!({"task_type": "device_classification", "device_description": "infusion pump",
                   "parameters": {"q": "pump ".repeat(401)}}),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["fields"]["parameters.q"].is_array(), "{body}");

        // Query text is refused over its bound, not silently cut.
        let long = "a".repeat(201);
        let (status, _, body) = get(&app, &token, &format!("/api/projects?search={long}")).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["fields"]["search"].is_array(), "{body}");
        let (status, _, body) = get(
            &app,
            &token,
            &format!("/api/projects?device_type={}", "d".repeat(256)),
        )
        .await;
        assert_eq!(status, 422, "{body}");

        let project = app.create_project(&token, json!({"name": "Pump"})).await;
        let id = project["id"].as_i64().unwrap();
        let (status, _, body) = get(
            &app,
            &token,
            &format!("/api/audit/trail/{id}?action={}", "a".repeat(101)),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["fields"]["action"].is_array(), "{body}");

        // The stored candidates are a paged list like every other.
        let (status, _, body) = get(
            &app,
            &token,
            &format!("/api/projects/{id}/predicates?limit=0"),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let (status, headers, body) = get(
            &app,
            &token,
            &format!("/api/projects/{id}/predicates?limit=1"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!([]));
        assert_eq!(headers["x-total-count"], "0");
    }
);

with_fake!(
    stored_candidates_are_paged,
    &[],
    |app: TestApp, _fake: FakeOpenFda| async move {
        let owner = app.jwt_for("pager");
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
            json!({"limit": 5}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (_, headers, all) = get(&app, &owner, &format!("/api/projects/{id}/predicates")).await;
        let all = all.as_array().unwrap().clone();
        assert_eq!(all.len(), 5);
        assert_eq!(headers["x-total-count"], "5");
        let (status, headers, page) = get(
            &app,
            &owner,
            &format!("/api/projects/{id}/predicates?limit=2&offset=1"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-total-count"], "5", "the total, not the page");
        assert_eq!(page.as_array().unwrap(), &all[1..3]);
    }
);

/// Every string and list a client sends (bodies and query parameters) states its bound in the
/// OpenAPI document, so schema-driven fuzzers probe the limits.
#[test]
fn every_request_string_and_list_is_bounded_in_the_schema() {
    let spec: Value = serde_json::to_value(regassist::http::openapi_document()).unwrap();
    let mut unbounded = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = format!("{at} parameter {}", p["name"]);
                check(&spec, &p["schema"], &name, &mut unbounded, 0);
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, c) in content {
                    check(
                        &spec,
                        &c["schema"],
                        &format!("{at} body {media}"),
                        &mut unbounded,
                        0,
                    );
                }
            }
        }
    }
    assert!(unbounded.is_empty(), "unbounded inputs: {unbounded:#?}");
}

fn check(spec: &Value, schema: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return check(
            spec,
            &spec["components"]["schemas"][name],
            at,
            out,
            depth + 1,
        );
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            check(spec, s, at, out, depth + 1);
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"string")
        && schema.get("enum").is_none()
        && schema.get("maxLength").is_none()
    {
        out.push(format!("{at}: string without maxLength"));
    }
    if types.contains(&"array") {
        if schema.get("maxItems").is_none() {
            out.push(format!("{at}: array without maxItems"));
        }
        check(spec, &schema["items"], &format!("{at}[]"), out, depth + 1);
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, p) in props {
            check(spec, p, &format!("{at}.{name}"), out, depth + 1);
        }
    }
}

/// A Redis that accepts connections but never answers (`CLIENT PAUSE` on a private server)
/// holds no request: the rate limiter counts in process after the link's response timeout, the
/// health check says `stalled`, and `/health` stays up as `degraded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_holds_no_request() {
    if std::env::var("TEST_REDIS_URL").is_err() {
        skipped("TEST_REDIS_URL");
        return;
    }
    let redis = crate::service::PrivateRedis::start(crate::service::free_port());
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = TestApp::start(
        Backend::Sqlite,
        &[
            ("REDIS_URL", url.as_str()),
            ("API_RATE_PER_MINUTE", "100"),
            // Longer than any test waits: a request held by Redis would fail on this timeout.
            ("REGASSIST_REQUEST_TIMEOUT_SECS", "600"),
        ],
    )
    .await
    .unwrap();
    let token = app.jwt_for("stall");
    let me = || app.get("/api/users/me").bearer_auth(&token).send();
    assert_eq!(me().await.unwrap().status(), 200, "Redis answering");

    // Pause every client of the private server for longer than the test runs.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(600_000)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();

    // A client-side bound far above the link's: a request held by Redis fails here.
    let bounded = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    for _ in 0..5 {
        let res = bounded
            .get(app.url("/api/users/me"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("a stalled Redis must not hold the request");
        assert_eq!(res.status(), 200);
    }
    let res = bounded.get(app.url("/health/redis")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["redis"]["status"], "stalled", "{body}");
    let res = bounded.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    drop(redis); // kills the paused server
}

/// PostgreSQL: a lock held elsewhere ends in a 503 with `Retry-After` (lock_timeout), both for a
/// row lock and for the audit chain's lock taken by the sealing round; a long statement too
/// (statement_timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_and_statement_waits_are_bounded() {
    let Some(app) = TestApp::start(
        Backend::Postgres,
        &[
            ("REGASSIST_DB_LOCK_TIMEOUT_MS", "300"),
            ("REGASSIST_DB_STATEMENT_TIMEOUT_MS", "1000"),
            ("REGASSIST_REQUEST_TIMEOUT_SECS", "600"),
        ],
    )
    .await
    else {
        skipped("TEST_DATABASE_URL");
        return;
    };
    let token = app.jwt_for("locked");
    let project = app.create_project(&token, json!({"name": "Pump"})).await;
    let id = project["id"].as_i64().unwrap();
    let other = sqlx::PgPool::connect(&app.db_url).await.unwrap();

    // Another session holds the project's row.
    let mut holder = other.begin().await.unwrap();
    sqlx::query("SELECT id FROM projects WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *holder)
        .await
        .unwrap();
    let res = app
        .patch(&format!("/api/projects/{id}"))
        .bearer_auth(&token)
        .json(&json!({"name": "Pump 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable", "{body}");
    assert!(body["request_id"].is_string());
    holder.rollback().await.unwrap();

    // Another session holds the audit chain's head: the write's sealing round gives up after
    // the lock timeout; the change stands with its row queued (by design), and the next round
    // seals it once the lock is free.
    let mut chain_holder = other.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7332046174811)")
        .execute(&mut *chain_holder)
        .await
        .unwrap();
    // A client-side bound far above the lock timeout: a write held by the lock fails here.
    let bounded = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let res = bounded
        .post(app.url("/api/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "Second"}))
        .send()
        .await
        .expect("the sealing round must not wait for the chain lock without bound");
    assert_eq!(res.status(), 201);
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
        .fetch_one(&other)
        .await
        .unwrap();
    assert!(queued >= 1, "the row waits in the queue");
    sqlx::query("SELECT pg_advisory_unlock(7332046174811)")
        .execute(&mut *chain_holder)
        .await
        .unwrap();
    drop(chain_holder);
    app.state.audit.sweep().await.unwrap();
    let auditor = app.user_with_role("auditor@example.com", "auditor").await;
    let (status, _, v) = get(&app, &auditor, "/api/audit/verify").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["is_valid"], true, "{v}");

    // A statement over the timeout is cut off and maps to the same 503.
    let err = sqlx::query("SELECT pg_sleep(30)")
        .execute(match &app.state.db {
            regassist::db::Db::Postgres(pg) => pg.pool.sqlx(),
            regassist::db::Db::Sqlite(_) => unreachable!("a PostgreSQL test"),
        })
        .await
        .unwrap_err();
    let api: regassist::error::ApiError = err.into();
    assert!(
        matches!(
            api,
            regassist::error::ApiError::Unavailable {
                retry_after_secs: Some(_),
                ..
            }
        ),
        "{api:?}"
    );
}

crate::with_fake_sqlite!(
    openfda_answers_are_capped_and_stay_on_their_host,
    &[("REGASSIST_OPENFDA_MAX_RETRIES", "0")],
    |app: TestApp, fake: FakeOpenFda| async move {
        use crate::common::fake_openfda::Fault;
        let token = app.jwt_for("upstream");
        // An answer past the cap is refused, not read to the end.
        fake.fail_next(1, Fault::Oversized(33 * 1024 * 1024));
        let (status, _, body) = get(&app, &token, "/api/predicates/search?q=catheter").await;
        assert_eq!(status, 502, "{body}");
        assert!(body["message"].as_str().unwrap().contains("MiB"), "{body}");

        // A redirect to another host is not followed (the API key would go with it).
        let elsewhere = FakeOpenFda::start().await;
        fake.fail_next(
            1,
            Fault::RedirectTo(format!("{}/device/510k.json", elsewhere.base)),
        );
        let (status, _, body) = get(&app, &token, "/api/predicates/search?q=stent").await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(elsewhere.calls(), 0, "nothing sent to the other host");

        // A redirect within the configured host is followed.
        fake.fail_next(
            1,
            Fault::RedirectTo(format!("{}/device/510k.json", fake.base)),
        );
        let (status, _, body) = get(&app, &token, "/api/predicates/search?q=infusion%20pump").await;
        assert_eq!(status, 200, "{body}");
    }
);

both_backends!(
    an_owners_export_verifies_its_own_rows_not_every_tenants,
    &[],
    |app: TestApp| async move {
        let owner = app.jwt_for("exporter");
        let other = app.jwt_for("neighbour");
        let mine = app.create_project(&owner, json!({"name": "Mine"})).await["id"]
            .as_i64()
            .unwrap();
        let res = app
            .patch(&format!("/api/projects/{mine}"))
            .bearer_auth(&owner)
            .json(&json!({"description": "changed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let theirs = app.create_project(&other, json!({"name": "Theirs"})).await["id"]
            .as_i64()
            .unwrap();
        let seq_of = |project: i64| {
            let db = app.state.db.clone();
            async move {
                regassist::on_read!(&db, pool => sqlx::query_scalar::<_, i64>(
                    "SELECT MIN(seq) FROM audit_events WHERE project_id = $1")
                    .bind(project).fetch_one(pool).await)
                .unwrap()
            }
        };
        let export = |token: String| {
            let app = &app;
            async move {
                let res = app
                    .post("/api/audit/export")
                    .bearer_auth(token)
                    .json(&json!({"project_id": mine, "format": "json"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.json::<Value>().await.unwrap()
            }
        };

        // Another tenant's row altered: the whole chain is broken, this owner's rows are not.
        let their_seq = seq_of(theirs).await;
        crate::audit::bypass(
            &app.state.db,
            &format!("UPDATE audit_events SET reason = 'edited' WHERE seq = {their_seq}"),
        )
        .await;
        let auditor = app.user_with_role("auditor@example.com", "auditor").await;
        let (_, _, whole) = get(&app, &auditor, "/api/audit/verify").await;
        assert_eq!(whole["is_valid"], false, "{whole}");
        let body = export(owner.clone()).await;
        assert_eq!(body["entries"].as_array().unwrap().len(), 2);
        assert_eq!(body["verification"]["is_valid"], true, "{body}");

        // This owner's own row altered: its export says so, at that row.
        let my_seq = seq_of(mine).await;
        crate::audit::bypass(
            &app.state.db,
            &format!("UPDATE audit_events SET reason = 'edited' WHERE seq = {my_seq}"),
        )
        .await;
        let body = export(owner.clone()).await;
        assert_eq!(body["verification"]["is_valid"], false, "{body}");
        assert_eq!(body["verification"]["first_invalid_seq"], my_seq);
    }
);
