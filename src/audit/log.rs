//! The unit of work of every audited change: [`AuditLog::begin`] opens the transaction and
//! [`Recording::commit`] records the change's one audit row with it.

use std::sync::Arc;

use super::seal::{self, Sealer};
use super::{canonical_json, Actor, Change};
use crate::db::audit::{self as store, AuditRow};
use crate::db::{now, Db, Tx};

/// The audit trail of one database, with this process's sealing rounds. Cheap to clone; build
/// one per process and database (its clones share the rounds).
#[derive(Clone, Debug)]
pub struct AuditLog {
    db: Db,
    sealer: Arc<Sealer>,
}

/// One audited change in the making: its writes go into [`Recording::tx`], and the only way to
/// commit them is [`Recording::commit`], which records the change. Dropped, it rolls back.
pub struct Recording {
    tx: Tx,
    log: AuditLog,
}

impl AuditLog {
    pub fn new(db: Db) -> Self {
        AuditLog {
            db,
            sealer: Arc::default(),
        }
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
    /// waits for; if that round fails the change stands and its row stays queued for the next
    /// round. SQLite: the row is chained inside the transaction (its single writer serialises).
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
                tracing::error!(error = %e, "audit rows committed but not sealed yet");
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
