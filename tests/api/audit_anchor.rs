//! Anchoring the audit trail with the default settings: truncation and rewrites are caught (also
//! after a restart), the checkpoint writer refuses a cut or rewritten chain, a deleted checkpoint
//! file fails verification, waiting rows are named, exports are checked offline, the service
//! role cannot touch audit rows, and SQLite restores keep the old database and refuse to run
//! under a server.

use std::process::Command;

use regassist::audit::{Mode, Outcome};
use regassist::db::audit::{AuditFilter, AuditRow};
use regassist::db::Db;
use serde_json::{json, Value};
use sqlx::{ConnectOptions, Connection};

use crate::audit::{bypass, count, describe, exec, fail_inserts_into, seed, verify};
use crate::both_backends;
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_regassist");

/// The checkpoint key the server uses: the embedded key file, or the PostgreSQL test key.
fn key_of(app: &TestApp) -> String {
    match regassist::audit::key_file(&app.state.config) {
        Some(path) => std::fs::read_to_string(path).unwrap().trim().to_string(),
        None => CHECKPOINT_KEY.to_string(),
    }
}

/// Runs the binary against the app's database and checkpoint file.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db_url)
        .env(
            "REGASSIST_AUDIT_CHECKPOINT_FILE",
            app.state.audit.anchor().file(),
        )
        .env("REGASSIST_AUTO_MIGRATE", "false");
    if app.backend == Backend::Postgres {
        cmd.env("AUDIT_CHECKPOINT_KEY", CHECKPOINT_KEY);
    }
    cmd.output().unwrap()
}

/// Writes a checkpoint now (what the background writer does every few seconds).
async fn checkpoint(app: &TestApp) -> Outcome {
    app.state.audit.checkpoint(Mode::Extend).await.unwrap()
}

async fn health(app: &TestApp) -> Value {
    app.get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn assert_refused(outcome: &Outcome, needle: &str) {
    match outcome {
        Outcome::Refused(why) => assert!(why.contains(needle), "{why}"),
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

/// Rewrites the chain from `from` on as a superuser could: a changed reason at `from` and every
/// later row's hash recomputed, so the chain is consistent in itself.
async fn rewrite_from(db: &Db, from: i64) {
    let rows: Vec<AuditRow> = regassist::db::audit::all(db, &AuditFilter::default(), 1_000_000)
        .await
        .unwrap();
    let mut prev = rows[(from - 2) as usize].hash.clone();
    let mut changed = Vec::new();
    for mut r in rows.into_iter().filter(|r| r.seq >= from) {
        if r.seq == from {
            r.reason = Some("rewritten".into());
        }
        r.prev_hash = prev;
        r.hash = regassist::audit::row_hash(&r);
        prev = r.hash.clone();
        changed.push(r);
    }
    let update = "UPDATE audit_events SET reason = $1, prev_hash = $2, hash = $3 WHERE seq = $4";
    match db {
        Db::Postgres(pg) => {
            let mut tx = pg.pool.begin().await.unwrap();
            sqlx::query("SET LOCAL session_replication_role = replica")
                .execute(&mut *tx)
                .await
                .unwrap();
            for r in &changed {
                sqlx::query(update)
                    .bind(&r.reason)
                    .bind(&r.prev_hash)
                    .bind(&r.hash)
                    .bind(r.seq)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        Db::Sqlite(s) => {
            let mut tx = s.write.begin().await.unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_update")
                .execute(&mut *tx)
                .await
                .unwrap();
            for r in &changed {
                sqlx::query(update)
                    .bind(&r.reason)
                    .bind(&r.prev_hash)
                    .bind(&r.hash)
                    .bind(r.seq)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

both_backends!(
    truncation_is_detected_by_default_also_after_a_restart,
    &[],
    |mut app: TestApp| async move {
        let (auditor, owner, id) = seed(&app).await;
        match checkpoint(&app).await {
            Outcome::Written(cp) | Outcome::Unchanged(cp) => assert_eq!(cp.head_seq, 7),
            other => panic!("{other:?}"),
        }
        assert_eq!(verify(&app, &auditor).await["checkpoint"], "matched");
        // A superuser cuts the two newest rows.
        bypass(&app.state.db, "DELETE FROM audit_events WHERE seq >= 6").await;
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false, "{v}");
        assert_eq!(v["checkpoint"], "truncated");
        assert_eq!(v["first_invalid_seq"], 6);
        let out = cli(&app, &["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1), "the CLI fails too");
        // The writer refuses to bless the cut chain and keeps the old checkpoint.
        let file = app.state.audit.anchor().file().to_string();
        let before = std::fs::read_to_string(&file).unwrap();
        assert_refused(&checkpoint(&app).await, "missing");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

        // The service restarts on the cut chain: still detected, still refused, and shown.
        app.restart().await;
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false, "after the restart: {v}");
        assert_eq!(v["checkpoint"], "truncated");
        assert_refused(&checkpoint(&app).await, "cut");
        let h = health(&app).await;
        assert_eq!(h["status"], "degraded", "{h}");
        assert_eq!(h["checks"]["audit"]["status"], "degraded");
        let metrics = app
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("audit_checkpoint_refusals_total"),
            "{metrics}"
        );
        // New writes refill seq 6 and 7 with other rows: now the checkpoint's row differs.
        describe(&app, &owner, id, &["after 0", "after 1"]).await;
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false, "{v}");
        assert_eq!(v["checkpoint"], "mismatch");
        assert_refused(&checkpoint(&app).await, "rewritten");
    }
);

both_backends!(
    a_rewritten_chain_is_refused_by_the_checkpoint_writer,
    &[],
    |app: TestApp| async move {
        let (auditor, _, _) = seed(&app).await;
        assert!(matches!(
            checkpoint(&app).await,
            Outcome::Written(_) | Outcome::Unchanged(_)
        ));
        let file = app.state.audit.anchor().file().to_string();
        let before = std::fs::read_to_string(&file).unwrap();
        rewrite_from(&app.state.db, 3).await;
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false, "{v}");
        assert_eq!(v["checkpoint"], "mismatch");
        assert_refused(&checkpoint(&app).await, "rewritten");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            before,
            "the previous checkpoint is kept"
        );
        let h = health(&app).await;
        assert_eq!(h["checks"]["audit"]["status"], "degraded", "{h}");
        assert!(h["checks"]["audit"]["message"]
            .as_str()
            .unwrap()
            .contains("rewritten"));
    }
);

both_backends!(
    a_deleted_checkpoint_file_fails_verification,
    &[],
    |app: TestApp| async move {
        let (auditor, _, _) = seed(&app).await;
        assert!(matches!(
            checkpoint(&app).await,
            Outcome::Written(_) | Outcome::Unchanged(_)
        ));
        std::fs::remove_file(app.state.audit.anchor().file()).unwrap();
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false, "{v}");
        assert_eq!(v["checkpoint"], "missing");
        assert!(v["problem"].as_str().unwrap().contains("missing"), "{v}");
        let out = cli(&app, &["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1));
        // Nor does the writer start a new anchor on its own.
        assert_refused(&checkpoint(&app).await, "missing");
        assert!(!std::path::Path::new(app.state.audit.anchor().file()).exists());
        // An operator's deliberate re-anchoring starts again (and is logged).
        let out = cli(&app, &["audit", "checkpoint", "--reanchor"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(verify(&app, &auditor).await["is_valid"], true);
    }
);

both_backends!(
    rows_waiting_to_be_sealed_are_named_with_their_age,
    &[],
    |app: TestApp| async move {
        let auditor = app.user_with_role("auditor@example.com", "auditor").await;
        // Sealing rounds fail from here on, as with a full disk.
        fail_inserts_into(&app, "audit_events").await;
        exec(
            &app.state.db,
            "INSERT INTO audit_pending (occurred_at, action, entity_type, entity_id, request_id) \
             VALUES ('2026-01-02T03:04:05.000006Z', 'project.update', 'project', '42', 'waiting-row')",
        )
        .await
        .unwrap();
        let v = verify(&app, &auditor).await;
        assert_eq!(v["pending_entries"], 1, "{v}");
        assert!(
            v["oldest_pending_age_seconds"].as_i64().unwrap() > 60,
            "{v}"
        );
        assert_eq!(v["pending"][0]["request_id"], "waiting-row");
        assert_eq!(v["pending"][0]["entity_id"], "42");
        let h = health(&app).await;
        assert_eq!(h["checks"]["audit"]["status"], "degraded", "{h}");
        assert_eq!(h["checks"]["audit"]["details"]["pending_entries"], 1);
        let metrics = app
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("audit_pending_oldest_age_seconds"));
        if app.backend == Backend::Postgres {
            // An acknowledged change whose round fails: 201 (no retry duplicates it), and the
            // verification names its row until a round seals it.
            let token = app.user_with_role("w@example.com", "user").await;
            let res = app
                .post("/api/projects")
                .bearer_auth(&token)
                .header("X-Request-Id", "acknowledged-but-waiting")
                .json(&json!({"name": "waits"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            let v = verify(&app, &auditor).await;
            let named: Vec<&str> = v["pending"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["action"].as_str().unwrap())
                .collect();
            assert!(named.contains(&"project.create"), "{v}");
        }
    }
);

/// Recomputes an exported JSON entry's hash after an edit, as a careful forger would.
fn rehash(entry: &mut Value) {
    let canon = |v: &Value| (!v.is_null()).then(|| regassist::audit::canonical_json(v));
    let (before, after) = (canon(&entry["before"]), canon(&entry["after"]));
    let fields = regassist::audit::HashedFields {
        seq: entry["seq"].as_i64().unwrap(),
        at: entry["at"].as_str().unwrap(),
        actor_id: entry["actor_id"].as_i64(),
        actor_email: entry["actor_email"].as_str(),
        action: entry["action"].as_str().unwrap(),
        entity_type: entry["entity_type"].as_str().unwrap(),
        entity_id: entry["entity_id"].as_str(),
        project_id: entry["project_id"].as_i64(),
        reason: entry["reason"].as_str(),
        before: before.as_deref(),
        after: after.as_deref(),
        request_id: entry["request_id"].as_str().unwrap(),
    };
    let hash = fields.hash(entry["prev_hash"].as_str().unwrap());
    entry["hash"] = Value::String(hash);
}

/// `regassist audit verify-export` and the Python script on `text`: their exit codes.
fn check_offline(
    app: &TestApp,
    dir: &std::path::Path,
    name: &str,
    text: &str,
) -> (i32, Option<i32>) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = cli(app, &["audit", "verify-export", path.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    if out.status.success() {
        assert_eq!(report["checkpoint"], "matched", "{report}");
        assert_eq!(report["signature_checked"], true, "{report}");
    }
    let python = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/verify_audit_export.py"
        ))
        .arg(&path)
        .env("AUDIT_CHECKPOINT_KEY", key_of(app))
        .output()
        .ok()
        .and_then(|o| o.status.code());
    (out.status.code().unwrap(), python)
}

both_backends!(
    verify_export_catches_an_edited_export,
    &[],
    |app: TestApp| async move {
        let owner = app.jwt_for("owner");
        let a = app.create_project(&owner, json!({"name": "A"})).await["id"]
            .as_i64()
            .unwrap();
        let b = app.create_project(&owner, json!({"name": "B"})).await["id"]
            .as_i64()
            .unwrap();
        // Interleaved changes: project A's export must carry the links across B's rows.
        for i in 0..3 {
            for id in [a, b] {
                let res = app
                    .patch(&format!("/api/projects/{id}"))
                    .bearer_auth(&owner)
                    .header("X-Change-Reason", format!("edit-{id}-{i}"))
                    .json(&json!({"description": format!("d{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let export = |format: &'static str| {
            let req = app
                .post("/api/audit/export")
                .bearer_auth(&owner)
                .json(&json!({"project_id": a, "format": format}));
            async move { req.send().await.unwrap().text().await.unwrap() }
        };
        let json_text = export("json").await;
        let parsed: Value = serde_json::from_str(&json_text).unwrap();
        assert!(!parsed["links"].as_array().unwrap().is_empty(), "{parsed}");
        assert!(parsed["checkpoint"]["signature"].is_string());
        let python_ran = check_offline(&app, dir.path(), "a.json", &json_text);
        assert_eq!(python_ran.0, 0, "the export as downloaded verifies");
        assert!(
            matches!(python_ran.1, Some(0) | None),
            "python: {python_ran:?}"
        );

        let reason = format!("edit-{a}-1");
        let edited = json_text.replace(&reason, "edit-forged");
        assert_ne!(edited, json_text);
        let codes = check_offline(&app, dir.path(), "edited.json", &edited);
        assert_eq!(codes.0, 1, "an edited row is caught");
        assert!(matches!(codes.1, Some(1) | None), "python: {codes:?}");

        // A forger who also recomputes the edited row's hash breaks the link to the next row.
        let mut forged = parsed.clone();
        let entry = &mut forged["entries"][2];
        entry["reason"] = Value::String("edit-forged".into());
        rehash(entry);
        let codes = check_offline(&app, dir.path(), "forged.json", &forged.to_string());
        assert_eq!(codes.0, 1, "a re-hashed row no longer links");
        assert!(matches!(codes.1, Some(1) | None), "python: {codes:?}");

        let csv_text = export("csv").await;
        assert!(csv_text.contains("# checkpoint: head_seq="), "{csv_text}");
        let codes = check_offline(&app, dir.path(), "a.csv", &csv_text);
        assert_eq!(codes.0, 0, "the CSV export as downloaded verifies");
        assert!(matches!(codes.1, Some(0) | None), "python: {codes:?}");
        let codes = check_offline(
            &app,
            dir.path(),
            "edited.csv",
            &csv_text.replace(&reason, "edit-forged"),
        );
        assert_eq!(codes.0, 1, "an edited CSV row is caught");
        assert!(matches!(codes.1, Some(1) | None), "python: {codes:?}");
        if codes.1.is_none() {
            skipped("python3 on PATH (docs/verify_audit_export.py)");
        }
    }
);

/// PostgreSQL only: SQLite has no roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_cannot_touch_audit_rows() {
    let Some(app) = TestApp::start(Backend::Postgres, &[]).await else {
        skipped("TEST_DATABASE_URL");
        return;
    };
    let (auditor, _, _) = seed(&app).await;
    assert!(matches!(
        checkpoint(&app).await,
        Outcome::Written(_) | Outcome::Unchanged(_)
    ));
    let role = format!("svc_{}", uuid::Uuid::new_v4().simple());
    exec(
        &app.state.db,
        &format!("CREATE ROLE {role} LOGIN IN ROLE regassist_service"),
    )
    .await
    .unwrap();
    let mut url = url::Url::parse(&app.db_url).unwrap();
    url.set_username(&role).unwrap();
    let url = url.to_string();
    let mut conn = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    for sql in [
        "DROP TRIGGER audit_events_no_update_delete ON audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "UPDATE audit_events SET reason = 'edited' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq >= 6",
        "TRUNCATE audit_events",
        "SET session_replication_role = replica",
        "DROP TABLE audit_events",
        "UPDATE audit_checkpoints SET head_seq = 1",
        "DELETE FROM audit_checkpoints",
        "DROP TRIGGER audit_checkpoints_no_update_delete ON audit_checkpoints",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("permission denied") || text.contains("must be owner"),
            "{sql}: {text}"
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 7, "the service role reads the trail");
    conn.close().await.unwrap();

    // The service itself runs as that role, migrations having run as the owner.
    // The same checkpoint file as the owner's server, as replicas share theirs.
    let cp_file = app.state.audit.anchor().file().to_string();
    let cp_file = cp_file.as_str();
    let config = regassist::config::Config::from_pairs([
        ("DATABASE_URL", url.as_str()),
        ("REGASSIST_AUTO_MIGRATE", "false"),
        ("AUDIT_CHECKPOINT_KEY", CHECKPOINT_KEY),
        ("REGASSIST_AUDIT_CHECKPOINT_FILE", cp_file),
        ("JWT_SECRET", JWT_SECRET),
        ("REGASSIST_LOAD_CLASSIFICATION", "false"),
        ("REGASSIST_SEED_510K", "false"),
        ("PORT", "0"),
        ("REGASSIST_HOST", "127.0.0.1"),
    ])
    .unwrap();
    let listener = regassist::app::bind(&config).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db = Db::connect(&config).await.unwrap();
    let state = regassist::app::start(config, db).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(regassist::app::serve(state.clone(), listener, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/api/projects"))
        .bearer_auth(app.jwt_for("svc-user"))
        .json(&json!({"name": "written by the service role"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(matches!(
        state.audit.checkpoint(Mode::Extend).await.unwrap(),
        Outcome::Written(_) | Outcome::Unchanged(_)
    ));
    let v: Value = client
        .get(format!("{base}/api/audit/verify"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["is_valid"], true, "{v}");
    assert_eq!(v["total_entries"], 9);
    let _ = tx.send(());
    let _ = server.await;
    assert!(count(&app, "SELECT COUNT(*) FROM audit_checkpoints").await >= 2);
    let _ = exec(&app.state.db, &format!("DROP ROLE IF EXISTS {role}")).await;
}

fn run(args: &[&str], url: &str, checkpoint_file: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("REGASSIST_AUDIT_CHECKPOINT_FILE", checkpoint_file)
        .env("REGASSIST_LOAD_CLASSIFICATION", "false")
        .output()
        .unwrap()
}

/// SQLite: `regassist restore` refuses while a server holds the database, and a restore of an
/// older backup keeps the newer database, WAL and all, under a dated name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_refuse_a_running_server_and_keep_the_newer_database() {
    let mut app = TestApp::start(Backend::Sqlite, &[]).await.unwrap();
    let (auditor, _, _) = seed(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("old.db");
    regassist::backup::backup(&app.state.db, &backup)
        .await
        .unwrap();
    let owner = app.jwt_for("later");
    app.create_project(&owner, json!({"name": "after the backup"}))
        .await;
    let newer_head = verify(&app, &auditor).await["head_seq"].as_i64().unwrap();
    let cp_file = app.state.audit.anchor().file().to_string();
    let run = |args: &[&str], url: &str| run(args, url, &cp_file);

    let out = run(&["restore", backup.to_str().unwrap()], &app.db_url);
    assert!(!out.status.success(), "refused under a running server");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a server is using"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        verify(&app, &auditor).await["head_seq"],
        newer_head,
        "untouched"
    );

    app.stop().await;
    let out = run(&["restore", backup.to_str().unwrap()], &app.db_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out_text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out_text.contains("before-restore-"), "{out_text}");
    let db_file = regassist::backup::sqlite_path(&app.db_url).unwrap();
    let kept: Vec<_> = std::fs::read_dir(db_file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.contains(".before-restore-") && !name.ends_with("-wal") && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    // The restored database is the backup's; the kept one still holds every newer row.
    let restored = run(&["audit", "verify"], &app.db_url);
    let v: Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert_eq!(v["head_seq"], 7);
    let kept_url = format!("sqlite://{}", kept[0].display());
    let old = run(&["audit", "verify"], &kept_url);
    let v: Value = serde_json::from_slice(&old.stdout).unwrap();
    assert_eq!(
        v["head_seq"], newer_head,
        "the newer database is recoverable: {v}"
    );
}
