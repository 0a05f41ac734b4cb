//! `serve --archive s3://...`: objects are written durably to a local spool
//! (the same writer, the same fsync before 200), and each completed object
//! is gzipped and uploaded under the same key plus `.gz`; the spool copy is
//! removed only once S3 has it. Objects left in the spool by a crash or a
//! failed upload are uploaded at the next start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::write::GzEncoder;
use tokio::sync::mpsc;

use crate::source::S3Store;

/// Uploads completed objects until the channel closes and the queue is empty.
pub async fn run(s3: S3Store, spool: PathBuf, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    while let Some(path) = rx.recv().await {
        let mut backoff = Duration::from_millis(500);
        loop {
            match upload(&s3, &spool, &path).await {
                Ok(key) => {
                    tracing::info!(object = %key, bucket = s3.bucket(), "uploaded");
                    break;
                }
                Err(e) if rx.is_closed() && backoff > Duration::from_secs(4) => {
                    tracing::error!(object = %path.display(), error = %e, "upload failed; left in the spool for the next start");
                    break;
                }
                Err(e) => {
                    tracing::warn!(object = %path.display(), error = %e, "upload failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

async fn upload(s3: &S3Store, spool: &Path, path: &Path) -> anyhow::Result<String> {
    let key = path
        .strip_prefix(spool)?
        .to_string_lossy()
        .replace(std::path::MAIN_SEPARATOR, "/");
    let key = format!("{key}.gz");
    let raw = tokio::fs::read(path).await?;
    let gz = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&raw)?;
        enc.finish()
    })
    .await??;
    s3.put(&key, gz).await?;
    tokio::fs::remove_file(path).await?;
    Ok(key)
}

/// Every object file in the spool (left by an earlier run).
#[must_use]
pub fn leftovers(spool: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![spool.to_owned()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
