//! `regassist import --download`: fetches FDA's current official files (the classification
//! table and the releasable 510(k) files) and openFDA's bulk files of device recalls and
//! enforcement reports into a directory for import. (Adverse-event files are tens of GB in
//! dozens of parts: they are fetched by hand and imported by name.)

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

/// openFDA's bulk downloads of the safety data (one zip of one JSON file each).
pub const OPENFDA: &[&str] = &[
    "https://download.open.fda.gov/device/recall/device-recall-0001-of-0001.json.zip",
    "https://download.open.fda.gov/device/enforcement/device-enforcement-0001-of-0001.json.zip",
];

/// Every file `--download` fetches; with `base`, from a copy of FDA's and openFDA's download
/// sites at that address (the same paths), e.g. an internal mirror of an air-gapped site.
pub fn urls(base: Option<&str>) -> Vec<String> {
    OFFICIAL
        .iter()
        .chain(OPENFDA)
        .map(|url| match base {
            None => (*url).to_string(),
            Some(base) => {
                // The path after the host: `premarket/ftparea/…` or `device/recall/…`.
                let path = url.splitn(4, '/').nth(3).unwrap_or_default();
                format!("{}/{path}", base.trim_end_matches('/'))
            }
        })
        .collect()
}

/// Downloads every file of [`urls`] into `dir`, returning the paths. The first failure stops it
/// with a one-line reason (offline, DNS, HTTP status).
pub async fn download_all(dir: &Path, base: Option<&str>) -> anyhow::Result<Vec<PathBuf>> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(600))
        .user_agent(concat!("regassist/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut paths = Vec::new();
    for url in urls(base) {
        let name = url.rsplit('/').next().unwrap_or("download.zip");
        let path = dir.join(name);
        fetch(&client, &url, &path).await.map_err(|e| {
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_base_keeps_the_paths() {
        let all = super::urls(None);
        assert_eq!(all.len(), 8);
        assert!(all[7].starts_with("https://download.open.fda.gov/device/enforcement/"));
        let local = super::urls(Some("http://127.0.0.1:9/fda/"));
        assert_eq!(
            local[0],
            "http://127.0.0.1:9/fda/premarket/ftparea/foiclass.zip"
        );
        assert_eq!(
            local[6],
            "http://127.0.0.1:9/fda/device/recall/device-recall-0001-of-0001.json.zip"
        );
    }
}
