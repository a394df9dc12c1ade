//! Anchoring the chain: the checkpoint writer, which signs a new head only if the chain still
//! holds the previous checkpoint's `(seq, hash)` and links soundly from it, and otherwise refuses,
//! keeps the old checkpoint, logs at ERROR, counts the refusal and marks the trail degraded.
//!
//! The rows since the previous checkpoint are checked first without the chain head
//! ([`Anchor::check_ahead`]), because writes wait while the head is held: checked under it, ten
//! seconds of writes (some 20,000 rows) held every write for 100 to 260 ms. Under the head only
//! the rows appended since are left. A row rewritten between the two passes is no hole: its
//! successor's link or its own hash no longer verifies against the signed head, exactly as for a
//! row rewritten the moment after the checkpoint is signed.

use std::sync::Mutex;

use super::checkpoint::{load_checkpoint, store_file, Checkpoint};
use super::{row_hash, GENESIS_HASH};
use crate::db::audit::{self as store, AuditRow, StoredCheckpoint};
use crate::db::{Db, Tx};

/// Rows read per step while checking the segment a new checkpoint would bless.
const SEGMENT_ROWS: i64 = 1000;

/// The key and file of this process's checkpoints, and what the writer last found.
pub struct Anchor {
    key: Option<Vec<u8>>,
    file: String,
    status: Mutex<AnchorStatus>,
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Anchor")
            .field("keyed", &self.key.is_some())
            .field("file", &self.file)
            .finish()
    }
}

/// What the writer last did.
#[derive(Debug, Clone, Default)]
pub struct AnchorStatus {
    /// Why the last attempt was refused; `None` once a checkpoint is written again.
    pub refused: Option<String>,
    pub last: Option<Checkpoint>,
}

/// The outcome of one attempt to write a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Written(Checkpoint),
    /// The head has not moved since this checkpoint.
    Unchanged(Checkpoint),
    /// The chain is empty.
    Empty,
    /// The chain no longer holds the previous checkpoint, or the anchor itself is in doubt.
    Refused(String),
}

/// A row of the chain, as `(seq, hash)`.
type Link = (i64, String);

/// A stretch of the chain checked before the chain head was taken: from the checkpoint it
/// extends (`None`: the genesis) to the row `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedAhead {
    from: Option<Link>,
    to: Link,
}

impl CheckedAhead {
    /// The `seq` of the last row checked.
    pub fn to_seq(&self) -> i64 {
        self.to.0
    }
}

/// How the writer treats the previous checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only extend a chain that still holds the previous checkpoint.
    Extend,
    /// An operator's decision after a restore to an older backup: the previous checkpoint file is
    /// kept as `<file>.superseded-<time>` and the current head is signed.
    Reanchor,
}

impl Anchor {
    pub fn new(key: Option<Vec<u8>>, file: String) -> Self {
        Anchor {
            key,
            file,
            status: Mutex::default(),
        }
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn status(&self) -> AnchorStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, outcome: &Outcome) {
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        match outcome {
            Outcome::Written(cp) | Outcome::Unchanged(cp) => {
                status.refused = None;
                status.last = Some(cp.clone());
                metrics::gauge!("audit_checkpoint_refused").set(0.0);
                metrics::gauge!("audit_checkpoint_head_seq").set(cp.head_seq as f64);
            }
            Outcome::Empty => status.refused = None,
            Outcome::Refused(why) => {
                status.refused = Some(why.clone());
                metrics::gauge!("audit_checkpoint_refused").set(1.0);
                metrics::counter!("audit_checkpoint_refusals_total").increment(1);
            }
        }
    }

    /// Checks the rows after the previous checkpoint one statement at a time, without the chain
    /// head. `None` when it cannot tell (no key, no trusted previous checkpoint, a row that does
    /// not verify, a database error): the pass under the head then checks everything and says why.
    pub(super) async fn check_ahead(&self, db: &Db) -> Option<CheckedAhead> {
        let key = self.key.as_deref()?;
        let mut reader = Reader::Ahead(db);
        let previous = self.previous(&mut reader, key).await.ok()?.ok()?;
        let to = segment_holds(&mut reader, previous.as_ref(), None)
            .await
            .ok()?
            .ok()?;
        Some(CheckedAhead {
            from: previous.map(|p| (p.head_seq, p.head_hash)),
            to,
        })
    }

    /// One attempt, holding the chain head (`tx` holds the round lock): see the module docs.
    /// `ahead` counts only if it started from the same previous checkpoint and the chain still
    /// holds its last row.
    pub(super) async fn write(
        &self,
        tx: &mut Tx,
        mode: Mode,
        ahead: Option<CheckedAhead>,
    ) -> anyhow::Result<Outcome> {
        let Some(key) = self.key.as_deref() else {
            anyhow::bail!("no audit checkpoint key is configured");
        };
        let Some((seq, hash)) = store::head(tx).await? else {
            return Ok(Outcome::Empty);
        };
        let previous = match mode {
            Mode::Extend => match self.previous(&mut Reader::Locked(tx), key).await? {
                Ok(previous) => previous,
                Err(why) => return Ok(self.refuse(why)),
            },
            Mode::Reanchor => {
                self.supersede_file()?;
                None
            }
        };
        if let Some(prev) = &previous {
            if prev.head_seq == seq && prev.head_hash == hash {
                let outcome = Outcome::Unchanged(prev.clone());
                self.set(&outcome);
                return Ok(outcome);
            }
        }
        let from = previous.as_ref().map(|p| (p.head_seq, p.head_hash.clone()));
        let resume = ahead.filter(|a| a.from == from).map(|a| a.to);
        let checked = segment_holds(&mut Reader::Locked(tx), previous.as_ref(), resume).await?;
        if let Err(why) = checked {
            return Ok(self.refuse(why));
        }
        let cp = Checkpoint::sign(key, seq, &hash);
        store::insert_checkpoint(tx, &StoredCheckpoint::from(&cp)).await?;
        store_file(&cp, &self.file)?;
        // One structured line per checkpoint: the log carries a copy off the database host.
        tracing::info!(
            target: "regassist::audit_checkpoint",
            head_seq = cp.head_seq,
            head_hash = %cp.head_hash,
            at = %cp.at,
            signature = %cp.signature,
            reanchored = mode == Mode::Reanchor,
            "audit checkpoint written"
        );
        let outcome = Outcome::Written(cp);
        self.set(&outcome);
        Ok(outcome)
    }

    fn refuse(&self, why: String) -> Outcome {
        tracing::error!(
            target: "regassist::audit_checkpoint",
            problem = %why,
            file = %self.file,
            "audit checkpoint refused: the previous checkpoint is kept"
        );
        let outcome = Outcome::Refused(why);
        self.set(&outcome);
        outcome
    }

    /// The newest authentic checkpoint (file or database record), or why there is none to trust.
    async fn previous(
        &self,
        reader: &mut Reader<'_>,
        key: &[u8],
    ) -> anyhow::Result<Result<Option<Checkpoint>, String>> {
        let (file, state) = load_checkpoint(&self.file, Some(key));
        let recorded: Option<Checkpoint> = reader.latest_checkpoint().await?.map(Into::into);
        if state == "bad_signature" {
            return Ok(Err(format!(
                "the checkpoint file {} does not carry a valid signature",
                self.file
            )));
        }
        if let Some(rec) = &recorded {
            if !rec.is_authentic(key) {
                return Ok(Err(format!(
                    "the newest recorded checkpoint (seq {}) does not carry a valid signature",
                    rec.head_seq
                )));
            }
            if file.is_none() {
                return Ok(Err(format!(
                    "the checkpoint file {} is missing, but checkpoints were written (the newest \
                     at seq {})",
                    self.file, rec.head_seq
                )));
            }
        }
        Ok(Ok(match (file, recorded) {
            (Some(f), Some(r)) if r.head_seq > f.head_seq => Some(r),
            (Some(f), _) => Some(f),
            (None, r) => r,
        }))
    }

    /// Keeps the current checkpoint file under a dated name.
    fn supersede_file(&self) -> anyhow::Result<()> {
        if std::path::Path::new(&self.file).exists() {
            let aside = format!(
                "{}.superseded-{}",
                self.file,
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            );
            std::fs::rename(&self.file, &aside)?;
            tracing::warn!(
                target: "regassist::audit_checkpoint",
                kept_as = %aside,
                "re-anchoring the audit trail: the previous checkpoint file is superseded"
            );
        }
        Ok(())
    }
}

/// Where a check reads the chain: inside the transaction that holds the chain head, or on its
/// own, one short statement at a time (no long read snapshot: on SQLite one would keep the WAL
/// from being checkpointed meanwhile).
enum Reader<'a> {
    Locked(&'a mut Tx),
    Ahead(&'a Db),
}

impl Reader<'_> {
    async fn rows_after(&mut self, seq: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
        match self {
            Reader::Locked(tx) => store::rows_after(tx, seq, SEGMENT_ROWS).await,
            Reader::Ahead(db) => store::rows_after_read(db, seq, SEGMENT_ROWS).await,
        }
    }

    async fn hash_at(&mut self, seq: i64) -> Result<Option<String>, sqlx::Error> {
        match self {
            Reader::Locked(tx) => store::hash_at(tx, seq).await,
            Reader::Ahead(db) => store::hash_at_read(db, seq).await,
        }
    }

    async fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        match self {
            Reader::Locked(tx) => store::latest_checkpoint_tx(tx).await,
            Reader::Ahead(db) => store::latest_checkpoint(db).await,
        }
    }
}

/// Checks that the chain still holds `previous` and that every row after it links and hashes
/// soundly (from the genesis when there is no previous checkpoint); returns the last row. From
/// `resume`, a row an earlier pass reached, when the chain still holds it unchanged.
async fn segment_holds(
    reader: &mut Reader<'_>,
    previous: Option<&Checkpoint>,
    resume: Option<Link>,
) -> anyhow::Result<Result<Link, String>> {
    let (mut seq, mut prev_hash) = match previous {
        Some(prev) => match reader.hash_at(prev.head_seq).await? {
            Some(h) if h == prev.head_hash => (prev.head_seq, h),
            Some(_) => {
                return Ok(Err(format!(
                    "seq {} differs from the previous checkpoint (the chain was rewritten)",
                    prev.head_seq
                )))
            }
            None => {
                return Ok(Err(format!(
                    "seq {} of the previous checkpoint is missing (the chain was cut)",
                    prev.head_seq
                )))
            }
        },
        None => (0, GENESIS_HASH.to_string()),
    };
    if let Some((at, hash)) = resume {
        if at >= seq && reader.hash_at(at).await?.as_deref() == Some(hash.as_str()) {
            (seq, prev_hash) = (at, hash);
        }
    }
    loop {
        let rows = reader.rows_after(seq).await?;
        let n = rows.len() as i64;
        for row in rows {
            if row.seq != seq + 1 {
                return Ok(Err(format!("expected seq {}, found {}", seq + 1, row.seq)));
            }
            if row.prev_hash != prev_hash || row_hash(&row) != row.hash {
                return Ok(Err(format!("seq {} does not verify", row.seq)));
            }
            seq = row.seq;
            prev_hash = row.hash;
        }
        if n < SEGMENT_ROWS {
            return Ok(Ok((seq, prev_hash)));
        }
    }
}
