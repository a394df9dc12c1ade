//! Authentication: JWT rules (RFC 8725), provisioning, API keys, roles, disabled users, rate limits.

use crate::both_backends;
use crate::common::*;
use serde_json::{json, Value};

both_backends!(bad_tokens_get_401, &[], |app: TestApp| async move {
    let secret = JWT_SECRET.as_bytes();
    let claims =
        |exp: i64| json!({"sub": "u1", "email": "u1@example.com", "name": "U", "exp": exp});
    let alg_none = {
        use base64::Engine;
        let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            e(json!({"alg": "none", "typ": "JWT"})),
            e(claims(now() + 600))
        )
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("not-a-jwt".into())),
        ("expired", Some(mint(claims(now() - 3600)))),
        (
            "not yet valid",
            Some(mint(
                json!({"sub": "u1", "email": "e@x.y", "exp": now() + 3600, "nbf": now() + 1800}),
            )),
        ),
        (
            "wrong signature",
            Some(mint_with(
                claims(now() + 600),
                b"another-secret-another-secret-0123456789",
                jsonwebtoken::Algorithm::HS256,
            )),
        ),
        (
            "wrong algorithm",
            Some(mint_with(
                claims(now() + 600),
                secret,
                jsonwebtoken::Algorithm::HS512,
            )),
        ),
        ("alg none", Some(alg_none)),
        ("no exp", Some(mint(json!({"sub": "u1", "email": "e@x.y"})))),
        ("unknown api key", Some("rk_definitely-not-issued".into())),
    ];
    for (what, token) in cases {
        let mut req = app.get("/api/users/me");
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{what}");
        assert!(!body["request_id"].as_str().unwrap().is_empty());
    }
    // A good token in the query string is not accepted.
    let good = app.jwt_for("u1");
    let res = app
        .get(&format!("/api/users/me?access_token={good}&token={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The same token in the header is.
    let res = app
        .get("/api/users/me")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
});

both_backends!(
    jwt_provisions_and_updates_the_user,
    &[],
    |app: TestApp| async move {
        let t1 = mint(
            json!({"sub": "nextauth|42", "email": "old@example.com", "name": "Ada", "exp": now() + 600}),
        );
        let me: Value = app
            .get("/api/users/me")
            .bearer_auth(&t1)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], "old@example.com");
        assert_eq!(me["role"], "user");
        let t2 = mint(
            json!({"sub": "nextauth|42", "email": "new@example.com", "name": "Ada L", "exp": now() + 600}),
        );
        let me2: Value = app
            .get("/api/users/me")
            .bearer_auth(&t2)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me2["id"], me["id"], "same user, not a new one");
        assert_eq!(me2["email"], "new@example.com");
        assert_eq!(me2["name"], "Ada L");
    }
);

both_backends!(
    api_keys_issue_list_use_revoke,
    &[],
    |app: TestApp| async move {
        let jwt = app.jwt_for("keyowner");
        let res = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .json(&json!({"name": "ci script"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let issued: Value = res.json().await.unwrap();
        let key = issued["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("rk_"));

        let listed: Value = app
            .get("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = listed.to_string();
        assert!(!text.contains(&key), "the list never shows the key");
        assert_eq!(listed[0]["name"], "ci script");

        let me: Value = app
            .get("/api/users/me")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], "keyowner@example.com");

        // Another user cannot revoke it: 404.
        let other = app.jwt_for("someone-else");
        let path = format!("/api/users/me/api-keys/{}", issued["id"]);
        assert_eq!(
            app.delete(&path)
                .bearer_auth(&other)
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            app.delete(&path)
                .bearer_auth(&jwt)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            app.get("/api/users/me")
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .status(),
            401,
            "revoked at once"
        );

        // Bad requests.
        let res = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .json(&json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let expired: Value = res.json().await.unwrap();
        let res = app
            .get("/api/users/me")
            .bearer_auth(expired["key"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            401,
            "a key whose expiry has passed never works"
        );
        let res = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .json(&json!([{"name": "x"}]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "arrays are not objects");
        let res = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .json(&json!({"name": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let body: Value = res.json().await.unwrap();
        assert!(body["fields"]["name"].is_array());
    }
);

both_backends!(expired_keys_are_refused, &[], |app: TestApp| async move {
    use regassist::db::users;
    let actor = regassist::audit::Actor::default();
    let user =
        regassist::accounts::create_user(&app.state.audit, &actor, "exp@example.com", "E", "user")
            .await
            .unwrap();
    let (key, prefix, hash) = regassist::accounts::generate_api_key();
    let mut tx = app.state.db.begin().await.unwrap();
    users::insert_key(
        &mut tx,
        user.id,
        "old",
        &prefix,
        &hash,
        Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        app.get("/api/users/me")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
});

both_backends!(roles_and_disabled_users, &[], |app: TestApp| async move {
    let admin = app.user_with_role("admin@example.com", "admin").await;
    let user = app.jwt_for("plain");
    let me: Value = app
        .get("/api/users/me")
        .bearer_auth(&user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/users")
            .bearer_auth(&user)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = app
        .get("/api/users")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "2");

    let path = format!("/api/users/{}", me["id"]);
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .json(&json!({"role": "emperor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .get("/api/users/me")
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "disabled at once");
    assert_eq!(
        app.patch("/api/users/999999")
            .bearer_auth(&admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
});

both_backends!(
    inbound_rate_limit_answers_429,
    &[("API_RATE_PER_MINUTE", "3")],
    |app: TestApp| async move {
        let token = app.jwt_for("busy");
        for i in 0..3 {
            assert_eq!(
                app.get("/api/users/me")
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200,
                "request {i}"
            );
        }
        let res = app
            .get("/api/users/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 429);
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "rate_limited");
        // Another user has their own budget; health is never limited.
        assert_eq!(
            app.get("/api/users/me")
                .bearer_auth(app.jwt_for("calm"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        for _ in 0..5 {
            assert_eq!(app.get("/health/live").send().await.unwrap().status(), 200);
        }
    }
);

#[tokio::test]
async fn the_inbound_limit_is_shared_by_replicas_through_redis() {
    let Ok(base) = std::env::var("TEST_REDIS_URL") else {
        skipped("TEST_REDIS_URL");
        return;
    };
    // Redis database 13 belongs to this test alone.
    let url = format!("{}/13", base.trim_end_matches('/'));
    let client = deadpool_redis::redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = deadpool_redis::redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .unwrap();
    let extra = [("REDIS_URL", url.as_str()), ("API_RATE_PER_MINUTE", "4")];
    let a = TestApp::start(Backend::Sqlite, &extra).await.unwrap();
    let b = TestApp::start(Backend::Sqlite, &extra).await.unwrap();
    // The same user (id 1 on both replicas' databases) spends one budget.
    let (ta, tb) = (a.jwt_for("shared"), b.jwt_for("shared"));
    for (app, token) in [(&a, &ta), (&b, &tb), (&a, &ta), (&b, &tb)] {
        assert_eq!(
            app.get("/api/users/me")
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        a.get("/api/users/me")
            .bearer_auth(&ta)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        b.get("/api/users/me")
            .bearer_auth(&tb)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
}
