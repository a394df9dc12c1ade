//! The hash-chained audit trail and the unit of work of every audited change: [`AuditLog::begin`]
//! opens the transaction, [`Recording::commit`] adds its one audit row, commits, and returns once
//! the row is on the chain (sealed in group-commit rounds on PostgreSQL, see [`seal`]). Also
//! verification and checkpoints.
//!
//! # Canonical encoding (what an outside tool recomputes)
//!
//! For each row, in `seq` order starting at 1:
//!
//! ```text
//! canonical = compact JSON array of the 12 fields
//!   [seq, at, actor_id, actor_email, action, entity_type, entity_id, project_id,
//!    reason, before, after, request_id]
//! hash      = lowercase hex of SHA-256( prev_hash as 64 ASCII hex chars || canonical as UTF-8 )
//! ```
//!
//! - `seq`, `actor_id`, `project_id` are JSON integers or `null`.
//! - `at` is the UTC time as a string `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly six fraction digits).
//! - `before` and `after` are JSON *strings* holding the value's canonical JSON text (object keys
//!   sorted bytewise, no whitespace), or `null`. The same text is stored and exported.
//! - Strings are encoded as `serde_json` writes them (UTF-8, only `"`, `\` and control
//!   characters escaped).
//! - The first row's `prev_hash` is 64 zeros; every later row's is the previous row's `hash`.
//!
//! A checkpoint `{head_seq, head_hash, at, signature}` signs `"regassist-audit-checkpoint:v1:
//! {head_seq}:{head_hash}:{at}"` with HMAC-SHA256 under `AUDIT_CHECKPOINT_KEY` (as UTF-8 bytes);
//! kept outside the table, it reveals rows cut off the end of the chain. The writer
//! ([`anchor`]) extends only a chain that still holds the previous checkpoint. Exports carry a
//! checkpoint and the links between their rows, so [`offline`] checks them without the service.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::db::audit::{self as store, AuditRow};
use crate::db::{now, Db};

pub mod anchor;
mod checkpoint;
mod log;
pub mod offline;
mod rows;
mod seal;
pub use anchor::{CheckedAhead, Mode, Outcome};
pub use checkpoint::{ensure_key, key_file, load_checkpoint, load_key, Checkpoint};
pub use log::{AuditLog, Recording};
pub use rows::{verify_rows, RowsCheck};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it and why, from the authenticated request (never from the client's body).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<i64>,
    pub email: Option<String>,
    pub request_id: String,
    pub reason: Option<String>,
}

/// What changed.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<String>,
    pub project_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// `at` as hashed and exported.
pub fn format_at(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// JSON text with object keys sorted and no whitespace, whatever map order serde_json uses.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // Serialising a `Value` cannot fail.
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

/// The 12 hashed fields of a row, `at` already formatted (see the module docs).
#[derive(Debug, Clone, Serialize)]
pub struct HashedFields<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub actor_id: Option<i64>,
    pub actor_email: Option<&'a str>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<&'a str>,
    pub project_id: Option<i64>,
    pub reason: Option<&'a str>,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    pub request_id: &'a str,
}

impl HashedFields<'_> {
    /// The canonical encoding: the compact JSON array of the fields in order.
    pub fn canonical(&self) -> String {
        let fields = serde_json::json!([
            self.seq,
            self.at,
            self.actor_id,
            self.actor_email,
            self.action,
            self.entity_type,
            self.entity_id,
            self.project_id,
            self.reason,
            self.before,
            self.after,
            self.request_id,
        ]);
        serde_json::to_string(&fields).unwrap_or_default()
    }

    /// `SHA-256(prev_hash || canonical)` as lowercase hex.
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(self.canonical().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// The canonical encoding of a row (see the module docs).
pub fn canonical_row(row: &AuditRow) -> String {
    hashed_fields(row, &format_at(&row.occurred_at)).canonical()
}

fn hashed_fields<'a>(row: &'a AuditRow, at: &'a str) -> HashedFields<'a> {
    HashedFields {
        seq: row.seq,
        at,
        actor_id: row.actor_id,
        actor_email: row.actor_email.as_deref(),
        action: &row.action,
        entity_type: &row.entity_type,
        entity_id: row.entity_id.as_deref(),
        project_id: row.project_id,
        reason: row.reason.as_deref(),
        before: row.before_json.as_deref(),
        after: row.after_json.as_deref(),
        request_id: &row.request_id,
    }
}

pub fn row_hash(row: &AuditRow) -> String {
    hashed_fields(row, &format_at(&row.occurred_at)).hash(&row.prev_hash)
}

/// The result of recomputing the chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Verification {
    pub is_valid: bool,
    pub total_entries: i64,
    pub verified_entries: i64,
    /// The first `seq` whose row is missing, altered or out of place.
    pub first_invalid_seq: Option<i64>,
    pub head_seq: i64,
    pub head_hash: String,
    pub checked_at: DateTime<Utc>,
    #[schema(example = "SHA-256")]
    pub hash_algorithm: String,
    /// What the signed checkpoint showed: `not_configured` (no key), `none_yet` (no checkpoint
    /// written so far), `missing` (checkpoints were written but the file is gone: a failure),
    /// `matched`, `bad_signature`, `truncated` (rows after the checkpoint were removed) or
    /// `mismatch` (the row at the checkpoint's seq was rewritten).
    pub checkpoint: String,
    /// Why verification failed, for people.
    pub problem: Option<String>,
    /// The `head_seq` of the signed checkpoint the chain was checked against.
    pub checkpoint_seq: Option<i64>,
    /// Rows of committed changes still waiting in the queue for their place on the chain.
    pub pending_entries: i64,
    /// How long the oldest of them has waited, in whole seconds.
    pub oldest_pending_age_seconds: Option<i64>,
    /// The oldest waiting rows (at most 100), named.
    pub pending: Vec<PendingEntry>,
}

/// A committed change's audit row that is not on the chain yet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct PendingEntry {
    pub queue_id: i64,
    pub at: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub request_id: String,
}

/// Walks the chain state row by row.
struct ChainCheck {
    expected_seq: i64,
    prev_hash: String,
    first_invalid: Option<(i64, String)>,
    verified: i64,
    /// Hashes of the rows seen, by seq, only where a checkpoint needs one.
    checkpoint_seq: Option<i64>,
    checkpoint_hash_seen: Option<String>,
    project: Option<i64>,
    project_total: i64,
    project_verified: i64,
}

impl ChainCheck {
    fn visit(&mut self, row: AuditRow) {
        let in_project = self.project.is_none_or(|p| row.project_id == Some(p));
        if in_project {
            self.project_total += 1;
        }
        if Some(row.seq) == self.checkpoint_seq {
            self.checkpoint_hash_seen = Some(row.hash.clone());
        }
        if self.first_invalid.is_none() {
            let problem = if row.seq != self.expected_seq {
                Some((
                    self.expected_seq.min(row.seq),
                    format!("expected seq {}, found {}", self.expected_seq, row.seq),
                ))
            } else if row.prev_hash != self.prev_hash {
                Some((
                    row.seq,
                    format!("seq {} does not link to its predecessor", row.seq),
                ))
            } else if row_hash(&row) != row.hash {
                Some((
                    row.seq,
                    format!("seq {} was altered: its hash does not match", row.seq),
                ))
            } else {
                None
            };
            match problem {
                Some(p) => self.first_invalid = Some(p),
                None => {
                    self.verified += 1;
                    if in_project {
                        self.project_verified += 1;
                    }
                }
            }
        }
        self.expected_seq = row.seq + 1;
        self.prev_hash = row.hash;
    }
}

/// Recomputes the chain (the whole chain; `project` narrows the counts to one project).
pub async fn verify(
    db: &Db,
    checkpoint: Option<&Checkpoint>,
    checkpoint_state: &str,
    project: Option<i64>,
) -> anyhow::Result<Verification> {
    let mut check = ChainCheck {
        expected_seq: 1,
        prev_hash: GENESIS_HASH.to_string(),
        first_invalid: None,
        verified: 0,
        checkpoint_seq: checkpoint.map(|c| c.head_seq),
        checkpoint_hash_seen: None,
        project,
        project_total: 0,
        project_verified: 0,
    };
    let mut head_seq = 0;
    let mut head_hash = GENESIS_HASH.to_string();
    let mut total = 0;
    store::scan(db, |row| {
        total += 1;
        head_seq = row.seq;
        head_hash = row.hash.clone();
        check.visit(row);
    })
    .await?;
    let mut checkpoint_result = checkpoint_state.to_string();
    if let Some(cp) = checkpoint {
        if cp.head_seq > head_seq {
            checkpoint_result = "truncated".into();
            if check.first_invalid.is_none() {
                check.first_invalid = Some((
                    head_seq + 1,
                    format!(
                        "rows {}..={} named by the signed checkpoint are missing",
                        head_seq + 1,
                        cp.head_seq
                    ),
                ));
            }
        } else if check.checkpoint_hash_seen.as_deref() != Some(cp.head_hash.as_str()) {
            checkpoint_result = "mismatch".into();
            if check.first_invalid.is_none() {
                check.first_invalid = Some((
                    cp.head_seq,
                    format!("seq {} differs from the signed checkpoint", cp.head_seq),
                ));
            }
        } else {
            checkpoint_result = "matched".into();
        }
    }
    if checkpoint_state == "bad_signature" && check.first_invalid.is_none() {
        check.first_invalid = Some((head_seq, "the checkpoint's signature is invalid".into()));
    }
    let (first_invalid_seq, problem) = match check.first_invalid {
        Some((seq, why)) => (Some(seq), Some(why)),
        None => (None, None),
    };
    let (total_entries, verified_entries) = match project {
        Some(_) => (check.project_total, check.project_verified),
        None => (total, check.verified),
    };
    Ok(Verification {
        is_valid: first_invalid_seq.is_none(),
        total_entries,
        verified_entries,
        first_invalid_seq,
        head_seq,
        head_hash,
        checked_at: now(),
        hash_algorithm: "SHA-256".into(),
        checkpoint: checkpoint_result,
        problem,
        checkpoint_seq: checkpoint.map(|c| c.head_seq),
        pending_entries: 0,
        oldest_pending_age_seconds: None,
        pending: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, prev: &str) -> AuditRow {
        let mut r = AuditRow {
            seq,
            occurred_at: DateTime::parse_from_rfc3339("2026-11-26T23:00:21.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            actor_id: Some(1),
            actor_email: Some("a@example.com".into()),
            action: "project.create".into(),
            entity_type: "project".into(),
            entity_id: Some("7".into()),
            project_id: Some(7),
            reason: None,
            before_json: None,
            after_json: Some(canonical_json(&serde_json::json!({"b": 1, "a": "x"}))),
            request_id: "r1".into(),
            prev_hash: prev.into(),
            hash: String::new(),
        };
        r.hash = row_hash(&r);
        r
    }

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let v = serde_json::json!({"z": {"b": 1, "a": [{"y": 1, "x": 2}]}, "a": null});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":null,"z":{"a":[{"x":2,"y":1}],"b":1}}"#
        );
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        let r = row(1, GENESIS_HASH);
        assert_eq!(
            canonical_row(&r),
            r#"[1,"2026-11-26T23:00:21.123456Z",1,"a@example.com","project.create","project","7",7,null,null,"{\"a\":\"x\",\"b\":1}","r1"]"#
        );
        let mut h = Sha256::new();
        h.update(GENESIS_HASH.as_bytes());
        h.update(canonical_row(&r).as_bytes());
        assert_eq!(r.hash, hex::encode(h.finalize()));
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let r = row(1, GENESIS_HASH);
        let mut changed = r.clone();
        changed.reason = Some("x".into());
        assert_ne!(row_hash(&changed), r.hash);
        let mut changed = r.clone();
        changed.occurred_at += chrono::Duration::microseconds(1);
        assert_ne!(row_hash(&changed), r.hash);
    }
}
