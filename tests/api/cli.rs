//! The `regassist` binary itself: config errors, JSON logs without secrets, users, checks,
//! audit verification, SQLite backup and restore.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_regassist");

fn regassist(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn an_invalid_setting_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("JWT_SECRET", "too-short"),
        ("PORT", "http"),
        ("OPENFDA_MODE", "maybe"),
    ] {
        let out = regassist(dir.path(), &["serve"], &[(name, value)]);
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{name}: {err}");
        assert!(!err.contains("too-short"), "secret values are not echoed");
    }
    let out = regassist(
        dir.path(),
        &["serve", "--print-config"],
        &[("JWT_SECRET", JWT_SECRET), ("OPENFDA_API_KEY", "key-123")],
    );
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("port: 8000"));
    assert!(
        !shown.contains(JWT_SECRET) && !shown.contains("key-123"),
        "{shown}"
    );
}

#[test]
fn users_checks_audit_and_backup_restore_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("REGASSIST_LOAD_CLASSIFICATION", "false")];
    let out = regassist(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "admin@example.com",
            "--name",
            "Admin",
            "--role",
            "admin",
            "--api-key",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = stdout.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("rk_"), "{stdout}");
    assert!(
        dir.path().join("data/regassist.db").exists(),
        "the embedded database lives under ./data/"
    );

    let out = regassist(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "admin@example.com",
            "--name",
            "Again",
        ],
        &env,
    );
    assert!(!out.status.success(), "duplicate email refused");

    let out = regassist(dir.path(), &["check", "database"], &env);
    assert!(out.status.success());
    let out = regassist(dir.path(), &["check", "redis"], &env);
    assert!(out.status.success(), "not configured is fine");
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_configured"));
    let out = regassist(
        dir.path(),
        &["check", "redis"],
        &[("REDIS_URL", "redis://127.0.0.1:1")],
    );
    assert!(
        !out.status.success(),
        "an unreachable Redis fails the check"
    );

    let out = regassist(dir.path(), &["audit", "verify"], &env);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["is_valid"], true);
    assert_eq!(v["head_seq"], 2);

    let out = regassist(dir.path(), &["backup", "backup.db"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = regassist(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "later@example.com",
            "--name",
            "Later",
        ],
        &env,
    );
    assert!(out.status.success());

    // A damaged backup is refused and the database is left as it was.
    std::fs::write(dir.path().join("garbage.db"), b"this is not a database").unwrap();
    let out = regassist(dir.path(), &["restore", "garbage.db"], &env);
    assert!(!out.status.success());
    let bytes = std::fs::read(dir.path().join("backup.db")).unwrap();
    std::fs::write(dir.path().join("truncated.db"), &bytes[..bytes.len() / 2]).unwrap();
    let out = regassist(dir.path(), &["restore", "truncated.db"], &env);
    assert!(!out.status.success(), "truncated backup refused");
    let out = regassist(dir.path(), &["audit", "verify"], &env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["head_seq"], 3, "untouched by the refused restores");

    let out = regassist(dir.path(), &["restore", "backup.db"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = regassist(dir.path(), &["audit", "verify"], &env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["head_seq"], 2, "back to the backup's state");
    assert_eq!(v["is_valid"], true);
}

#[test]
fn a_local_account_gets_a_new_key_from_the_cli_and_an_unknown_one_none() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("REGASSIST_LOAD_CLASSIFICATION", "false")];
    let last_line = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let out = regassist(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "Ops",
            "--api-key",
        ],
        &env,
    );
    assert!(out.status.success());
    let first = last_line(&out);

    let out = regassist(
        dir.path(),
        &[
            "users",
            "issue-key",
            "--email",
            "OPS@example.com",
            "--label",
            "laptop",
            "--expires-in-days",
            "30",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = last_line(&out);
    assert!(second.starts_with("rk_") && second != first, "{second}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("expires"));
    // The issue is on the chain: user.create, api_key.issue, api_key.issue.
    let out = regassist(dir.path(), &["audit", "verify"], &env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["head_seq"], 3);

    for args in [
        &["users", "issue-key", "--email", "nobody@example.com"][..],
        &[
            "users",
            "issue-key",
            "--email",
            "ops@example.com",
            "--expires-in-days",
            "0",
        ][..],
    ] {
        let out = regassist(dir.path(), args, &env);
        assert!(!out.status.success(), "{args:?}");
    }
    let out = regassist(dir.path(), &["audit", "verify"], &env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["head_seq"], 3, "a refused issue writes nothing");
}

#[tokio::test]
async fn json_logs_carry_request_fields_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .arg("serve")
        .env_clear()
        .envs([
            ("PORT", port.as_str()),
            ("REGASSIST_HOST", "127.0.0.1"),
            ("LOG_FORMAT", "json"),
            ("JWT_SECRET", JWT_SECRET),
            ("REGASSIST_LOAD_CLASSIFICATION", "false"),
            ("RUST_LOG", "info"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(up, "server did not start");
    let jwt =
        mint(serde_json::json!({"sub": "logger", "email": "l@example.com", "exp": now() + 600}));
    let issued: Value = client
        .post(format!("{base}/api/users/me/api-keys"))
        .bearer_auth(&jwt)
        .json(&serde_json::json!({"name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = issued["key"].as_str().unwrap().to_string();
    let res = client
        .get(format!("{base}/api/projects"))
        .bearer_auth(&key)
        .header("X-Request-ID", "log-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    client
        .get(format!("{base}/api/users/me"))
        .bearer_auth("rk_wrong")
        .send()
        .await
        .unwrap();
    // SIGTERM: the process drains and exits 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit 0 after SIGTERM");
    let logs =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut saw_request = false;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v["level"].is_string() && v["target"].is_string(), "{line}");
        if v["request_id"] == "log-trace-1" && v["status"] == 200 {
            assert_eq!(v["route"], "/api/projects");
            assert!(v["latency_ms"].is_number());
            assert!(v["user_id"].is_number(), "{line}");
            saw_request = true;
        }
    }
    assert!(saw_request, "no request line in {logs}");
    for secret in [key.as_str(), jwt.as_str(), JWT_SECRET] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
async fn a_first_start_loads_the_bundled_510k_files_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data-fda/510k/510k_2015-2026_sample.csv"
    );
    std::fs::copy(csv, seed.join("sample.csv")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .arg("serve")
        .env_clear()
        .envs([
            ("PORT", port.as_str()),
            ("REGASSIST_HOST", "127.0.0.1"),
            ("REGASSIST_LOAD_CLASSIFICATION", "false"),
            ("REGASSIST_SEED_DIR", seed.to_str().unwrap()),
            ("RUST_LOG", "warn"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let db = format!("sqlite://{}/data/regassist.db", dir.path().display());
    let mut count = 0i64;
    for _ in 0..600 {
        if client
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
            count = sqlx::query_scalar("SELECT COUNT(*) FROM fda_510k")
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            pool.close().await;
            if count == 3834 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(count, 3834, "every bundled record is loaded");
}
