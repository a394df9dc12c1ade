//! Rendered list pages (`http::pages`): a replica serves a page it kept only while nothing on it
//! has changed, whichever replica, or an operator's SQL, made the change.

use crate::both_backends;
use crate::common::*;
use serde_json::{json, Value};

/// A list or trail as the first replica answers it: status, `X-Total-Count` (lists) and body.
async fn read(app: &TestApp, token: &str, path: &str) -> (u16, Option<String>, Value) {
    let res = app.get(path).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    let total = res
        .headers()
        .get("x-total-count")
        .map(|v| v.to_str().unwrap().to_string());
    (status, total, res.json().await.unwrap())
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

/// Runs SQL as an operator would, beside the service.
async fn operator_sql(app: &TestApp, sql: &str) {
    match &app.state.db {
        regassist::db::Db::Postgres(pg) => sqlx::query(sql).execute(pg.pool.sqlx()).await.map(drop),
        regassist::db::Db::Sqlite(s) => sqlx::query(sql).execute(&s.write).await.map(drop),
    }
    .unwrap();
}

both_backends!(
    a_change_shows_at_once_on_every_replica,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("pages-owner");
        let other = app.replica().await;
        let first = app.create_project(&token, json!({"name": "first"})).await;
        let id = first["id"].as_i64().unwrap();
        let list = "/api/projects?limit=20";

        let (status, total, body) = read(&app, &token, list).await;
        assert_eq!((status, total.as_deref()), (200, Some("1")));
        assert_eq!(names(&body), ["first"]);
        let kept = app.state.pages.bytes();
        assert!(kept > 0, "the page was kept");
        assert_eq!(read(&app, &token, list).await.2, body, "served again");
        assert_eq!(app.state.pages.bytes(), kept, "from the kept page");

        // Renamed through the other replica.
        let project = format!("/api/projects/{id}");
        let rename = other.patch(&project).header("If-Match", "\"1\"");
        let rename = rename.json(&json!({"name": "renamed"}));
        assert_eq!(status_after(rename, &token).await, 200);
        let (_, total, body) = read(&app, &token, list).await;
        assert_eq!(
            (total.as_deref(), names(&body)),
            (Some("1"), vec!["renamed"])
        );

        // A second project through the other replica, then the first deleted there.
        let second = other.post("/api/projects").json(&json!({"name": "second"}));
        assert_eq!(status_after(second, &token).await, 201);
        let (_, total, body) = read(&app, &token, list).await;
        assert_eq!(
            (total.as_deref(), names(&body)),
            (Some("2"), vec!["second", "renamed"])
        );
        let delete = other.delete(&project).header("If-Match", "\"2\"");
        assert_eq!(status_after(delete, &token).await, 200);
        let (_, total, body) = read(&app, &token, list).await;
        assert_eq!(
            (total.as_deref(), names(&body)),
            (Some("1"), vec!["second"])
        );

        // An operator's SQL beside the service: the triggers see it too.
        operator_sql(
            &app,
            "UPDATE projects SET name = 'by hand' WHERE name = 'second'",
        )
        .await;
        let (_, _, body) = read(&app, &token, list).await;
        assert_eq!(names(&body), ["by hand"]);

        // Another owner's list is its own page, and stays empty.
        let stranger = app.jwt_for("pages-stranger");
        let (_, total, body) = read(&app, &stranger, list).await;
        assert_eq!((total.as_deref(), body), (Some("0"), json!([])));
    }
);

both_backends!(
    a_trail_grows_at_once_on_every_replica,
    &[],
    |app: TestApp| async move {
        let token = app.jwt_for("pages-trail");
        let other = app.replica().await;
        let project = app.create_project(&token, json!({"name": "audited"})).await;
        let id = project["id"].as_i64().unwrap();
        let trail = format!("/api/audit/trail/{id}?limit=50");

        let (status, _, body) = read(&app, &token, &trail).await;
        assert_eq!(status, 200);
        let before = body["total_count"].as_i64().unwrap();
        assert_eq!(read(&app, &token, &trail).await.2, body, "served again");

        let activate = other.patch(&format!("/api/projects/{id}"));
        let activate = activate
            .header("If-Match", "\"1\"")
            .json(&json!({"status": "active"}));
        assert_eq!(status_after(activate, &token).await, 200);
        let (_, _, body) = read(&app, &token, &trail).await;
        assert_eq!(body["total_count"].as_i64().unwrap(), before + 1);
        let entries = body["audit_entries"].as_array().unwrap();
        assert_eq!(entries.len() as i64, before + 1);
        assert_eq!(entries.last().unwrap()["after"]["status"], "active");

        // A stranger is still refused, though the page is kept.
        let stranger = app.jwt_for("pages-trail-stranger");
        assert_eq!(read(&app, &stranger, &trail).await.0, 404);
    }
);
