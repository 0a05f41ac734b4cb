//! One partition's Parquet file: the `deliveries` columns (`sink::row`) as
//! Arrow arrays, written by arrow-rs with ZSTD, in row groups bounded in
//! bytes so that memory stays flat however large an hour is.

use std::fs::File;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Int32Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::ExportError;
use crate::sink::row::RowView;

/// Payload bytes gathered before they are handed to the writer as a batch.
const BATCH_BYTES: usize = 16 << 20;
/// ...or rows, whichever comes first.
const BATCH_ROWS: usize = 8 * 1024;
/// Encoded bytes of a row group held before it is written out: what one
/// partition being written holds in memory (besides a batch).
const ROW_GROUP_BYTES: usize = 64 << 20;

/// Columns whose values are all different (ids, payloads, bodies): no
/// dictionary (it would be tried and abandoned page after page).
const UNIQUE_COLUMNS: [&str; 5] = ["row_key", "delivery_id", "payload", "headers", "raw_body"];
/// Columns too large for useful min/max statistics.
const NO_STATISTICS: [&str; 3] = ["payload", "headers", "raw_body"];

/// The exported file's schema: `queries/schema.sql`'s `deliveries`, the
/// payload and headers as JSON text, times as UTC instants in microseconds.
/// The partition columns (`dt`, `hour`) are in the path, not the file.
#[must_use]
pub fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let time = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )
    };
    Arc::new(Schema::new(vec![
        text("row_key", false),
        text("delivery_id", true),
        text("event", false),
        text("action", true),
        text("repository", true),
        text("owner", true),
        Field::new("private", DataType::Boolean, true),
        Field::new("public", DataType::Boolean, false),
        text("sender", true),
        time("received_at"),
        time("object_time"),
        text("object_key", false),
        Field::new("record_index", DataType::Int32, false),
        text("shape", false),
        text("payload", false),
        text("headers", true),
        Field::new("raw_body", DataType::Binary, true),
    ]))
}

fn properties() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_truncate_length(Some(64));
    for c in UNIQUE_COLUMNS {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    for c in NO_STATISTICS {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    b.build()
}

/// The rows of a batch being gathered, column by column.
struct Columns {
    row_key: StringBuilder,
    delivery_id: StringBuilder,
    event: StringBuilder,
    action: StringBuilder,
    repository: StringBuilder,
    owner: StringBuilder,
    private: BooleanBuilder,
    public: BooleanBuilder,
    sender: StringBuilder,
    received_at: TimestampMicrosecondBuilder,
    object_time: TimestampMicrosecondBuilder,
    object_key: StringBuilder,
    record_index: Int32Builder,
    shape: StringBuilder,
    payload: StringBuilder,
    headers: StringBuilder,
    raw_body: BinaryBuilder,
    rows: usize,
    bytes: usize,
}

impl Columns {
    fn new() -> Self {
        Self {
            row_key: StringBuilder::new(),
            delivery_id: StringBuilder::new(),
            event: StringBuilder::new(),
            action: StringBuilder::new(),
            repository: StringBuilder::new(),
            owner: StringBuilder::new(),
            private: BooleanBuilder::new(),
            public: BooleanBuilder::new(),
            sender: StringBuilder::new(),
            received_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            object_time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            object_key: StringBuilder::new(),
            record_index: Int32Builder::new(),
            shape: StringBuilder::new(),
            payload: StringBuilder::new(),
            headers: StringBuilder::new(),
            raw_body: BinaryBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    fn push(&mut self, r: &RowView<'_>) {
        self.row_key.append_value(&r.key);
        self.delivery_id.append_option(r.delivery_id);
        self.event.append_value(r.event);
        self.action.append_option(r.action);
        self.repository.append_option(r.repository);
        self.owner.append_option(r.owner);
        self.private.append_option(r.private);
        self.public.append_value(r.public);
        self.sender.append_option(r.sender);
        self.received_at.append_option(r.received_at);
        self.object_time.append_option(r.object_time);
        self.object_key.append_value(r.object_key);
        // Record indexes are counts of records in one object.
        self.record_index
            .append_value(i32::try_from(r.record_index).unwrap_or(i32::MAX));
        self.shape.append_value(r.shape);
        self.payload.append_value(r.payload);
        self.headers.append_option(r.headers);
        self.raw_body.append_option(r.raw_body);
        self.rows += 1;
        self.bytes += r.bytes();
    }

    /// The gathered rows as a batch; the builders start over.
    fn take(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ExportError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.row_key.finish()),
            Arc::new(self.delivery_id.finish()),
            Arc::new(self.event.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.repository.finish()),
            Arc::new(self.owner.finish()),
            Arc::new(self.private.finish()),
            Arc::new(self.public.finish()),
            Arc::new(self.sender.finish()),
            Arc::new(self.received_at.finish()),
            Arc::new(self.object_time.finish()),
            Arc::new(self.object_key.finish()),
            Arc::new(self.record_index.finish()),
            Arc::new(self.shape.finish()),
            Arc::new(self.payload.finish()),
            Arc::new(self.headers.finish()),
            Arc::new(self.raw_body.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// A partition's file being written: rows go in one at a time, in archive
/// order; [`PartitionFile::close`] ends the file (footer and all) and hands
/// it back, to be published under its real name.
pub struct PartitionFile {
    schema: SchemaRef,
    columns: Columns,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl PartitionFile {
    pub fn new(file: File) -> Result<Self, ExportError> {
        let schema = schema();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties()))?;
        Ok(Self {
            schema,
            columns: Columns::new(),
            writer,
            rows: 0,
        })
    }

    pub fn push(&mut self, row: &RowView<'_>) -> Result<(), ExportError> {
        self.columns.push(row);
        self.rows += 1;
        if self.columns.bytes >= BATCH_BYTES || self.columns.rows >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.columns.rows == 0 {
            return Ok(());
        }
        let batch = self.columns.take(&self.schema)?;
        self.writer.write(&batch)?;
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Writes what is gathered and the footer; the file, flushed to the OS.
    pub fn close(mut self) -> Result<File, ExportError> {
        self.write_batch()?;
        Ok(self.writer.into_inner()?)
    }
}
