//! The durable archive writer: ghreplay's own records in Firehose layout,
//! acknowledged only once they are on disk.
//!
//! One thread owns the open object. Requests queue their record; the thread
//! takes everything queued, writes it in one `write`, calls `fdatasync` once
//! and then acknowledges every request of the group (group commit: under
//! load, one flush serves many deliveries). Objects are uncompressed NDJSON
//! (the reader detects gzip or not), so a crash can only leave an incomplete
//! last record, which the reader reports and skips; the body checksum
//! catches anything else. After a restart a new object is always started.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use crate::archive;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The archive directory and the key prefix inside it.
    pub dir: PathBuf,
    pub prefix: String,
    /// The stream name in object names.
    pub stream: String,
    /// Start a new object past this size...
    pub roll_bytes: u64,
    /// ...or this age.
    pub roll_age: Duration,
    /// Told the path of each object once it is complete (rolled over, or
    /// closed at shutdown): the S3 uploader.
    pub on_complete: Option<mpsc::UnboundedSender<PathBuf>>,
}

/// Why a record was not made durable (the delivery is answered 503).
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The write or fsync failed; shared by every record of its group.
    #[error("archive write failed")]
    Io(#[source] Arc<io::Error>),
    #[error("archive write failed: the writer has stopped")]
    Stopped,
}

enum Job {
    Write {
        line: Vec<u8>,
        done: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Wakes the thread so that an idle object rolls over on time.
    Tick,
    /// Writes what is queued before it, then ends the thread.
    Close,
}

/// Handle to the writer thread.
pub struct ArchiveWriter {
    tx: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Most records taken into one group commit.
const MAX_GROUP: usize = 1024;

impl ArchiveWriter {
    pub fn start(cfg: WriterConfig, metrics: Arc<Metrics>) -> io::Result<Self> {
        fs::create_dir_all(&cfg.dir)?;
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        let thread = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || run(&cfg, rx, &metrics))?;
        let ticker = tx.clone();
        tokio::spawn(async move {
            while ticker.send(Job::Tick).await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(Self {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Archives a record, as [`archive::Record::to_json_line`] encodes it; returns
    /// once it is durable on disk.
    pub async fn write(&self, line: Vec<u8>) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        let job = Job::Write { line, done };
        self.tx.send(job).await.map_err(|_| WriteError::Stopped)?;
        wait.await.map_err(|_| WriteError::Stopped)?
    }

    /// Writes what is queued, makes it durable, and stops the thread.
    /// Writes after this fail (503), never silently.
    pub async fn close(&self) {
        let _ = self.tx.send(Job::Close).await;
        super::join(&self.thread).await;
    }
}

/// The object being appended to.
struct Open {
    file: File,
    path: PathBuf,
    created: Instant,
    bytes: u64,
}

fn run(cfg: &WriterConfig, mut rx: mpsc::Receiver<Job>, metrics: &Metrics) {
    let mut open: Option<Open> = None;
    let mut closing = false;
    while !closing {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut lines = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write { line, done } => {
                    lines.push(line);
                    acks.push(done);
                }
                Job::Tick => {}
                Job::Close => closing = true,
            }
            if acks.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        if !acks.is_empty() {
            let started = Instant::now();
            let result = append(cfg, &mut open, &lines.concat());
            metrics.observe_flush(started.elapsed());
            if let Err(e) = &result {
                tracing::error!(error = %e, "archive write failed; deliveries answered 503");
                abandon(cfg, open.take()); // never append after a failed write
            }
            for ack in acks {
                let _ = ack.send(result.clone().map_err(WriteError::Io));
            }
        }
        if let Some(o) = &open {
            if o.bytes >= cfg.roll_bytes || o.created.elapsed() >= cfg.roll_age {
                tracing::info!(object = %o.path.display(), bytes = o.bytes, "object rolled over");
                complete(cfg, open.take());
            }
        }
    }
    complete(cfg, open.take());
}

/// Hands a finished object to whoever uploads it.
fn complete(cfg: &WriterConfig, open: Option<Open>) {
    if let (Some(o), Some(tx)) = (open, &cfg.on_complete) {
        let _ = tx.send(o.path);
    }
}

/// Sets aside the object a write failed on (a full disk, an I/O error):
/// the failed write's torn tail is cut off, so that no partial record is
/// left to read; an object left empty is removed, so that a disk that stays
/// full makes no flood of empty objects; one with acknowledged records is
/// complete. The next delivery opens a new object, once there is room.
fn abandon(cfg: &WriterConfig, open: Option<Open>) {
    let Some(o) = open else { return };
    if let Err(e) = o.file.set_len(o.bytes) {
        tracing::warn!(object = %o.path.display(), error = %e, "could not cut a failed write's tail; the reader will report it");
    }
    if o.bytes == 0 {
        if let Err(e) = fs::remove_file(&o.path) {
            tracing::warn!(object = %o.path.display(), error = %e, "could not remove an empty object");
        }
        return;
    }
    complete(cfg, Some(o));
}

/// Appends `data` to the open object (opening one if needed) and makes it
/// durable.
fn append(cfg: &WriterConfig, open: &mut Option<Open>, data: &[u8]) -> Result<(), Arc<io::Error>> {
    if open.is_none() {
        *open = Some(create_object(cfg, Utc::now()).map_err(Arc::new)?);
    }
    let Some(o) = open.as_mut() else {
        unreachable!("opened above")
    };
    o.file.write_all(data).map_err(Arc::new)?;
    o.file.sync_data().map_err(Arc::new)?;
    o.bytes += data.len() as u64;
    Ok(())
}

/// Creates a new object, named as Firehose would, with its directory
/// entries made durable.
fn create_object(cfg: &WriterConfig, now: DateTime<Utc>) -> io::Result<Open> {
    let key = format!(
        "{}{}{}",
        cfg.prefix,
        archive::hour_prefix(now),
        archive::object_name(
            &cfg.stream,
            1,
            now,
            // Time-ordered (v7), so that keys sort in the order objects were
            // made even within one second (the name's stamp): forward
            // followers read the objects in key order.
            &uuid::Uuid::now_v7().to_string(),
            false
        )
    );
    let path = cfg.dir.join(&key);
    let parent = path.parent().unwrap_or(&cfg.dir).to_owned();
    create_dirs_durably(&parent)?;
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    sync_dir(&parent)?;
    tracing::info!(object = %key, "new archive object");
    Ok(Open {
        file,
        path,
        created: Instant::now(),
        bytes: 0,
    })
}

/// `create_dir_all`, with each new directory's entry fsync'd in its parent.
fn create_dirs_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_durably(parent)?;
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        }
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_made_in_the_same_second_sort_in_the_order_they_were_made() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig {
            dir: dir.path().to_owned(),
            prefix: String::new(),
            stream: "ghreplay".into(),
            roll_bytes: 1,
            roll_age: Duration::from_secs(1),
            on_complete: None,
        };
        let now = Utc::now();
        let paths: Vec<PathBuf> = (0..50)
            .map(|_| create_object(&cfg, now).unwrap().path)
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(
            paths, sorted,
            "a follower reading in key order sees every object"
        );
    }
}
