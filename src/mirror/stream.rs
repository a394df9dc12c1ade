//! The reading side of an import: fingerprinting (SHA-256 and first bytes), opening plain files
//! and zips, dispatching to the format's parser, the truncation check, and terminal progress.

use std::io::{BufRead, BufReader, Read, Seek};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::import::Sink;
use super::{detect, Format, Input};

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

/// Reads the whole input once: its SHA-256 and its first bytes (for format detection).
pub fn fingerprint(input: &Input) -> anyhow::Result<(String, Vec<u8>, u64)> {
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
pub fn parse(
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

/// A progress bar on stderr (bytes read, rate, ETA, rows), only when stderr is a terminal.
pub struct Progress {
    bar: indicatif::ProgressBar,
    read: Arc<AtomicU64>,
}

impl Progress {
    pub fn new(wanted: bool, total: u64, read: Arc<AtomicU64>) -> Self {
        Progress {
            bar: bytes_bar(wanted, total),
            read,
        }
    }

    pub fn tick(&mut self, rows: u64) {
        self.bar.set_position(self.read.load(Ordering::Relaxed));
        self.bar.set_message(format!("{rows} rows"));
    }

    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}

/// A bar counting bytes towards `total` (a spinner when it is unknown, 0), with rate and ETA;
/// hidden unless `wanted` and stderr is a terminal, so logs and pipes get no control characters.
pub fn bytes_bar(wanted: bool, total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !wanted || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        (total > 0).then_some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let template = if total > 0 {
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
    } else {
        "{spinner} {bytes} {binary_bytes_per_sec} {msg}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
