//! Kept events into DuckDB's `deliveries` table (`queries/schema.sql`), in
//! bulk through the appender, idempotently: a row whose key is already in
//! the table is counted and skipped, so loading a range twice adds nothing.
//!
//! Rows are gathered into batches, appended to a temporary staging table and
//! moved with `INSERT OR IGNORE` (the primary key decides what is already
//! there, so nothing of the table is read into memory: what the sink holds
//! is flat in the size of the database, and DuckDB's share is bounded by
//! `--memory-limit`), committed every 32 MiB of payload and at the end
//! (DuckDB holds a transaction's staged rows until it commits: committing
//! per GiB held a GiB). Within a transaction DuckDB writes each full row
//! group straight to the file (see [`crate::db::ROW_GROUP_SIZE`]); a load stopped
//! part way keeps what it committed, and running it again adds exactly the
//! rest.

use std::collections::HashSet;

use duckdb::types::{TimeUnit, Value};
use duckdb::Connection;

use super::row::RowView;
use super::{Sink, SinkError};
use crate::archive::CompactId;
use crate::db::{DbError, TABLE};
use crate::decode::{DecodedObject, Event};

/// Payload bytes gathered before a batch is appended.
const BATCH_BYTES: usize = 32 << 20;
/// ...or rows, whichever comes first.
const BATCH_ROWS: usize = 16 * 1024;
/// Payload bytes appended before they are committed (a commit is cheap: the
/// data is mostly written already; it bounds what a killed load loses).
/// `load --commit-every` sets it.
pub const COMMIT_BYTES: usize = BATCH_BYTES;

/// What a load did with the events it was given.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LoadCounts {
    /// Appended and committed.
    pub added: u64,
    /// Already in the table (loaded before, or a repeat within this run).
    pub already_loaded: u64,
}

/// One row of `deliveries`, owned until its batch is appended.
pub struct Row {
    key: String,
    delivery_id: Option<String>,
    event: String,
    action: Option<String>,
    repository: Option<String>,
    owner: Option<String>,
    private: Option<bool>,
    public: bool,
    sender: Option<String>,
    received_at: Option<i64>,
    object_time: Option<i64>,
    object_key: String,
    record_index: u32,
    shape: &'static str,
    /// `None` only in a row made [`Row::without_body`].
    payload: Option<String>,
    headers: Option<String>,
    raw_body: Option<Vec<u8>>,
}

impl From<RowView<'_>> for Row {
    fn from(v: RowView<'_>) -> Self {
        Row::from_view(v, true)
    }
}

impl Row {
    /// The row of a kept event.
    #[must_use]
    pub fn new(obj: &DecodedObject, e: &Event, public: bool) -> Self {
        RowView::new(obj, e, public).into()
    }

    /// The row of a kept event with its payload and raw body left out
    /// (NULL), for a table that reads them back from the archive at
    /// `object_key` and `record_index` when it needs them: the
    /// dashboard's (`ui::index`).
    #[must_use]
    pub fn without_body(obj: &DecodedObject, e: &Event, public: bool) -> Self {
        Row::from_view(RowView::new(obj, e, public), false)
    }

    fn from_view(v: RowView<'_>, with_body: bool) -> Self {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        Row {
            key: v.key,
            delivery_id: owned(v.delivery_id),
            event: v.event.to_owned(),
            action: owned(v.action),
            repository: owned(v.repository),
            owner: owned(v.owner),
            private: v.private,
            public: v.public,
            sender: owned(v.sender),
            received_at: v.received_at,
            object_time: v.object_time,
            object_key: v.object_key.to_owned(),
            record_index: v.record_index,
            shape: v.shape,
            payload: with_body.then(|| v.payload.to_owned()),
            headers: owned(v.headers),
            raw_body: v.raw_body.filter(|_| with_body).map(<[u8]>::to_vec),
        }
    }

    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    #[must_use]
    pub fn is_event(&self, event: &str) -> bool {
        self.event == event
    }

    /// When it was received (or its object's time).
    #[must_use]
    pub fn received_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.received_at
            .and_then(|m| chrono::TimeZone::timestamp_micros(&chrono::Utc, m).single())
    }

    /// What it weighs in a batch: its payload and body.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.payload.as_ref().map_or(0, String::len) + self.raw_body.as_ref().map_or(0, Vec::len)
    }
}

/// Appends `rows` through `app`, an appender on `deliveries` or a table of
/// the same columns, in the connection's open transaction.
pub fn append<'r>(
    mut app: duckdb::Appender<'_>,
    rows: impl IntoIterator<Item = &'r Row>,
) -> Result<u64, DbError> {
    let at = |t: Option<i64>| t.map(|t| Value::Timestamp(TimeUnit::Microsecond, t));
    let mut n = 0;
    for r in rows {
        app.append_row(duckdb::params![
            r.key,
            r.delivery_id,
            r.event,
            r.action,
            r.repository,
            r.owner,
            r.private,
            r.public,
            r.sender,
            at(r.received_at),
            at(r.object_time),
            r.object_key,
            r.record_index,
            r.shape,
            r.payload,
            r.headers,
            r.raw_body,
        ])?;
        n += 1;
    }
    app.flush()?;
    Ok(n)
}

/// Makes (or empties) `name`, a temporary table of `conn`'s own with the
/// columns of `deliveries`, for [`insert_new`]: in memory, spilled by DuckDB
/// past its limit, never in the file's log.
pub fn create_staging(conn: &Connection, name: &str) -> Result<(), DbError> {
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {TABLE} LIMIT 0"
    ))?;
    Ok(())
}

/// Adds to `deliveries` those of `rows` whose key is not in it yet, through
/// the staging table `staging` ([`create_staging`]), in the connection's
/// open transaction; returns how many were added. The primary key decides
/// what is there, so nothing of the table is read into memory.
pub fn insert_new<'r>(
    conn: &Connection,
    staging: &str,
    rows: impl IntoIterator<Item = &'r Row>,
) -> Result<u64, DbError> {
    append(
        conn.appender_to_catalog_and_db(staging, "temp", "main")?,
        rows,
    )?;
    let added = conn.execute(
        &format!("INSERT OR IGNORE INTO {TABLE} SELECT * FROM temp.main.{staging}"),
        [],
    )?;
    conn.execute_batch(&format!("DELETE FROM temp.main.{staging}"))?;
    Ok(added as u64)
}

/// Load's staging table.
const STAGING: &str = "ghreplay_load_staging";

pub struct DatabaseSink {
    conn: Connection,
    /// Keys met in this run: a repeat within the range is counted without
    /// a round trip (bounded by the range loaded, not the database).
    seen: HashSet<CompactId>,
    batch: Vec<Row>,
    batch_bytes: usize,
    batch_rows: usize,
    /// Appended in the open transaction, not yet committed.
    pending_rows: u64,
    pending_bytes: usize,
    commit_bytes: usize,
    pub counts: LoadCounts,
}

impl DatabaseSink {
    /// Loads into `conn`, whose schema is applied.
    pub fn new(conn: Connection) -> Result<Self, DbError> {
        create_staging(&conn, STAGING)?;
        conn.execute_batch("BEGIN TRANSACTION")?;
        Ok(Self {
            conn,
            seen: HashSet::new(),
            batch: Vec::with_capacity(BATCH_ROWS),
            batch_bytes: 0,
            batch_rows: BATCH_ROWS,
            pending_rows: 0,
            pending_bytes: 0,
            commit_bytes: COMMIT_BYTES,
            counts: LoadCounts::default(),
        })
    }

    /// Commits every `bytes` of payload instead of every 32 MiB: what a load
    /// killed part way can lose, against a commit's cost.
    #[must_use]
    pub fn commit_every(mut self, bytes: usize) -> Self {
        self.commit_bytes = bytes.max(1);
        self
    }

    /// The connection back, for querying what was loaded.
    #[must_use]
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// Adds the gathered rows to the open transaction, those whose key is
    /// not in the table yet.
    fn write_batch(&mut self) -> Result<(), DbError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let added = insert_new(&self.conn, STAGING, &self.batch)?;
        self.counts.already_loaded += self.batch.len() as u64 - added;
        self.batch.clear();
        self.pending_rows += added;
        self.pending_bytes += self.batch_bytes;
        self.batch_bytes = 0;
        Ok(())
    }

    /// Commits what was appended; `more` opens the next transaction.
    fn commit(&mut self, more: bool) -> Result<(), DbError> {
        self.conn.execute_batch(if more {
            "COMMIT; BEGIN TRANSACTION"
        } else {
            "COMMIT"
        })?;
        self.counts.added += self.pending_rows;
        self.pending_rows = 0;
        self.pending_bytes = 0;
        Ok(())
    }
}

impl Sink for DatabaseSink {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        let view = RowView::new(obj, e, public);
        if !self.seen.insert(CompactId::new(&view.key)) {
            self.counts.already_loaded += 1;
            return Ok(());
        }
        let row = Row::from(view);
        self.batch_bytes += row.bytes();
        self.batch.push(row);
        if self.batch_bytes >= BATCH_BYTES.min(self.commit_bytes)
            || self.batch.len() >= self.batch_rows
        {
            self.write_batch().map_err(SinkError::Database)?;
            if self.pending_bytes >= self.commit_bytes {
                self.commit(true).map_err(SinkError::Database)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.write_batch()
            .and_then(|()| self.commit(false))
            .map_err(SinkError::Database)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::db::Database;
    use crate::decode::{decode_object, DecodeOptions};

    /// An object of `n` Mozilla-shaped `issues` deliveries, ids `id-0`...
    fn object(n: usize) -> DecodedObject {
        let mut data = String::new();
        for i in 0..n {
            let _ = write!(
                data,
                r#"{{"body":{{"action":"opened","repository":{{"full_name":"o/r","private":false}},"sender":{{"login":"s"}}}},"event":"issues","request_id":"id-{i}"}}"#
            );
        }
        decode_object(
            "2026/01/15/10/s-1-2026-01-15-10-00-00-k".into(),
            None,
            data.into_bytes(),
            &DecodeOptions::default(),
        )
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn each_full_batch_is_committed_and_a_new_sink_skips_what_is_there() {
        let obj = object(7);
        assert_eq!(obj.events.len(), 7);
        let conn = Database::Memory.open_for_load(None).unwrap();
        let mut sink = DatabaseSink::new(conn).unwrap();
        sink.batch_rows = 3;
        // Commit every batch: three rows' payloads pass it, two do not.
        sink.commit_bytes = 2 * obj.payload(&obj.events[0]).len() + 1;
        for e in &obj.events {
            sink.accept(&obj, e, true).unwrap();
        }
        assert_eq!(
            rows(&sink.conn),
            6,
            "two full batches are in, one row waits"
        );
        assert_eq!(sink.counts.added, 6);
        sink.finish().unwrap();
        assert_eq!(rows(&sink.conn), 7);

        // Loading again, as a later run would: everything is already there.
        let mut again = DatabaseSink::new(sink.into_connection()).unwrap();
        for e in &obj.events {
            again.accept(&obj, e, true).unwrap();
        }
        again.finish().unwrap();
        assert_eq!(
            again.counts,
            LoadCounts {
                added: 0,
                already_loaded: 7
            }
        );
        assert_eq!(rows(&again.conn), 7);
    }

    /// A batch that mixes rows already in the table with new ones adds the
    /// new ones only, and says how many were there, with no key read first.
    #[test]
    fn a_batch_half_loaded_before_adds_the_rest() {
        let obj = object(7);
        let conn = Database::Memory.open_for_load(None).unwrap();
        let mut first = DatabaseSink::new(conn).unwrap();
        for e in &obj.events[..3] {
            first.accept(&obj, e, true).unwrap();
        }
        first.finish().unwrap();
        let mut all = DatabaseSink::new(first.into_connection()).unwrap();
        for e in obj.events.iter().chain(&obj.events[..2]) {
            all.accept(&obj, e, true).unwrap();
        }
        all.finish().unwrap();
        assert_eq!(
            all.counts,
            LoadCounts {
                added: 4,
                already_loaded: 5
            }
        );
        assert_eq!(rows(&all.conn), 7);
    }
}
