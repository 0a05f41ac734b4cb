//! The read path end to end, the only module that names all four stages:
//!
//! ```text
//! source (list, fetch; concurrent) -> decode + classify (rayon, all cores)
//!   -> filter (archive order; dedupe) -> sink
//! ```
//!
//! Memory is bounded whatever the archive size: at most `fetch_jobs` fetched
//! objects, and no more than `--read-memory` of compressed bytes, wait to be
//! decoded, and `decode_jobs` decoded ones are held at once (and, for an
//! HTTP target, the objects its messages in flight are slices of: at most
//! `--confirm-window` more), and the only state that grows with the archive
//! is the set of delivery ids (16 bytes each).

use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot};

use crate::config::ReadConfig;
use crate::decode::{self, DecodeError, DecodedObject};
use crate::filter::{self, Filter, FilterCounts, Verdict};
use crate::sink::{Sink, SinkError};
use crate::source::{ArchiveObject, Listed, Skipped, SourceError, Store};

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
    /// The bytes of the objects listed so far (it grows while listing
    /// streams ahead of reading).
    fn listed(&self, bytes: u64);
    /// Another object read: its size, and the events kept so far.
    fn advance(&self, bytes: u64, kept: u64);
    fn finish(&self);
}

impl Progress for () {
    fn listed(&self, _: u64) {}
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

/// What flows down the read path, in key order: an object at each stage,
/// the keys listing passed over, or the listing's failure (the last item).
enum Step<T> {
    Object(T),
    Skipped(Vec<Skipped>),
    ListingFailed(SourceError),
}

impl<T> Step<T> {
    /// The same step, for a stage where it is not an object.
    fn pass<U>(self) -> Step<U> {
        match self {
            Step::Object(_) => unreachable!("objects are mapped, not passed"),
            Step::Skipped(s) => Step::Skipped(s),
            Step::ListingFailed(e) => Step::ListingFailed(e),
        }
    }
}

/// Fetches, decodes and classifies the listed objects as the listing
/// streams them, and yields them in key order into a bounded channel;
/// adds the listed objects' bytes to `listed_bytes` as listing finds them.
fn spawn_decoding(
    store: Store,
    mut listed: Listed,
    cfg: &ReadConfig,
    listed_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> mpsc::Receiver<Step<Classified>> {
    let cores = rayon::current_num_threads();
    let decode_jobs = cores + 1;
    let (tx, rx) = mpsc::channel(decode_jobs);
    // `--read-memory`, in KiB: taken in key order before each fetch (so the
    // object the reader waits for is never starved by later ones), given
    // back once the object is decompressed.
    // (At most u32::MAX KiB, 4 TiB: what one acquire can take.)
    let budget_kib = usize::try_from((cfg.read_memory / 1024).min(u64::from(u32::MAX)))
        .unwrap_or(usize::MAX)
        .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(budget_kib));
    let (opts, selection, fixed_jobs, part_size) = (
        cfg.decode,
        cfg.selection.clone(),
        cfg.fetch_jobs,
        cfg.part_size,
    );
    let selection = std::sync::Arc::new(selection);
    tokio::spawn(async move {
        let (first, fetch_jobs) = first_pieces(&mut listed, &store, fixed_jobs, cores).await;
        let steps = futures::stream::iter(first)
            .chain(listed)
            .flat_map(move |piece| {
                let steps: Vec<Step<ArchiveObject>> = match piece {
                    Ok(p) => {
                        let bytes = p.objects.iter().map(|o| o.size).sum();
                        listed_bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                        std::iter::once(Step::Skipped(p.skipped))
                            .chain(p.objects.into_iter().map(Step::Object))
                            .collect()
                    }
                    Err(e) => vec![Step::ListingFailed(e)],
                };
                futures::stream::iter(steps)
            });
        let fetched = steps
            .then(move |step| {
                let budget = budget.clone();
                async move {
                    let Step::Object(o) = step else {
                        return step.pass();
                    };
                    let kib = usize::try_from(o.size.div_ceil(1024))
                        .unwrap_or(usize::MAX)
                        .clamp(1, budget_kib);
                    let permit = budget
                        .acquire_many_owned(u32::try_from(kib).unwrap_or(u32::MAX))
                        .await;
                    Step::Object((o, permit))
                }
            })
            .map(|step| {
                let store = store.clone();
                async move {
                    let Step::Object((o, permit)) = step else {
                        return step.pass();
                    };
                    let bytes = store.fetch(&o.key, o.size, part_size).await;
                    Step::Object((o, bytes, permit))
                }
            })
            .buffered(fetch_jobs);
        let decoded = fetched
            .map(move |step| decode(step, &selection, opts))
            .buffered(decode_jobs);
        let mut decoded = std::pin::pin!(decoded);
        while let Some(item) = decoded.next().await {
            let last = matches!(item, Step::ListingFailed(_));
            if tx.send(item).await.is_err() || last {
                break; // the consumer stopped (output closed), or listing did
            }
        }
    });
    rx
}

/// Takes pieces of the listing up to the first with objects, which sets
/// `auto`'s window (by then a listing has measured the round trip);
/// returns them and the number of fetches to keep in flight.
async fn first_pieces(
    listed: &mut Listed,
    store: &Store,
    fixed_jobs: usize,
    cores: usize,
) -> (Vec<Result<crate::source::Plan, SourceError>>, usize) {
    let mut first = Vec::new();
    while let Some(piece) = listed.next().await {
        let found = piece.as_ref().map_or(true, |p| !p.objects.is_empty());
        first.push(piece);
        if found {
            break;
        }
    }
    let jobs = match fixed_jobs {
        0 => {
            let objects = first.iter().flatten().flat_map(|p| &p.objects);
            let (n, sizes) = objects.fold((0u64, 0u64), |(n, b), o| (n + 1, b + o.size));
            fetch_window(store.round_trip(), sizes / n.max(1), cores)
        }
        n => n,
    };
    tracing::debug!(fetch_jobs = jobs, round_trip = ?store.round_trip(), "fetching");
    (first, jobs)
}

/// Decodes and classifies one fetched object on the rayon pool; other
/// steps pass through.
fn decode(
    step: Step<(ArchiveObject, Result<Vec<u8>, SourceError>, Permit)>,
    selection: &std::sync::Arc<crate::model::Selection>,
    opts: decode::DecodeOptions,
) -> futures::future::Either<
    std::future::Ready<Step<Classified>>,
    impl std::future::Future<Output = Step<Classified>>,
> {
    let Step::Object((o, bytes, permit)) = step else {
        return futures::future::Either::Left(std::future::ready(step.pass()));
    };
    let selection = selection.clone();
    let (key, time) = (o.key.clone(), Some(o.name.written_at));
    let (done, result) = oneshot::channel();
    rayon::spawn(move || {
        // A panic here (a decoder bug on hostile bytes) fails this object,
        // reported with its key; it must neither abort the process nor end
        // the output early.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let obj = match bytes {
                Ok(bytes) => {
                    #[cfg(test)]
                    tests::maybe_panic(&o.key);
                    let obj = decode::decode_object(o.key, time, bytes, &opts);
                    drop(permit);
                    obj
                }
                Err(e) => DecodedObject::failed(o.key, time, DecodeError::Fetch(e.to_string())),
            };
            let verdicts = filter::classify(&obj, &selection);
            (obj, verdicts)
        }));
        let _ = done.send(decoded.map_err(|p| panic_message(&*p)));
    });
    futures::future::Either::Right(async move {
        Step::Object(match result.await {
            Ok(Ok(item)) => item,
            Ok(Err(message)) => failed(key, time, message),
            Err(_) => failed(
                key,
                time,
                "the decode worker ended without an answer".into(),
            ),
        })
    })
}

/// `--read-memory` held by one fetched object until it is decompressed.
type Permit = Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>;

/// Below this, a round trip is a local disk's: as many fetches as from a
/// local directory.
const LOCAL_FETCH_JOBS: usize = 16;
/// The most fetches in flight `auto` sets.
const MAX_FETCH_JOBS: usize = 256;
/// Compressed bytes one core decodes a second: a high figure (this
/// machine's cores decode 55 to 60 MB/s of the benchmark's gzip since
/// libdeflate), so that the window errs on the wide side. At 150 ms, 40 MB/s
/// (48 in flight) read the benchmark range in 1.64 s, 100 MB/s (112) in
/// 1.47 s (BENCHMARKS.md, "From S3 with real latency").
const DECODE_BYTES_PER_SEC: f64 = 100e6;

/// `--fetch-jobs auto`: enough fetches in flight that the decoders never
/// wait on the network (Little's law: objects decoded a second, on every
/// core, times the round trip each fetch spends before its first byte),
/// plus two per core of slack; 16 at least (and from a local directory),
/// 256 at most. `--read-memory` bounds the bytes they hold.
#[must_use]
pub fn fetch_window(
    round_trip: Option<std::time::Duration>,
    average_object: u64,
    cores: usize,
) -> usize {
    let Some(rtt) = round_trip else {
        return LOCAL_FETCH_JOBS;
    };
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let decode_secs = (average_object.max(1) as f64 / DECODE_BYTES_PER_SEC).max(1e-5);
    let per_core = (rtt.as_secs_f64() / decode_secs).ceil();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped just below
    let needed = (per_core.min(1e6) as usize + 2).saturating_mul(cores.max(1));
    needed.clamp(LOCAL_FETCH_JOBS, MAX_FETCH_JOBS)
}

/// An object whose decoding panicked: failed, with no events.
fn failed(key: String, time: Option<chrono::DateTime<chrono::Utc>>, message: String) -> Classified {
    tracing::error!(object = %key, %message, "decoding panicked; the object is reported as failed");
    (
        DecodedObject::failed(key, time, DecodeError::Panic(message)),
        Vec::new(),
    )
}

/// What a panic said, when it said it as a string.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// Runs the read path into `sink`, reading objects as `listed` streams
/// them. A sink error stops the run, and so does a listing that fails part
/// way (`SinkError::Source`, after the sink has settled what it took, as
/// when idle: a checkpoint stays incomplete, to be resumed); what was read
/// up to then is still summarised.
pub async fn run<S: Sink + 'static>(
    store: Store,
    listed: Listed,
    cfg: &ReadConfig,
    mut sink: S,
    progress: impl Progress,
) -> Result<Finished<S>, tokio::task::JoinError> {
    let mut summary = Summary::default();
    let listed_bytes = std::sync::Arc::default();
    let mut rx = spawn_decoding(store, listed, cfg, std::sync::Arc::clone(&listed_bytes));
    let mut filter = Filter::new(cfg.selection.public_only, cfg.dedupe);
    tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        'objects: while let Some(step) = rx.blocking_recv() {
            let (obj, verdicts) = match step {
                Step::Object(item) => item,
                Step::Skipped(mut s) => {
                    summary.skipped_keys.append(&mut s);
                    continue;
                }
                Step::ListingFailed(e) => {
                    result = sink.flush().and(Err(SinkError::Source(e)));
                    break 'objects;
                }
            };
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
            if let Err(err) = sink.end_object(&obj) {
                result = Err(err);
                break 'objects;
            }
            progress.listed(listed_bytes.load(std::sync::atomic::Ordering::Relaxed));
            progress.advance(obj.compressed_bytes, filter.counts.kept);
        }
        progress.finish();
        drop(rx); // stops the decoding task if the sink stopped early
        let mut result = result.and_then(|()| sink.finish());
        summary.events = filter.counts;
        summary.skipped_keys.sort_by(|a, b| a.key.cmp(&b.key));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReadConfig;
    use crate::model::{ArchiveLocation, Dedupe, Selection};
    use crate::sink::count::CountSink;

    #[test]
    fn the_fetch_window_hides_the_round_trip_within_its_bounds() {
        use std::time::Duration;
        let ms = |n| Some(Duration::from_millis(n));
        // Locally, and wherever the round trip is short: 16, as before.
        assert_eq!(fetch_window(None, 250_000, 2), 16);
        assert_eq!(fetch_window(ms(2), 250_000, 2), 16);
        // 50 ms before a 250 KB object's first byte, 2.5 ms to decode it
        // on a core: 20 in flight a core, plus 2.
        assert_eq!(fetch_window(ms(50), 250_000, 2), 44);
        assert_eq!(fetch_window(ms(50), 250_000, 4), 88);
        // Slower links and smaller objects want more, up to 256.
        assert!(fetch_window(ms(200), 250_000, 4) > fetch_window(ms(50), 250_000, 4));
        assert_eq!(fetch_window(ms(500), 1_000, 64), 256);
        assert_eq!(fetch_window(ms(50), 0, 2), 256);
    }

    /// Objects of this stream panic in decoding, in test builds only.
    const PANIC_STREAM: &str = "inject-a-panic";

    pub(super) fn maybe_panic(key: &str) {
        assert!(
            !key.contains(PANIC_STREAM),
            "a decoder bug, injected by a test"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_decoder_panic_fails_its_object_and_the_run_reads_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let hour = dir.path().join("2026/01/15/10");
        std::fs::create_dir_all(&hour).unwrap();
        let record = |id: &str| {
            format!(r#"{{"body":{{"zen":"z","hook_id":1}},"event":"ping","request_id":"{id}"}}"#)
        };
        for (minute, stream, id) in [
            (0, "github-webhooks", "before"),
            (1, PANIC_STREAM, "lost"),
            (2, "github-webhooks", "after"),
        ] {
            let name = format!(
                "{stream}-1-2026-01-15-10-0{minute}-00-3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5{minute}"
            );
            std::fs::write(hour.join(name), record(id)).unwrap();
        }
        let location = ArchiveLocation::Local {
            dir: dir.path().to_owned(),
            prefix: String::new(),
        };
        let cfg = ReadConfig {
            archive: location.clone(),
            endpoint_url: None,
            selection: Selection::default(),
            dedupe: Dedupe::Off,
            fetch_jobs: 2,
            read_memory: crate::source::DEFAULT_READ_MEMORY,
            part_size: crate::source::DEFAULT_PART_SIZE,
            decode: decode::DecodeOptions::default(),
        };
        let store = Store::open(&location, None).await.unwrap();
        let plan = crate::source::plan(&store, &cfg.selection.time)
            .await
            .unwrap();
        assert_eq!(plan.objects.len(), 3);

        let f = run(store, plan.into_listed(), &cfg, CountSink::default(), ())
            .await
            .unwrap();

        assert_eq!(f.sink.total, 2, "the objects around the panic are read");
        assert_eq!(f.summary.objects, 3);
        assert_eq!(f.summary.corrupt_objects, 1);
        let [problem] = &f.summary.problems[..] else {
            panic!("one problem: {:?}", f.summary.problems)
        };
        assert!(problem.key.contains(PANIC_STREAM), "{}", problem.key);
        assert!(
            matches!(&problem.error, DecodeError::Panic(m) if m.contains("injected by a test")),
            "{:?}",
            problem.error
        );
        assert!(f.summary.input_skipped(), "exit status 3");
    }
}
