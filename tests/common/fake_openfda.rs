//! A fake openFDA on 127.0.0.1:<random port> serving the real records in
//! `data-fda/` with openFDA's semantics for the fields the service uses: `search=`
//! (see `search.rs`), `sort`, `limit`/`skip` bounds, `search_after` with a `Link` header, the
//! `meta` block, 404 `NOT_FOUND` on no match, 429 past its own budget, injectable failures and
//! call counters.
#![allow(clippy::unwrap_used)]

pub mod search;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

pub const LAST_UPDATED: &str = "2026-01-12";

/// The real records, loaded once per test binary.
pub struct Data {
    pub device_510k: Vec<search::Doc>,
    pub classification: Vec<search::Doc>,
    pub recall: Vec<search::Doc>,
    pub enforcement: Vec<search::Doc>,
    /// Word indexes of the four, in that order.
    pub indexes: Vec<search::Index>,
}

pub fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data-fda")
}

fn latin1(path: &std::path::Path) -> String {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(char::from)
        .collect()
}

/// Rows of a pipe-delimited FDA file as header -> value maps.
fn pipe_rows(path: &std::path::Path) -> Vec<HashMap<String, String>> {
    let text = latin1(path);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split('|')
        .map(|h| h.trim().to_string())
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('|').map(|v| v.trim().to_string()))
                .collect()
        })
        .collect()
}

fn us_date(raw: &str) -> String {
    // MM/DD/YYYY -> YYYY-MM-DD
    let p: Vec<&str> = raw.split('/').collect();
    if p.len() == 3 {
        format!("{:0>4}-{:0>2}-{:0>2}", p[2], p[0], p[1])
    } else {
        String::new()
    }
}

pub fn data() -> Arc<Data> {
    static DATA: OnceLock<Arc<Data>> = OnceLock::new();
    DATA.get_or_init(|| Arc::new(load())).clone()
}

fn load() -> Data {
    let dir = data_dir();
    let classification: Vec<Value> = pipe_rows(&dir.join("classification/foiclass_2026-01.txt"))
        .into_iter()
        .map(|r| {
            let f = |k: &str| Value::String(r.get(k).cloned().unwrap_or_default());
            json!({"review_panel": f("REVIEW_PANEL"), "medical_specialty": f("MEDICALSPECIALTY"),
                "product_code": f("PRODUCTCODE"), "device_name": f("DEVICENAME"), "device_class": f("DEVICECLASS"),
                "unclassified_reason": f("UNCLASSIFIED_REASON"), "gmp_exempt_flag": f("GMPEXEMPTFLAG"),
                "third_party_flag": f("THIRDPARTYFLAG"), "review_code": f("REVIEWCODE"),
                "regulation_number": f("REGULATIONNUMBER"), "submission_type_id": f("SUBMISSION_TYPE_ID"),
                "definition": f("DEFINITION"), "implant_flag": f("Implant_Flag"),
                "life_sustain_support_flag": f("Life_Sustain_support_flag")})
        })
        .collect();
    let by_code: HashMap<String, &Value> = classification
        .iter()
        .map(|c| {
            (
                c["product_code"].as_str().unwrap_or_default().to_string(),
                c,
            )
        })
        .collect();
    // openFDA's harmonised block, as its pipeline joins it from the classification table.
    let block = |pc: &str| match by_code.get(pc) {
        Some(c) => json!({"device_name": c["device_name"], "device_class": c["device_class"],
            "regulation_number": c["regulation_number"]}),
        None => json!({}),
    };
    let descriptions: HashMap<String, String> =
        std::fs::read_to_string(dir.join("reference/decision_codes_510k.csv"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once(',')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();

    let mut seen = HashSet::new();
    let mut device_510k = Vec::new();
    let mut push = |v: Value, seen: &mut HashSet<String>| {
        let k = v["k_number"].as_str().unwrap_or_default().to_string();
        if !k.is_empty() && seen.insert(k) {
            device_510k.push(v);
        }
    };
    let first: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("api_json/device_510k_limit100_2026-01-12.json"))
            .unwrap(),
    )
    .unwrap();
    for r in first["results"].as_array().unwrap() {
        push(r.clone(), &mut seen);
    }
    for file in [
        "last_month/pmnlstmn_2026-08.txt",
        "last_month/pmnlstmn_2020-10.txt",
        "510k/pmn8690_2026-08.txt",
    ] {
        for r in pipe_rows(&dir.join(file)) {
            let g = |k: &str| r.get(k).cloned().unwrap_or_default();
            let code = g("DECISION");
            let description = code
                .get(2..)
                .and_then(|tail| descriptions.get(tail))
                .cloned()
                .unwrap_or_else(|| "Unknown".into());
            let pc = g("PRODUCTCODE");
            push(
                json!({"k_number": g("KNUMBER"), "applicant": g("APPLICANT"), "contact": g("CONTACT"),
                    "address_1": g("STREET1"), "address_2": g("STREET2"), "city": g("CITY"), "state": g("STATE"),
                    "country_code": g("COUNTRY_CODE"), "zip_code": g("ZIP"), "postal_code": g("POSTAL_CODE"),
                    "date_received": us_date(&g("DATERECEIVED")), "decision_date": us_date(&g("DECISIONDATE")),
                    "decision_code": code, "decision_description": description,
                    "review_advisory_committee": g("REVIEWADVISECOMM"), "product_code": pc,
                    "statement_or_summary": g("STATEORSUMM"), "advisory_committee": g("CLASSADVISECOMM"),
                    "clearance_type": g("TYPE"), "third_party_flag": g("THIRDPARTY"),
                    "expedited_review_flag": g("EXPEDITEDREVIEW"), "device_name": g("DEVICENAME"),
                    "openfda": block(&pc)}),
                &mut seen,
            );
        }
    }
    let mut rdr = csv::Reader::from_path(dir.join("510k/510k_2015-2026_sample.csv")).unwrap();
    for row in rdr.deserialize::<HashMap<String, String>>() {
        let mut r: Map<String, Value> = row
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let pc = r
            .get("product_code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        r.insert("openfda".into(), block(&pc));
        push(Value::Object(r), &mut seen);
    }

    let recall_doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("api_json/openfda_docs_example_device_recall.json"))
            .unwrap(),
    )
    .unwrap();
    let mut recall = vec![recall_doc["record"].clone()];
    recall.extend(
        recall_doc["anatomy"]["results"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    let enf: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("api_json/openfda_docs_example_device_enforcement.json"))
            .unwrap(),
    )
    .unwrap();
    let docs = |v: Vec<Value>| v.into_iter().map(search::Doc::new).collect::<Vec<_>>();
    let (device_510k, classification) = (docs(device_510k), docs(classification));
    let (recall, enforcement) = (docs(recall), docs(vec![enf["result"].clone()]));
    let indexes = [&device_510k, &classification, &recall, &enforcement]
        .into_iter()
        .map(|d| search::Index::new(d))
        .collect();
    Data {
        device_510k,
        classification,
        recall,
        enforcement,
        indexes,
    }
}

/// An injected answer for the next call.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    /// 429 with this `Retry-After`.
    RateLimit(Option<u64>),
    /// Answer only after this long (the client's timeout should fire first).
    Hang(Duration),
    /// A 500 whose body echoes the request's query string (a badly behaved upstream).
    EchoQuery,
    /// A 200 whose body streams this many bytes, without a declared length.
    Oversized(usize),
    /// A 302 to this URL (query string kept), e.g. another host or this one.
    RedirectTo(String),
}

#[derive(Default)]
pub struct Counters {
    pub calls: AtomicU64,
    pub not_found: AtomicU64,
    pub over_budget: AtomicU64,
    pub faults: AtomicU64,
    pub per_endpoint: Mutex<HashMap<String, u64>>,
    pub searches: Mutex<Vec<String>>,
    pub api_keys: Mutex<HashSet<String>>,
}

pub struct FakeState {
    pub data: Arc<Data>,
    pub counters: Counters,
    pub faults: Mutex<VecDeque<Fault>>,
    pub always: Mutex<Option<Fault>>,
    /// (limit, window, window start, used) of the fake's own rate limit.
    pub budget: Mutex<Option<(u64, Duration, Instant, u64)>>,
    pub addr: OnceLock<SocketAddr>,
}

pub struct FakeOpenFda {
    pub base: String,
    pub state: Arc<FakeState>,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeOpenFda {
    pub async fn start() -> FakeOpenFda {
        let state = Arc::new(FakeState {
            data: data(),
            counters: Counters::default(),
            faults: Mutex::default(),
            always: Mutex::default(),
            budget: Mutex::default(),
            addr: OnceLock::new(),
        });
        let app = Router::new()
            .route("/device/{endpoint}", axum::routing::get(handle))
            .route("/download/{*path}", axum::routing::get(download))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        state.addr.set(addr).unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeOpenFda {
            base: format!("http://{addr}"),
            state,
            _server: server,
        }
    }

    pub fn calls(&self) -> u64 {
        self.state.counters.calls.load(Ordering::SeqCst)
    }

    pub fn calls_to(&self, endpoint: &str) -> u64 {
        *self
            .state
            .counters
            .per_endpoint
            .lock()
            .unwrap()
            .get(endpoint)
            .unwrap_or(&0)
    }

    pub fn over_budget(&self) -> u64 {
        self.state.counters.over_budget.load(Ordering::SeqCst)
    }

    pub fn searches(&self) -> Vec<String> {
        self.state.counters.searches.lock().unwrap().clone()
    }

    /// The next `n` calls get `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut q = self.state.faults.lock().unwrap();
        q.extend(std::iter::repeat_n(fault, n));
    }

    /// Every call gets `fault` until [`FakeOpenFda::recover`].
    pub fn fail_always(&self, fault: Fault) {
        *self.state.always.lock().unwrap() = Some(fault);
    }

    pub fn recover(&self) {
        *self.state.always.lock().unwrap() = None;
        self.state.faults.lock().unwrap().clear();
    }

    /// Answers 429 past `limit` calls per `window`, like openFDA's own limiter.
    pub fn limit(&self, limit: u64, window: Duration) {
        *self.state.budget.lock().unwrap() = Some((limit, window, Instant::now(), 0));
    }
}

fn error(status: StatusCode, code: &str, message: &str, details: Option<&str>) -> Response {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(d) = details {
        body["error"]["details"] = Value::String(d.to_string());
    }
    (status, axum::Json(body)).into_response()
}

/// The download sites' files (`/download/premarket/ftparea/pmn7680.zip`,
/// `/download/device/recall/device-recall-0001-of-0001.json.zip`, …) as zips of one repository
/// file each: small stand-ins for `regassist import --download`.
async fn download(Path(path): Path<String>) -> Response {
    let source = match path.rsplit('/').next().unwrap_or_default() {
        "foiclass.zip" => "classification/foiclass_2020-10.txt",
        n if n.starts_with("pmn") && n.ends_with(".zip") => "last_month/pmnlstmn_2026-08.txt",
        "device-recall-0001-of-0001.json.zip" => "safety/device-recall-fixture.json",
        "device-enforcement-0001-of-0001.json.zip" => "safety/device-enforcement-fixture.json",
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-fda");
    let bytes = std::fs::read(dir.join(source)).unwrap();
    let inner = path
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".zip")
        .to_string();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(inner, zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, &bytes).unwrap();
    zip.finish().unwrap().into_inner().into_response()
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    Path(endpoint): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    let c = &state.counters;
    c.calls.fetch_add(1, Ordering::SeqCst);
    let name = endpoint.trim_end_matches(".json").to_string();
    *c.per_endpoint
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_default() += 1;
    if let Some(key) = params.get("api_key") {
        c.api_keys.lock().unwrap().insert(key.clone());
    }
    if let Some(s) = params.get("search") {
        c.searches.lock().unwrap().push(s.clone());
    }
    {
        let mut budget = state.budget.lock().unwrap();
        if let Some((limit, window, start, used)) = budget.as_mut() {
            if start.elapsed() >= *window {
                *start = Instant::now();
                *used = 0;
            }
            *used += 1;
            if *used > *limit {
                c.over_budget.fetch_add(1, Ordering::SeqCst);
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "OVER_RATE_LIMIT",
                    "You have exceeded your rate limit. Try again later.",
                    None,
                );
            }
        }
    }
    let fault = state
        .faults
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.always.lock().unwrap().clone());
    if let Some(fault) = fault {
        c.faults.fetch_add(1, Ordering::SeqCst);
        match fault {
            Fault::Status(s) => {
                return error(
                    StatusCode::from_u16(s).unwrap(),
                    "SERVER_ERROR",
                    "Something went wrong",
                    None,
                )
            }
            Fault::RateLimit(after) => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "OVER_RATE_LIMIT",
                    "You have exceeded your rate limit.",
                    None,
                );
                if let Some(secs) = after {
                    r.headers_mut()
                        .insert("retry-after", HeaderValue::from(secs));
                }
                return r;
            }
            Fault::Hang(d) => tokio::time::sleep(d).await,
            Fault::Oversized(bytes) => {
                let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
                let chunks = bytes.div_ceil(chunk.len());
                let stream = futures::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                return (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    axum::body::Body::from_stream(stream),
                )
                    .into_response();
            }
            Fault::RedirectTo(target) => {
                let q = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                let location = format!("{target}{q}");
                return (
                    StatusCode::FOUND,
                    [(axum::http::header::LOCATION, location)],
                )
                    .into_response();
            }
            Fault::EchoQuery => {
                let q = uri.query().unwrap_or_default().to_string();
                return error(
                    StatusCode::BAD_GATEWAY,
                    "SERVER_ERROR",
                    &format!("upstream failed for {q}"),
                    None,
                );
            }
        }
    }
    let (records, index) = match name.as_str() {
        "510k" => (&state.data.device_510k, &state.data.indexes[0]),
        "classification" => (&state.data.classification, &state.data.indexes[1]),
        "recall" => (&state.data.recall, &state.data.indexes[2]),
        "enforcement" => (&state.data.enforcement, &state.data.indexes[3]),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "No matches found!",
                None,
            )
        }
    };
    let limit: u64 = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1);
    let skip: u64 = params.get("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    if limit > 1000 {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST",
            "Limit cannot exceed 1000 results for search requests. Use the skip or search_after param to get additional results.", None);
    }
    if skip > 25_000 {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Skip value must 25000 or less.",
            None,
        );
    }
    let expr = match params.get("search").map(|s| search::parse(s)) {
        Some(Err(e)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SERVER_ERROR",
                "Check your request and try again",
                Some(&format!("[parse_exception] {e}")),
            )
        }
        Some(Ok(e)) => Some(e),
        None => None,
    };
    let mut hits: Vec<&Value> = match &expr {
        Some(e) => search::eval(e, records, index)
            .into_iter()
            .map(|i| &records[i].value)
            .collect(),
        None => records.iter().map(|d| &d.value).collect(),
    };
    if let Some(sort) = params.get("sort") {
        let (field, dir) = sort.split_once(':').unwrap_or((sort.as_str(), "asc"));
        hits.sort_by(|a, b| {
            let key = |r: &Value| r[field].as_str().unwrap_or_default().to_string();
            let ord = key(a).cmp(&key(b)).then_with(|| key_k(a).cmp(&key_k(b)));
            if dir == "desc" {
                ord.reverse()
            } else {
                ord
            }
        });
    }
    let total = hits.len() as u64;
    let start = match params.get("search_after") {
        Some(cursor) => cursor.parse::<u64>().unwrap_or(0),
        None => skip,
    };
    let page: Vec<Value> = hits
        .iter()
        .skip(start as usize)
        .take(limit as usize)
        .map(|v| (*v).clone())
        .collect();
    if page.is_empty() {
        c.not_found.fetch_add(1, Ordering::SeqCst);
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No matches found!",
            None,
        );
    }
    let mut headers = HeaderMap::new();
    if start + limit < total {
        let mut next: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| *k != "skip" && *k != "search_after")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        next.push(("search_after".into(), (start + limit).to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        let addr = state.addr.get().unwrap();
        let link = format!("<http://{addr}/device/{endpoint}?{query}>; rel=\"next\"");
        headers.insert("link", HeaderValue::from_str(&link).unwrap());
    }
    let body = json!({"meta": {"disclaimer": "Do not rely on openFDA to make decisions regarding medical care.",
        "terms": "https://open.fda.gov/terms/", "license": "https://open.fda.gov/license/",
        "last_updated": LAST_UPDATED, "results": {"skip": skip, "limit": limit, "total": total}},
        "results": page});
    (StatusCode::OK, headers, axum::Json(body)).into_response()
}

fn key_k(r: &Value) -> String {
    r["k_number"].as_str().unwrap_or_default().to_string()
}
