//! Shared parsing helpers of FDA's files: byte decoding, line reading, dates, field cleanup.

use std::collections::HashMap;
use std::io::BufRead;

use anyhow::{bail, Context};
use chrono::NaiveDate;

use super::import::{Item, Sink};
use super::Record;

/// Windows-1252's printable characters at 0x80..=0x9F. FDA's "Latin-1" files really use them
/// (™ is 0x99, – is 0x96); true ISO-8859-1 has only invisible controls there.
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Decodes one byte per character. NUL bytes (FDA's fixed-width padding) are dropped and other
/// control characters become spaces.
pub fn decode_latin1(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            0 => {}
            b'\t' | 0x01..=0x1f | 0x7f => out.push(' '),
            0x80..=0x9f => out.push(CP1252_HIGH[usize::from(b - 0x80)]),
            _ => out.push(char::from(b)),
        }
    }
    out
}

/// A trimmed field, `None` when empty. Runs of inner spaces collapse to one.
pub fn field(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.contains("  ") {
        Some(trimmed.split_whitespace().collect::<Vec<_>>().join(" "))
    } else {
        Some(trimmed.to_string())
    }
}

/// Reads the next line into `buf` (terminator stripped). Returns `Ok(None)` at the end of the
/// input and `Ok(Some(ended))` otherwise, `ended` telling whether a newline closed the line.
pub fn next_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    if reader.read_until(b'\n', buf)? == 0 {
        return Ok(None);
    }
    let ended = buf.last() == Some(&b'\n');
    if ended {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(Some(ended))
}

/// The first 510(k)s were decided in 1976; an earlier year is a data-entry error (FDA's
/// `pmn7680` holds two decisions dated year 0020 for submissions received in 2026).
pub const FIRST_YEAR: i32 = 1976;

/// Parses `MM/DD/YYYY` (FDA's text files), `YYYY-MM-DD` or `YYYYMMDD` (openFDA). Empty is `None`;
/// malformed or implausible (before 1976, or after 2100) is an error message.
pub fn date(raw: &str) -> Result<Option<NaiveDate>, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let parsed = NaiveDate::parse_from_str(s, "%m/%d/%Y")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
        .map_err(|_| format!("date {s:?} is not MM/DD/YYYY or YYYY-MM-DD"))?;
    use chrono::Datelike;
    if parsed.year() < FIRST_YEAR || parsed.year() > 2100 {
        return Err(format!(
            "date {s:?} has an implausible year (a known FDA data-entry error); row skipped"
        ));
    }
    Ok(Some(parsed))
}

/// A `YYYY-MM` (or `YYYY-MM-DD`) date inside a file name, e.g. `foiclass_2026-01.txt`.
pub fn date_in_name(name: &str) -> Option<NaiveDate> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(6)).find_map(|i| {
        let s = name.get(i..i + 7)?;
        let ok = s.as_bytes()[4] == b'-'
            && s.bytes()
                .enumerate()
                .all(|(j, b)| j == 4 || b.is_ascii_digit());
        if !ok {
            return None;
        }
        NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()
    })
}

/// True for three capital ASCII letters.
pub fn is_product_code(code: &str) -> bool {
    crate::domain::ids::ProductCode::parse(code).is_some()
}

/// The description of a 510(k) decision code, from openFDA's table (`data-fda/reference/decision_codes_510k.csv`).
/// FDA's four-letter codes are `SE` plus a two-letter qualifier (`SESE`, `SESP`, `SEKD`).
pub fn decision_description(code: &str) -> Option<String> {
    const TABLE: &str = include_str!("../../data-fda/reference/decision_codes_510k.csv");
    let lookup = |key: &str| {
        TABLE.lines().find_map(|line| {
            let (k, v) = line.split_once(',')?;
            (k == key).then(|| v.trim().to_string())
        })
    };
    match code {
        "DENG" => Some("Granted (De Novo)".to_string()),
        "DEND" => Some("Declined (De Novo)".to_string()),
        _ if code.len() == 4 && code.starts_with("SE") => lookup(&code[2..]),
        _ => lookup(code),
    }
}

/// Column name -> position, from the header row.
pub(crate) fn header_index(line: &[u8]) -> HashMap<String, usize> {
    decode_latin1(line)
        .split('|')
        .enumerate()
        .map(|(i, name)| (name.trim().to_ascii_uppercase(), i))
        .collect()
}

/// Reads one of FDA's pipe-delimited files: the header row, then every row through `row`, sending
/// each record, or the reason it was refused with its `file:line`, to `sink`.
pub(crate) fn parse_pipe_file(
    reader: &mut dyn BufRead,
    name: &str,
    sink: &mut Sink,
    row: impl Fn(&HashMap<String, usize>, usize, &[&str]) -> Result<Record, String>,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    if next_line(reader, &mut buf)
        .with_context(|| format!("reading {name}"))?
        .is_none()
    {
        bail!("{name}: the file is empty");
    }
    let index = header_index(&buf);
    let width = index.len();
    let mut line_no = 1u64;
    while next_line(reader, &mut buf)
        .with_context(|| format!("reading {name}"))?
        .is_some()
    {
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = decode_latin1(&buf);
        let fields: Vec<&str> = line.split('|').collect();
        let item = match row(&index, width, &fields) {
            Ok(record) => Item::Row(record),
            Err(reason) => Item::Reject {
                at: format!("{name}:{line_no}"),
                reason,
            },
        };
        sink.send(item)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fda_bytes() {
        assert_eq!(
            decode_latin1(b"Navigator\xae Flex\x99\0\0"),
            "Navigator® Flex™"
        );
        assert_eq!(decode_latin1(b"a\tb"), "a b");
    }

    #[test]
    fn dates() {
        assert_eq!(date("06/15/1979"), Ok(NaiveDate::from_ymd_opt(1979, 6, 15)));
        assert_eq!(date("2020-09-08"), Ok(NaiveDate::from_ymd_opt(2020, 9, 8)));
        assert_eq!(date(""), Ok(None));
        assert!(date("08/04/0020").is_err());
        assert!(date("13/01/1990").is_err());
        assert_eq!(
            date_in_name("foiclass_2026-01.txt"),
            NaiveDate::from_ymd_opt(2026, 1, 1)
        );
        assert_eq!(date_in_name("foiclass.txt"), None);
    }

    #[test]
    fn decision_codes() {
        assert_eq!(
            decision_description("SESE").as_deref(),
            Some("Substantially Equivalent")
        );
        assert_eq!(
            decision_description("SN").as_deref(),
            Some("Substantially Equivalent for Some Indications")
        );
        assert_eq!(decision_description("ZZZZ"), None);
    }

    #[test]
    fn fields_are_trimmed() {
        assert_eq!(field("  Asawari  Hare "), Some("Asawari Hare".into()));
        assert_eq!(field("   "), None);
    }
}
