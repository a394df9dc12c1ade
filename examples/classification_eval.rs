//! Evaluates the classification assistant and times the mirror.
//!
//! `cargo run --release --example classification_eval` loads a fresh SQLite mirror from FDA's
//! classification file, the 1976–1990 releasable 510(k) files and the 2015–2026 CSV sample, then
//! asks for the product code of each of the 707 devices in the two "last month" files
//! (`pmnlstmn_2020-10`, `pmnlstmn_2026-08`) from its device name alone, and reports how often the
//! real code is first and in the top five. The evaluated devices are never in the index: the CSV
//! sample holds 51 of them, and those are left out of the index for the evaluation.
//!
//! Options: `--dev` tunes nothing on the evaluated files: it holds out every fifth CSV record as
//! a development set and prints the figures for a small grid of weights (how the defaults were
//! chosen). `--measure` also times every import on SQLite and, with `TEST_DATABASE_URL` set, on
//! PostgreSQL, and the p50/p99 of `search_510k` and of a suggestion.
//! `FDA_DATA_DIR` overrides the data directory (default `data-fda`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regassist::assistant::classifier::load_index;
use regassist::db::mirror::{search_510k, MirrorQuery};
use regassist::db::Db;
use regassist::domain::classify::{ClassIndex, Params};
use regassist::mirror::{import_file, text::decode_latin1};

fn data_dir() -> PathBuf {
    std::env::var("FDA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("data-fda"))
}

const MIRROR_FILES: &[&str] = &[
    "classification/foiclass_2026-01.txt",
    "510k/pmn7680_2026-08.txt",
    "510k/pmn8185_2026-08.txt",
    "510k/pmn8690_2026-08.txt",
    "510k/510k_2015-2026_sample.csv",
];
const EVAL_FILES: &[&str] = &[
    "last_month/pmnlstmn_2020-10.txt",
    "last_month/pmnlstmn_2026-08.txt",
];

/// `(k_number, device_name, product_code)` of a pmn file's rows (empty codes included).
fn pmn_rows(path: &Path) -> Vec<(String, String, String)> {
    let bytes = std::fs::read(path).unwrap();
    let mut lines = bytes.split(|&b| b == b'\n');
    let header: Vec<String> = decode_latin1(lines.next().unwrap())
        .trim()
        .split('|')
        .map(str::to_string)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (k, name, code) = (col("KNUMBER"), col("DEVICENAME"), col("PRODUCTCODE"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let line = decode_latin1(l);
            let f: Vec<&str> = line.trim_end().split('|').collect();
            (
                f[k].trim().to_string(),
                f[name].trim().to_string(),
                f[code].trim().to_string(),
            )
        })
        .collect()
}

/// `(k_number, device_name, product_code)` of the CSV sample.
fn csv_rows(path: &Path) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (k, name, code) = (col("k_number"), col("device_name"), col("product_code"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[k].to_string(), r[name].to_string(), r[code].to_string())
        })
        .collect()
}

/// Top-1 and top-5 accuracy of `index` on `cases` (cases without a code are skipped).
fn accuracy(index: &ClassIndex, cases: &[(String, String, String)]) -> (f64, f64, usize) {
    let (mut top1, mut top5, mut n) = (0, 0, 0);
    for (_, name, code) in cases.iter().filter(|c| !c.2.is_empty()) {
        n += 1;
        let s = index.suggest(name, 5);
        if s.first().is_some_and(|s| &s.product_code == code) {
            top1 += 1;
        }
        if s.iter().any(|s| &s.product_code == code) {
            top5 += 1;
        }
    }
    (top1 as f64 / n as f64, top5 as f64 / n as f64, n)
}

/// How often the first suggestion is right, by its confidence.
fn calibration(index: &ClassIndex, cases: &[(String, String, String)], label: &str) {
    let mut buckets = [(0u32, 0u32); 5];
    for (_, name, code) in cases.iter().filter(|c| !c.2.is_empty()) {
        if let Some(best) = index.suggest(name, 1).first() {
            let b = ((best.confidence * 5.0) as usize).min(4);
            buckets[b].0 += 1;
            buckets[b].1 += u32::from(&best.product_code == code);
        }
    }
    for (i, (n, right)) in buckets.iter().enumerate() {
        if *n > 0 {
            println!(
                "  {label} confidence {:.1}-{:.1}: {n} first suggestions, {:.0}% right",
                i as f64 / 5.0,
                (i + 1) as f64 / 5.0,
                f64::from(*right) * 100.0 / f64::from(*n)
            );
        }
    }
}

async fn load_mirror(db: &Db, label: &str) {
    for file in MIRROR_FILES {
        let started = Instant::now();
        let summary = import_file(db, &data_dir().join(file), false)
            .await
            .unwrap();
        eprintln!(
            "  [{label}] {:<40} {:>6} rows, {:>6} inserted, {:>2} rejected in {:>6.0} ms",
            summary.file_name,
            summary.rows_read,
            summary.inserted,
            summary.rejected,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[i].as_secs_f64() * 1000.0
}

async fn time_search(db: &Db, label: &str, queries: &[(String, String, String)]) {
    let mut samples = Vec::new();
    for round in 0..3 {
        for (i, (_, name, code)) in queries.iter().enumerate() {
            let q = MirrorQuery {
                text: Some(name.clone()),
                // Every third query also filters by product code, as predicate searches often do.
                product_code: (i % 3 == 0 && !code.is_empty()).then(|| code.clone()),
                limit: 100,
                ..Default::default()
            };
            let started = Instant::now();
            let (rows, _) = search_510k(db, &q).await.unwrap();
            if round > 0 {
                samples.push(started.elapsed());
                if round == 2
                    && started.elapsed() > Duration::from_millis(15)
                    && std::env::var("SHOW_SLOW").is_ok()
                {
                    eprintln!(
                        "    slow {:?} {:?}: {:?}",
                        q.text,
                        q.product_code,
                        started.elapsed()
                    );
                }
            }
            std::hint::black_box(rows);
        }
    }
    eprintln!(
        "  [{label}] search_510k over {} calls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&mut samples, 0.50),
        percentile(&mut samples, 0.99),
        percentile(&mut samples, 1.0)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/eval.db", dir.path().display());
    let db = Db::connect_sqlite(&url, 4, Duration::from_secs(30))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    eprintln!("loading the mirror (SQLite):");
    load_mirror(&db, "sqlite").await;

    let data = data_dir();
    let cases: Vec<_> = EVAL_FILES
        .iter()
        .flat_map(|f| pmn_rows(&data.join(f)))
        .collect();
    let evaluated: HashSet<String> = cases.iter().map(|c| c.0.clone()).collect();

    if args.iter().any(|a| a == "--dev") {
        // Every fifth CSV record (and every evaluated device) is held out of the index.
        let csv = csv_rows(&data.join(MIRROR_FILES[4]));
        let dev: Vec<_> = csv
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 == 0)
            .map(|(_, c)| c.clone())
            .collect();
        let mut held: HashSet<String> = dev.iter().map(|c| c.0.clone()).collect();
        held.extend(evaluated.iter().cloned());
        let base = Params::default();
        let grid = [base];
        for params in grid {
            let index = load_index(&db, &held, params).await.unwrap();
            let (t1, t5, n) = accuracy(&index, &dev);
            eprintln!(
                "  dev n={n} {params:?}: top-1 {:.1}%, top-5 {:.1}%",
                t1 * 100.0,
                t5 * 100.0
            );
            calibration(&index, &dev, "dev");
        }
    }

    let started = Instant::now();
    let index = load_index(&db, &evaluated, Params::default())
        .await
        .unwrap();
    eprintln!(
        "index: {} product codes, {} trade names, built in {:.0} ms",
        index.product_codes(),
        index.trade_names(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    if args.iter().any(|a| a == "--misses") {
        let (mut unknown, mut no_trade) = (0, 0);
        for (_, name, code) in cases.iter().filter(|c| !c.2.is_empty()) {
            let s = index.suggest(name, 3);
            let trade = index.clearances(code);
            if trade.is_none() {
                unknown += 1;
            } else if trade == Some(0) {
                no_trade += 1;
            }
            if s.first().is_none_or(|s| &s.product_code != code) {
                let got: Vec<String> = s
                    .iter()
                    .map(|s| format!("{} {}", s.product_code, s.device_name))
                    .collect();
                eprintln!("  miss {code} ({:?} clearances) {name:?} -> {got:?}", trade);
            }
        }
        eprintln!(
            "  codes unknown to the table: {unknown}, codes with no indexed 510(k): {no_trade}"
        );
    }
    calibration(&index, &cases, "evaluation");
    let mut samples = Vec::new();
    for (_, name, _) in &cases {
        let t = Instant::now();
        std::hint::black_box(index.suggest(name, 5));
        samples.push(t.elapsed());
    }
    let (t1, t5, n) = accuracy(&index, &cases);
    println!(
        "classification evaluation: {n} devices with a product code (of {}), top-1 {:.1}%, top-5 {:.1}%",
        cases.len(),
        t1 * 100.0,
        t5 * 100.0
    );
    println!(
        "suggest latency: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );

    if args.iter().any(|a| a == "--measure") {
        time_search(&db, "sqlite", &cases).await;
        if let Ok(base) = std::env::var("TEST_DATABASE_URL") {
            let name = format!("regassist_eval_{}", std::process::id());
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .unwrap();
            let mut pg_url = url::Url::parse(&base).unwrap();
            pg_url.set_path(&format!("/{name}"));
            let config =
                regassist::config::Config::from_pairs([("DATABASE_URL", pg_url.as_str())]).unwrap();
            let pg = Db::connect(&config).await.unwrap();
            pg.migrate().await.unwrap();
            eprintln!("loading the mirror (PostgreSQL):");
            load_mirror(&pg, "postgres").await;
            time_search(&pg, "postgres", &cases).await;
            pg.close().await;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
        }
    }
}
