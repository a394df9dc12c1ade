//! Importers of FDA's device files into the local mirror (one file per format over a shared
//! streaming engine), the shipped classification table, and the classification index.

pub mod csv510k;
pub mod download;
pub mod foiclass;
pub mod import;
pub mod openfda_json;
pub mod pmn;
pub mod safety_json;
pub mod seed;
pub mod stream;
pub mod text;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

pub use import::ImportSummary;

use crate::db::mirror::safety::{Enforcement, Recall};
use crate::db::mirror::{Fda510k, ProductCode};
use crate::db::Db;

/// The classification file shipped with the repository (public domain, FDA CDRH).
pub const SHIPPED_CLASSIFICATION: &[u8] =
    include_bytes!("../../data-fda/classification/foiclass_2026-01.txt");
pub const SHIPPED_CLASSIFICATION_NAME: &str = "foiclass_2026-01.txt";

/// One parsed record.
#[derive(Debug, Clone)]
pub enum Record {
    Device(Fda510k),
    Code(ProductCode),
    Recall(Recall),
    Enforcement(Enforcement),
    Event(safety_json::EventReport),
}

impl Record {
    /// The kind recorded in `fda_imports`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Device(_) => "510k",
            Record::Code(_) => "classification",
            Record::Recall(_) => "recall",
            Record::Enforcement(_) => "enforcement",
            Record::Event(_) => "event",
        }
    }
}

/// What can be imported: a file, or bytes built into the binary.
#[derive(Debug, Clone)]
pub enum Input {
    File(PathBuf),
    Static {
        name: &'static str,
        bytes: &'static [u8],
    },
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::File(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            Input::Static { name, .. } => (*name).to_string(),
        }
    }

    pub fn open(&self) -> anyhow::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Input::File(path) => Box::new(
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
            ),
            Input::Static { bytes, .. } => Box::new(*bytes),
        })
    }
}

/// The file formats the mirror reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FDA's product classification file (`foiclass.txt`).
    Foiclass,
    /// FDA's releasable 510(k) files (`pmn*.txt`).
    Pmn,
    /// 510(k) records saved as CSV with openFDA's field names.
    Csv510k,
    /// An openFDA API response or bulk-download file (`{"meta": …, "results": […]}`): 510(k),
    /// classification, recall, enforcement or adverse-event records.
    OpenFdaJson,
    /// A zip holding one file of another format (FDA's and openFDA's downloads).
    Zip,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Foiclass => "foiclass",
            Format::Pmn => "pmn",
            Format::Csv510k => "csv",
            Format::OpenFdaJson => "openfda-json",
            Format::Zip => "zip",
        }
    }

    /// Formats whose every line ends with a line break when the file is whole.
    pub fn is_line_based(self) -> bool {
        matches!(self, Format::Foiclass | Format::Pmn | Format::Csv510k)
    }
}

/// Recognises the format from the first bytes of the content (never from the file name).
pub fn detect(head: &[u8]) -> anyhow::Result<Format> {
    if head.is_empty() {
        bail!("the file is empty");
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Format::Zip);
    }
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    // FDA's files pad fields with NUL bytes, so binary means many control bytes, not one.
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0))
        .count();
    if controls * 20 > head.len() || first_line.contains(&0) {
        bail!("the file looks binary, not one of FDA's text, CSV or JSON formats");
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Format::OpenFdaJson);
    }
    let header = text::decode_latin1(first_line).trim().to_ascii_uppercase();
    if header.contains('|') {
        let columns: Vec<&str> = header.split('|').map(str::trim).collect();
        if foiclass::is_header(&columns) {
            return Ok(Format::Foiclass);
        }
        if pmn::is_header(&columns) {
            return Ok(Format::Pmn);
        }
        bail!(
            "unrecognised pipe-delimited header (expected FDA's foiclass or pmn columns): {}",
            header.chars().take(120).collect::<String>()
        );
    }
    if header.contains(',') && header.split(',').any(|c| c.trim_matches('"') == "K_NUMBER") {
        return Ok(Format::Csv510k);
    }
    let start = &head[..head.len().min(512)];
    if start
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t'))
    {
        bail!("the file looks binary, not one of FDA's text, CSV or JSON formats");
    }
    bail!("unrecognised format: expected FDA's foiclass or pmn text, openFDA JSON or zip, or a CSV with openFDA's 510(k) field names")
}

/// Imports one file, printing progress on a terminal when `progress` is set.
pub async fn import_file(db: &Db, path: &Path, progress: bool) -> anyhow::Result<ImportSummary> {
    import::run(db, Input::File(path.to_path_buf()), progress).await
}

/// Loads the shipped classification table when `fda_product_codes` is empty (a fresh install).
/// Returns the summary when it loaded, `None` when the table already had rows.
pub async fn ensure_classification(db: &Db) -> anyhow::Result<Option<ImportSummary>> {
    if crate::db::mirror::count_product_codes(db).await? > 0 {
        return Ok(None);
    }
    let started = Instant::now();
    let summary = import::run(
        db,
        Input::Static {
            name: SHIPPED_CLASSIFICATION_NAME,
            bytes: SHIPPED_CLASSIFICATION,
        },
        false,
    )
    .await
    .context("loading the shipped classification table")?;
    tracing::info!(
        product_codes = summary.inserted,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded the shipped FDA classification table"
    );
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_content() {
        assert_eq!(detect(SHIPPED_CLASSIFICATION).ok(), Some(Format::Foiclass));
        assert_eq!(
            detect(b"KNUMBER|APPLICANT|CONTACT|STREET1|STREET2|CITY|STATE|COUNTRY_CODE|ZIP|POSTAL_CODE|DATERECEIVED|DECISIONDATE|DECISION|REVIEWADVISECOMM|PRODUCTCODE|STATEORSUMM|CLASSADVISECOMM|SSPINDICATOR|TYPE|THIRDPARTY|EXPEDITEDREVIEW|DEVICENAME\r\n").ok(),
            Some(Format::Pmn)
        );
        assert_eq!(
            detect(b"k_number,applicant,device_name\nK1,a,b\n").ok(),
            Some(Format::Csv510k)
        );
        assert_eq!(detect(b"  {\"meta\": {}}").ok(), Some(Format::OpenFdaJson));
        assert_eq!(detect(b"PK\x03\x04rest").ok(), Some(Format::Zip));
        assert!(detect(b"A|B|C\n").is_err());
        assert!(detect(b"hello world\n").is_err());
        assert!(detect(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x10]).is_err());
        assert!(detect(b"").is_err());
    }
}
