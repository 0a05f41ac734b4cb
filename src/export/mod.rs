//! `export`: the archive as Hive-partitioned Parquet (`dt=YYYY-MM-DD/hour=HH/`)
//! that Spark, Athena, Trino, Snowflake and DuckDB read in place.
//!
//! A partition is one Firehose object hour (the key's `YYYY/MM/DD/HH`) and is
//! exactly one file, `deliveries.parquet`, so that engines, which list the
//! prefix themselves, never see half of one: it is written under a name they
//! ignore and renamed into place (a local directory), or uploaded in one PUT
//! or one multipart upload completed at once (S3). Re-exporting an hour
//! replaces that file. Beside the data, `_ghreplay/manifest/` holds, per
//! partition, what it was built from (the hour's objects and sizes, and the
//! selection), so a later run builds only hours whose objects changed.
//!
//! ```text
//! command: list -> group by hour -> drop hours whose manifest matches
//!   -> pipeline -> ExportSink (rows of one hour -> PartitionFile)
//!   -> Dest::publish (rename | PUT) -> Dest::write_manifest
//! ```

pub mod ddl;
mod dest;
mod parquet;

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use dest::{Dest, S3_PART_BYTES};
pub use parquet::schema;

use crate::archive::CompactId;
use crate::decode::{DecodeError, DecodedObject, Event};
use crate::model::Selection;
use crate::sink::row::RowView;
use crate::sink::{Sink, SinkError};
use crate::source::{ObjectMeta, SourceError};

/// The data file of every partition.
pub const DATA_FILE: &str = "deliveries.parquet";
/// ghreplay's own files under the export root (manifests, files being
/// written): engines skip names starting with `_`.
pub const STATE_DIR: &str = "_ghreplay";
/// The manifest format; a manifest of another version is rebuilt.
const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] SourceError),
    #[error("writing Parquet")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("building the columns")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("--to {0}: expected a directory or s3://bucket/prefix")]
    Destination(String),
    #[error("the manifest {path} is not what ghreplay writes: {source}")]
    Manifest {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the read ended before partition {0} was complete; nothing of it was published")]
    Unfinished(String),
    #[error("object {got} came where {expected} was planned")]
    OutOfOrder { expected: String, got: String },
}

impl ExportError {
    fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_string();
        move |source| ExportError::Io { path, source }
    }
}

/// A partition's path below the export root: `dt=2026-01-15/hour=10`.
#[must_use]
pub fn partition(hour: DateTime<Utc>) -> String {
    hour.format("dt=%Y-%m-%d/hour=%H").to_string()
}

/// An hour to export: its objects, in key order.
#[derive(Debug, Clone)]
pub struct HourPlan {
    pub hour: DateTime<Utc>,
    pub sources: Vec<ObjectMeta>,
}

/// What decides a partition's rows besides its objects: a change of any of
/// them rebuilds the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub events: Vec<String>,
    pub actions: Vec<String>,
    pub repos: Vec<String>,
    pub public_only: bool,
    pub keep_duplicates: bool,
}

impl Settings {
    #[must_use]
    pub fn of(selection: &Selection, keep_duplicates: bool) -> Self {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        Self {
            events: sorted(&selection.events),
            actions: sorted(&selection.actions),
            repos: sorted(&selection.repos),
            public_only: selection.public_only,
            keep_duplicates,
        }
    }
}

/// What a partition was built from, kept at
/// `_ghreplay/manifest/dt=…/hour=….json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub partition: String,
    /// The data file below the root; `None` when no row was kept.
    pub file: Option<String>,
    pub settings: Settings,
    pub sources: Vec<ObjectMeta>,
    pub rows: u64,
    /// Repeats of a delivery id within the hour, not written.
    pub duplicates: u64,
    pub exported_at: DateTime<Utc>,
}

impl Manifest {
    /// Whether the partition it describes is what exporting `plan` with
    /// `settings` would write again.
    #[must_use]
    pub fn is_current(&self, plan: &HourPlan, settings: &Settings) -> bool {
        self.version == MANIFEST_VERSION
            && self.settings == *settings
            && self.sources == plan.sources
    }
}

/// Groups the plan's objects (in key order) by their hour.
#[must_use]
pub fn hours(objects: &[crate::source::ArchiveObject]) -> Vec<HourPlan> {
    let mut hours: Vec<HourPlan> = Vec::new();
    for o in objects {
        let source = ObjectMeta {
            key: o.key.clone(),
            size: o.size,
        };
        match hours.last_mut() {
            Some(h) if h.hour == o.hour => h.sources.push(source),
            _ => hours.push(HourPlan {
                hour: o.hour,
                sources: vec![source],
            }),
        }
    }
    hours
}

/// What an export did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ExportCounts {
    /// Partitions written (new, or replaced).
    pub written: u64,
    /// Hours with no row kept: no file (one written before is removed).
    pub empty: u64,
    /// Hours whose manifest showed them current: not read.
    pub up_to_date: u64,
    pub rows: u64,
    /// Repeats of a delivery id within an hour, not written.
    pub duplicates: u64,
    /// Partitions written without a manifest because one of their objects
    /// could not be read: the next run builds them again.
    pub unfinished: Vec<String>,
}

/// The partition being written.
struct Open {
    file: parquet::PartitionFile,
    temp: dest::Temp,
}

/// Kept events into one Parquet file per object hour, in archive order.
///
/// The pipeline hands over the planned objects in key order, so an hour's
/// objects come together; the sink follows the plan object by object and
/// publishes an hour when its last object has ended.
pub struct ExportSink {
    dest: std::sync::Arc<Dest>,
    runtime: tokio::runtime::Handle,
    settings: Settings,
    hours: VecDeque<HourPlan>,
    /// Objects of the front hour that have ended.
    ended: usize,
    open: Option<Open>,
    /// Delivery ids seen in the front hour.
    ids: HashSet<CompactId>,
    duplicates: u64,
    /// An object of the front hour could not be read.
    unreadable: bool,
    pub counts: ExportCounts,
}

impl ExportSink {
    /// Exports `hours` (in key order) to `dest`; call from within a Tokio
    /// runtime (uploads run on it).
    #[must_use]
    pub fn new(dest: std::sync::Arc<Dest>, settings: Settings, hours: Vec<HourPlan>) -> Self {
        Self {
            dest,
            runtime: tokio::runtime::Handle::current(),
            settings,
            hours: hours.into(),
            ended: 0,
            open: None,
            ids: HashSet::new(),
            duplicates: 0,
            unreadable: false,
            counts: ExportCounts::default(),
        }
    }

    fn accept_row(
        &mut self,
        obj: &DecodedObject,
        e: &Event,
        public: bool,
    ) -> Result<(), ExportError> {
        let Some(hour) = self.hours.front().map(|h| h.hour) else {
            return Err(ExportError::OutOfOrder {
                expected: "no more objects".into(),
                got: obj.key.clone(),
            });
        };
        if let Some(id) = &e.delivery_id {
            if !self.settings.keep_duplicates && !self.ids.insert(CompactId::new(id)) {
                self.duplicates += 1;
                return Ok(());
            }
        }
        if self.open.is_none() {
            let (file, temp) = self.dest.temp_file(hour)?;
            self.open = Some(Open {
                file: parquet::PartitionFile::new(file)?,
                temp,
            });
        }
        match &mut self.open {
            Some(open) => open.file.push(&RowView::new(obj, e, public)),
            None => Ok(()),
        }
    }

    fn end(&mut self, obj: &DecodedObject) -> Result<(), ExportError> {
        let expected = self
            .hours
            .front()
            .and_then(|h| h.sources.get(self.ended))
            .map(|s| s.key.as_str());
        if expected != Some(obj.key.as_str()) {
            return Err(ExportError::OutOfOrder {
                expected: expected.unwrap_or("no more objects").to_owned(),
                got: obj.key.clone(),
            });
        }
        self.unreadable |= obj.problems.iter().any(DecodeError::is_object_level);
        self.ended += 1;
        if self
            .hours
            .front()
            .is_some_and(|h| h.sources.len() == self.ended)
        {
            self.publish_front()?;
        }
        Ok(())
    }

    /// Publishes the front hour (its file, or its emptiness) and its
    /// manifest, and moves to the next hour.
    fn publish_front(&mut self) -> Result<(), ExportError> {
        let Some(plan) = self.hours.pop_front() else {
            return Ok(());
        };
        let name = partition(plan.hour);
        let (rows, file) = if let Some(Open { file, temp }) = self.open.take() {
            let rows = file.rows();
            let f = file.close()?;
            f.sync_all()
                .map_err(ExportError::io(temp.path().display()))?;
            drop(f);
            let key = self.runtime.block_on(self.dest.publish(plan.hour, temp))?;
            self.counts.written += 1;
            (rows, Some(key))
        } else {
            self.runtime.block_on(self.dest.remove(plan.hour))?;
            self.counts.empty += 1;
            (0, None)
        };
        self.counts.rows += rows;
        self.counts.duplicates += self.duplicates;
        if self.unreadable {
            tracing::warn!(partition = %name, "an object of this hour could not be read: the partition is written, its manifest is not, so the next run builds it again");
            self.counts.unfinished.push(name);
        } else {
            let manifest = Manifest {
                version: MANIFEST_VERSION,
                partition: name,
                file,
                settings: self.settings.clone(),
                sources: plan.sources,
                rows,
                duplicates: self.duplicates,
                exported_at: Utc::now(),
            };
            self.runtime.block_on(self.dest.write_manifest(&manifest))?;
        }
        self.ended = 0;
        self.ids.clear();
        self.duplicates = 0;
        self.unreadable = false;
        Ok(())
    }
}

fn sink_error(e: ExportError) -> SinkError {
    SinkError::Export(Box::new(e))
}

impl Sink for ExportSink {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        self.accept_row(obj, e, public).map_err(sink_error)
    }

    fn end_object(&mut self, obj: &DecodedObject) -> Result<(), SinkError> {
        self.end(obj).map_err(sink_error)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if let Some(h) = self.hours.front() {
            return Err(sink_error(ExportError::Unfinished(partition(h.hour))));
        }
        Ok(())
    }
}
