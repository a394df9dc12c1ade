//! Measures what the hash chain adds to a write: project inserts committed alone versus with their
//! audit row appended in the same transaction, 64 concurrent writers.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --release --example audit_overhead`
//! (a scratch database `regassist_audit_bench` is created and dropped on that server).

use std::time::{Duration, Instant};

use regassist::audit::{Actor, AuditLog, Change};
use regassist::config::Config;
use regassist::db::{projects, users, Db};
use regassist::domain::project::CreateProject;

const WRITERS: usize = 64;
const PER_WRITER: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = "regassist_audit_bench";
    let admin = sqlx::PgPool::connect(&admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let mut url = url::Url::parse(&admin_url)?;
    url.set_path(&format!("/{name}"));
    let config = Config::from_pairs([
        ("DATABASE_URL", url.as_str()),
        ("REGASSIST_DB_MAX_CONNECTIONS", "32"),
    ])?;
    let db = Db::connect(&config).await?;
    db.migrate().await?;
    let mut tx = db.begin().await?;
    let user = users::insert(&mut tx, "bench", "bench@example.com", "Bench", "user")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user"))?;
    tx.commit().await?;

    for with_audit in [false, true, false, true] {
        let (p50, p99, rps) = run(&db, user.id, with_audit).await?;
        println!(
            "{:<16} p50 {:>6.2} ms  p99 {:>6.2} ms  {:>7.0} writes/s",
            if with_audit {
                "with audit"
            } else {
                "without audit"
            },
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rps
        );
    }
    db.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    Ok(())
}

async fn run(db: &Db, user_id: i64, with_audit: bool) -> anyhow::Result<(Duration, Duration, f64)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    // One audit log for every writer: they share its sealing rounds, as a server's requests do.
    let audit = AuditLog::new(db.clone());
    for w in 0..WRITERS {
        let db = db.clone();
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(PER_WRITER);
            for i in 0..PER_WRITER {
                let body: CreateProject =
                    serde_json::from_value(serde_json::json!({"name": format!("w{w} p{i}")}))?;
                let new = body.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
                let t = Instant::now();
                if with_audit {
                    let actor = Actor {
                        id: Some(user_id),
                        email: Some("bench@example.com".into()),
                        request_id: "bench".into(),
                        reason: None,
                    };
                    let mut work = audit.begin().await?;
                    let p = projects::insert(work.tx(), user_id, &new).await?;
                    work.commit(
                        &actor,
                        Change {
                            action: "project.create",
                            entity_type: "project",
                            entity_id: Some(p.id.to_string()),
                            project_id: Some(p.id),
                            before: None,
                            after: Some(serde_json::to_value(&p)?),
                        },
                    )
                    .await?;
                } else {
                    let mut tx = db.begin().await?;
                    projects::insert(&mut tx, user_id, &new).await?;
                    tx.commit().await?;
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok((
        pick(0.5),
        pick(0.99),
        all.len() as f64 / elapsed.as_secs_f64(),
    ))
}
