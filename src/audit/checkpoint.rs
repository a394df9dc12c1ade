//! Signed checkpoints of the chain head, kept outside the table: they reveal rows cut off the
//! end of the chain, which the chain itself cannot show. Also the checkpoint key: set by
//! `AUDIT_CHECKPOINT_KEY`, or (embedded mode) created on first start in a file beside the database.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::format_at;
use crate::config::Config;
use crate::db::audit::StoredCheckpoint;
use crate::db::now;

/// A signed `(head_seq, head_hash)` kept outside the table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Checkpoint {
    pub head_seq: i64,
    pub head_hash: String,
    pub at: String,
    /// Lowercase hex HMAC-SHA256 of `regassist-audit-checkpoint:v1:{head_seq}:{head_hash}:{at}`.
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

impl From<StoredCheckpoint> for Checkpoint {
    fn from(s: StoredCheckpoint) -> Self {
        Checkpoint {
            head_seq: s.head_seq,
            head_hash: s.head_hash,
            at: s.at,
            signature: s.signature,
        }
    }
}

impl From<&Checkpoint> for StoredCheckpoint {
    fn from(c: &Checkpoint) -> Self {
        StoredCheckpoint {
            head_seq: c.head_seq,
            head_hash: c.head_hash.clone(),
            at: c.at.clone(),
            signature: c.signature.clone(),
        }
    }
}

/// Reads the checkpoint file and says what it holds: `(checkpoint if usable, state)`, the state
/// being `not_configured` (no key), `missing`, `matched` (authentic) or `bad_signature`.
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

/// Writes `cp` to `path` atomically: a synced temporary file renamed over the old one.
pub(super) fn store_file(cp: &Checkpoint, path: &str) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(cp)?;
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let tmp = format!("{path}.tmp");
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("writing {tmp}"))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {path}"))?;
    Ok(())
}

/// Where the embedded mode keeps its checkpoint key: `audit-checkpoint.key` beside the database.
pub fn key_file(config: &Config) -> Option<PathBuf> {
    if config.is_postgres() {
        return None;
    }
    let db = crate::backup::sqlite_path(config.database_url.expose()).ok()?;
    Some(db.with_file_name("audit-checkpoint.key"))
}

/// The checkpoint key: `AUDIT_CHECKPOINT_KEY`, else the embedded key file when it exists.
pub fn load_key(config: &Config) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(key) = &config.audit_checkpoint_key {
        return Ok(Some(key.expose().as_bytes().to_vec()));
    }
    let Some(path) = key_file(config) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim();
            if key.len() < 32 {
                bail!("{} holds fewer than 32 characters", path.display());
            }
            Ok(Some(key.as_bytes().to_vec()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Makes sure there is a key before the service starts: embedded mode creates its key file
/// (32 random bytes as hex, mode 0600) on first start; PostgreSQL (production) refuses to start
/// without `AUDIT_CHECKPOINT_KEY`.
pub fn ensure_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = load_key(config)? {
        return Ok(key);
    }
    let Some(path) = key_file(config) else {
        bail!(
            "AUDIT_CHECKPOINT_KEY is not set: with PostgreSQL the audit trail must be anchored by \
             signed checkpoints; set it to at least 32 random bytes (e.g. `openssl rand -hex 32`)"
        );
    };
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let key = hex::encode(bytes);
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating the audit checkpoint key {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    tracing::info!(key_file = %path.display(), "created the audit checkpoint key (keep a copy apart from the database)");
    Ok(key.into_bytes())
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
