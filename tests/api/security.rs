//! Hostile credentials and privileged routes: JWT claim types and required claims, subjects that
//! name local accounts, disabled users, API keys minting keys, key usage stamps, the cache clear's
//! namespaces, CSV formula cells and the security-event metric.

use crate::both_backends;
use crate::common::*;
use serde_json::{json, Value};

/// The audit chain's length (its head's sequence number).
async fn audit_len(app: &TestApp) -> i64 {
    regassist::db::audit::current_head(&app.state.db)
        .await
        .unwrap()
        .map_or(0, |(seq, _)| seq)
}

both_backends!(
    a_time_claim_that_is_not_a_number_is_refused,
    &[],
    |app: TestApp| async move {
        let later = now() + 3600;
        let cases = [
            (
                "exp as a string",
                json!({"sub": "s1", "email": "s1@example.com", "exp": later.to_string()}),
            ),
            (
                "exp as a date text",
                json!({"sub": "s1", "email": "s1@example.com", "exp": "2099-01-01T00:00:00Z"}),
            ),
            (
                "nbf as a string",
                json!({"sub": "s1", "email": "s1@example.com", "exp": later, "nbf": (now() + 1800).to_string()}),
            ),
            (
                "nbf as an object",
                json!({"sub": "s1", "email": "s1@example.com", "exp": later, "nbf": {"at": 1}}),
            ),
        ];
        for (what, claims) in cases {
            let res = app
                .get("/api/users/me")
                .bearer_auth(mint(claims))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{what}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized", "{what}");
        }
        // Numbers, integral or not, are times.
        let ok = mint(
            json!({"sub": "s1", "email": "s1@example.com", "exp": later as f64 + 0.5, "nbf": now() - 10}),
        );
        assert_eq!(status_of(&app, &ok, "/api/users/me").await, 200);
        assert_eq!(audit_len(&app).await, 1, "only the good token provisioned");
    }
);

both_backends!(
    a_configured_issuer_and_audience_are_required,
    &[
        ("JWT_ISSUER", "https://issuer.example"),
        ("JWT_AUDIENCE", "regassist")
    ],
    |app: TestApp| async move {
        let claims = |extra: Value| {
            let mut c = json!({"sub": "aud1", "email": "aud1@example.com", "exp": now() + 600});
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            mint(c)
        };
        for (what, token, want) in [
            ("neither", claims(json!({})), 401),
            ("no iss", claims(json!({"aud": "regassist"})), 401),
            (
                "no aud",
                claims(json!({"iss": "https://issuer.example"})),
                401,
            ),
            (
                "iss as a number",
                claims(json!({"iss": 7, "aud": "regassist"})),
                401,
            ),
            (
                "wrong iss",
                claims(json!({"iss": "https://other.example", "aud": "regassist"})),
                401,
            ),
            (
                "wrong aud",
                claims(json!({"iss": "https://issuer.example", "aud": "elsewhere"})),
                401,
            ),
            (
                "both",
                claims(json!({"iss": "https://issuer.example", "aud": "regassist"})),
                200,
            ),
            (
                "aud in a list",
                claims(json!({"iss": "https://issuer.example", "aud": ["x", "regassist"]})),
                200,
            ),
        ] {
            assert_eq!(
                status_of(&app, &token, "/api/users/me").await,
                want,
                "{what}"
            );
        }
    }
);

/// A token with the test secret and a header of our own choosing.
fn mint_typed(typ: Option<&str>, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = typ.map(String::from);
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

both_backends!(
    a_token_of_another_type_is_refused,
    &[],
    |app: TestApp| async move {
        let claims = json!({"sub": "t1", "email": "t1@example.com", "exp": now() + 600});
        for (typ, want) in [
            (Some("at+jwt"), 401),
            (Some("JOSE"), 401),
            (Some("refresh"), 401),
            (Some("JWT"), 200),
            (Some("jwt"), 200),
            (None, 200),
        ] {
            let token = mint_typed(typ, claims.clone());
            assert_eq!(
                status_of(&app, &token, "/api/users/me").await,
                want,
                "typ {typ:?}"
            );
        }
    }
);

both_backends!(
    a_jwt_subject_never_names_a_local_account,
    &[],
    |app: TestApp| async move {
        let admin_key = app.user_with_role("boss@example.com", "admin").await;
        let before = audit_len(&app).await;
        for sub in [
            "local:boss@example.com",
            "LOCAL:boss@example.com",
            "Local:someone@example.com",
        ] {
            let token = mint(
                json!({"sub": sub, "email": "boss@example.com", "name": "boss@example.com", "exp": now() + 600}),
            );
            let res = app
                .get("/api/users")
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{sub}");
            let body: Value = res.json().await.unwrap();
            assert!(
                body["message"].as_str().unwrap().contains("local account"),
                "{sub}: {body}"
            );
        }
        assert_eq!(audit_len(&app).await, before, "nothing provisioned");
        // The local admin itself is unaffected.
        assert_eq!(status_of(&app, &admin_key, "/api/users").await, 200);
        // A subject that merely contains the prefix elsewhere is an ordinary subject.
        let ok = app.jwt_for("oauth|local:x");
        assert_eq!(status_of(&app, &ok, "/api/users/me").await, 200);
    }
);

both_backends!(
    a_disabled_users_jwt_writes_nothing,
    &[],
    |app: TestApp| async move {
        let admin = app.user_with_role("root@example.com", "admin").await;
        let first = mint(
            json!({"sub": "gone", "email": "gone@example.com", "name": "Gone", "exp": now() + 600}),
        );
        let me: Value = app
            .get("/api/users/me")
            .bearer_auth(&first)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let res = app
            .patch(&format!("/api/users/{}", me["id"]))
            .bearer_auth(&admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let before = audit_len(&app).await;
        // A newer token with a changed profile: before the fix it was synced and audited first.
        let changed = mint(
            json!({"sub": "gone", "email": "new-address@example.com", "name": "Renamed", "exp": now() + 600}),
        );
        let res = app
            .get("/api/users/me")
            .bearer_auth(&changed)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "forbidden");
        assert_eq!(audit_len(&app).await, before, "no audit row");
        let user = regassist::db::users::find(&app.state.db, me["id"].as_i64().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email, "gone@example.com", "no profile write");
        assert_eq!(user.name, "Gone");
        // Its API keys stop too.
        let disabled_local = app.user_with_role("off@example.com", "user").await;
        let off: Value = app
            .get("/api/users/me")
            .bearer_auth(&disabled_local)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        app.patch(&format!("/api/users/{}", off["id"]))
            .bearer_auth(&admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(status_of(&app, &disabled_local, "/api/users/me").await, 403);
    }
);

both_backends!(
    an_api_key_cannot_mint_api_keys,
    &[],
    |app: TestApp| async move {
        let key = app.user_with_role("bot@example.com", "admin").await;
        let before = audit_len(&app).await;
        let res = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&key)
            .json(&json!({"name": "offspring"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "forbidden");
        let keys: Value = app
            .get("/api/users/me/api-keys")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(keys.as_array().unwrap().len(), 1, "no key was made");
        assert_eq!(audit_len(&app).await, before);
        // A person's sign-in still issues keys.
        let jwt = app.jwt_for("person");
        let res = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .json(&json!({"name": "mine"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
);

both_backends!(
    an_api_keys_last_use_is_stamped_at_most_once_a_minute,
    &[],
    |app: TestApp| async move {
        let key = app.user_with_role("stamp@example.com", "user").await;
        let list = || async {
            let keys: Value = app
                .get("/api/users/me/api-keys")
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            keys[0]["last_used_at"].clone()
        };
        // The listing request is itself a use, and is stamped before the handler reads.
        let first = list().await;
        assert!(first.is_string(), "stamped on first use: {first}");
        let stamped = chrono::DateTime::parse_from_rfc3339(first.as_str().unwrap()).unwrap();
        assert!((chrono::Utc::now() - stamped.to_utc()).num_seconds().abs() < 120);
        for _ in 0..3 {
            assert_eq!(status_of(&app, &key, "/api/users/me").await, 200);
        }
        assert_eq!(list().await, first, "not rewritten within the minute");
        // An older stamp is refreshed on the next use.
        let old = chrono::Utc::now() - chrono::Duration::minutes(5);
        let id = app
            .get("/api/users/me/api-keys")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()[0]["id"]
            .as_i64()
            .unwrap();
        // `touch_key` writes over a stamp no newer than its last argument: a future one forces it.
        let future = chrono::Utc::now() + chrono::Duration::minutes(1);
        assert!(
            regassist::db::users::touch_key(&app.state.db, id, old, future)
                .await
                .unwrap()
        );
        // The sign-in cache holds the stamp this process wrote, and reads the database's again
        // once it forgets the entry (after a minute, or at any account change).
        app.state.sign_in.account_changed();
        let refreshed = list().await;
        assert_ne!(refreshed, first);
        let at = chrono::DateTime::parse_from_rfc3339(refreshed.as_str().unwrap()).unwrap();
        assert!(at.to_utc() > old, "refreshed after a stale stamp");
    }
);

both_backends!(
    the_cache_clear_touches_only_the_response_cache,
    &[],
    |app: TestApp| async move {
        let admin = app.user_with_role("ops@example.com", "admin").await;
        let before = audit_len(&app).await;
        for prefix in [
            "rl:",
            "rl:api:user:1",
            "openfda:budget",
            "openfda",
            "p",
            "*",
        ] {
            let res = app
                .delete("/api/admin/cache")
                .query(&[("prefix", prefix)])
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{prefix}");
            let body: Value = res.json().await.unwrap();
            assert!(body["fields"]["prefix"].is_array(), "{prefix}: {body}");
        }
        assert_eq!(
            audit_len(&app).await,
            before,
            "a refused clear is not recorded"
        );
        for prefix in ["predicate_search", "predicate_search:v1:"] {
            let res = app
                .delete("/api/admin/cache")
                .query(&[("prefix", prefix)])
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{prefix}");
        }
    }
);

#[tokio::test]
async fn the_cache_clear_leaves_rate_limits_in_redis_alone() {
    let Ok(base) = std::env::var("TEST_REDIS_URL") else {
        skipped("TEST_REDIS_URL");
        return;
    };
    // Redis database 12 belongs to this test alone.
    let url = format!("{}/12", base.trim_end_matches('/'));
    let client = deadpool_redis::redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = deadpool_redis::redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let extra = [("REDIS_URL", url.as_str()), ("API_RATE_PER_MINUTE", "100")];
        let Some(app) = TestApp::start(backend, &extra).await else {
            skipped("TEST_DATABASE_URL");
            continue;
        };
        let admin = app.user_with_role("ops@example.com", "admin").await;
        assert_eq!(status_of(&app, &admin, "/api/users/me").await, 200);
        let limits = || async {
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
                .arg("rl:*")
                .query_async(&mut conn)
                .await
                .unwrap();
            keys
        };
        let held = limits().await;
        assert!(!held.is_empty(), "the request left a rate-limit window");
        for prefix in ["rl:", "rl"] {
            let res = app
                .delete("/api/admin/cache")
                .query(&[("prefix", prefix)])
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{backend:?} {prefix}");
        }
        let res = app
            .delete("/api/admin/cache?prefix=predicate_search")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let after = limits().await;
        assert!(
            held.iter().all(|k| after.contains(k)),
            "{backend:?}: rate-limit windows survive: {held:?} -> {after:?}"
        );
    }
}

both_backends!(
    csv_exports_neutralise_formula_cells,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("sheet");
        let p = app
            .create_project(
                &token,
                json!({"name": "=HYPERLINK(\"http://evil.example\",\"click\")", "intended_use": "@SUM(A1:A9)"}),
            )
            .await;
        let id = p["id"].as_i64().unwrap();
        let text = app
            .get(&format!("/api/projects/{id}/export?format=csv"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("'=HYPERLINK("), "{text}");
        assert!(text.contains("'@SUM(A1:A9)"), "{text}");
        let mut cells = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        for row in cells.records() {
            for cell in row.unwrap().iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a formula cell in the project export: {cell:?}"
                );
            }
        }
        // The audit export: the change reason is free text from a header.
        let res = app
            .patch(&format!("/api/projects/{id}"))
            .bearer_auth(&token)
            .header("x-change-reason", "-2+3 cmd")
            .header("if-match", "\"1\"")
            .json(&json!({"name": "Plain name"}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        let text = app
            .post("/api/audit/export")
            .bearer_auth(&token)
            .json(&json!({"project_id": id, "format": "csv"}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("'-2+3 cmd"), "{text}");
        let body = text.split("\r\n\r\n#").next().unwrap();
        let mut cells = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(body.as_bytes());
        for row in cells.records() {
            for cell in row.unwrap().iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a formula cell in the audit export: {cell:?}"
                );
            }
        }
    }
);

/// The value of one counter sample in a Prometheus text page (0 when absent).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

both_backends!(
    refusals_are_counted_as_security_events,
    &[],
    |app: TestApp| async move {
        let metrics = || async {
            app.get("/metrics")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let failed = "regassist_security_events_total{kind=\"sign_in_failed\"}";
        let forbidden = "regassist_security_events_total{kind=\"forbidden\"}";
        let user = app.jwt_for("nosy");
        assert_eq!(status_of(&app, &user, "/api/users/me").await, 200);
        let page = metrics().await;
        let (failed0, forbidden0) = (sample(&page, failed), sample(&page, forbidden));
        assert_eq!(status_of(&app, "rk_not-a-key", "/api/users/me").await, 401);
        assert_eq!(status_of(&app, "not.a.jwt", "/api/users/me").await, 401);
        assert_eq!(status_of(&app, &user, "/api/users").await, 403);
        let page = metrics().await;
        // Other tests in this process may add to the counters too, never take away.
        assert!(sample(&page, failed) >= failed0 + 2.0, "{page}");
        assert!(sample(&page, forbidden) >= forbidden0 + 1.0, "{page}");
    }
);
