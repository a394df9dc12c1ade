//! The streaming import engine shared by every format: a parser thread sends rows through a
//! bounded channel (memory stays flat whatever the file size) to an async loop that upserts them
//! in batches, all inside one transaction per file, so a file that turns out to be garbage or
//! truncated rolls back and leaves the previous data as it was.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use tokio::sync::mpsc;

use super::stream::{fingerprint, parse, Progress};
use super::{detect, Format, Input, Record};
use crate::db::mirror::safety::{self as safety_store, Enforcement, EventCount, Recall};
use crate::db::mirror::{self as store, Fda510k, NewImport, ProductCode};
use crate::db::{now, Db};

/// Rows per upsert statement.
const BATCH: usize = 1000;
/// The garbage check looks at this many rows.
const SAMPLE: u64 = 200;
/// Distinct event-count keys held before they are added to the staging table: what bounds the
/// memory of an adverse-event import, whatever the file's size.
const EVENT_KEYS: usize = 100_000;
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
    /// A sink and the receiving end of its channel, for feeding a parser directly (tests).
    pub fn channel(capacity: usize) -> (Sink, mpsc::Receiver<Item>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Sink { tx }, rx)
    }

    /// Sends an item; fails when the import loop has given up (then the parser stops).
    pub fn send(&mut self, item: Item) -> anyhow::Result<()> {
        self.tx
            .blocking_send(item)
            .map_err(|_| anyhow::anyhow!("import aborted"))
    }
}

/// The outcome of importing one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub file_name: String,
    pub format: &'static str,
    /// `classification`, `510k`, `recall`, `enforcement` or `event`.
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
    state.finish_events(&mut db_tx).await?;
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
    recalls: Vec<Recall>,
    enforcement: Vec<Enforcement>,
    /// Partial adverse-event counts by (scope, key, year, type).
    events: HashMap<(&'static str, String, i32, &'static str), i64>,
    /// True once this import's staging table for event counts is ready.
    staging: bool,
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
            recalls: Vec::new(),
            enforcement: Vec::new(),
            events: HashMap::new(),
            staging: false,
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
        let events = if self.events.len() >= EVENT_KEYS {
            BATCH
        } else {
            0
        };
        self.devices.len() + self.codes.len() + self.recalls.len() + self.enforcement.len() + events
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
                    Record::Recall(r) => self.recalls.push(r),
                    Record::Enforcement(e) => self.enforcement.push(e),
                    Record::Event(e) => {
                        let keys = e
                            .product_codes
                            .into_iter()
                            .map(|k| ("product_code", k))
                            .chain(e.k_numbers.into_iter().map(|k| ("k_number", k)));
                        for (scope, key) in keys {
                            *self
                                .events
                                .entry((scope, key, e.year, e.event_type))
                                .or_insert(0) += 1;
                        }
                    }
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
        let recalls = std::mem::take(&mut self.recalls);
        if !recalls.is_empty() {
            let n = safety_store::upsert_recalls(tx, &recalls, &self.source).await?;
            self.inserted += n.inserted;
            self.updated += n.updated;
        }
        let enforcement = std::mem::take(&mut self.enforcement);
        if !enforcement.is_empty() {
            let n = safety_store::upsert_enforcement(tx, &enforcement, &self.source).await?;
            self.inserted += n.inserted;
            self.updated += n.updated;
        }
        if !self.events.is_empty() {
            if !self.staging {
                safety_store::event_stage_begin(tx).await?;
                self.staging = true;
            }
            let rows: Vec<EventCount> = self
                .events
                .drain()
                .map(|((scope, key, year, kind), n)| (scope, key, year, kind, n))
                .collect();
            safety_store::event_stage_add(tx, &rows).await?;
        }
        Ok(())
    }

    /// Replaces this file's stored event counts with the ones it just read. The file's name is
    /// its identity: re-importing it (or a refreshed copy) replaces its counts, other files add.
    async fn finish_events(&mut self, tx: &mut crate::db::Tx) -> anyhow::Result<()> {
        if self.kind == Some("event") && !self.staging {
            // A file of reports that name no device still replaces its earlier counts.
            safety_store::event_stage_begin(tx).await?;
            self.staging = true;
        }
        if self.staging {
            let n = safety_store::event_stage_commit(tx, self.name).await?;
            self.inserted += n.inserted;
            self.updated += n.updated;
        }
        Ok(())
    }
}
