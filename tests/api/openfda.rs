//! The openFDA client's behaviour under trouble, through the HTTP API: 429 and 5xx retries, the
//! circuit breaker, single flight, the health check, key redaction and deep paging.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_openfda::{FakeOpenFda, Fault};
use crate::common::*;
use crate::support::get;
use crate::with_fake_sqlite;

with_fake_sqlite!(
    rate_limited_calls_are_retried_a_bounded_number_of_times,
    &[("REGASSIST_OPENFDA_MAX_RETRIES", "2")],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("limited");
        fake.fail_always(Fault::RateLimit(None));
        let (status, headers, body) =
            get(&app, &token, "/api/predicates/search?q=infusion%20pump").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "service_unavailable");
        assert!(
            headers["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        assert_eq!(fake.calls(), 3, "one call and two retries");
        // 429 says nothing about openFDA's health: the breaker stays closed.
        assert_eq!(
            app.state.openfda.circuit(),
            regassist::openfda::CircuitState::Closed
        );

        // A transient 500 is retried into a success.
        fake.recover();
        fake.fail_next(1, Fault::Status(503));
        let (status, _, _) = get(&app, &token, "/api/predicates/search?q=catheter").await;
        assert_eq!(status, 200);
    }
);

with_fake_sqlite!(
    a_slow_upstream_answers_504_with_retry_after,
    &[
        ("REGASSIST_OPENFDA_MAX_RETRIES", "0"),
        ("REGASSIST_OPENFDA_TIMEOUT_MS", "200")
    ],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("slow");
        fake.fail_next(1, Fault::Hang(Duration::from_secs(5)));
        let (status, headers, body) = get(&app, &token, "/api/predicates/search?q=stent").await;
        assert_eq!(status, 504, "{body}");
        assert!(headers.contains_key("retry-after"));
    }
);

with_fake_sqlite!(
    the_breaker_opens_and_recovers,
    &[
        ("REGASSIST_OPENFDA_MAX_RETRIES", "0"),
        ("REGASSIST_OPENFDA_BREAKER_THRESHOLD", "3"),
        ("REGASSIST_OPENFDA_BREAKER_COOLDOWN_MS", "300"),
    ],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("breaker");
        let (_, _, health) = get(&app, &token, "/health").await;
        assert_eq!(health["checks"]["openfda"]["status"], "idle");
        fake.fail_always(Fault::Status(500));
        for word in ["alpha", "bravo", "charlie"] {
            let (status, _, _) = get(
                &app,
                &token,
                &format!("/api/predicates/search?q=catheter%20{word}"),
            )
            .await;
            assert_eq!(status, 503);
        }
        assert_eq!(fake.calls(), 3);
        // Open: refused at once, without a call.
        let (status, headers, body) =
            get(&app, &token, "/api/predicates/search?q=catheter%20delta").await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("circuit open"),
            "{body}"
        );
        assert!(headers.contains_key("retry-after"));
        assert_eq!(fake.calls(), 3);
        let (status, _, health) = get(&app, &token, "/health").await;
        assert_eq!(
            status, 200,
            "openFDA trouble never makes the service unhealthy"
        );
        assert_eq!(health["status"], "degraded");
        assert_eq!(health["checks"]["openfda"]["details"]["circuit"], "open");
        assert_eq!(health["checks"]["openfda"]["healthy"], false);

        // After the cool-down one probe goes through; its success closes the circuit.
        fake.recover();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (status, _, _) = get(&app, &token, "/api/predicates/search?q=catheter%20echo").await;
        assert_eq!(status, 200);
        assert_eq!(
            app.state.openfda.circuit(),
            regassist::openfda::CircuitState::Closed
        );
        let (_, _, health) = get(&app, &token, "/health").await;
        assert_eq!(health["status"], "ok");
        assert_eq!(health["checks"]["openfda"]["status"], "ok");
    }
);

with_fake_sqlite!(
    concurrent_identical_searches_make_one_upstream_call,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("crowd");
        // Hold openFDA's first answer back so that all hundred requests are in flight together.
        fake.fail_next(1, Fault::Hang(Duration::from_millis(300)));
        let mut tasks = Vec::new();
        for i in 0..100 {
            let client = app.client.clone();
            let url = app.url("/api/predicates/search?q=Surgical%20Mask&limit=5");
            let token = token.clone();
            // Different spellings of the same query share one flight.
            let url = if i % 2 == 0 {
                url
            } else {
                url.replace("Surgical%20Mask", "mask%20%20SURGICAL")
            };
            tasks.push(tokio::spawn(async move {
                let res = client.get(url).bearer_auth(token).send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }));
        }
        let mut first: Option<Value> = None;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, 200, "{body}");
            let keys = body["results"].clone();
            match &first {
                None => first = Some(keys),
                Some(k) => assert_eq!(k, &keys),
            }
        }
        assert_eq!(fake.calls_to("510k"), 1);
        assert!(fake.calls_to("classification") <= 1);
        assert!(fake.calls_to("recall") <= 1);
    }
);

with_fake_sqlite!(
    the_api_key_is_sent_but_never_shown,
    &[
        ("OPENFDA_API_KEY", "key-0123456789-secret"),
        ("REGASSIST_OPENFDA_MAX_RETRIES", "0")
    ],
    |app: TestApp, fake: FakeOpenFda| async move {
        let token = app.jwt_for("keyholder");
        let admin = app.user_with_role("keys@example.com", "admin").await;
        // A misbehaving upstream echoes the query string (with the key) in its error.
        fake.fail_next(1, Fault::EchoQuery);
        let (status, _, body) = get(&app, &token, "/api/predicates/search?q=catheter").await;
        assert_eq!(status, 503);
        let (_, _, health) = get(&app, &token, "/health").await;
        let (_, _, status_body) = get(&app, &admin, "/api/admin/openfda/status").await;
        let metrics = app
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for text in [
            body.to_string(),
            health.to_string(),
            status_body.to_string(),
            metrics,
        ] {
            assert!(!text.contains("0123456789-secret"), "{text}");
        }
        assert!(
            status_body["last_error"]
                .as_str()
                .unwrap()
                .contains("api_key=***"),
            "{status_body}"
        );
        let keys = fake.state.counters.api_keys.lock().unwrap().clone();
        assert!(
            keys.contains("key-0123456789-secret"),
            "the key was sent as api_key"
        );
    }
);

with_fake_sqlite!(
    deep_pages_follow_search_after,
    &[],
    |app: TestApp, fake: FakeOpenFda| async move {
        use regassist::openfda::query::{Field, Search, Term};
        use regassist::openfda::{Endpoint, Request};
        let search = Search::new().is(Field::ProductCode, Term::product_code("FRN").unwrap());
        let req = Request::new(Endpoint::Device510k, search, 50);
        let page = app.state.openfda.collect::<Value>(&req, 120).await.unwrap();
        assert_eq!(page.results.len(), 120);
        assert!(page.total > 120);
        assert_eq!(fake.calls(), 3);
        let mut ks: Vec<&str> = page
            .results
            .iter()
            .map(|r| r["k_number"].as_str().unwrap())
            .collect();
        ks.sort();
        ks.dedup();
        assert_eq!(ks.len(), 120, "pages do not overlap");
    }
);
