//! Verification of chosen rows (one project's export): each row's own hash and its link to the
//! row before it on the chain. Work in proportion to those rows, not to every tenant's chain.

use std::collections::HashMap;

use super::{row_hash, GENESIS_HASH};
use crate::db::audit::{self as store, AuditRow};
use crate::db::Db;

/// What the rows showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsCheck {
    pub verified: i64,
    pub first_invalid_seq: Option<i64>,
    pub problem: Option<String>,
}

impl RowsCheck {
    pub fn is_valid(&self) -> bool {
        self.first_invalid_seq.is_none()
    }
}

/// Checks `rows` (in `seq` order): each hash recomputed from its content and `prev_hash`, and
/// each `prev_hash` equal to the hash stored at `seq - 1` (the genesis hash for seq 1).
pub async fn verify_rows(db: &Db, rows: &[AuditRow]) -> Result<RowsCheck, sqlx::Error> {
    let wanted: Vec<i64> = rows.iter().map(|r| r.seq - 1).filter(|s| *s >= 1).collect();
    let before: HashMap<i64, String> = store::hashes_at(db, &wanted).await?.into_iter().collect();
    let mut verified = 0;
    for row in rows {
        let link = if row.seq == 1 {
            Some(GENESIS_HASH)
        } else {
            before.get(&(row.seq - 1)).map(String::as_str)
        };
        let problem = match link {
            None => Some(format!("the row before seq {} is missing", row.seq)),
            Some(h) if h != row.prev_hash => {
                Some(format!("seq {} does not link to its predecessor", row.seq))
            }
            _ if row_hash(row) != row.hash => Some(format!(
                "seq {} was altered: its hash does not match",
                row.seq
            )),
            _ => None,
        };
        if let Some(problem) = problem {
            return Ok(RowsCheck {
                verified,
                first_invalid_seq: Some(row.seq),
                problem: Some(problem),
            });
        }
        verified += 1;
    }
    Ok(RowsCheck {
        verified,
        first_invalid_seq: None,
        problem: None,
    })
}
