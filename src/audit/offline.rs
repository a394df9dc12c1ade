//! Exports that can be checked without the service: what an export carries besides its rows (the
//! links between them and a signed checkpoint), and the offline check of an exported JSON or CSV
//! file (`regassist audit verify-export`; `docs/verify_audit_export.py` does the same in Python).
//!
//! A JSON export holds `entries`, `links` (`{seq, prev_hash, hash}` of every chain row between the
//! first exported row and the checkpoint that the export does not include) and `checkpoint`. A CSV
//! export holds the rows, a blank line, then `#` lines: `# verification: …`,
//! `# checkpoint: head_seq=… head_hash=… at=… signature=…` and one `# link: SEQ PREV_HASH HASH`
//! per link. In CSV an empty cell stands for `null` (or an empty string: both are tried).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{canonical_json, Checkpoint, HashedFields, GENESIS_HASH};
use crate::db::{audit as store, Db};

/// A chain row's place without its content: lets an export prove the links across rows it leaves
/// out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ChainLink {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// The links an export of the rows `seqs` (ascending) needs: every chain row from the first of
/// them to the last of them or the checkpoint, whichever is later, that is not exported itself.
pub async fn export_links(
    db: &Db,
    seqs: &[i64],
    checkpoint: Option<&Checkpoint>,
) -> Result<Vec<ChainLink>, sqlx::Error> {
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        return Ok(Vec::new());
    };
    let end = checkpoint.map_or(last, |c| c.head_seq.max(last));
    let exported: std::collections::HashSet<i64> = seqs.iter().copied().collect();
    Ok(store::links(db, first, end)
        .await?
        .into_iter()
        .filter(|(seq, _, _)| !exported.contains(seq))
        .map(|(seq, prev_hash, hash)| ChainLink {
            seq,
            prev_hash,
            hash,
        })
        .collect())
}

/// The `#` lines after a CSV export's rows that carry its checkpoint and links.
pub fn csv_trailer(checkpoint: Option<&Checkpoint>, links: &[ChainLink]) -> String {
    let mut out = String::new();
    if let Some(c) = checkpoint {
        out.push_str(&format!(
            "# checkpoint: head_seq={} head_hash={} at={} signature={}\r\n",
            c.head_seq, c.head_hash, c.at, c.signature
        ));
    }
    for l in links {
        out.push_str(&format!("# link: {} {} {}\r\n", l.seq, l.prev_hash, l.hash));
    }
    out
}

/// The result of an offline check.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExportReport {
    pub is_valid: bool,
    pub format: &'static str,
    pub entries: usize,
    pub links: usize,
    pub first_invalid_seq: Option<i64>,
    /// `matched`, `mismatch`, `not_covered`, `bad_signature` or `not_carried`.
    pub checkpoint: String,
    pub checkpoint_seq: Option<i64>,
    /// Whether the checkpoint's signature was checked (it needs the checkpoint key).
    pub signature_checked: bool,
    pub problems: Vec<String>,
}

/// One exported row: its chain fields and the hashes its content may have (CSV cells can be
/// ambiguous between `null` and an empty string).
struct Row {
    seq: i64,
    prev_hash: String,
    hash: String,
    candidates: Vec<String>,
}

/// Checks an exported file's text: each row's hash, the links from the first row to the
/// checkpoint, and the checkpoint (its signature when `key` is given).
pub fn verify_export(text: &str, key: Option<&[u8]>) -> ExportReport {
    let parsed = if text.trim_start().starts_with('{') {
        parse_json(text).map(|p| ("json", p))
    } else {
        parse_csv(text).map(|p| ("csv", p))
    };
    match parsed {
        Ok((format, (rows, links, checkpoint))) => check(format, rows, links, checkpoint, key),
        Err(why) => ExportReport {
            is_valid: false,
            format: "unknown",
            entries: 0,
            links: 0,
            first_invalid_seq: None,
            checkpoint: "not_carried".into(),
            checkpoint_seq: None,
            signature_checked: false,
            problems: vec![format!("not a regassist audit export: {why}")],
        },
    }
}

type Parsed = (Vec<Row>, Vec<ChainLink>, Option<Checkpoint>);

fn check(
    format: &'static str,
    rows: Vec<Row>,
    links: Vec<ChainLink>,
    checkpoint: Option<Checkpoint>,
    key: Option<&[u8]>,
) -> ExportReport {
    let mut problems = Vec::new();
    let mut first_invalid: Option<i64> = None;
    let mut flag = |seq: i64, why: String, problems: &mut Vec<String>| {
        first_invalid = Some(first_invalid.map_or(seq, |f| f.min(seq)));
        problems.push(why);
    };
    let mut chain: BTreeMap<i64, (String, String)> = BTreeMap::new();
    for row in &rows {
        if !row.candidates.contains(&row.hash) {
            flag(
                row.seq,
                format!(
                    "seq {}: the hash does not match the row's fields (edited)",
                    row.seq
                ),
                &mut problems,
            );
        }
        if chain
            .insert(row.seq, (row.prev_hash.clone(), row.hash.clone()))
            .is_some()
        {
            flag(
                row.seq,
                format!("seq {} appears twice", row.seq),
                &mut problems,
            );
        }
    }
    for link in &links {
        if chain
            .insert(link.seq, (link.prev_hash.clone(), link.hash.clone()))
            .is_some()
        {
            flag(
                link.seq,
                format!("seq {} is both a row and a link", link.seq),
                &mut problems,
            );
        }
    }
    let mut previous: Option<(i64, &str)> = None;
    for (&seq, (prev_hash, hash)) in &chain {
        match previous {
            None if seq == 1 && prev_hash != GENESIS_HASH => flag(
                seq,
                "seq 1 does not start from the genesis hash".into(),
                &mut problems,
            ),
            Some((p, _)) if seq != p + 1 => flag(
                p + 1,
                format!(
                    "seqs {}..{} are missing (neither rows nor links)",
                    p + 1,
                    seq - 1
                ),
                &mut problems,
            ),
            Some((_, h)) if prev_hash != h => flag(
                seq,
                format!("seq {seq} does not link to its predecessor"),
                &mut problems,
            ),
            _ => {}
        }
        previous = Some((seq, hash));
    }
    let mut signature_checked = false;
    let state = match &checkpoint {
        None if rows.is_empty() => "not_carried".to_string(),
        None => {
            problems.push("the export carries no checkpoint".into());
            "not_carried".into()
        }
        Some(cp) => {
            let authentic = key.map(|k| cp.is_authentic(k));
            signature_checked = authentic.is_some();
            match (authentic, chain.get(&cp.head_seq)) {
                (Some(false), _) => {
                    problems.push("the checkpoint's signature is not valid under this key".into());
                    "bad_signature".into()
                }
                (_, Some((_, h))) if *h == cp.head_hash => "matched".into(),
                (_, Some(_)) => {
                    flag(
                        cp.head_seq,
                        format!("seq {} differs from the checkpoint", cp.head_seq),
                        &mut problems,
                    );
                    "mismatch".into()
                }
                (_, None) => {
                    problems.push(format!(
                        "the checkpoint's seq {} is not in the export",
                        cp.head_seq
                    ));
                    "not_covered".into()
                }
            }
        }
    };
    ExportReport {
        is_valid: problems.is_empty(),
        format,
        entries: rows.len(),
        links: links.len(),
        first_invalid_seq: first_invalid,
        checkpoint: state,
        checkpoint_seq: checkpoint.as_ref().map(|c| c.head_seq),
        signature_checked,
        problems,
    }
}

#[derive(Deserialize)]
struct JsonExport {
    checkpoint: Option<Checkpoint>,
    #[serde(default)]
    links: Vec<ChainLink>,
    entries: Vec<JsonEntry>,
}

#[derive(Deserialize)]
struct JsonEntry {
    seq: i64,
    at: String,
    actor_id: Option<i64>,
    actor_email: Option<String>,
    action: String,
    entity_type: String,
    entity_id: Option<String>,
    project_id: Option<i64>,
    reason: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
    request_id: String,
    prev_hash: String,
    hash: String,
}

fn parse_json(text: &str) -> Result<Parsed, String> {
    let export: JsonExport = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let rows = export
        .entries
        .iter()
        .map(|e| {
            let before = e.before.as_ref().map(canonical_json);
            let after = e.after.as_ref().map(canonical_json);
            let fields = HashedFields {
                seq: e.seq,
                at: &e.at,
                actor_id: e.actor_id,
                actor_email: e.actor_email.as_deref(),
                action: &e.action,
                entity_type: &e.entity_type,
                entity_id: e.entity_id.as_deref(),
                project_id: e.project_id,
                reason: e.reason.as_deref(),
                before: before.as_deref(),
                after: after.as_deref(),
                request_id: &e.request_id,
            };
            Row {
                seq: e.seq,
                prev_hash: e.prev_hash.clone(),
                hash: e.hash.clone(),
                candidates: vec![fields.hash(&e.prev_hash)],
            }
        })
        .collect();
    Ok((rows, export.links, export.checkpoint))
}

const CSV_HEADER: [&str; 14] = [
    "seq",
    "at",
    "actor_id",
    "actor_email",
    "action",
    "entity_type",
    "entity_id",
    "project_id",
    "reason",
    "before",
    "after",
    "request_id",
    "prev_hash",
    "hash",
];

fn parse_csv(text: &str) -> Result<Parsed, String> {
    let split = text
        .rfind("\n# verification:")
        .ok_or("no `# verification:` line")?;
    let (body, trailer) = (
        text[..split].trim_end_matches(['\r', '\n']),
        &text[split + 1..],
    );
    let mut reader = csv::ReaderBuilder::new().from_reader(body.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    if header.iter().ne(CSV_HEADER) {
        return Err("unexpected CSV header".into());
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let r = record.map_err(|e| e.to_string())?;
        rows.push(csv_row(&r)?);
    }
    let mut checkpoint = None;
    let mut links = Vec::new();
    for line in trailer.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(rest) = line.strip_prefix("# checkpoint: ") {
            let field = |name: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .map(str::to_string)
                    .ok_or(format!("the checkpoint line lacks {name}"))
            };
            checkpoint = Some(Checkpoint {
                head_seq: field("head_seq")?.parse().map_err(|_| "bad head_seq")?,
                head_hash: field("head_hash")?,
                at: field("at")?,
                signature: field("signature")?,
            });
        } else if let Some(rest) = line.strip_prefix("# link: ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let [seq, prev_hash, hash] = parts[..] else {
                return Err(format!("bad link line: {line}"));
            };
            links.push(ChainLink {
                seq: seq.parse().map_err(|_| format!("bad link line: {line}"))?,
                prev_hash: prev_hash.into(),
                hash: hash.into(),
            });
        }
    }
    Ok((rows, links, checkpoint))
}

fn csv_row(r: &csv::StringRecord) -> Result<Row, String> {
    let cell = |i: usize| r.get(i).unwrap_or_default();
    let seq: i64 = cell(0)
        .parse()
        .map_err(|_| format!("bad seq {:?}", cell(0)))?;
    let int = |i: usize| -> Result<Option<i64>, String> {
        match cell(i) {
            "" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| format!("seq {seq}: bad number {v:?}")),
        }
    };
    let (actor_id, project_id) = (int(2)?, int(7)?);
    let text = |i: usize| Some(cell(i)).filter(|v| !v.is_empty());
    // An empty text cell is `null` or `""`: try each combination of the three text fields that
    // may hold either (before/after are JSON text, never empty).
    let ambiguous = [3usize, 6, 8];
    let mut candidates = Vec::new();
    for mask in 0..(1u8 << ambiguous.len()) {
        let pick = |n: usize| -> Option<&str> {
            let i = ambiguous[n];
            if cell(i).is_empty() && mask & (1 << n) != 0 {
                Some("")
            } else {
                text(i)
            }
        };
        let fields = HashedFields {
            seq,
            at: cell(1),
            actor_id,
            actor_email: pick(0),
            action: cell(4),
            entity_type: cell(5),
            entity_id: pick(1),
            project_id,
            reason: pick(2),
            before: text(9),
            after: text(10),
            request_id: cell(11),
        };
        let hash = fields.hash(cell(12));
        if !candidates.contains(&hash) {
            candidates.push(hash);
        }
    }
    Ok(Row {
        seq,
        prev_hash: cell(12).to_string(),
        hash: cell(13).to_string(),
        candidates,
    })
}
