//! `serve --archive s3://...`: objects are written durably to a local spool
//! (the same writer, the same fsync before 200), and each completed object
//! is gzipped and uploaded under the same key plus `.gz`; the spool copy is
//! removed only once S3 has it and every `--forward` target has gone past it
//! (followers read the spool). Objects left in the spool by a crash, a failed
//! upload or a forward target that is behind are uploaded again at the next
//! start (the same key and bytes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flate2::write::GzEncoder;
use tokio::sync::mpsc;

use super::forward::Progress;
use crate::source::S3Store;

/// Uploads completed objects until the channel closes and the queue is
/// empty; removes each from the spool once `forwarded` has gone past it.
pub async fn run(
    s3: S3Store,
    spool: PathBuf,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    forwarded: Arc<Progress>,
    metrics: Arc<super::metrics::Metrics>,
) {
    let mut kept: Vec<(PathBuf, String)> = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
        kept.retain(|(path, key)| {
            if !forwarded.passed(key) {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(object = %path.display(), error = %e, "cannot remove an uploaded object from the spool");
            }
            false
        });
        metrics
            .upload_backlog
            .store(rx.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let path = match next {
            Ok(Some(path)) => path,
            Ok(None) => break,
            Err(_) => continue,
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            match upload(&s3, &spool, &path).await {
                Ok((key, spool_key)) => {
                    tracing::info!(object = %key, bucket = s3.bucket(), "uploaded");
                    kept.push((path.clone(), spool_key));
                    break;
                }
                Err(e) if rx.is_closed() && backoff > Duration::from_secs(4) => {
                    super::metrics::Metrics::inc(&metrics.upload_failures);
                    tracing::error!(object = %path.display(), error = %e, "upload failed; left in the spool for the next start");
                    break;
                }
                Err(e) => {
                    super::metrics::Metrics::inc(&metrics.upload_failures);
                    tracing::warn!(object = %path.display(), error = %e, "upload failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    for (path, key) in kept {
        if forwarded.passed(&key) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Uploads one spool object gzipped; its S3 key and its key in the spool.
async fn upload(s3: &S3Store, spool: &Path, path: &Path) -> anyhow::Result<(String, String)> {
    let spool_key = path
        .strip_prefix(spool)?
        .to_string_lossy()
        .replace(std::path::MAIN_SEPARATOR, "/");
    let key = format!("{spool_key}.gz");
    let raw = tokio::fs::read(path).await?;
    let gz = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&raw)?;
        enc.finish()
    })
    .await??;
    s3.put(&key, gz).await?;
    Ok((key, spool_key))
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
            if p.is_dir() && d == spool && e.file_name() == super::forward::STATE_DIR {
                continue; // forward checkpoints, not archive objects
            }
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
