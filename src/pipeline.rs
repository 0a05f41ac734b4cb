//! The read path end to end, the only module that names all four stages:
//!
//! ```text
//! source (list, fetch; concurrent) -> decode + classify (rayon, all cores)
//!   -> filter (archive order; dedupe) -> sink
//! ```
//!
//! Memory is bounded whatever the archive size: at most `fetch_jobs` fetched
//! objects and `decode_jobs` decoded ones are held at once, and the only
//! state that grows with the archive is the set of delivery ids (16 bytes
//! each).

use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot};

use crate::config::ReadConfig;
use crate::decode::{self, DecodeError, DecodedObject};
use crate::filter::{self, Filter, FilterCounts, Verdict};
use crate::sink::{Sink, SinkError};
use crate::source::{Plan, Skipped, Store};

/// What went wrong with one object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectProblem {
    pub key: String,
    #[serde(serialize_with = "display")]
    pub error: DecodeError,
}

fn display<S: serde::Serializer>(e: &DecodeError, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// What a run read, kept and passed over: the basis of the printed summary
/// and of the exit status.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub objects: u64,
    pub bytes: u64,
    pub decompressed_bytes: u64,
    pub events: FilterCounts,
    /// Objects with an object-level problem (unreadable, bad gzip...).
    pub corrupt_objects: u64,
    /// Stretches of bad bytes between or inside records.
    pub corrupt_records: u64,
    pub empty_objects: u64,
    pub problems: Vec<ObjectProblem>,
    /// Keys and prefixes listing passed over.
    pub skipped_keys: Vec<Skipped>,
    /// The output was closed before the end (`| head`).
    pub output_closed: bool,
}

impl Summary {
    /// Whether any input was passed over: corrupt objects or records, or
    /// keys outside Firehose naming.
    #[must_use]
    pub fn input_skipped(&self) -> bool {
        self.corrupt_objects + self.corrupt_records > 0 || !self.skipped_keys.is_empty()
    }

    fn add_object(&mut self, obj: &DecodedObject) {
        self.objects += 1;
        self.bytes += obj.compressed_bytes;
        self.decompressed_bytes += obj.data.len() as u64;
        if obj.data.is_empty() && obj.problems.is_empty() {
            self.empty_objects += 1;
        }
        if obj.problems.iter().any(DecodeError::is_object_level) {
            self.corrupt_objects += 1;
        }
        for p in &obj.problems {
            if !p.is_object_level() {
                self.corrupt_records += 1;
            }
            tracing::info!(object = %obj.key, problem = %p, "skipped input");
            self.problems.push(ObjectProblem {
                key: obj.key.clone(),
                error: p.clone(),
            });
        }
    }
}

/// What the read path reports as it goes: a progress bar on a terminal
/// (`output::Progress`), or nothing (`()`).
pub trait Progress: Send + 'static {
    /// Another object read: its size, and the events kept so far.
    fn advance(&self, bytes: u64, kept: u64);
    fn finish(&self);
}

impl Progress for () {
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

/// How a run ended: the summary always, the sink back for its own
/// accounting, and whether the sink finished or stopped with an error.
pub struct Finished<S> {
    pub summary: Summary,
    pub sink: S,
    pub result: Result<(), SinkError>,
}

type Classified = (DecodedObject, Vec<Verdict>);

/// Fetches, decodes and classifies the plan's objects, and yields them in
/// key order into a bounded channel.
fn spawn_decoding(
    store: Store,
    plan_objects: Vec<crate::source::ArchiveObject>,
    cfg: &ReadConfig,
) -> mpsc::Receiver<Classified> {
    let decode_jobs = rayon::current_num_threads() + 1;
    let (tx, rx) = mpsc::channel(decode_jobs);
    let (fetch_jobs, opts, selection) = (cfg.fetch_jobs.max(1), cfg.decode, cfg.selection.clone());
    let selection = std::sync::Arc::new(selection);
    tokio::spawn(async move {
        let fetched = futures::stream::iter(plan_objects)
            .map(|o| {
                let store = store.clone();
                async move {
                    let bytes = store.get(&o.key).await;
                    (o, bytes)
                }
            })
            .buffered(fetch_jobs);
        let mut decoded = fetched
            .map(|(o, bytes)| {
                let selection = selection.clone();
                let (done, result) = oneshot::channel();
                rayon::spawn(move || {
                    let time = Some(o.name.written_at);
                    let obj = match bytes {
                        Ok(bytes) => decode::decode_object(o.key, time, bytes, &opts),
                        Err(e) => {
                            DecodedObject::failed(o.key, time, DecodeError::Fetch(e.to_string()))
                        }
                    };
                    let verdicts = filter::classify(&obj, &selection);
                    let _ = done.send((obj, verdicts));
                });
                result
            })
            .buffered(decode_jobs);
        while let Some(Ok(item)) = decoded.next().await {
            if tx.send(item).await.is_err() {
                break; // the consumer stopped (output closed)
            }
        }
    });
    rx
}

/// Runs the read path into `sink`. A sink error stops the run; what was read
/// up to then is still summarised.
pub async fn run<S: Sink + 'static>(
    store: Store,
    plan: Plan,
    cfg: &ReadConfig,
    mut sink: S,
    progress: impl Progress,
) -> Result<Finished<S>, tokio::task::JoinError> {
    let mut summary = Summary {
        skipped_keys: plan.skipped,
        ..Summary::default()
    };
    let mut rx = spawn_decoding(store, plan.objects, cfg);
    let mut filter = Filter::new(cfg.selection.public_only, cfg.dedupe);
    tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        'objects: while let Some((obj, verdicts)) = rx.blocking_recv() {
            summary.add_object(&obj);
            for (e, v) in obj.events.iter().zip(verdicts) {
                let time = filter::event_time(e, obj.object_time);
                if filter.decide(e, v, time).is_ok() {
                    if let Err(err) = sink.accept(&obj, e, v.public) {
                        result = Err(err);
                        break 'objects;
                    }
                }
            }
            progress.advance(obj.compressed_bytes, filter.counts.kept);
        }
        progress.finish();
        drop(rx); // stops the decoding task if the sink stopped early
        let mut result = result.and_then(|()| sink.finish());
        summary.events = filter.counts;
        if matches!(result, Err(SinkError::Closed)) {
            summary.output_closed = true;
            result = Ok(());
        }
        Finished {
            summary,
            sink,
            result,
        }
    })
    .await
}
