//! Signed checkpoints of the chain head, kept outside the table: they reveal rows cut off the
//! end of the chain, which the chain itself cannot show.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::format_at;
use crate::db::audit as store;
use crate::db::now;

/// A signed `(head_seq, head_hash)` kept outside the table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub head_seq: i64,
    pub head_hash: String,
    pub at: String,
    pub signature: String,
}

type HmacSha256 = Hmac<Sha256>;

fn checkpoint_message(head_seq: i64, head_hash: &str, at: &str) -> String {
    format!("regassist-audit-checkpoint:v1:{head_seq}:{head_hash}:{at}")
}

impl Checkpoint {
    pub fn sign(key: &[u8], head_seq: i64, head_hash: &str) -> Self {
        let at = format_at(&now());
        let signature = Self::mac(key, head_seq, head_hash, &at);
        Self {
            head_seq,
            head_hash: head_hash.to_string(),
            at,
            signature,
        }
    }

    fn mac(key: &[u8], head_seq: i64, head_hash: &str, at: &str) -> String {
        // HMAC accepts keys of any length, so the error arm is unreachable.
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            return String::new();
        };
        mac.update(checkpoint_message(head_seq, head_hash, at).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Constant-time check of the signature.
    pub fn is_authentic(&self, key: &[u8]) -> bool {
        let Ok(signature) = hex::decode(&self.signature) else {
            return false;
        };
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            return false;
        };
        mac.update(checkpoint_message(self.head_seq, &self.head_hash, &self.at).as_bytes());
        mac.verify_slice(&signature).is_ok()
    }
}

/// Reads the checkpoint file and says what it holds: `(checkpoint if usable, state)`.
pub fn load_checkpoint(path: &str, key: Option<&[u8]>) -> (Option<Checkpoint>, &'static str) {
    let Some(key) = key else {
        return (None, "not_configured");
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, "missing");
    };
    match serde_json::from_str::<Checkpoint>(&text) {
        Ok(cp) if cp.is_authentic(key) => (Some(cp), "matched"),
        _ => (None, "bad_signature"),
    }
}

/// Signs the current head and writes it to `path` (atomically, through a temporary file).
pub async fn write_checkpoint(
    log: &super::AuditLog,
    key: &[u8],
    path: &str,
) -> anyhow::Result<Option<Checkpoint>> {
    // Rows still queued belong before the head this signs.
    log.sweep().await?;
    let Some((seq, hash)) = store::current_head(log.db()).await? else {
        return Ok(None);
    };
    let cp = Checkpoint::sign(key, seq, &hash);
    let text = serde_json::to_string_pretty(&cp)?;
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    tracing::info!(head_seq = cp.head_seq, head_hash = %cp.head_hash, signature = %cp.signature, "audit checkpoint written");
    Ok(Some(cp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_signatures_detect_edits_and_wrong_keys() {
        let cp = Checkpoint::sign(b"key-one", 5, "abc");
        assert!(cp.is_authentic(b"key-one"));
        assert!(!cp.is_authentic(b"key-two"));
        let mut edited = cp.clone();
        edited.head_seq = 4;
        assert!(!edited.is_authentic(b"key-one"));
    }
}
