//! The dashboard's database under `serve`: every archived delivery, as a
//! row of `deliveries`, in a DuckDB file of the server's own.
//!
//! It follows the archive as the forward targets do (the archive is the
//! outbox): a thread reads the writer's objects past the file's watermark
//! (the last position indexed, kept in the file and moved in the same
//! transaction as the rows), so a crash or restart neither loses nor
//! doubles a row. At start it first catches up from the archive itself
//! (S3 or local) through the read pipeline: everything after the
//! watermark, or for a new file everything within `--ui-history`. A row
//! whose key is already in the table (a delivery archived twice) is
//! skipped by `INSERT OR IGNORE`; nothing is read into memory first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use duckdb::Connection;
use tokio::runtime::Handle;
use tokio::sync::broadcast;

use super::data::{self, Release};
use crate::archive::parse_object_name;
use crate::config::ReadConfig;
use crate::db::{Database, DbError, TABLE};
use crate::decode::{DecodeOptions, DecodedObject, Event};
use crate::filter::privacy;
use crate::model::{ArchiveLocation, Dedupe, Position, Selection, TimeRange};
use crate::server::forward::{Outbox, Progress, Tail};
use crate::server::Wake;
use crate::sink::database::{self, Row};
use crate::sink::{Sink, SinkError};
use crate::source::{self, Store};

/// The UI's own table, the watermark; and `payload` may be NULL (see
/// [`PAYLOAD_KEPT_FOR`]). (Files made before the staging table was
/// temporary hold one of their own: it goes.)
const UI_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ui_watermark (object_key VARCHAR NOT NULL, record_index INTEGER NOT NULL);
ALTER TABLE deliveries ALTER COLUMN payload DROP NOT NULL;
DROP TABLE IF EXISTS ui_staging;
";

/// The events whose payload (and raw body) a row here keeps: the Releases
/// page's columns are read from it. Every other delivery's payload, most of
/// a row's bytes, stays only in the archive, where its delivery page reads
/// it ([`super::archived`]): a payload appended to DuckDB costs more than
/// receiving it did, and releases are few.
const PAYLOAD_KEPT_FOR: &[&str] = &["release"];

/// Where a batch goes when it holds a key already in `deliveries`
/// ([`database::insert_new`]).
const STAGING: &str = "ui_staging";

/// Rows gathered before they are committed, during a catch-up.
const BATCH_ROWS: usize = 4096;
/// ...or payload bytes.
const BATCH_BYTES: usize = 32 << 20;
/// How long the follower waits for a wake-up before looking anyway.
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// Passes start at least this far apart, so that under load a burst of
/// deliveries is indexed in a few transactions, not one per group commit of
/// the writer (each pass lists the objects and commits to DuckDB); well
/// inside the live feed's 2 s promise.
const MIN_PASS_GAP: Duration = Duration::from_millis(250);
/// A catch-up reads from this long before the watermark's object: records
/// are received up to a few minutes before their object is named.
const CATCH_UP_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(2);
/// The name the follower registers under in the spool's [`Progress`].
pub const PROGRESS_NAME: &str = "dashboard";

/// DuckDB's worker threads for the UI database under `serve`. The receiver
/// comes first: with a thread per core DuckDB's workers took cores from the
/// handlers under load (and its client thread spun waiting on them), while
/// the dashboard's appends and page queries gain little from a second
/// thread (`benches/ui.sh`: ingest with the dashboard on 10 to 20% faster).
const UI_THREADS: u32 = 1;

/// Opens (making it if need be) the UI database for writing.
pub fn open(path: &std::path::Path) -> Result<Connection, DbError> {
    let conn = Database::File(path.to_owned()).open_for_load(None)?;
    conn.execute_batch(UI_SCHEMA)?;
    conn.execute_batch(&format!("SET threads = {UI_THREADS}"))?;
    Ok(conn)
}

/// Appends rows and moves the watermark, one transaction per flush, and
/// tells the pages about new releases.
pub struct Indexer {
    conn: Connection,
    watermark: Option<Position>,
    rows: Vec<Row>,
    bytes: usize,
    last: Option<Position>,
    releases: broadcast::Sender<Release>,
    newest: Option<DateTime<Utc>>,
    pub added: u64,
}

impl Indexer {
    pub fn new(conn: Connection, releases: broadcast::Sender<Release>) -> Result<Self, DbError> {
        database::create_staging(&conn, STAGING)?;
        let watermark = conn
            .query_row(
                "SELECT object_key, record_index FROM ui_watermark",
                [],
                |r| {
                    Ok(Position {
                        object: r.get(0)?,
                        index: r.get(1)?,
                    })
                },
            )
            .map(Some)
            .or_else(|e| match e {
                duckdb::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let (newest, _) = data::newest(&conn, false)?;
        Ok(Self {
            conn,
            watermark,
            rows: Vec::new(),
            bytes: 0,
            last: None,
            releases,
            newest,
            added: 0,
        })
    }

    /// The last position indexed (committed).
    #[must_use]
    pub fn watermark(&self) -> Option<&Position> {
        self.watermark.as_ref()
    }

    /// When the newest delivery indexed was received.
    #[must_use]
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.newest
    }

    /// Takes the delivery at `pos` unless it is at or before the watermark.
    pub fn add(&mut self, obj: &DecodedObject, e: &Event, pos: Position, public: bool) {
        if self.watermark.as_ref().is_some_and(|w| &pos <= w)
            || self.last.as_ref().is_some_and(|l| &pos <= l)
        {
            return;
        }
        let row = if PAYLOAD_KEPT_FOR.contains(&e.event.as_str()) {
            Row::new(obj, e, public)
        } else {
            Row::without_body(obj, e, public)
        };
        self.bytes += row.bytes();
        self.rows.push(row);
        self.last = Some(pos);
    }

    /// Adds the rows and moves the watermark to `last`, in one transaction;
    /// returns how many rows were added.
    fn commit(&self, last: &Position, how: Insert) -> Result<u64, DbError> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = (|| {
            let added = match how {
                Insert::Direct => database::append(self.conn.appender(TABLE)?, &self.rows)?,
                Insert::SkippingKnownKeys => database::insert_new(&self.conn, STAGING, &self.rows)?,
            };
            self.conn.execute_batch("DELETE FROM ui_watermark")?;
            self.conn.execute(
                "INSERT INTO ui_watermark VALUES (?, ?)",
                duckdb::params![last.object, last.index],
            )?;
            self.conn.execute_batch("COMMIT")?;
            Ok(added)
        })();
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    fn full(&self) -> bool {
        self.rows.len() >= BATCH_ROWS || self.bytes >= BATCH_BYTES
    }

    /// Commits what was added, with the watermark, and pushes the new
    /// releases to the pages.
    pub fn flush(&mut self) -> Result<(), DbError> {
        let Some(last) = self.last.clone() else {
            return Ok(());
        };
        if self.rows.is_empty() && self.watermark.as_ref() == Some(&last) {
            return Ok(());
        }
        let releases: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.is_event("release"))
            .map(|r| r.key().to_owned())
            .collect();
        let newest = self.rows.iter().filter_map(Row::received_at).max();
        // Straight into the table: a batch with a key already there (a
        // delivery archived twice) fails as a whole, and goes again through
        // the staging table, which skips that row. So the common case costs
        // one copy of each row, not three.
        let started = std::time::Instant::now();
        let result = self.commit(&last, Insert::Direct).or_else(|e| {
            tracing::debug!(error = %e, "a batch holds a key already indexed; it goes through the staging table");
            self.commit(&last, Insert::SkippingKnownKeys)
        });
        tracing::debug!(
            rows = self.rows.len(),
            ms = started.elapsed().as_millis(),
            "dashboard batch committed"
        );
        self.rows.clear();
        self.bytes = 0;
        let added = match result {
            Ok(n) => n,
            Err(e) => {
                // Read again from the watermark next time.
                self.last = self.watermark.clone();
                return Err(e);
            }
        };
        self.added += added;
        self.watermark = Some(last);
        self.newest = self.newest.max(newest);
        if self.releases.receiver_count() > 0 {
            for r in data::releases_by_key(&self.conn, &releases)? {
                let _ = self.releases.send(r);
            }
        }
        Ok(())
    }
}

/// How a batch's rows go into `deliveries`.
#[derive(Debug, Clone, Copy)]
enum Insert {
    /// Appended to the table itself: fails on a key already there.
    Direct,
    /// Through the staging table: a key already there is skipped.
    SkippingKnownKeys,
}

/// The catch-up's sink: the pipeline's kept events, in archive order.
impl Sink for Indexer {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        let pos = Position {
            object: obj.key.clone(),
            index: e.index,
        };
        self.add(obj, e, pos, public);
        if self.full() {
            self.flush().map_err(SinkError::Database)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.flush().map_err(SinkError::Database)
    }
}

/// Where the dashboard's history comes from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The archive, read once at start to catch up.
    pub archive: ArchiveLocation,
    pub endpoint_url: Option<String>,
    /// The writer's objects, followed from then on.
    pub outbox: Outbox,
    /// How far back a new file is filled.
    pub history: chrono::TimeDelta,
}

/// Reads the archive past the watermark into the indexer, and gives it
/// back.
async fn catch_up(indexer: Indexer, sources: &Sources) -> (Indexer, anyhow::Result<u64>) {
    let horizon = Utc::now() - sources.history;
    let since = indexer
        .watermark()
        .and_then(|w| w.object.rsplit('/').next().and_then(parse_object_name))
        .map_or(horizon, |n| (n.written_at - CATCH_UP_MARGIN).max(horizon));
    let cfg = ReadConfig {
        archive: sources.archive.clone(),
        endpoint_url: sources.endpoint_url.clone(),
        selection: Selection {
            time: TimeRange {
                since: Some(since),
                until: None,
            },
            ..Selection::default()
        },
        dedupe: Dedupe::Off,
        fetch_jobs: 4,
        read_memory: crate::source::DEFAULT_READ_MEMORY,
        part_size: crate::source::DEFAULT_PART_SIZE,
        decode: DecodeOptions::default(),
    };
    let store = match Store::open(&cfg.archive, cfg.endpoint_url.as_deref()).await {
        Ok(s) => s,
        Err(e) => return (indexer, Err(e.into())),
    };
    let listed = source::list(&store, &cfg.selection.time);
    let before = indexer.added;
    // A clone of the connection survives a panic in the pipeline.
    let (spare, releases) = (
        crate::db::clone_attached(&indexer.conn),
        indexer.releases.clone(),
    );
    match crate::pipeline::run(store, listed, &cfg, indexer, ()).await {
        Ok(f) => {
            let added = f.sink.added - before;
            (f.sink, f.result.map(|()| added).map_err(Into::into))
        }
        Err(panic) => {
            let again = spare.and_then(|c| Indexer::new(c, releases));
            match again {
                Ok(i) => (i, Err(anyhow::anyhow!("the catch-up stopped: {panic}"))),
                Err(e) => panic!("the dashboard database is unusable after a failed catch-up: {e}"),
            }
        }
    }
}

/// The thread that keeps the UI database up with the archive.
pub struct Follower {
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Follower {
    /// Starts catching up, then following; returns at once (the receiver
    /// does not wait for the history).
    pub fn start(
        indexer: Indexer,
        sources: Sources,
        progress: Arc<Progress>,
        on_delivery: impl Fn(DateTime<Utc>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (wake, stop) = (Arc::new(Wake::default()), Arc::new(AtomicBool::new(false)));
        let rt = Handle::current();
        let thread = {
            let (wake, stop) = (wake.clone(), stop.clone());
            std::thread::Builder::new()
                .name("dashboard-index".into())
                .spawn(move || {
                    follow(
                        indexer,
                        &sources,
                        &progress,
                        &rt,
                        &wake,
                        &stop,
                        &on_delivery,
                    );
                })?
        };
        Ok(Self {
            wake,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Wakes it to read what was just archived.
    #[must_use]
    pub fn wake(&self) -> Arc<Wake> {
        self.wake.clone()
    }

    /// Indexes what is archived, then stops.
    pub async fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify();
        crate::server::join(&self.thread).await;
    }
}

fn follow(
    indexer: Indexer,
    sources: &Sources,
    progress: &Progress,
    rt: &Handle,
    wake: &Wake,
    stop: &AtomicBool,
    on_delivery: &dyn Fn(DateTime<Utc>),
) {
    let (mut indexer, caught_up) = rt.block_on(catch_up(indexer, sources));
    match caught_up {
        Ok(rows) => {
            tracing::info!(rows, "the dashboard's database caught up with the archive");
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the dashboard could not catch up with the archive; it shows what arrives from now on");
        }
    }
    if let Some(t) = indexer.newest() {
        on_delivery(t);
    }
    // Nothing older than the history, whatever the watermark says.
    let floor = Position {
        object: format!(
            "{}{}",
            sources.outbox.prefix,
            crate::archive::hour_prefix(Utc::now() - sources.history)
        ),
        index: 0,
    };
    let mut tail = Tail::default();
    loop {
        let started = std::time::Instant::now();
        let stopping = stop.load(Ordering::Relaxed);
        let after = indexer.watermark().cloned().max(Some(floor.clone()));
        let pass = sources
            .outbox
            .each_after(after.as_ref(), &mut tail, |obj, e, pos| {
                indexer.add(obj, e, pos, privacy::event_is_public(e));
                if indexer.full() {
                    indexer.flush().map_err(PassError::Db)?;
                }
                Ok::<_, PassError>(())
            });
        match pass.and_then(|()| indexer.flush().map_err(PassError::Db)) {
            Ok(()) => progress.set(PROGRESS_NAME, indexer.watermark().cloned()),
            Err(e) => {
                // What was not committed is read again, from whole objects.
                tail = Tail::default();
                tracing::warn!(error = %e, "indexing for the dashboard failed; retrying");
            }
        }
        if stopping {
            break;
        }
        wake.wait(IDLE_LOOK);
        if let Some(rest) = MIN_PASS_GAP.checked_sub(started.elapsed()) {
            if !stop.load(Ordering::Relaxed) {
                std::thread::sleep(rest);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Db(DbError),
}

/// The default file: inside the spool.
#[must_use]
pub fn default_path(spool: &std::path::Path) -> PathBuf {
    spool.join("ghreplay-ui.duckdb")
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::decode::decode_object;

    /// An object of Mozilla-shaped `release` deliveries with these ids.
    fn object(key: &str, ids: &[&str]) -> DecodedObject {
        let mut data = String::new();
        for id in ids {
            let _ = write!(
                data,
                r#"{{"body":{{"action":"published","release":{{"tag_name":"t-{id}"}},"repository":{{"full_name":"o/r","private":false}},"sender":{{"login":"s"}}}},"event":"release","request_id":"{id}"}}"#
            );
        }
        decode_object(
            key.into(),
            None,
            data.into_bytes(),
            &DecodeOptions::default(),
        )
    }

    fn feed(ix: &mut Indexer, obj: &DecodedObject) {
        for e in &obj.events {
            let pos = Position {
                object: obj.key.clone(),
                index: e.index,
            };
            ix.add(obj, e, pos, true);
        }
        ix.flush().unwrap();
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn rows_and_watermark_commit_together_and_nothing_is_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ui.duckdb");
        let a = object("2026/01/15/10/a", &["id-1", "id-2"]);
        let b = object("2026/01/15/11/b", &["id-3", "id-2"]);
        let (tx, mut live) = broadcast::channel(16);
        {
            let mut ix = Indexer::new(open(&path).unwrap(), tx.clone()).unwrap();
            assert_eq!(ix.watermark(), None);
            feed(&mut ix, &a);
            assert_eq!(ix.added, 2);
            let pushed: Vec<String> = std::iter::from_fn(|| live.try_recv().ok())
                .filter_map(|r| r.tag)
                .collect();
            assert_eq!(
                pushed,
                ["t-id-1", "t-id-2"],
                "new releases go to open pages"
            );
        }
        // Reopened, as after a restart: the watermark is where it was.
        let mut ix = Indexer::new(open(&path).unwrap(), tx).unwrap();
        assert_eq!(
            ix.watermark(),
            Some(&Position {
                object: "2026/01/15/10/a".into(),
                index: 1
            })
        );
        feed(&mut ix, &a);
        assert_eq!(
            ix.added, 0,
            "positions at or before the watermark are passed over"
        );
        feed(&mut ix, &b);
        assert_eq!(ix.added, 1, "id-2 archived twice is one row");
        assert_eq!(count(&ix.conn), 3);
        assert_eq!(ix.watermark().unwrap().object, "2026/01/15/11/b");
    }
}
