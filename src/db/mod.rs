//! The DuckDB side of `load` and `query`: opening a database, its schema
//! (`queries/schema.sql`, the only DDL), the canned queries, and running SQL
//! into Arrow batches. Loading rows is [`crate::sink::database`]'s job;
//! printing results is [`render`]'s.

pub mod catalog;
pub mod render;

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use duckdb::{AccessMode, Config, Connection};

use crate::model::TimeRange;

/// The schema every ghreplay database has; applied before each load.
pub const SCHEMA: &str = include_str!("../../queries/schema.sql");

/// The oldest DuckDB that must read the files `load` writes: new files are
/// written in its storage format, so DuckDB 1.x shells (PyPI's `duckdb-cli`
/// and `duckdb`) open them, though this build bundles a newer DuckDB.
pub const STORAGE_COMPATIBILITY: &str = "v1.4.0";

/// Rows per row group of a loaded file. DuckDB's default (122,880) suits
/// narrow rows; a delivery carries a ~10 KB payload, so a default row group
/// would hold over a gigabyte in memory before it is compressed and written.
/// At 8,192 rows a load streams to disk in ~100 MB steps (BENCHMARKS.md:
/// 2.8 s and 0.7 GB for 100k events, against 16.6 s and 2.3 GB).
pub const ROW_GROUP_SIZE: u32 = 8192;

/// How much appended data DuckDB buffers before writing it out.
const WRITE_BUFFER: &str = "64MB";

/// The table of deliveries.
pub const TABLE: &str = "deliveries";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: no such database; make one with `ghreplay load --db {path}`, or query an archive directly with --archive")]
    Missing { path: String },
    #[error("{path}: not a ghreplay database (it has no `deliveries` table); `ghreplay load --db {path}` makes one")]
    NotOurs { path: String },
    // DuckDB's message is shown in full and is the whole story: the error
    // it wraps is only a numeric code ("Error code 1: Unknown error code"),
    // so it is kept here but not offered as a source, which would print
    // the message twice and then the code.
    #[error("{path}: {cause}{}", lock_hint(cause))]
    Open { path: String, cause: duckdb::Error },
    #[error("{0}")]
    Sql(duckdb::Error),
    #[error("a loading thread stopped unexpectedly")]
    Writer,
    #[error("formatting the result: {0}")]
    Render(#[from] arrow::error::ArrowError),
}

impl From<duckdb::Error> for DbError {
    fn from(e: duckdb::Error) -> Self {
        DbError::Sql(e)
    }
}

/// DuckDB lets one process write a file at a time; say so plainly.
fn lock_hint(e: &duckdb::Error) -> &'static str {
    if e.to_string().contains("lock") {
        " (another process, such as a running `ghreplay load` or a DuckDB shell, has it open)"
    } else {
        ""
    }
}

/// Where the rows are.
#[derive(Debug, Clone)]
pub enum Database {
    File(PathBuf),
    /// Gone when the process ends: `query --archive` without `--db`.
    Memory,
}

impl Database {
    fn label(&self) -> String {
        match self {
            Database::File(p) => p.display().to_string(),
            Database::Memory => ":memory:".to_owned(),
        }
    }

    /// Opens for loading: the file is made if missing, and the schema applied.
    pub fn open_for_load(&self, memory_limit: Option<&str>) -> Result<Connection, DbError> {
        let mut config = Config::default()
            .with("write_buffer_row_group_memory_limit", WRITE_BUFFER)
            .map_err(|e| self.open_error(e))?;
        if let Some(limit) = memory_limit {
            config = config.max_memory(limit).map_err(|e| self.open_error(e))?;
        }
        let conn = Connection::open_in_memory_with_flags(config).map_err(|e| self.open_error(e))?;
        if let Database::File(path) = self {
            conn.execute_batch(&format!(
                "ATTACH {} AS ghreplay (ROW_GROUP_SIZE {ROW_GROUP_SIZE}, STORAGE_VERSION '{STORAGE_COMPATIBILITY}'); USE ghreplay;",
                sql_string(&path.display().to_string())
            ))
            .map_err(|e| self.open_error(e))?;
        }
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    }

    /// Opens an existing database read-only, so queries never change it and
    /// may run beside other readers.
    pub fn open_for_query(&self) -> Result<Connection, DbError> {
        let Database::File(path) = self else {
            return self.open_for_load(None);
        };
        let label = self.label();
        if !path.exists() {
            return Err(DbError::Missing { path: label });
        }
        let config = Config::default()
            .access_mode(AccessMode::ReadOnly)
            .map_err(|e| self.open_error(e))?;
        let conn = Connection::open_with_flags(path, config).map_err(|e| self.open_error(e))?;
        if !has_table(&conn, TABLE)? {
            return Err(DbError::NotOurs { path: label });
        }
        Ok(conn)
    }

    fn open_error(&self, source: duckdb::Error) -> DbError {
        DbError::Open {
            path: self.label(),
            cause: source,
        }
    }
}

/// Another connection to the database of `conn`, a connection made by
/// [`Database::open_for_load`] on a file: a clone starts in DuckDB's
/// default catalog, so it is pointed at the attached file too.
pub fn clone_attached(conn: &Connection) -> Result<Connection, DbError> {
    let other = conn.try_clone()?;
    other.execute_batch("USE ghreplay")?;
    Ok(other)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, DbError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// A SQL string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Microseconds since the epoch: how rows carry times to DuckDB.
#[must_use]
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Sets the session variables `since` and `until` that the view `in_range`
/// (and so every canned query) reads; unset means unbounded.
pub fn set_range(conn: &Connection, range: &TimeRange) -> Result<(), DbError> {
    for (name, t) in [("since", range.since), ("until", range.until)] {
        match t {
            Some(t) => conn.execute_batch(&format!(
                "SET VARIABLE {name} = make_timestamp({});",
                micros(t)
            ))?,
            None => conn.execute_batch(&format!("RESET VARIABLE {name};"))?,
        }
    }
    Ok(())
}

/// A query's result: its schema (known even when no row came back) and rows.
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    #[must_use]
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Runs SQL (several statements: the last one's result is returned).
pub fn run(conn: &Connection, sql: &str) -> Result<QueryResult, DbError> {
    let mut stmt = conn.prepare(sql)?;
    let arrow = stmt.query_arrow([])?;
    let schema = arrow.get_schema();
    let batches = arrow.collect();
    Ok(QueryResult { schema, batches })
}

/// The database file `load` writes and `query` reads when none is named.
pub const DEFAULT_FILE: &str = "ghreplay.duckdb";
