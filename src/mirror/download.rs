//! `regassist import --download`: fetches FDA's current official files (the classification
//! table and the releasable 510(k) files) into a directory for import.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;

/// FDA's official downloads: the product classification file and the releasable 510(k) files.
pub const OFFICIAL: &[&str] = &[
    "https://www.accessdata.fda.gov/premarket/ftparea/foiclass.zip",
    "https://www.accessdata.fda.gov/premarket/ftparea/pmn7680.zip",
    "https://www.accessdata.fda.gov/premarket/ftparea/pmn8185.zip",
    "https://www.accessdata.fda.gov/premarket/ftparea/pmn8690.zip",
    "https://www.accessdata.fda.gov/premarket/ftparea/pmn9195.zip",
    "https://www.accessdata.fda.gov/premarket/ftparea/pmn96cur.zip",
];

/// Downloads every official file into `dir`, returning the paths. The first failure stops it
/// with a one-line reason (offline, DNS, HTTP status).
pub async fn download_all(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(600))
        .user_agent(concat!("regassist/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut paths = Vec::new();
    for url in OFFICIAL {
        let name = url.rsplit('/').next().unwrap_or("download.zip");
        let path = dir.join(name);
        fetch(&client, url, &path).await.map_err(|e| {
            anyhow::anyhow!("cannot download {url}: {e:#} (is this machine offline? copy the files over and run `regassist import FILE…`)")
        })?;
        eprintln!("downloaded {}", path.display());
        paths.push(path);
    }
    Ok(paths)
}

async fn fetch(client: &reqwest::Client, url: &str, path: &Path) -> anyhow::Result<()> {
    let mut response = client.get(url).send().await?.error_for_status()?;
    let partial = path.with_extension("part");
    let mut file = tokio::fs::File::create(&partial).await?;
    let bar = super::stream::bytes_bar(true, response.content_length().unwrap_or(0));
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    while let Some(chunk) = response.chunk().await? {
        file.write_all(&chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    file.flush().await?;
    // Renamed only when complete, so an interrupted download never looks like a whole file.
    tokio::fs::rename(&partial, path).await?;
    Ok(())
}
