//! Latency of predicate search against the fake openFDA: p50/p99 of cached searches and of cold
//! searches (every query distinct, so each one goes upstream), at 64 concurrent connections.
//!
//! `cargo run --release --example search_latency [seconds per phase, default 10]`
//!
//! The fake openFDA runs in the same process and its scans of ~30,000 records cost more CPU
//! than the service's own work on a cold search, so on a small machine the cold figure at 64
//! connections is mostly queueing for CPU; the `cold1` phase shows one request alone.
//!
//! The outbound budget is lifted for the cold phase (it would otherwise cap openFDA calls at
//! 240 a minute and the figure would measure the budget, not the search).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_openfda::FakeOpenFda;
use regassist::app;
use regassist::config::Config;

const CONNECTIONS: usize = 64;

async fn phase(name: &str, base: &str, token: &str, secs: u64, cold: bool, connections: usize) {
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (base, token, counter) = (base.to_string(), token.to_string(), counter.clone());
        let tag = name.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let url = if cold {
                    format!(
                        "{base}/api/predicates/search?q=infusion%20pump%20zq{tag}{conn}x{n}&limit=20"
                    )
                } else {
                    format!(
                        "{base}/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=20"
                    )
                };
                let start = Instant::now();
                let ok = match client.get(&url).bearer_auth(&token).send().await {
                    Ok(res) => res.status().is_success() && res.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(start.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{name:>7}: {} ok, {errors} errors, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        all.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let fake = FakeOpenFda::start().await;
    let test_db = common::fresh_db(common::Backend::Sqlite).await.unwrap();
    let mut config = Config::from_pairs([
        ("DATABASE_URL", test_db.url.as_str()),
        ("JWT_SECRET", common::JWT_SECRET),
        ("API_RATE_PER_MINUTE", "0"),
        ("PORT", "0"),
        ("REGASSIST_HOST", "127.0.0.1"),
        ("OPENFDA_BASE_URL", fake.base.as_str()),
        ("OPENFDA_MODE", "live"),
        ("REGASSIST_OPENFDA_RATE_PER_SECOND", "1000000"),
    ])
    .unwrap();
    // Benchmark only: a budget no load here can spend (the setting refuses more than 240).
    config.openfda_rate_per_minute = u32::MAX;
    config.openfda_daily_limit = u32::MAX;
    let listener = app::bind(&config).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = app::start(config, test_db.db.clone()).await.unwrap();
    tokio::spawn(app::serve(state, listener, std::future::pending()));
    let token = common::mint(
        serde_json::json!({"sub": "bench", "email": "bench@example.com",
        "name": "bench", "exp": common::now() + 3600}),
    );
    // Warm up: provision the user, fill the cache for the cached phase.
    let client = reqwest::Client::new();
    let warm = format!("{base}/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=20");
    assert!(client
        .get(&warm)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    println!(
        "{CONNECTIONS} connections, {secs} s per phase, release build: {}",
        !cfg!(debug_assertions)
    );
    phase("cached", &base, &token, secs, false, CONNECTIONS).await;
    phase("cold", &base, &token, secs, true, CONNECTIONS).await;
    // Unloaded, for scale: one connection, so no request waits for another's CPU.
    phase("cold1", &base, &token, secs, true, 1).await;
    println!(
        "fake openFDA calls: {} (510k {})",
        fake.calls(),
        fake.calls_to("510k")
    );
}
