//! The streaming import engine shared by every format: a parser thread sends rows through a
//! bounded channel (memory stays flat whatever the file size) to an async loop that upserts them
//! in batches, all inside one transaction per file, so a file that turns out to be garbage or
//! truncated rolls back and leaves the previous data as it was.

use std::io::{BufRead, BufReader, Read, Seek};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{detect, Format, Input, Record};
use crate::db::mirror::{self as store, Fda510k, NewImport, ProductCode};
use crate::db::{now, Db};

/// Rows per upsert statement.
const BATCH: usize = 1000;
/// The garbage check looks at this many rows.
const SAMPLE: u64 = 200;
/// Rejected row messages kept for the summary (all are logged).
const KEEP_ERRORS: usize = 50;

/// What a parser hands the import loop.
pub enum Item {
    Row(Record),
    /// A malformed row: where (`file:line` or `file:record N`) and why.
    Reject {
        at: String,
        reason: String,
    },
    /// The date the data is current to, when the file says (openFDA's `meta.last_updated`).
    DataDate(NaiveDate),
}

/// The parser's side of the channel.
pub struct Sink {
    tx: mpsc::Sender<Item>,
}

impl Sink {
    /// Sends an item; fails when the import loop has given up (then the parser stops).
    pub fn send(&mut self, item: Item) -> anyhow::Result<()> {
        self.tx
            .blocking_send(item)
            .map_err(|_| anyhow::anyhow!("import aborted"))
    }
}

/// Counts bytes and remembers the last one read (a line file must end with a newline, or it
/// was cut off).
pub struct Tracking<R> {
    inner: R,
    pub read: Arc<AtomicU64>,
    pub last: Option<u8>,
}

impl<R: Read> Read for Tracking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The outcome of importing one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub file_name: String,
    pub format: &'static str,
    /// `classification` or `510k`.
    pub kind: String,
    pub sha256: String,
    pub rows_read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub rejected: u64,
    pub data_date: Option<NaiveDate>,
    pub elapsed_ms: u128,
    /// The first rejected rows, `file:line: reason`.
    pub errors: Vec<String>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} {} rows read, {} inserted, {} updated, {} rejected in {:.2}s",
            self.file_name,
            self.kind,
            self.rows_read,
            self.inserted,
            self.updated,
            self.rejected,
            self.elapsed_ms as f64 / 1000.0
        )?;
        if let Some(d) = self.data_date {
            write!(f, " (data as of {d})")?;
        }
        Ok(())
    }
}

/// Reads the whole input once: its SHA-256 and its first bytes (for format detection).
fn fingerprint(input: &Input) -> anyhow::Result<(String, Vec<u8>, u64)> {
    let mut reader = input.open()?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).context("reading the file")?;
        if n == 0 {
            break;
        }
        if head.len() < 64 * 1024 {
            head.extend_from_slice(&buf[..n.min(64 * 1024 - head.len())]);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), head, total))
}

/// Runs the format's parser on the input, sending items to `sink`.
fn parse(
    format: Format,
    input: &Input,
    name: &str,
    sink: &mut Sink,
    read: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    if format == Format::Zip {
        return match input {
            Input::File(path) => {
                let file = std::fs::File::open(path).with_context(|| format!("opening {name}"))?;
                parse_zip(file, name, sink, read)
            }
            Input::Static { bytes, .. } => {
                parse_zip(std::io::Cursor::new(*bytes), name, sink, read)
            }
        };
    }
    parse_stream(Some(format), input.open()?, name, sink, read)
}

/// Streams the one data file of a zip (FDA's and openFDA's downloads hold exactly one),
/// recognising its format from its content.
fn parse_zip<R: Read + Seek>(
    file: R,
    name: &str,
    sink: &mut Sink,
    read: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("{name} is not a readable zip"))?;
    let entries: Vec<usize> = (0..archive.len())
        .filter(|&i| {
            archive
                .name_for_index(i)
                .is_some_and(|n| !n.ends_with('/') && !n.starts_with("__MACOSX"))
        })
        .collect();
    let [entry] = entries[..] else {
        bail!(
            "{name}: expected exactly one data file in the zip, found {}",
            entries.len()
        );
    };
    let inner = archive
        .by_index(entry)
        .with_context(|| format!("{name}: reading the zip"))?;
    let inner_name = format!("{name}!{}", inner.name());
    read.store(0, Ordering::Relaxed);
    parse_stream(None, inner, &inner_name, sink, read)
}

/// Parses one stream; `format` `None` means "recognise it from the first bytes".
fn parse_stream(
    format: Option<Format>,
    inner: impl Read,
    name: &str,
    sink: &mut Sink,
    read: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut tracking = Tracking {
        inner,
        read,
        last: None,
    };
    let mut reader = BufReader::with_capacity(256 * 1024, &mut tracking);
    let format = match format {
        Some(f) => f,
        None => {
            let head = reader
                .fill_buf()
                .with_context(|| format!("reading {name}"))?;
            match detect(head).with_context(|| format!("{name}: cannot import"))? {
                Format::Zip => bail!("{name}: a zip inside a zip is not supported"),
                f => f,
            }
        }
    };
    match format {
        Format::Foiclass => super::foiclass::parse(&mut reader, name, sink)?,
        Format::Pmn => super::pmn::parse(&mut reader, name, sink)?,
        Format::Csv510k => super::csv510k::parse(&mut reader, name, sink)?,
        Format::OpenFdaJson => super::openfda_json::parse(&mut reader, name, sink)?,
        Format::Zip => bail!("{name}: a zip inside a zip is not supported"),
    }
    drop(reader);
    if format.is_line_based() && tracking.last.is_some_and(|b| b != b'\n') {
        bail!("{name} is truncated: its last line ends without a line break (an interrupted download?)");
    }
    Ok(())
}

/// Imports one input into the mirror in one transaction. A malformed row is reported and
/// skipped; a file that is mostly garbage, binary, of an unknown format or truncated fails and
/// changes nothing.
pub async fn run(db: &Db, input: Input, progress: bool) -> anyhow::Result<ImportSummary> {
    let started_at = now();
    let clock = Instant::now();
    let name = input.name();
    let fp_input = input.clone();
    let (sha256, head, total_bytes) =
        tokio::task::spawn_blocking(move || fingerprint(&fp_input)).await??;
    let format = detect(&head).with_context(|| format!("{name}: cannot import"))?;

    let (tx, mut rx) = mpsc::channel::<Item>(4 * BATCH);
    let read = Arc::new(AtomicU64::new(0));
    let parser = {
        let (name, read) = (name.clone(), read.clone());
        tokio::task::spawn_blocking(move || parse(format, &input, &name, &mut Sink { tx }, read))
    };

    let mut state = Loop::new(&name, format);
    let mut db_tx = db.begin().await?;
    let mut bar = Progress::new(progress, total_bytes, read);
    let outcome: anyhow::Result<()> = async {
        while let Some(item) = rx.recv().await {
            state.take(item)?;
            if state.pending() >= BATCH {
                state.flush(&mut db_tx).await?;
                bar.tick(state.rows_read);
            }
        }
        Ok(())
    }
    .await;
    // Closing the receiver stops a parser that is still sending.
    drop(rx);
    let parsed = parser.await.context("the parser thread failed")?;
    outcome?;
    parsed?;
    state.flush(&mut db_tx).await?;
    state.final_check()?;
    bar.done();
    let kind = state.kind.unwrap_or("unknown");
    let data_date = state
        .meta_date
        .or(state.max_date)
        .or_else(|| super::text::date_in_name(&name));
    store::record_import(
        &mut db_tx,
        &NewImport {
            file_name: &name,
            kind,
            sha256: &sha256,
            rows_read: state.rows_read as i64,
            inserted: state.inserted as i64,
            updated: state.updated as i64,
            rejected: state.rejected as i64,
            data_date,
            started_at,
        },
    )
    .await?;
    db_tx.commit().await?;
    Ok(ImportSummary {
        file_name: name.clone(),
        format: format.name(),
        kind: kind.to_string(),
        sha256,
        rows_read: state.rows_read,
        inserted: state.inserted,
        updated: state.updated,
        rejected: state.rejected,
        data_date,
        elapsed_ms: clock.elapsed().as_millis(),
        errors: state.errors,
    })
}

/// The import loop's counters and pending batch.
struct Loop<'a> {
    name: &'a str,
    source: String,
    kind: Option<&'static str>,
    devices: Vec<Fda510k>,
    codes: Vec<ProductCode>,
    rows_read: u64,
    inserted: u64,
    updated: u64,
    rejected: u64,
    errors: Vec<String>,
    meta_date: Option<NaiveDate>,
    max_date: Option<NaiveDate>,
}

impl<'a> Loop<'a> {
    fn new(name: &'a str, format: Format) -> Self {
        Loop {
            name,
            source: format!("{}:{name}", format.name()),
            kind: None,
            devices: Vec::new(),
            codes: Vec::new(),
            rows_read: 0,
            inserted: 0,
            updated: 0,
            rejected: 0,
            errors: Vec::new(),
            meta_date: None,
            max_date: None,
        }
    }

    fn pending(&self) -> usize {
        self.devices.len() + self.codes.len()
    }

    fn take(&mut self, item: Item) -> anyhow::Result<()> {
        match item {
            Item::DataDate(d) => self.meta_date = Some(d),
            Item::Reject { at, reason } => {
                self.rows_read += 1;
                self.reject(at, reason);
            }
            Item::Row(record) => {
                self.rows_read += 1;
                let kind = record.kind();
                match self.kind {
                    None => self.kind = Some(kind),
                    Some(k) if k != kind => {
                        self.reject(
                            format!("{}:record {}", self.name, self.rows_read),
                            format!("a {kind} record in a {k} file"),
                        );
                        return self.garbage_check();
                    }
                    Some(_) => {}
                }
                match record {
                    Record::Device(d) => {
                        if d.decision_date > self.max_date {
                            self.max_date = d.decision_date;
                        }
                        self.devices.push(d);
                    }
                    Record::Code(c) => self.codes.push(c),
                }
            }
        }
        self.garbage_check()
    }

    fn reject(&mut self, at: String, reason: String) {
        self.rejected += 1;
        tracing::warn!(at = %at, reason = %reason, "row rejected");
        if self.errors.len() < KEEP_ERRORS {
            self.errors.push(format!("{at}: {reason}"));
        }
    }

    /// Fails once the first rows show the file is mostly garbage.
    fn garbage_check(&self) -> anyhow::Result<()> {
        if self.rows_read == SAMPLE && self.rejected * 2 > SAMPLE {
            bail!(
                "{}: {} of the first {SAMPLE} rows are malformed; is this the right file? ({})",
                self.name,
                self.rejected,
                self.errors.first().map(String::as_str).unwrap_or("")
            );
        }
        Ok(())
    }

    fn final_check(&self) -> anyhow::Result<()> {
        if self.rows_read == 0 {
            bail!("{}: the file holds no records", self.name);
        }
        if self.rows_read < SAMPLE && self.rejected * 2 > self.rows_read {
            bail!(
                "{}: {} of {} rows are malformed; is this the right file? ({})",
                self.name,
                self.rejected,
                self.rows_read,
                self.errors.first().map(String::as_str).unwrap_or("")
            );
        }
        Ok(())
    }

    async fn flush(&mut self, tx: &mut crate::db::Tx) -> anyhow::Result<()> {
        let devices = std::mem::take(&mut self.devices);
        if !devices.is_empty() {
            let n = store::upsert_510k(tx, &devices, &self.source).await?;
            self.inserted += n.inserted;
            self.updated += n.updated;
        }
        let codes = std::mem::take(&mut self.codes);
        if !codes.is_empty() {
            let n = store::upsert_product_codes(tx, &codes, &self.source).await?;
            self.inserted += n.inserted;
            self.updated += n.updated;
        }
        Ok(())
    }
}

/// A one-line progress display on stderr, only when stderr is a terminal.
struct Progress {
    enabled: bool,
    total: u64,
    read: Arc<AtomicU64>,
    last: Instant,
}

impl Progress {
    fn new(wanted: bool, total: u64, read: Arc<AtomicU64>) -> Self {
        use std::io::IsTerminal;
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            total: total.max(1),
            read,
            last: Instant::now(),
        }
    }

    fn tick(&mut self, rows: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let pct = self.read.load(Ordering::Relaxed).min(self.total) * 100 / self.total;
        let filled = (pct / 5) as usize;
        eprint!(
            "\r[{}{}] {pct:>3}% {rows} rows",
            "#".repeat(filled),
            " ".repeat(20 - filled)
        );
    }

    fn done(&self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(48));
        }
    }
}
