//! Embedded-mode safety: an online, consistent SQLite backup (`VACUUM INTO`) and a restore that
//! checks the file, refuses while a server holds the database, and keeps the old database.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

use crate::db::Db;

/// The database file behind a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let options = SqliteConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
    Ok(options.get_filename().to_path_buf())
}

/// Writes a consistent copy of the live database to `target` while it keeps serving.
pub async fn backup(db: &Db, target: &Path) -> anyhow::Result<u64> {
    let Db::Sqlite(sqlite) = db else {
        bail!("`regassist backup` is for the embedded SQLite mode; use scripts/backup-script.sh for PostgreSQL");
    };
    if target.exists() {
        bail!(
            "{} exists already; choose a new file name",
            target.display()
        );
    }
    let target_text = target
        .to_str()
        .context("the backup path must be valid UTF-8")?;
    sqlx::query("VACUUM INTO $1")
        .bind(target_text)
        .execute(&sqlite.write)
        .await
        .context("writing the backup")?;
    check_file(target).await?;
    Ok(std::fs::metadata(target)?.len())
}

/// Checks that `file` is an intact regassist SQLite database.
pub async fn check_file(file: &Path) -> anyhow::Result<()> {
    let mut header = [0u8; 16];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        f.read_exact(&mut header)
            .with_context(|| format!("{} is too short to be a database", file.display()))?;
    }
    if &header != b"SQLite format 3\0" {
        bail!("{} is not a SQLite database", file.display());
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is damaged", file.display()))?;
    if result != "ok" {
        bail!("{} failed the integrity check: {result}", file.display());
    }
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a regassist database", file.display()))?;
    if migrations == 0 {
        bail!("{} holds no regassist schema", file.display());
    }
    Ok(())
}

/// The lock file beside a database: every server holds it shared while it runs, and a restore
/// takes it exclusively, so that a restore and a server never meet.
fn lock_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", db.display()))
}

/// Opens the lock file and takes it shared (`exclusive`: exclusively), without waiting.
fn try_lock(db: &Path, exclusive: bool) -> anyhow::Result<Option<std::fs::File>> {
    let path = lock_path(db);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        let operation = if exclusive {
            FlockOperation::NonBlockingLockExclusive
        } else {
            FlockOperation::NonBlockingLockShared
        };
        match flock(&file, operation) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
    Ok(Some(file))
}

/// The lock files this process's servers hold, by database file.
static SERVER_LOCKS: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> =
    std::sync::Mutex::new(Vec::new());

/// Marks the database at `db` as served (a restore then refuses) until [`release_server_lock`].
pub fn hold_server_lock(db: &Path) -> anyhow::Result<()> {
    let Some(lock) = try_lock(db, false)? else {
        bail!(
            "a restore of {} is running; start the server after it",
            db.display()
        );
    };
    if let Ok(mut locks) = SERVER_LOCKS.lock() {
        locks.push((db.to_path_buf(), lock));
    }
    Ok(())
}

/// Releases one hold of [`hold_server_lock`] on `db` (a server stopped).
pub fn release_server_lock(db: &Path) {
    if let Ok(mut locks) = SERVER_LOCKS.lock() {
        if let Some(i) = locks.iter().position(|(p, _)| p == db) {
            locks.swap_remove(i);
        }
    }
}

/// `<db>` + `suffix` as a path (for `-wal`, `-shm` and dated names).
fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

/// Replaces the database at `target` with `backup` after checking it; returns where the old
/// database was kept. Refused while a server holds the database. Nothing is deleted: the live
/// database and its `-wal`/`-shm` files are renamed to `<target>.before-restore-<time>` (SQLite
/// opens that name with its own WAL), and put back if the swap fails.
pub async fn restore(backup: &Path, target: &Path) -> anyhow::Result<Option<PathBuf>> {
    check_file(backup).await?;
    let Some(_lock) = try_lock(target, true)? else {
        bail!(
            "a server is using {}: stop it first (the database was not touched)",
            target.display()
        );
    };
    let staging = with_suffix(target, ".restore-tmp");
    std::fs::copy(backup, &staging).with_context(|| format!("copying to {}", staging.display()))?;
    std::fs::File::open(&staging)?.sync_all()?;
    let kept = if target.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let aside = with_suffix(target, &format!(".before-restore-{stamp}"));
        let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(target, suffix);
            if from.exists() {
                let to = with_suffix(&aside, suffix);
                if let Err(e) = std::fs::rename(&from, &to) {
                    put_back(&moved);
                    return Err(e).with_context(|| format!("moving {} aside", from.display()));
                }
                moved.push((from, to));
            }
        }
        if let Err(e) = std::fs::rename(&staging, target) {
            put_back(&moved);
            return Err(e).with_context(|| format!("replacing {}", target.display()));
        }
        Some(aside)
    } else {
        std::fs::rename(&staging, target)
            .with_context(|| format!("replacing {}", target.display()))?;
        None
    };
    Ok(kept)
}

/// Undoes the renames of a restore that could not finish.
fn put_back(moved: &[(PathBuf, PathBuf)]) {
    for (from, to) in moved.iter().rev() {
        if let Err(e) = std::fs::rename(to, from) {
            tracing::error!(error = %e, kept = %to.display(), "could not put the database back");
        }
    }
}
