//! The audit trail: one row per change, append-only tables, tamper detection, concurrency,
//! rollback on audit failure, exports, reasons and roles.

use crate::both_backends;
use crate::common::*;
use regassist::db::Db;
use serde_json::{json, Value};

/// Runs SQL as a superuser would, with the append-only triggers out of the way.
pub(crate) async fn bypass(db: &Db, sql: &str) {
    match db {
        Db::Postgres(pg) => {
            let mut tx = pg.pool.begin().await.unwrap();
            sqlx::query("SET LOCAL session_replication_role = replica")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        Db::Sqlite(s) => {
            let mut tx = s.write.begin().await.unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_update")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_delete")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
}

pub(crate) async fn exec(db: &Db, sql: &str) -> Result<(), sqlx::Error> {
    regassist::on_write!(db, pool => sqlx::query(sql).execute(pool).await.map(|_| ()))
}

pub(crate) async fn verify(app: &TestApp, token: &str) -> Value {
    let res = app
        .get("/api/audit/verify")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// An auditor key plus six audited project changes; returns (auditor token, owner token, project id).
pub(crate) async fn seed(app: &TestApp) -> (String, String, i64) {
    let auditor = app.user_with_role("auditor@example.com", "auditor").await;
    let owner = app.jwt_for("owner");
    let p = app.create_project(&owner, json!({"name": "Chain"})).await;
    let id = p["id"].as_i64().unwrap();
    for i in 0..3 {
        let res = app
            .patch(&format!("/api/projects/{id}"))
            .bearer_auth(&owner)
            .header("X-Change-Reason", format!("step {i}"))
            .json(&json!({"description": format!("v{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    (auditor, owner, id)
}

/// Changes project `id`'s description as `owner` (one audited change each).
pub(crate) async fn describe(app: &TestApp, owner: &str, id: i64, descriptions: &[&str]) {
    for description in descriptions {
        let res = app
            .patch(&format!("/api/projects/{id}"))
            .bearer_auth(owner)
            .json(&json!({"description": description}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

both_backends!(
    each_change_writes_one_row_and_failures_none,
    &[],
    |app: TestApp| async move {
        let (auditor, owner, id) = seed(&app).await;
        let all: Value = app
            .get("/api/audit/events?limit=100")
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = all["audit_entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "user.create",
                "api_key.issue",
                "user.provision",
                "project.create",
                "project.update",
                "project.update",
                "project.update"
            ]
        );
        let seqs: Vec<i64> = all["audit_entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
        let update = &all["audit_entries"][4];
        assert_eq!(update["reason"], "step 0");
        assert_eq!(update["before"]["description"], Value::Null);
        assert_eq!(update["after"]["description"], "v0");
        assert_eq!(update["actor_email"], "owner@example.com");
        assert_eq!(update["prev_hash"], all["audit_entries"][3]["hash"]);

        // Failed requests write nothing.
        let before = all["total_count"].as_i64().unwrap();
        assert_eq!(
            app.patch(&format!("/api/projects/{id}"))
                .bearer_auth(&owner)
                .json(&json!({"name": ""}))
                .send()
                .await
                .unwrap()
                .status(),
            422
        );
        assert_eq!(
            app.patch(&format!("/api/projects/{id}"))
                .bearer_auth(&owner)
                .header("If-Match", "\"1\"")
                .json(&json!({"name": "x"}))
                .send()
                .await
                .unwrap()
                .status(),
            412
        );
        assert_eq!(
            app.delete(&format!("/api/projects/{id}"))
                .bearer_auth(app.jwt_for("intruder"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        let after: Value = app
            .get("/api/audit/events")
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Only the intruder's first sign-in (user.provision) was added.
        assert_eq!(after["total_count"].as_i64().unwrap(), before + 1);

        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], true);
        assert_eq!(v["hash_algorithm"], "SHA-256");
        assert_eq!(v["head_seq"], before + 1);
    }
);

both_backends!(the_database_refuses_edits, &[], |app: TestApp| async move {
    seed(&app).await;
    assert!(exec(
        &app.state.db,
        "UPDATE audit_events SET reason = 'edited' WHERE seq = 2"
    )
    .await
    .is_err());
    assert!(
        exec(&app.state.db, "DELETE FROM audit_events WHERE seq = 2")
            .await
            .is_err()
    );
    if app.backend == Backend::Postgres {
        assert!(exec(&app.state.db, "TRUNCATE audit_events").await.is_err());
    }
    let count: i64 = regassist::on_read!(&app.state.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await).unwrap();
    assert_eq!(count, 7);
});

both_backends!(
    changing_any_field_is_detected_at_its_seq,
    &[],
    |app: TestApp| async move {
        let (auditor, _, _) = seed(&app).await;
        let columns = [
            (
                "occurred_at",
                if app.backend == Backend::Postgres {
                    "occurred_at + interval '1 microsecond'"
                } else {
                    "'2020-01-01T00:00:00.000001+00:00'"
                },
            ),
            ("actor_id", "999"),
            ("actor_email", "'mallory@example.com'"),
            ("action", "'project.view'"),
            ("entity_type", "'thing'"),
            ("entity_id", "'77'"),
            ("project_id", "999"),
            ("reason", "'forged'"),
            ("before_json", "'{\"x\":1}'"),
            ("after_json", "'{}'"),
            ("request_id", "'r-forged'"),
            (
                "prev_hash",
                "'0000000000000000000000000000000000000000000000000000000000000001'",
            ),
            (
                "hash",
                "'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'",
            ),
        ];
        for (column, value) in columns {
            // Keep the original to put it back afterwards.
            let saved = "CREATE TABLE saved_row AS SELECT * FROM audit_events WHERE seq = 5";
            bypass(&app.state.db, saved).await;
            bypass(
                &app.state.db,
                &format!("UPDATE audit_events SET {column} = {value} WHERE seq = 5"),
            )
            .await;
            let v = verify(&app, &auditor).await;
            assert_eq!(v["is_valid"], false, "{column}");
            assert_eq!(v["first_invalid_seq"], 5, "{column}: {v}");
            bypass(&app.state.db, "DELETE FROM audit_events WHERE seq = 5").await;
            bypass(
                &app.state.db,
                "INSERT INTO audit_events SELECT * FROM saved_row",
            )
            .await;
            bypass(&app.state.db, "DROP TABLE saved_row").await;
            assert_eq!(
                verify(&app, &auditor).await["is_valid"],
                true,
                "restored after {column}"
            );
        }
    }
);

both_backends!(
    deleted_and_swapped_rows_are_detected,
    &[],
    |app: TestApp| async move {
        let (auditor, _, _) = seed(&app).await;
        bypass(
            &app.state.db,
            "UPDATE audit_events SET seq = 1000 WHERE seq = 3",
        )
        .await;
        bypass(
            &app.state.db,
            "UPDATE audit_events SET seq = 3 WHERE seq = 6",
        )
        .await;
        bypass(
            &app.state.db,
            "UPDATE audit_events SET seq = 6 WHERE seq = 1000",
        )
        .await;
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false);
        assert_eq!(v["first_invalid_seq"], 3, "swap: {v}");
        // Swap back, then delete a middle row.
        bypass(
            &app.state.db,
            "UPDATE audit_events SET seq = 1000 WHERE seq = 3",
        )
        .await;
        bypass(
            &app.state.db,
            "UPDATE audit_events SET seq = 3 WHERE seq = 6",
        )
        .await;
        bypass(
            &app.state.db,
            "UPDATE audit_events SET seq = 6 WHERE seq = 1000",
        )
        .await;
        assert_eq!(verify(&app, &auditor).await["is_valid"], true);
        bypass(&app.state.db, "DELETE FROM audit_events WHERE seq = 4").await;
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false);
        assert_eq!(v["first_invalid_seq"], 4, "gap: {v}");
    }
);

both_backends!(
    two_hundred_concurrent_writers_make_one_chain,
    &[],
    |app: TestApp| async move {
        let auditor = app.user_with_role("auditor@example.com", "auditor").await;
        let writer = app.user_with_role("writer@example.com", "user").await;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let req = app
                .post("/api/projects")
                .bearer_auth(&writer)
                .json(&json!({"name": format!("p{i}")}));
            tasks.push(tokio::spawn(async move {
                req.send().await.unwrap().status().as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 201);
        }
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], true, "{v}");
        assert_eq!(v["total_entries"], 204);
        let seqs: Vec<i64> = regassist::on_read!(&app.state.db, pool => sqlx::query_scalar("SELECT seq FROM audit_events ORDER BY seq").fetch_all(pool).await).unwrap();
        assert_eq!(seqs, (1..=204).collect::<Vec<i64>>());
        let creates: i64 = regassist::on_read!(&app.state.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'project.create'").fetch_one(pool).await).unwrap();
        assert_eq!(creates, 200);
    }
);

/// Makes every insert into `table` fail, as a full disk or a broken constraint would.
pub(crate) async fn fail_inserts_into(app: &TestApp, table: &str) {
    let fail = match app.backend {
        Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'forced'; END; $$".to_string(),
            format!("CREATE TRIGGER fail_audit BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION fail_audit()"),
        ],
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'forced'); END"
        )],
    };
    for sql in fail {
        exec(&app.state.db, &sql).await.unwrap();
    }
}

pub(crate) async fn count(app: &TestApp, sql: &str) -> i64 {
    regassist::on_read!(&app.state.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
        .unwrap()
}

both_backends!(
    a_failed_audit_insert_rolls_the_change_back,
    &[],
    |app: TestApp| async move {
        let token = app.user_with_role("w@example.com", "user").await;
        // Where a write puts its audit row: PostgreSQL queues it, SQLite chains it at once.
        let table = match app.backend {
            Backend::Postgres => "audit_pending",
            Backend::Sqlite => "audit_events",
        };
        fail_inserts_into(&app, table).await;
        let res = app
            .post("/api/projects")
            .bearer_auth(&token)
            .json(&json!({"name": "must not exist"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "internal_error");
        assert!(
            !body["message"].as_str().unwrap().contains("forced"),
            "no internals in the body"
        );
        assert_eq!(count(&app, "SELECT COUNT(*) FROM projects").await, 0);
    }
);

/// PostgreSQL only: SQLite chains a write's row in the write's own transaction, with no round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_change_whose_round_fails_is_sealed_by_the_next_round() {
    let Some(app) = TestApp::start(Backend::Postgres, &[]).await else {
        skipped("TEST_DATABASE_URL");
        return;
    };
    let auditor = app.user_with_role("auditor@example.com", "auditor").await;
    let token = app.user_with_role("w@example.com", "user").await;
    let before = count(&app, "SELECT COUNT(*) FROM audit_events").await;
    fail_inserts_into(&app, "audit_events").await;
    // The change and its audit row commit together; only the chain's round fails, so the
    // change stands and its row waits in the queue.
    let first = app.create_project(&token, json!({"name": "first"})).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM audit_pending").await, 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM audit_events").await,
        before
    );
    exec(&app.state.db, "DROP TRIGGER fail_audit ON audit_events")
        .await
        .unwrap();
    let second = app.create_project(&token, json!({"name": "second"})).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM audit_pending").await, 0);
    let created: Vec<Option<String>> =
        regassist::on_read!(&app.state.db, pool => sqlx::query_scalar(
            "SELECT entity_id FROM audit_events WHERE action = 'project.create' ORDER BY seq")
            .fetch_all(pool).await)
        .unwrap();
    assert_eq!(
        created,
        [first["id"].to_string(), second["id"].to_string()].map(Some),
        "sealed in the order the rows were queued"
    );
    let v = verify(&app, &auditor).await;
    assert_eq!(v["is_valid"], true, "{v}");
    assert_eq!(v["total_entries"], before + 2);
}

both_backends!(
    rows_left_queued_by_a_stopped_replica_are_swept_onto_the_chain,
    &[],
    |app: TestApp| async move {
        let auditor = app.user_with_role("auditor@example.com", "auditor").await;
        let before = count(&app, "SELECT COUNT(*) FROM audit_events").await;
        // What a replica leaves when it stops between its commit and its round.
        exec(
            &app.state.db,
            "INSERT INTO audit_pending (occurred_at, action, entity_type, request_id) \
             VALUES ('2026-01-02T03:04:05.000006Z', 'project.create', 'project', 'lost-round')",
        )
        .await
        .unwrap();
        // The service's own periodic sweep may take the row first; either way it is sealed once.
        assert!(app.state.audit.sweep().await.unwrap() <= 1);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM audit_pending").await, 0);
        assert_eq!(app.state.audit.sweep().await.unwrap(), 0);
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], true, "{v}");
        assert_eq!(v["total_entries"], before + 1);
        let request: String = regassist::on_read!(&app.state.db, pool => sqlx::query_scalar(
            "SELECT request_id FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_one(pool).await)
        .unwrap();
        assert_eq!(request, "lost-round");
    }
);

both_backends!(
    exports_are_repeatable_and_carry_the_verification,
    &[],
    |app: TestApp| async move {
        let (auditor, owner, id) = seed(&app).await;
        for format in ["json", "csv"] {
            let body = json!({"project_id": id, "format": format});
            let a = app
                .post("/api/audit/export")
                .bearer_auth(&owner)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(a.status(), 200);
            assert!(a.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("audit-project-{id}.{format}")));
            let a = a.bytes().await.unwrap();
            let b = app
                .post("/api/audit/export")
                .bearer_auth(&owner)
                .json(&body)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(a, b, "{format} export is byte-identical");
            let text = String::from_utf8(a.to_vec()).unwrap();
            assert!(text.contains("is_valid"), "{format}");
        }
        let e: Value = app
            .post("/api/audit/export")
            .bearer_auth(&auditor)
            .json(&json!({"format": "json"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(e["verification"]["is_valid"], true);
        assert_eq!(e["entries"].as_array().unwrap().len(), 7);
        // A plain user cannot export the whole log or read others' trails.
        assert_eq!(
            app.post("/api/audit/export")
                .bearer_auth(&owner)
                .json(&json!({"format": "json"}))
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            app.post("/api/audit/export")
                .bearer_auth(&owner)
                .json(&json!({"format": "pdf"}))
                .send()
                .await
                .unwrap()
                .status(),
            422
        );
        assert_eq!(
            app.get(&format!("/api/audit/trail/{id}"))
                .bearer_auth(app.jwt_for("other"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            app.get(&format!("/api/audit/trail/{id}"))
                .bearer_auth(&auditor)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            app.get("/api/audit/verify")
                .bearer_auth(&owner)
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        let integrity: Value = app
            .get(&format!("/api/audit/integrity/{id}"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(integrity["is_valid"], true);
        assert_eq!(integrity["total_entries"], 4);
        // Filters.
        let t: Value = app
            .get(&format!(
                "/api/audit/trail/{id}?action=project.update&limit=2"
            ))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(t["total_count"], 3);
        assert_eq!(t["audit_entries"].as_array().unwrap().len(), 2);
        let t: Value = app
            .get(&format!("/api/audit/trail/{id}?from=2999-01-01T00:00:00Z"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(t["total_count"], 0);
    }
);

both_backends!(
    delete_reasons_when_required,
    &[("REGASSIST_AUDIT_REQUIRE_DELETE_REASON", "true")],
    |app: TestApp| async move {
        let token = app.jwt_for("deleter");
        let p = app.create_project(&token, json!({"name": "Doomed"})).await;
        let path = format!("/api/projects/{}", p["id"]);
        let res = app.delete(&path).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.json::<Value>().await.unwrap()["fields"]["X-Change-Reason"].is_array());
        let res = app
            .delete(&path)
            .bearer_auth(&token)
            .header("X-Change-Reason", "duplicate of project 1")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let trail: Value = app
            .get(&format!(
                "/api/audit/trail/{}?action=project.delete",
                p["id"]
            ))
            .bearer_auth(app.user_with_role("a@example.com", "auditor").await)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            trail["audit_entries"][0]["reason"],
            "duplicate of project 1"
        );
        assert_eq!(trail["audit_entries"][0]["after"], Value::Null);
    }
);

both_backends!(
    secrets_never_enter_the_audit_table,
    &[],
    |app: TestApp| async move {
        let jwt = app.jwt_for("secretive");
        let issued: Value = app
            .post("/api/users/me/api-keys")
            .bearer_auth(&jwt)
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = issued["key"].as_str().unwrap();
        app.create_project(key, json!({"name": "with key"})).await;
        app.delete(&format!("/api/users/me/api-keys/{}", issued["id"]))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap();
        let rows: Vec<(Option<String>, Option<String>)> = regassist::on_read!(&app.state.db, pool => sqlx::query_as("SELECT before_json, after_json FROM audit_events").fetch_all(pool).await).unwrap();
        let dump = format!("{rows:?}");
        assert!(
            dump.contains("api_key") || dump.contains("prefix"),
            "key rows are audited"
        );
        for secret in [
            key,
            &jwt,
            JWT_SECRET,
            &regassist::accounts::hash_api_key(key),
        ] {
            assert!(
                !dump.contains(secret),
                "a secret leaked into the audit table"
            );
        }
    }
);
