//! Kept events into DuckDB's `deliveries` table (`queries/schema.sql`), in
//! bulk through the appender, idempotently: a row whose key is already in
//! the table is counted and skipped, so loading a range twice adds nothing.
//!
//! Rows are gathered into batches, appended in one transaction, and
//! committed every gigabyte of payload and at the end. Within a transaction
//! DuckDB writes each full row group straight to the file (see
//! [`db::ROW_GROUP_SIZE`]), so memory stays bounded; a load stopped part way
//! keeps what it committed, and running it again adds exactly the rest.

use std::collections::HashSet;

use duckdb::types::{TimeUnit, Value};
use duckdb::Connection;

use super::{Sink, SinkError};
use crate::archive::CompactId;
use crate::db::{self, DbError, TABLE};
use crate::decode::{DecodedObject, Event};
use crate::filter;

/// Payload bytes gathered before a batch is appended.
const BATCH_BYTES: usize = 32 << 20;
/// ...or rows, whichever comes first.
const BATCH_ROWS: usize = 16 * 1024;
/// Payload bytes appended before they are committed (a commit is cheap: the
/// data is mostly written already; it bounds what a killed load loses).
/// `load --commit-every` sets it.
pub const COMMIT_BYTES: usize = 1 << 30;

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
    private: Option<bool>,
    public: bool,
    sender: Option<String>,
    received_at: Option<i64>,
    object_time: Option<i64>,
    object_key: String,
    record_index: u32,
    shape: &'static str,
    payload: String,
    headers: Option<String>,
    raw_body: Option<Vec<u8>>,
}

impl Row {
    /// The row of a kept event, loaded under `key` ([`row_key`]).
    #[must_use]
    pub fn new(obj: &DecodedObject, e: &Event, key: String, public: bool) -> Self {
        let payload = obj.payload(e).to_owned();
        // The body as received, only where the payload's bytes are not it:
        // the signature is over these bytes.
        let raw_body = e
            .raw_body
            .as_ref()
            .map(|b| obj.bytes(b))
            .filter(|b| *b != payload.as_bytes())
            .map(<[u8]>::to_vec);
        Row {
            key,
            delivery_id: e.delivery_id.clone(),
            event: e.event.clone(),
            action: e.action.clone(),
            repository: e.repository.clone(),
            private: e.private_flag(),
            public,
            sender: e.sender.clone(),
            received_at: filter::event_time(e, obj.object_time).map(db::micros),
            object_time: obj.object_time.map(db::micros),
            object_key: obj.key.clone(),
            record_index: e.index,
            shape: e.shape.as_str(),
            payload,
            headers: e.headers.clone(),
            raw_body,
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
        self.payload.len() + self.raw_body.as_ref().map_or(0, Vec::len)
    }
}

/// Appends `rows` to `table` (`deliveries`, or a table of the same columns)
/// through DuckDB's appender, in the connection's open transaction.
pub fn append(
    conn: &Connection,
    table: &str,
    rows: impl IntoIterator<Item = Row>,
) -> Result<u64, DbError> {
    let mut app = conn.appender(table)?;
    let at = |t: Option<i64>| t.map(|t| Value::Timestamp(TimeUnit::Microsecond, t));
    let mut n = 0;
    for r in rows {
        let owner = r
            .repository
            .as_deref()
            .and_then(|full| full.split_once('/'))
            .map(|(owner, _)| owner);
        app.append_row(duckdb::params![
            r.key,
            r.delivery_id,
            r.event,
            r.action,
            r.repository,
            owner,
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

/// The key a record is loaded under: its delivery id, or where it is in the
/// archive when it has none.
#[must_use]
pub fn row_key(obj: &DecodedObject, e: &Event) -> String {
    match &e.delivery_id {
        Some(id) => id.clone(),
        None => format!("{}#{}", obj.key, e.index),
    }
}

pub struct DatabaseSink {
    conn: Connection,
    loaded: HashSet<CompactId>,
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
    /// Loads into `conn`, whose schema is applied; reads the keys already
    /// there (about 50 bytes each in memory).
    pub fn new(conn: Connection) -> Result<Self, DbError> {
        conn.execute_batch("BEGIN TRANSACTION")?;
        let loaded = db::loaded_keys(&conn)?
            .iter()
            .map(|k| CompactId::new(k))
            .collect();
        Ok(Self {
            conn,
            loaded,
            batch: Vec::with_capacity(BATCH_ROWS),
            batch_bytes: 0,
            batch_rows: BATCH_ROWS,
            pending_rows: 0,
            pending_bytes: 0,
            commit_bytes: COMMIT_BYTES,
            counts: LoadCounts::default(),
        })
    }

    /// Commits every `bytes` of payload instead of every GiB: what a load
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

    /// Appends the gathered rows to the open transaction.
    fn write_batch(&mut self) -> Result<(), DbError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = append(&self.conn, TABLE, self.batch.drain(..))?;
        self.pending_rows += rows;
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
        let key = row_key(obj, e);
        if !self.loaded.insert(CompactId::new(&key)) {
            self.counts.already_loaded += 1;
            return Ok(());
        }
        let row = Row::new(obj, e, key, public);
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
}
