//! Health endpoints, error format and middleware behaviour.

use crate::both_backends;
use crate::common::*;
use serde_json::Value;

both_backends!(
    health_answers_as_specified,
    &[],
    |app: TestApp| async move {
        let res = app.get("/health").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("x-request-id"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["service"], "medical-device-regulatory-assistant");
        assert_eq!(body["checks"]["database"]["status"], "connected");
        let backend = if app.backend == Backend::Postgres {
            "postgres"
        } else {
            "sqlite"
        };
        assert_eq!(body["checks"]["database"]["details"]["backend"], backend);
        assert_eq!(body["checks"]["redis"]["status"], "not_configured");

        let res = app.get("/health/redis").send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["checks"]["redis"]["status"], "not_configured");

        for path in ["/health/database", "/health/live", "/health/ready"] {
            assert_eq!(app.get(path).send().await.unwrap().status(), 200, "{path}");
        }
    }
);
