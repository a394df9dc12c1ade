//! Group commit for the hash chain on PostgreSQL: a write queues its audit rows in `audit_pending`
//! inside its own transaction, and after its commit waits for a sealing round that moves every
//! queued row onto the chain. One round seals what many concurrent writes queued, under one chain
//! lock and one commit, so writers no longer queue on the chain head through each other's WAL
//! flush. SQLite chains rows in the write's own transaction instead: its single writer connection
//! already serialises writes and commits without a WAL flush per write, so a round would only add
//! a second transaction per write on that one connection.
//!
//! Rounds run one at a time in a process (and one at a time across replicas, through the chain
//! lock). A write's ticket is taken after its commit, so a round that starts later sees its rows.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::audit::{self as store, AuditRow};
use crate::db::{Db, Tx};

use super::{row_hash, GENESIS_HASH};

/// Rows sealed per transaction: bounds the statement's bind parameters on both backends.
const ROUND_ROWS: i64 = 500;

/// This process's sealing rounds and the tickets of writes waiting on them.
#[derive(Debug, Default)]
pub struct Sealer {
    /// Tickets handed to committed writes.
    issued: AtomicU64,
    /// Every ticket up to this one is sealed.
    sealed: AtomicU64,
    round: tokio::sync::Mutex<()>,
}

impl Sealer {
    /// Returns once the rows a just-committed write queued are on the chain: joins the next
    /// round rather than running one of its own when another writer is already sealing.
    pub async fn after_commit(&self, db: &Db) -> Result<(), sqlx::Error> {
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _round = self.round.lock().await;
        if self.sealed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket issued so far belongs to a write that has committed.
        let covers = self.issued.load(Ordering::SeqCst);
        seal_pending(db).await?;
        self.sealed.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }

    /// Seals whatever is queued, e.g. rows left by a replica that stopped between a write's
    /// commit and its round. Returns how many rows were sealed.
    pub async fn sweep(&self, db: &Db) -> Result<u64, sqlx::Error> {
        let _round = self.round.lock().await;
        seal_pending(db).await
    }
}

/// Moves every queued row onto the chain in queue order, `ROUND_ROWS` per transaction.
async fn seal_pending(db: &Db) -> Result<u64, sqlx::Error> {
    let mut sealed = 0;
    loop {
        let mut tx = db.begin_round().await?;
        store::lock_head(&mut tx).await?;
        let queued = store::pending(&mut tx, ROUND_ROWS).await?;
        if queued.is_empty() {
            return Ok(sealed);
        }
        let (ids, rows): (Vec<i64>, Vec<AuditRow>) = queued.into_iter().unzip();
        let n = rows.len() as u64;
        chain(&mut tx, rows).await?;
        store::delete_pending(&mut tx, &ids).await?;
        tx.commit().await?;
        sealed += n;
        if (n as i64) < ROUND_ROWS {
            return Ok(sealed);
        }
    }
}

/// Gives `rows` the next places on the chain (`seq`, `prev_hash`, `hash`) and inserts them. The
/// caller holds the chain head: the round's lock, or SQLite's single writer.
pub(super) async fn chain(tx: &mut Tx, mut rows: Vec<AuditRow>) -> Result<(), sqlx::Error> {
    let (mut seq, mut prev_hash) = store::head(tx)
        .await?
        .unwrap_or((0, GENESIS_HASH.to_string()));
    for row in &mut rows {
        seq += 1;
        row.seq = seq;
        row.prev_hash = std::mem::take(&mut prev_hash);
        row.hash = row_hash(row);
        prev_hash.clone_from(&row.hash);
    }
    store::insert_sealed(tx, &rows).await?;
    metrics::counter!("audit_events_written_total").increment(rows.len() as u64);
    if let Some(last) = rows.last() {
        metrics::gauge!("audit_last_event_timestamp_seconds")
            .set(last.occurred_at.timestamp() as f64);
    }
    Ok(())
}
