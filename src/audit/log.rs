//! The unit of work of every audited change: [`AuditLog::begin`] opens the transaction and
//! [`Recording::commit`] records the change's one audit row with it.

use std::sync::Arc;

use super::anchor::{Anchor, CheckedAhead, Mode, Outcome};
use super::checkpoint::{load_checkpoint, Checkpoint};
use super::seal::{self, Sealer};
use super::{canonical_json, format_at, verify, Actor, Change, PendingEntry, Verification};
use crate::db::audit::{self as store, AuditRow};
use crate::db::{now, Db, Tx};

/// Waiting rows a verification names.
const PENDING_NAMED: i64 = 100;

/// The audit trail of one database, with this process's sealing rounds. Cheap to clone; build
/// one per process and database (its clones share the rounds).
#[derive(Clone, Debug)]
pub struct AuditLog {
    db: Db,
    sealer: Arc<Sealer>,
    anchor: Arc<Anchor>,
}

/// One audited change in the making: its writes go into [`Recording::tx`], and the only way to
/// commit them is [`Recording::commit`], which records the change. Dropped, it rolls back.
pub struct Recording {
    tx: Tx,
    log: AuditLog,
}

impl AuditLog {
    /// A log without checkpoints (tools and tests that only write).
    pub fn new(db: Db) -> Self {
        Self::anchored(db, None, String::new())
    }

    /// A log whose checkpoints are signed with `key` and written to `file`.
    pub fn anchored(db: Db, key: Option<Vec<u8>>, file: String) -> Self {
        AuditLog {
            db,
            sealer: Arc::default(),
            anchor: Arc::new(Anchor::new(key, file)),
        }
    }

    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// Seals what is queued, then signs the head if the chain still holds the previous
    /// checkpoint (see [`super::anchor`]). Serialised with the sealing rounds of every replica.
    pub async fn checkpoint(&self, mode: Mode) -> anyhow::Result<Outcome> {
        if let Err(e) = self.sweep().await {
            tracing::warn!(error = %e, "could not seal queued audit rows before the checkpoint");
        }
        let started = std::time::Instant::now();
        let ahead = self.check_ahead(mode).await;
        let checked_ahead = started.elapsed();
        let outcome = self.checkpoint_from(mode, ahead).await;
        // The second figure is what writes waited on (with the wait for the head itself).
        tracing::debug!(
            ahead_ms = checked_ahead.as_millis() as u64,
            under_head_ms = (started.elapsed() - checked_ahead).as_millis() as u64,
            "audit checkpoint attempt"
        );
        outcome
    }

    /// The first half of [`AuditLog::checkpoint`]: the rows since the previous checkpoint,
    /// checked without holding the chain head, so that writes do not wait while they are hashed.
    /// `None` when there is nothing to rely on (a re-anchoring checks everything under the head).
    pub async fn check_ahead(&self, mode: Mode) -> Option<CheckedAhead> {
        match mode {
            Mode::Extend => self.anchor.check_ahead(&self.db).await,
            Mode::Reanchor => None,
        }
    }

    /// The second half of [`AuditLog::checkpoint`]: takes the chain head and writes the
    /// checkpoint, checking there only what `ahead` did not cover or what changed since.
    pub async fn checkpoint_from(
        &self,
        mode: Mode,
        ahead: Option<CheckedAhead>,
    ) -> anyhow::Result<Outcome> {
        let mut tx = self.db.begin_round().await?;
        store::lock_head(&mut tx).await?;
        let outcome = self.anchor.write(&mut tx, mode, ahead).await?;
        if matches!(outcome, Outcome::Written(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// Recomputes the chain against the newest signed checkpoint (the file, or the database's
    /// record of checkpoints when that is newer) and names the rows still waiting to be sealed.
    /// `file` replaces the configured checkpoint file.
    pub async fn verify(
        &self,
        project: Option<i64>,
        file: Option<&str>,
    ) -> anyhow::Result<Verification> {
        let key = self.anchor.key();
        let path = file.unwrap_or(self.anchor.file());
        let (from_file, file_state) = load_checkpoint(path, key);
        let recorded: Option<Checkpoint> =
            store::latest_checkpoint(&self.db).await?.map(Into::into);
        let recorded_ok = match (key, &recorded) {
            (Some(k), Some(r)) => r.is_authentic(k),
            _ => true,
        };
        let (anchor, state) = match (file_state, from_file, recorded) {
            ("not_configured", _, _) => (None, "not_configured"),
            _ if !recorded_ok => (None, "bad_signature"),
            ("bad_signature", _, _) => (None, "bad_signature"),
            (_, None, Some(r)) => (Some(r), "missing"),
            (_, None, None) => (None, "none_yet"),
            (_, Some(f), Some(r)) if r.head_seq > f.head_seq => (Some(r), "matched"),
            (_, Some(f), _) => (Some(f), "matched"),
        };
        let mut v = verify(&self.db, anchor.as_ref(), state, project).await?;
        if state == "missing" {
            v.is_valid = false;
            if v.checkpoint == "matched" {
                v.checkpoint = "missing".into();
            }
            if v.problem.is_none() {
                v.problem = Some(format!(
                    "the checkpoint file {path} is missing, but checkpoints were written (the \
                     newest at seq {})",
                    v.checkpoint_seq.unwrap_or_default()
                ));
            }
        }
        let (count, oldest) = store::pending_summary(&self.db).await?;
        v.pending_entries = count;
        v.oldest_pending_age_seconds = oldest.map(|at| (now() - at).num_seconds().max(0));
        if count > 0 {
            v.pending = store::pending_rows(&self.db, PENDING_NAMED)
                .await?
                .into_iter()
                .map(|p| PendingEntry {
                    queue_id: p.id,
                    at: format_at(&p.occurred_at),
                    action: p.action,
                    entity_type: p.entity_type,
                    entity_id: p.entity_id,
                    request_id: p.request_id,
                })
                .collect();
        }
        Ok(v)
    }

    /// The checkpoint an export carries: the head signed now (or the unchanged previous one); when
    /// the writer refuses, the previous checkpoint file, which the export's rows will then fail.
    pub async fn export_checkpoint(&self) -> anyhow::Result<Option<Checkpoint>> {
        if self.anchor.key().is_none() {
            return Ok(None);
        }
        Ok(match self.checkpoint(Mode::Extend).await? {
            Outcome::Written(cp) | Outcome::Unchanged(cp) => Some(cp),
            Outcome::Empty => None,
            Outcome::Refused(_) => load_checkpoint(self.anchor.file(), self.anchor.key()).0,
        })
    }

    /// Sets the gauges the "rows wait to be sealed" alert watches.
    pub async fn refresh_pending_gauges(&self) -> Result<(i64, Option<i64>), sqlx::Error> {
        let (count, oldest) = store::pending_summary(&self.db).await?;
        let age = oldest.map(|at| (now() - at).num_seconds().max(0));
        metrics::gauge!("audit_pending_rows").set(count as f64);
        metrics::gauge!("audit_pending_oldest_age_seconds").set(age.unwrap_or(0) as f64);
        Ok((count, age))
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Opens the transaction of one audited change.
    pub async fn begin(&self) -> Result<Recording, sqlx::Error> {
        Ok(Recording {
            tx: self.db.begin().await?,
            log: self.clone(),
        })
    }

    /// Seals rows left queued (by a replica that stopped between a write's commit and its
    /// round); returns how many.
    pub async fn sweep(&self) -> Result<u64, sqlx::Error> {
        self.sealer.sweep(&self.db).await
    }
}

impl Recording {
    /// The transaction the change's writes go into.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Records `change` by `actor` in the same transaction and commits. PostgreSQL: the row is
    /// queued with the change and sealed onto the chain (`seq`, `hash`) by a round this call
    /// waits for. SQLite: the row is chained inside the transaction (its single writer
    /// serialises).
    ///
    /// When the round fails, the change and its queued row are already committed together, so
    /// the call still succeeds (the client gets its 2xx: answering an error would invite a retry
    /// that makes the change twice). The row is not lost or hidden: the next round (every few
    /// seconds) seals it, verification names it with its age meanwhile, the failure is logged at
    /// ERROR and counted (`audit_seal_failures_total`), and an alert fires when a row waits
    /// longer than a minute (`monitoring/alerts.yml`).
    pub async fn commit(mut self, actor: &Actor, change: Change<'_>) -> Result<(), sqlx::Error> {
        let row = audit_row(actor, change);
        let queued = self.tx.is_postgres();
        if queued {
            store::queue(&mut self.tx, &row).await?;
        } else {
            seal::chain(&mut self.tx, vec![row]).await?;
        }
        self.tx.commit().await?;
        if queued {
            if let Err(e) = self.log.sealer.after_commit(&self.log.db).await {
                metrics::counter!("audit_seal_failures_total").increment(1);
                tracing::error!(error = %e, request_id = %actor.request_id,
                    "audit row committed but not sealed yet: it waits in the queue");
            }
        }
        Ok(())
    }
}

/// The row of a change, before its place on the chain is known.
fn audit_row(actor: &Actor, change: Change<'_>) -> AuditRow {
    AuditRow {
        seq: 0,
        occurred_at: now(),
        actor_id: actor.id,
        actor_email: actor.email.clone(),
        action: change.action.to_string(),
        entity_type: change.entity_type.to_string(),
        entity_id: change.entity_id,
        project_id: change.project_id,
        reason: actor.reason.clone(),
        before_json: change.before.as_ref().map(canonical_json),
        after_json: change.after.as_ref().map(canonical_json),
        request_id: actor.request_id.clone(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}
