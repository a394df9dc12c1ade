//! Embedded-mode safety: an online, consistent SQLite backup (`VACUUM INTO`) and a restore that
//! checks the file before it replaces anything.

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

/// Replaces the database at `target` with `backup` after checking it. The service must be stopped.
pub async fn restore(backup: &Path, target: &Path) -> anyhow::Result<()> {
    check_file(backup).await?;
    let staging = target.with_extension("restore-tmp");
    std::fs::copy(backup, &staging).with_context(|| format!("copying to {}", staging.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", target.display()));
        if side.exists() {
            std::fs::remove_file(&side).with_context(|| format!("removing {}", side.display()))?;
        }
    }
    std::fs::rename(&staging, target).with_context(|| format!("replacing {}", target.display()))?;
    Ok(())
}
