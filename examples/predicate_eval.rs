//! Measures the two answers on devices the index does not hold: predicate search and product-code
//! suggestion, by device name alone, as a newcomer's embedded install gives them.
//!
//! `cargo run --release --example predicate_eval [-- --stages] [-- --misses]`
//!
//! The index is the bundled seed (`data-fda/510k/`, loaded in the seed's own order) with the
//! classification table; the evaluated devices are the 707 decisions of the two "last month"
//! files (`data-fda/last_month/`), none of which is in the index: the 51 of them that the 2015–2026
//! CSV sample also holds are removed from the copy of the sample that is loaded. Each device's name
//! is the query; its own product code is the truth.
//!
//! Prints, for predicate search: the first result has the device's product code, some result of
//! the top 5 has it, the share of the top 5 with it, and p50/p99 of an uncached search through the
//! search service (`PredicateSearch::predicates`, mirror source, one at a time); for
//! classification: right code first / in the top 5, right review panel first, per-panel
//! accuracy, the expected calibration error (ten bins) of the first suggestion's confidence,
//! how many answers were "no confident suggestion" and how often those would have been right,
//! and p50/p99 of a suggestion.
//! `--stages` also evaluates the search after each seed file, in the seed's order: what a
//! newcomer gets while the bundled data is still loading.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regassist::assistant::classifier::load_index;
use regassist::cache::Cache;
use regassist::config::Config;
use regassist::db::mirror as store;
use regassist::db::Db;
use regassist::domain::classify::Params;
use regassist::mirror::{import_file, text::decode_latin1};
use regassist::openfda::OpenFda;
use regassist::rate_limit::RateLimiter;
use regassist::search::{PredicateQuery, PredicateSearch};

fn data_dir() -> PathBuf {
    std::env::var("FDA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("data-fda"))
}

const EVAL_FILES: &[&str] = &[
    "last_month/pmnlstmn_2020-10.txt",
    "last_month/pmnlstmn_2026-08.txt",
];

/// One evaluated device.
struct Case {
    name: String,
    code: String,
}

/// `(k_number, device_name, product_code)` of a pmn file's rows.
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

/// The seed directory's files, in the seed's order, with the evaluated devices left out of the CSV
/// sample (written to `into`).
fn seed_files(into: &Path, held_out: &HashSet<String>) -> Vec<PathBuf> {
    let seed = data_dir().join("510k");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&seed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "csv")))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            if p.extension().and_then(|e| e.to_str()) != Some("csv") {
                return p;
            }
            let mut reader = csv::Reader::from_path(&p).unwrap();
            let out = into.join(p.file_name().unwrap());
            let mut writer = csv::Writer::from_path(&out).unwrap();
            writer.write_record(reader.headers().unwrap()).unwrap();
            let (mut kept, mut dropped) = (0, 0);
            for r in reader.records() {
                let r = r.unwrap();
                if held_out.contains(&r[0]) {
                    dropped += 1;
                } else {
                    writer.write_record(&r).unwrap();
                    kept += 1;
                }
            }
            writer.flush().unwrap();
            eprintln!("  {}: kept {kept}, held out {dropped}", out.display());
            out
        })
        .collect()
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort();
    let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[i].as_secs_f64() * 1000.0
}

fn pct(n: usize, of: usize) -> f64 {
    n as f64 * 100.0 / of.max(1) as f64
}

fn service(db: &Db) -> PredicateSearch {
    let config = Config::from_pairs([
        ("DATABASE_URL", "sqlite::memory:"),
        ("OPENFDA_MODE", "mirror"),
        // The seed-stage figures must see each stage at once, not ten seconds later.
        ("REGASSIST_MIRROR_RECHECK_SECS", "0"),
    ])
    .unwrap();
    let limiter = RateLimiter::memory();
    let openfda = OpenFda::new(&config, limiter).unwrap();
    PredicateSearch::new(&config, db.clone(), Cache::memory(), openfda)
}

/// Predicate search figures: `(top-1, any of top 5, share of top 5)` in percent, and latencies.
async fn predicate_figures(db: &Db, cases: &[Case], misses: bool) -> ([f64; 3], Vec<Duration>) {
    let search = service(db);
    let (mut first, mut any, mut share, mut n) = (0, 0, 0usize, 0);
    let mut latencies = Vec::new();
    let mut seen = HashSet::new();
    for case in cases {
        n += 1;
        let q = PredicateQuery {
            text: Some(case.name.clone()),
            limit: 5,
            ..Default::default()
        };
        let started = Instant::now();
        let result = search.predicates(&q, &case.name).await;
        let elapsed = started.elapsed();
        // Only a query's first run is uncached.
        if seen.insert(case.name.to_lowercase()) {
            latencies.push(elapsed);
        }
        let Ok(result) = result else { continue };
        let codes: Vec<Option<&str>> = result
            .results
            .iter()
            .map(|r| r.candidate.product_code.as_deref())
            .collect();
        let hits = codes.iter().filter(|c| **c == Some(&case.code)).count();
        if codes.first() == Some(&Some(case.code.as_str())) {
            first += 1;
        } else if misses {
            let got: Vec<String> = result
                .results
                .iter()
                .take(3)
                .map(|r| {
                    format!(
                        "{} {}",
                        r.candidate.product_code.as_deref().unwrap_or("-"),
                        r.candidate.device_name
                    )
                })
                .collect();
            eprintln!("  miss {} {:?} -> {got:?}", case.code, case.name);
        }
        any += usize::from(hits > 0);
        share += hits;
    }
    ([pct(first, n), pct(any, n), pct(share, 5 * n)], latencies)
}

async fn classification_figures(db: &Db, cases: &[Case]) {
    let index = load_index(db, &HashSet::new(), Params::default())
        .await
        .unwrap();
    let panels: HashMap<String, String> = store::all_product_codes(db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.product_code, c.review_panel.unwrap_or_default()))
        .collect();
    let (mut first, mut five, mut panel_first, mut n) = (0, 0, 0, 0);
    let mut per_panel: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    // Ten bins of the first suggestion's confidence: (count, sum of confidence, right).
    let mut bins = [(0usize, 0.0f64, 0usize); 10];
    let (mut unsure, mut unsure_right) = (0, 0);
    let mut latencies = Vec::new();
    for case in cases {
        n += 1;
        let started = Instant::now();
        let s = index.suggest(&case.name, 5);
        latencies.push(started.elapsed());
        let right = s.first().is_some_and(|s| s.product_code == case.code);
        if !right && std::env::var("CLASS_MISSES").is_ok() {
            let got: Vec<String> = s
                .iter()
                .take(3)
                .map(|s| format!("{} {} {:.2}", s.product_code, s.device_name, s.confidence))
                .collect();
            eprintln!("  class miss {} {:?} -> {got:?}", case.code, case.name);
        }
        first += usize::from(right);
        five += usize::from(s.iter().any(|s| s.product_code == case.code));
        let true_panel = panels.get(&case.code).cloned().unwrap_or_default();
        let got_panel = s
            .first()
            .and_then(|s| panels.get(&s.product_code).cloned())
            .unwrap_or_default();
        let panel_right = !true_panel.is_empty() && got_panel == true_panel;
        panel_first += usize::from(panel_right);
        let e = per_panel.entry(true_panel).or_default();
        e.0 += 1;
        e.1 += usize::from(right);
        let confidence = s.first().map_or(0.0, |s| s.confidence);
        let bin = ((confidence * 10.0) as usize).min(9);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += usize::from(right);
        if !confident(&s) {
            unsure += 1;
            unsure_right += usize::from(right);
        }
    }
    let ece: f64 = bins
        .iter()
        .filter(|b| b.0 > 0)
        .map(|(count, sum, right)| {
            let count_f = *count as f64;
            (count_f / n as f64) * (sum / count_f - *right as f64 / count_f).abs()
        })
        .sum();
    println!(
        "classification: {n} devices; right code first {:.1}%, in the top 5 {:.1}%, right panel first {:.1}%",
        pct(first, n),
        pct(five, n),
        pct(panel_first, n)
    );
    println!(
        "  expected calibration error (10 bins) of the first suggestion's confidence: {ece:.3}"
    );
    for (i, (count, sum, right)) in bins.iter().enumerate() {
        if *count > 0 {
            println!(
                "    confidence {:.1}-{:.1}: {count:>4} answers, mean confidence {:.2}, right {:.0}%",
                i as f64 / 10.0,
                (i + 1) as f64 / 10.0,
                sum / *count as f64,
                pct(*right, *count)
            );
        }
    }
    println!(
        "  \"no confident suggestion\": {unsure} of {n} answers; right anyway: {unsure_right}"
    );
    let mut panels_line: Vec<String> = per_panel
        .iter()
        .filter(|(_, (count, _))| *count >= 10)
        .map(|(p, (count, right))| format!("{p} {:.0}% of {count}", pct(*right, *count)))
        .collect();
    panels_line.sort();
    println!(
        "  right code first by review panel (>= 10 devices): {}",
        panels_line.join(", ")
    );
    println!(
        "  suggestion latency: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );
}

/// Tunes nothing on the evaluated devices: the (already filtered) CSV sample is cut into five
/// folds by position; each fold is held out of its own classification index and asked, and the
/// calibration table is fitted on all five folds' first suggestions (about 3,800, against 760
/// from a single fold). `GRID=1` also scores a small grid of weights on the first fold.
async fn dev_grid(db: &Db, files: &[PathBuf]) {
    let csv = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "csv"))
        .unwrap();
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let sample: Vec<(usize, String, Case)> = reader
        .records()
        .map(|r| r.unwrap())
        .enumerate()
        .filter(|(_, r)| !r[5].is_empty())
        .map(|(i, r)| {
            (
                i % 5,
                r[0].to_string(),
                Case {
                    name: r[2].to_string(),
                    code: r[5].to_string(),
                },
            )
        })
        .collect();
    let fold = |f: usize| -> Vec<(String, Case)> {
        sample
            .iter()
            .filter(|d| d.0 == f)
            .map(|d| {
                (
                    d.1.clone(),
                    Case {
                        name: d.2.name.clone(),
                        code: d.2.code.clone(),
                    },
                )
            })
            .collect()
    };
    let base = Params::default();
    let mut points = Vec::new();
    for f in 0..5 {
        let dev = fold(f);
        let held: HashSet<String> = dev.iter().map(|d| d.0.clone()).collect();
        let index = load_index(db, &held, base).await.unwrap();
        points.extend(first_suggestions(&index, &dev));
    }
    calibration_table(points);
    if std::env::var("GRID").is_err() {
        return;
    }
    let dev = fold(0);
    let held: HashSet<String> = dev.iter().map(|d| d.0.clone()).collect();
    let mut grid = vec![base];
    for w_recent in [5.0, 10.0] {
        grid.push(Params { w_recent, ..base });
    }
    for neighbours in [1, 5] {
        grid.push(Params { neighbours, ..base });
    }
    grid.push(Params {
        w_trade: 3.0,
        ..base
    });
    grid.push(Params {
        w_name: 0.5,
        ..base
    });
    grid.push(Params {
        recent_year: 2010,
        w_recent: 5.0,
        ..base
    });
    for params in grid {
        let index = load_index(db, &held, params).await.unwrap();
        let (mut first, mut five) = (0, 0);
        for (_, case) in &dev {
            let s = index.suggest(&case.name, 5);
            first += usize::from(s.first().is_some_and(|s| s.product_code == case.code));
            five += usize::from(s.iter().any(|s| s.product_code == case.code));
        }
        println!(
            "dev n={}: first {:.1}%, top 5 {:.1}% with {params:?}",
            dev.len(),
            pct(first, dev.len()),
            pct(five, dev.len())
        );
    }
}

/// `(raw confidence, 1 if right else 0)` of each development case's first suggestion.
fn first_suggestions(
    index: &regassist::domain::classify::ClassIndex,
    dev: &[(String, Case)],
) -> Vec<(f64, f64)> {
    dev.iter()
        .filter_map(|(_, case)| {
            let s = index.suggest(&case.name, 1);
            let first = s.first()?;
            Some((
                first.raw_confidence,
                f64::from(u8::from(first.product_code == case.code)),
            ))
        })
        .collect()
}

/// The first suggestions' raw scores against how often they are right, made monotone (pool
/// adjacent violators): the table `domain::classify` calibrates with.
fn calibration_table(mut points: Vec<(f64, f64)>) {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Blocks of (sum of raw, sum of right, count), merged while a block is less right than the one
    // before it.
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for chunk in points.chunks(100) {
        let sum_raw: f64 = chunk.iter().map(|p| p.0).sum();
        let right: f64 = chunk.iter().map(|p| p.1).sum();
        blocks.push((sum_raw, right, chunk.len() as f64));
        while blocks.len() > 1 {
            let (a, b) = (blocks[blocks.len() - 2], blocks[blocks.len() - 1]);
            // Merged too: blocks of the same raw score (many first suggestions saturate at 1).
            let same_raw = (a.0 / a.2 - b.0 / b.2).abs() < 1e-9;
            if a.1 / a.2 <= b.1 / b.2 && !same_raw {
                break;
            }
            blocks.pop();
            blocks.pop();
            blocks.push((a.0 + b.0, a.1 + b.1, a.2 + b.2));
        }
    }
    let table: Vec<String> = blocks
        .iter()
        .map(|(raw, right, n)| format!("({:.3}, {:.3})", raw / n, right / n))
        .collect();
    println!(
        "calibration table ({} first suggestions): [{}]",
        points.len(),
        table.join(", ")
    );
}

/// Whether the answer carries a confident first suggestion (the field, when the build has it).
fn confident(s: &[regassist::domain::classify::Suggestion]) -> bool {
    let Some(first) = s.first() else { return false };
    serde_json::to_value(first)
        .ok()
        .and_then(|v| v.get("confident").and_then(serde_json::Value::as_bool))
        .unwrap_or(true)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stages = args.iter().any(|a| a == "--stages");
    let misses = args.iter().any(|a| a == "--misses");
    let data = data_dir();
    let mut held_out = HashSet::new();
    let cases: Vec<Case> = EVAL_FILES
        .iter()
        .flat_map(|f| pmn_rows(&data.join(f)))
        .filter(|(k, _, code)| {
            held_out.insert(k.clone());
            !code.is_empty()
        })
        .map(|(_, name, code)| Case { name, code })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let files = seed_files(dir.path(), &held_out);
    let url = format!("sqlite://{}/eval.db", dir.path().display());
    let db = Db::connect_sqlite(&url, 4, Duration::from_secs(30))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    regassist::mirror::ensure_classification(&db).await.unwrap();
    eprintln!("evaluating {} devices with a product code", cases.len());
    for (i, file) in files.iter().enumerate() {
        let started = Instant::now();
        let summary = import_file(&db, file, false).await.unwrap();
        eprintln!(
            "  seed file {}: {} rows in {:.1} s",
            summary.file_name,
            summary.inserted,
            started.elapsed().as_secs_f64()
        );
        if stages && i + 1 < files.len() {
            let ([t1, t5, share], _) = predicate_figures(&db, &cases, false).await;
            println!(
                "while loading, after {} of {} seed files: predicate search first {t1:.1}%, top 5 {t5:.1}%, share {share:.1}%",
                i + 1,
                files.len()
            );
        }
    }
    if args.iter().any(|a| a == "--dev") {
        dev_grid(&db, &files).await;
        return;
    }
    let ([t1, t5, share], mut lat) = predicate_figures(&db, &cases, misses).await;
    println!(
        "predicate search: {} devices; first result has the product code {t1:.1}%, some of the top 5 {t5:.1}%, share of the top 5 {share:.1}%",
        cases.len()
    );
    println!(
        "  uncached search latency ({} distinct queries, one at a time): p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    classification_figures(&db, &cases).await;
}
