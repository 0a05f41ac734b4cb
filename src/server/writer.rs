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
//!
//! After each group commit the writer hands the group to the followers that
//! asked ([`Handoff`]): its bytes and the events the receiver already read
//! from them, placed as in the object, so that a follower need not read
//! back and decode what was just written. The hand-off never waits: a
//! follower that falls behind misses groups, sees the gap (each group names
//! the record before it) and reads the archive instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use crate::archive;
use crate::decode::{DecodedObject, Event};
use crate::model::Position;

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
    /// Given each group once it is durable (the dashboard's database).
    pub handoff: Vec<Handoff>,
}

/// One group commit, as a follower reading the object back would decode
/// it: `records.data` holds the group's bytes, `records.events` are numbered
/// and placed as in the object (`index`, `offset` from the object's start;
/// ranges within `data`).
#[derive(Debug, Clone)]
pub struct Written {
    /// The last record the writer wrote before this group, since it started
    /// (`None` for its first group): a follower that is not at or past it
    /// has missed a group.
    pub after: Option<Position>,
    pub records: DecodedObject,
    /// The object's length after this group.
    pub end: u64,
}

/// The writer's side of one follower's hand-off.
#[derive(Debug, Clone)]
pub struct Handoff {
    tx: std_mpsc::SyncSender<Written>,
    /// Bytes handed over and not yet taken...
    queued: Arc<AtomicUsize>,
    /// ...and how many may be.
    limit: usize,
}

/// A follower's side of the hand-off.
#[derive(Debug)]
pub struct Handed {
    rx: std_mpsc::Receiver<Written>,
    queued: Arc<AtomicUsize>,
}

/// Groups held for one follower, at most...
const HANDOFF_GROUPS: usize = 1024;
/// ...and bytes: past either, groups are dropped (the follower reads the
/// archive instead).
const HANDOFF_BYTES: usize = 64 << 20;

/// A hand-off from the writer to one follower.
#[must_use]
pub fn handoff() -> (Handoff, Handed) {
    handoff_bounded(HANDOFF_GROUPS, HANDOFF_BYTES)
}

pub(super) fn handoff_bounded(groups: usize, bytes: usize) -> (Handoff, Handed) {
    let (tx, rx) = std_mpsc::sync_channel(groups);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Handoff {
            tx,
            queued: queued.clone(),
            limit: bytes,
        },
        Handed { rx, queued },
    )
}

impl Handoff {
    /// Offers a group; never waits.
    fn offer(&self, w: Written) {
        let size = w.records.data.len();
        if self.queued.load(Ordering::Relaxed) + size > self.limit {
            return;
        }
        self.queued.fetch_add(size, Ordering::Relaxed);
        if self.tx.try_send(w).is_err() {
            self.queued.fetch_sub(size, Ordering::Relaxed);
        }
    }
}

impl Handed {
    /// The next group handed over, if one is waiting.
    #[must_use]
    pub fn try_next(&self) -> Option<Written> {
        let w = self.rx.try_recv().ok()?;
        self.queued
            .fetch_sub(w.records.data.len(), Ordering::Relaxed);
        Some(w)
    }
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
        /// The line as the read path reads it (ranges within `line`).
        event: Box<Event>,
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

    /// Archives a record, as [`archive::Record::to_json_line`] encodes it,
    /// with the event [`crate::decode::check_record`] read from it; returns
    /// once it is durable on disk.
    pub async fn write(&self, line: Vec<u8>, event: Event) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        let job = Job::Write {
            line,
            event: Box::new(event),
            done,
        };
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
    /// Its archive key, and the time in its name.
    key: String,
    time: Option<DateTime<Utc>>,
    created: Instant,
    bytes: u64,
    records: u32,
}

fn run(cfg: &WriterConfig, mut rx: mpsc::Receiver<Job>, metrics: &Metrics) {
    let mut open: Option<Open> = None;
    let mut closing = false;
    // The last record written, for the hand-off.
    let mut last: Option<Position> = None;
    while !closing {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut lines = Vec::new();
        let mut events = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write { line, event, done } => {
                    lines.push(line);
                    events.push(*event);
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
            let data = lines.concat();
            let result = append(cfg, &mut open, &data);
            metrics.observe_flush(started.elapsed());
            match (&result, &mut open) {
                (Ok(()), Some(o)) => {
                    let written = place(o, &lines, events, data, last.take());
                    last = written.records.events.last().map(|e| Position {
                        object: o.key.clone(),
                        index: e.index,
                    });
                    hand_off(&cfg.handoff, written);
                }
                (Ok(()), None) => unreachable!("a write succeeded with no object open"),
                (Err(e), _) => {
                    tracing::error!(error = %e, "archive write failed; deliveries answered 503");
                    abandon(cfg, open.take()); // never append after a failed write
                }
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

/// The group just appended to `o` (`data`, the concatenation of `lines`),
/// as a follower reading `o` back would decode it; counts its records into
/// `o`.
fn place(
    o: &mut Open,
    lines: &[Vec<u8>],
    mut events: Vec<Event>,
    data: Vec<u8>,
    after: Option<Position>,
) -> Written {
    let start = o.bytes - data.len() as u64;
    let mut at = 0;
    for (e, line) in events.iter_mut().zip(lines) {
        e.move_by(at);
        e.offset = start + at as u64;
        e.index = o.records;
        o.records += 1;
        at += line.len();
    }
    Written {
        after,
        records: DecodedObject {
            key: o.key.clone(),
            object_time: o.time,
            compressed_bytes: data.len() as u64,
            data: data.into(),
            events,
            problems: Vec::new(),
        },
        end: o.bytes,
    }
}

/// Gives a group to each follower that asked (a copy of its events each;
/// the bytes are shared).
fn hand_off(handoff: &[Handoff], written: Written) {
    let Some((last, rest)) = handoff.split_last() else {
        return;
    };
    for h in rest {
        h.offer(written.clone());
    }
    last.offer(written);
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
    let time = key
        .rsplit('/')
        .next()
        .and_then(archive::parse_object_name)
        .map(|n| n.written_at);
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
        key,
        time,
        created: Instant::now(),
        bytes: 0,
        records: 0,
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
            handoff: Vec::new(),
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
