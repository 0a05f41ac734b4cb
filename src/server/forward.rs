//! Live forwarding (`serve --forward`): each target follows the archive as
//! an outbox, with a checkpoint of its own.
//!
//! A follower thread per target reads the objects the writer makes (the
//! archive directory, or the spool of an S3 archive) past its position,
//! puts each delivery through the privacy filter and into the delivery
//! engine, and moves its checkpoint (the engine's) over what the target
//! confirmed. The handler only wakes it: the acknowledgement to GitHub never
//! waits for a forward. A target that is down, or a restart of `serve`,
//! delays forwarding and loses nothing: the follower reconnects with
//! backoff and carries on from its checkpoint. A new target starts at the
//! archive's end: it is fed what arrives from then on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::runtime::Handle;

use super::metrics::{ForwardGauges, Metrics};
use super::Wake;
use crate::archive::parse_object_name;
use crate::checkpoint::{CheckpointError, CheckpointFile, RunIdentity};
use crate::decode::{decode_object, DecodeOptions, DecodedObject};
use crate::deliver::target::TargetOptions;
use crate::deliver::{self, Delivering, Ledger, Target};
use crate::filter::privacy;
use crate::model::Position;
use crate::sink::SinkError;
use crate::source::LocalStore;

/// ghreplay's own state inside the writer's directory: never archive keys
/// (listing passes it over, uploads leave it alone).
pub use crate::source::STATE_DIR;

/// How long a follower waits for a wake-up before looking anyway.
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// How long to wait before reconnecting a target that stopped.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);
/// At shutdown, how long to keep forwarding what is archived.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One `--forward` target and how to reach it.
#[derive(Debug, Clone)]
pub struct ForwardTarget {
    pub target: Target,
    pub opts: TargetOptions,
    /// Forward what the privacy filter holds back too.
    pub include_private: bool,
}

/// Why a `--forward` value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Target(#[from] deliver::TargetError),
    #[error("--forward {target}: {key}={value:?} is not true or false")]
    NotBool {
        target: String,
        key: String,
        value: String,
    },
    #[error("--forward {target}: {key} applies to amqp:// targets only")]
    NotAmqp { target: String, key: String },
    #[error("--forward takes an amqp://, amqps://, sns: or http(s):// target, not {0}")]
    NotNetwork(String),
}

impl ForwardTarget {
    /// A `--forward` value: a target URL whose own settings ride as query
    /// parameters (`include_private`, and for AMQP `exchange`, `declare`),
    /// taken out of the URL; other parameters stay (the receiver's own, or
    /// lapin's). `base` holds the single-target flags' values.
    pub fn parse(
        spec: &str,
        base: &TargetOptions,
        include_private: bool,
    ) -> Result<Self, ForwardError> {
        let (url, query) = match spec.split_once('?') {
            Some((u, q)) => (u, q),
            None => (spec, ""),
        };
        let mut opts = base.clone();
        let mut include_private = include_private;
        let mut rest = form_urlencoded::Serializer::new(String::new());
        let is_amqp = url.starts_with("amqp://") || url.starts_with("amqps://");
        let shown = Target::parse(url)?.display();
        let flag = |key: &str, value: &str| match value {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ForwardError::NotBool {
                target: shown.clone(),
                key: key.to_owned(),
                value: value.to_owned(),
            }),
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "include_private" => include_private = flag(&key, &value)?,
                "exchange" | "declare" if !is_amqp => {
                    return Err(ForwardError::NotAmqp {
                        target: shown,
                        key: key.into_owned(),
                    })
                }
                "exchange" => opts.exchange = value.into_owned(),
                "declare" => opts.declare = flag(&key, &value)?,
                _ => {
                    rest.append_pair(&key, &value);
                }
            }
        }
        let rest = rest.finish();
        let url = if rest.is_empty() {
            url.to_owned()
        } else {
            format!("{url}?{rest}")
        };
        let target = Target::parse(&url)?;
        if matches!(target, Target::Ndjson(_)) {
            return Err(ForwardError::NotNetwork(spec.to_owned()));
        }
        Ok(Self {
            target,
            opts,
            include_private,
        })
    }

    /// The name it is shown and labelled with.
    #[must_use]
    pub fn shown(&self) -> String {
        let mut s = self.target.display();
        if self.include_private {
            s.push_str(" (private included)");
        }
        s
    }
}

/// Where the writer puts objects, read back by followers (the forward
/// targets and the dashboard's database).
#[derive(Debug, Clone)]
pub struct Outbox {
    pub dir: PathBuf,
    pub prefix: String,
}

impl Outbox {
    /// The objects written so far, in key (so archive) order.
    pub fn objects(&self) -> Result<Vec<String>, crate::source::SourceError> {
        let store = LocalStore::new(self.dir.clone())?;
        Ok(store
            .list_all(&self.prefix)?
            .into_iter()
            .map(|o| o.key)
            .collect())
    }

    /// An object as written so far, from byte `from` on (a record being
    /// written is not complete yet, and is read at the next pass).
    fn read_from(&self, key: &str, from: u64) -> Option<DecodedObject> {
        use std::io::{Read as _, Seek as _};
        let mut file = std::fs::File::open(self.dir.join(key)).ok()?;
        file.seek(std::io::SeekFrom::Start(from)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let time = key
            .rsplit('/')
            .next()
            .and_then(parse_object_name)
            .map(|n| n.written_at);
        Some(decode_object(
            key.to_owned(),
            time,
            bytes,
            &DecodeOptions::default(),
        ))
    }

    /// Calls `f` with each archived delivery after `after`, in archive
    /// order, and its position. `tail` remembers where the last object read
    /// ended, so that a follower reads only what was appended since
    /// (`Tail::default()` reads whole objects).
    pub fn each_after<E: From<crate::source::SourceError>>(
        &self,
        after: Option<&Position>,
        tail: &mut Tail,
        mut f: impl FnMut(&DecodedObject, &crate::decode::Event, Position) -> Result<(), E>,
    ) -> Result<(), E> {
        for key in self.objects()? {
            if after.is_some_and(|a| key < a.object) {
                continue;
            }
            // Records are numbered from the object's start: an object read
            // from its tail numbers on from the events before it.
            let (from, base) = if tail.key == key {
                (tail.offset, tail.events)
            } else {
                (0, 0)
            };
            let Some(mut obj) = self.read_from(&key, from) else {
                continue;
            };
            for e in &mut obj.events {
                e.index += base;
                e.offset += from;
            }
            let read_to = obj
                .events
                .last()
                .map(|e| (e.record.end as u64, e.index + 1));
            for e in &obj.events {
                let pos = Position {
                    object: key.clone(),
                    index: e.index,
                };
                if after.is_some_and(|a| &pos <= a) {
                    continue;
                }
                f(&obj, e, pos)?;
            }
            // Only the writer's own objects (plain, no extension) are read
            // from a byte offset; compressed ones are read whole.
            let plain = key
                .rsplit('/')
                .next()
                .and_then(parse_object_name)
                .is_some_and(|n| n.extension.is_none());
            if let (Some((end, events)), true) = (read_to, plain) {
                *tail = Tail {
                    key: key.clone(),
                    offset: from + end,
                    events,
                };
            }
        }
        Ok(())
    }
}

/// Where a follower's last read of an object ended: the byte after its last
/// complete record, and how many records came before. The writer only
/// appends whole records to an object (and never again after a failed
/// write), so the next pass reads on from there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    key: String,
    offset: u64,
    events: u32,
}

/// How far each follower's target has confirmed, by target: an S3
/// archive's uploader removes a spool object only once every target has
/// confirmed a delivery from a later object.
#[derive(Debug, Default)]
pub struct Progress(Mutex<std::collections::BTreeMap<String, Option<Position>>>);

impl Progress {
    /// Registers the targets before anything is uploaded: unknown progress
    /// keeps every object.
    #[must_use]
    pub fn new<'a>(targets: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Mutex::new(
            targets.into_iter().map(|t| (t.to_owned(), None)).collect(),
        ))
    }

    pub fn set(&self, target: &str, pos: Option<Position>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(target.to_owned(), pos);
    }

    /// Whether every target is past the object `key`.
    #[must_use]
    pub fn passed(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .all(|p| p.as_ref().is_some_and(|p| p.object.as_str() > key))
    }
}

pub struct Forwarder {
    shown: String,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Forwarder {
    /// Opens (or starts) the target's checkpoint, connects the target (its
    /// healthcheck: a target that cannot be used at all stops `serve` from
    /// starting) and starts its follower.
    pub async fn start(
        target: ForwardTarget,
        outbox: Outbox,
        metrics: Arc<Metrics>,
        progress: Arc<Progress>,
    ) -> anyhow::Result<Self> {
        let shown = target.shown();
        let state = state_file(&outbox.dir, &shown);
        let identity = identity(&outbox, &target);
        let known = state.exists();
        let checkpoint = open_checkpoint(&state, &identity, &outbox)?;
        progress.set(&shown, checkpoint.state.confirmed_through.clone());
        // A target never used before must answer now (a typo should stop
        // the start); one with a checkpoint may be down for a while: serve
        // starts, and its deliveries wait in the archive.
        let sink = match connect(&target, checkpoint).await {
            Ok(sink) => Some(sink),
            Err(e) if known => {
                tracing::warn!(target = %shown, error = %e, "forward target is down; its deliveries wait in the archive until it is back");
                None
            }
            Err(e) => {
                // Leave nothing behind: the next start is a first one too.
                let _ = std::fs::remove_file(&state);
                return Err(e.into());
            }
        };
        let follower = Follower {
            shown: shown.clone(),
            target,
            outbox,
            state,
            identity,
            metrics,
            progress,
            rt: Handle::current(),
            cursor: None,
            tail: Tail::default(),
        };
        let (wake, stop) = (Arc::new(Wake::default()), Arc::new(AtomicBool::new(false)));
        let thread = {
            let (wake, stop) = (wake.clone(), stop.clone());
            std::thread::Builder::new()
                .name("forwarder".into())
                .spawn(move || follower.run(sink, &wake, &stop))?
        };
        Ok(Self {
            shown,
            wake,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Something was archived; never waits.
    pub fn notify(&self) {
        self.wake.notify();
    }

    /// Forwards what is archived (for a few seconds at most), saves the
    /// checkpoint and stops; what is left goes at the next start.
    pub async fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify();
        super::join(&self.thread).await;
    }
}

/// The checkpoint file of a target, named after it.
fn state_file(dir: &Path, shown: &str) -> PathBuf {
    dir.join(STATE_DIR).join(format!(
        "forward-{:08x}.json",
        crc32fast::hash(shown.as_bytes())
    ))
}

fn identity(outbox: &Outbox, target: &ForwardTarget) -> RunIdentity {
    RunIdentity {
        archive: outbox.dir.join(&outbox.prefix).display().to_string(),
        target: target.target.display(),
        since: None,
        until: None,
        events: vec![],
        actions: vec![],
        repos: vec![],
        public_only: !target.include_private,
        dedupe: "off".into(),
        shard: None,
    }
}

/// The target's checkpoint: resumed, or for a new target, started at the
/// archive's end.
fn open_checkpoint(
    path: &Path,
    identity: &RunIdentity,
    outbox: &Outbox,
) -> Result<CheckpointFile, CheckpointError> {
    if path.exists() {
        return CheckpointFile::resume(path, identity);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| CheckpointError::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut cp = CheckpointFile::create(path, identity.clone(), 0)?;
    cp.state.confirmed_through =
        outbox
            .objects()
            .ok()
            .and_then(|o| o.last().cloned())
            .map(|object| Position {
                object,
                index: u32::MAX,
            });
    cp.save()?;
    Ok(cp)
}

/// The outbox's object keys, in order.
const WINDOW: usize = 100;

async fn connect(
    target: &ForwardTarget,
    checkpoint: CheckpointFile,
) -> Result<Box<dyn Delivering>, deliver::TargetError> {
    let ledger = Ledger::new(Some(checkpoint), None, WINDOW, Arc::default());
    deliver::connect(&target.target, &target.opts, ledger).await
}

struct Follower {
    shown: String,
    target: ForwardTarget,
    outbox: Outbox,
    state: PathBuf,
    identity: RunIdentity,
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
    rt: Handle,
    /// The last event handed to the engine in this process.
    cursor: Option<Position>,
    /// Where the last pass stopped reading.
    tail: Tail,
}

impl Follower {
    fn run(mut self, sink: Option<Box<dyn Delivering>>, wake: &Wake, stop: &AtomicBool) {
        let mut sink = sink;
        let mut stopping_since: Option<Instant> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SHUTDOWN_GRACE {
                    break;
                }
            }
            let Some(s) = sink.as_mut() else {
                sink = self.reconnect();
                if sink.is_none() {
                    if stopping_since.is_some() {
                        break;
                    }
                    wake.wait(RECONNECT_AFTER);
                }
                continue;
            };
            match self.pass(s.as_mut()) {
                Ok(()) => {
                    self.gauges(0, None);
                    self.progress.set(&self.shown, self.confirmed());
                    if stopping_since.is_some() {
                        break;
                    }
                    wake.wait(IDLE_LOOK);
                }
                Err(e) => {
                    tracing::warn!(target = %self.shown, error = %e, "forwarding stopped; the deliveries are archived and go when the target is back");
                    Metrics::inc(&self.metrics.forward_failures);
                    sink = None;
                    self.cursor = None;
                    self.measure_backlog();
                }
            }
        }
        if let Some(mut s) = sink {
            if let Err(e) = s.flush() {
                tracing::warn!(target = %self.shown, error = %e, "forwarding stopped at shutdown; the rest goes at the next start");
            }
        }
    }

    /// How far the target has confirmed, as the checkpoint on disk says.
    fn confirmed(&self) -> Option<Position> {
        CheckpointFile::load(&self.state)
            .ok()
            .and_then(|c| c.confirmed_through)
    }

    /// A new connection, resuming from the checkpoint on disk.
    fn reconnect(&mut self) -> Option<Box<dyn Delivering>> {
        let checkpoint = match CheckpointFile::resume(&self.state, &self.identity) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target = %self.shown, error = %e, "cannot read the forward checkpoint");
                return None;
            }
        };
        match self.rt.block_on(connect(&self.target, checkpoint)) {
            Ok(s) => {
                tracing::info!(target = %self.shown, "forward target is back");
                Some(s)
            }
            Err(e) => {
                tracing::debug!(target = %self.shown, error = %e, "forward target still down");
                None
            }
        }
    }

    /// Hands every archived delivery past the cursor to the engine, then
    /// settles them (the checkpoint moves).
    fn pass(&mut self, sink: &mut dyn Delivering) -> Result<(), SinkError> {
        let resume = self.cursor.clone().or_else(|| self.confirmed());
        let (outbox, shown) = (self.outbox.clone(), self.shown.clone());
        let mut tail = std::mem::take(&mut self.tail);
        let passed = outbox.each_after(resume.as_ref(), &mut tail, |obj, e, pos| {
            let public = privacy::event_is_public(e);
            if public || self.target.include_private {
                tracing::debug!(target = %shown, object = %pos.object, index = e.index, "forwarding");
                sink.accept(obj, e, public)?;
                Metrics::inc(&self.metrics.forwarded);
            } else {
                Metrics::inc(&self.metrics.forward_held_private);
            }
            self.cursor = Some(pos);
            Ok::<_, SinkError>(())
        });
        // After a failure the engine goes back to its checkpoint, which may
        // lie before the tail: read whole objects again.
        self.tail = if passed.is_ok() {
            tail
        } else {
            Tail::default()
        };
        passed?;
        sink.flush()
    }

    /// While the target is down: how many archived deliveries wait, and
    /// since when.
    fn measure_backlog(&self) {
        let mut waiting = 0;
        let mut oldest = None;
        let _ = self.outbox.each_after(
            self.confirmed().as_ref(),
            &mut Tail::default(),
            |obj, e, _| {
                if privacy::event_is_public(e) || self.target.include_private {
                    waiting += 1;
                    oldest = oldest.or(e.received_at.or(obj.object_time));
                }
                Ok::<_, crate::source::SourceError>(())
            },
        );
        self.gauges(waiting, oldest);
    }

    fn gauges(&self, backlog: u64, oldest: Option<chrono::DateTime<Utc>>) {
        let lag_seconds = oldest.map_or(0.0, |t| {
            (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.metrics
            .forward
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                self.shown.clone(),
                ForwardGauges {
                    backlog,
                    lag_seconds,
                },
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::RetryPolicy;

    fn line(id: &str) -> Vec<u8> {
        crate::archive::Record {
            delivery_id: id.into(),
            event: "ping".into(),
            received_at: Utc::now(),
            headers: std::collections::BTreeMap::new(),
            body: format!(r#"{{"zen":"{id}"}}"#).into_bytes(),
        }
        .to_json_line()
    }

    /// (position index, delivery id) of what a pass hands over.
    fn pass(outbox: &Outbox, after: Option<&Position>, tail: &mut Tail) -> Vec<(u32, String)> {
        let mut seen = Vec::new();
        outbox
            .each_after(after, tail, |_, e, pos| {
                seen.push((pos.index, e.delivery_id.clone().unwrap_or_default()));
                Ok::<_, crate::source::SourceError>(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn a_follower_reads_on_from_its_tail_with_the_same_positions() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let key =
            "2026/01/15/10/ghreplay-1-2026-01-15-10-00-00-01a236cf-b96f-72a9-bcf5-95671595a4b7";
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let outbox = Outbox {
            dir: dir.path().to_owned(),
            prefix: String::new(),
        };
        let third = line("c");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&[line("a"), line("b"), third[..20].to_vec()].concat())
            .unwrap();
        let mut tail = Tail::default();
        assert_eq!(
            pass(&outbox, None, &mut tail),
            [(0, "a".into()), (1, "b".into())]
        );
        // The rest of the third record arrives, and a fourth.
        file.write_all(&[third[20..].to_vec(), line("d")].concat())
            .unwrap();
        let after = Position {
            object: key.into(),
            index: 1,
        };
        assert_eq!(
            pass(&outbox, Some(&after), &mut tail),
            [(2, "c".into()), (3, "d".into())]
        );
        assert_eq!(pass(&outbox, Some(&after), &mut tail), [], "nothing new");
        // Read whole, the positions are the same.
        assert_eq!(
            pass(&outbox, Some(&after), &mut Tail::default()),
            [(2, "c".into()), (3, "d".into())]
        );
    }

    fn base() -> TargetOptions {
        TargetOptions {
            exchange: "exchange/github-webhooks/v1".into(),
            declare: false,
            mandatory: false,
            endpoint_url: None,
            sign_secret: None,
            timeout: Duration::from_secs(10),
            window: 100,
            retry: RetryPolicy::new(Duration::from_secs(10)),
            ca_pem: None,
        }
    }

    #[test]
    fn settings_ride_in_the_target_url() {
        let t = ForwardTarget::parse(
            "sns:arn:aws:sns:us-west-2:1:github-webhooks-all?include_private=true",
            &base(),
            false,
        )
        .unwrap();
        assert_eq!(
            t.target,
            Target::Sns("arn:aws:sns:us-west-2:1:github-webhooks-all".into())
        );
        assert!(t.include_private);

        let t = ForwardTarget::parse(
            "amqps://u:p@pulse.example/vhost?exchange=exchange/x/v1&declare=true&heartbeat=30",
            &base(),
            false,
        )
        .unwrap();
        assert_eq!(t.opts.exchange, "exchange/x/v1");
        assert!(t.opts.declare);
        assert!(!t.include_private);
        assert_eq!(
            t.target,
            Target::Amqp("amqps://u:p@pulse.example/vhost?heartbeat=30".into()),
            "lapin's own parameters stay"
        );

        let t = ForwardTarget::parse("https://h/hook?token=abc", &base(), true).unwrap();
        assert_eq!(t.target, Target::Http("https://h/hook?token=abc".into()));
        assert!(
            t.include_private,
            "the flag's value when the URL says nothing"
        );

        assert!(matches!(
            ForwardTarget::parse("https://h/hook?exchange=x", &base(), false),
            Err(ForwardError::NotAmqp { .. })
        ));
        assert!(matches!(
            ForwardTarget::parse(
                "sns:arn:aws:sns:r:1:t?include_private=maybe",
                &base(),
                false
            ),
            Err(ForwardError::NotBool { .. })
        ));
        assert!(ForwardTarget::parse("ndjson", &base(), false).is_err());
    }
}
