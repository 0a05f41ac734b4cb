//! Destinations for kept events: `cat`'s NDJSON, the dry run's counts, the
//! DuckDB loader (`row.rs` is the row it shares with `export`'s Parquet).
//! Network targets are in `deliver`, whose engine is a sink too; `export`'s
//! partitioned Parquet is in `export`.

pub mod count;
#[cfg(feature = "duckdb")]
pub mod database;
pub mod ndjson;
pub mod row;

use crate::decode::{DecodedObject, Event};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The reader went away (`| head`): a normal end, not a failure.
    #[error("output closed")]
    Closed,
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    #[cfg(feature = "duckdb")]
    #[error("loading into DuckDB")]
    Database(#[source] crate::db::DbError),
    /// `export`'s error, boxed: `export` uses this module, so naming its
    /// type here would be a cycle.
    #[error("exporting")]
    Export(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Delivery stopped part way; the checkpoint resumes it.
    #[error("{message}{}", checkpoint.as_ref().map_or_else(|| "; no --checkpoint was given, so a rerun starts over".to_owned(), |c| format!("; progress is saved: run again with --resume --checkpoint {c}")))]
    Stopped {
        message: String,
        checkpoint: Option<String>,
    },
    /// Ctrl-C: the sink settles what it sent before it stops.
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// Reading what to send failed (a forward follower's outbox).
    #[error("reading the archive")]
    Source(#[source] crate::source::SourceError),
}

impl From<crate::source::SourceError> for SinkError {
    fn from(e: crate::source::SourceError) -> Self {
        SinkError::Source(e)
    }
}

impl SinkError {
    /// Maps a write error, treating a broken pipe as [`SinkError::Closed`].
    #[must_use]
    pub fn from_write(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            SinkError::Closed
        } else {
            SinkError::Io(e)
        }
    }
}

/// A destination, fed kept events in archive order.
pub trait Sink: Send {
    /// One kept event; `public` is the privacy filter's verdict.
    fn accept(
        &mut self,
        object: &DecodedObject,
        event: &Event,
        public: bool,
    ) -> Result<(), SinkError>;
    /// An object's events have all been offered. The read pipeline calls it
    /// after each object, while the object is still alive, so that a sink can
    /// hold on to its events' bytes until then (`cat` writes an object's lines
    /// in one go, straight from the decompressed buffer).
    fn end_object(&mut self, _object: &DecodedObject) -> Result<(), SinkError> {
        Ok(())
    }
    /// Flushes; called once after the last event.
    fn finish(&mut self) -> Result<(), SinkError>;
    /// Settles what was sent so far, without ending (a live forwarder calls
    /// it when idle, so that nothing waits in a batch or unconfirmed).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
