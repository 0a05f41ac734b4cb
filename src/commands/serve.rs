//! `ghreplay serve`: flags in, index rebuilt from the archive, receiver out.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chrono::Utc;

use super::{dashboard, Outcome};
use crate::audit::redeliver::Asking;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::{self, ReadConfig};
use crate::decode::{DecodeOptions, DecodedObject, Event};
use crate::deliver::target::TargetOptions;
use crate::deliver::RetryPolicy;
use crate::model::{ArchiveLocation, Dedupe, Selection, TimeRange};
use crate::pipeline;
use crate::server::forward::{self, ForwardTarget, Forwarder};
use crate::server::metrics::Metrics;
use crate::server::reconcile::{self, ReconcileConfig, Reconciler};
use crate::server::writer::{ArchiveWriter, WriterConfig};
use crate::server::{self, conn, upload, AppState, Auth, DeliveryIndex};
use crate::signature::{self, Secret};
use crate::sink::{Sink, SinkError};
use crate::source::{self, Store};

pub async fn run(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<Outcome> {
    let span = |flag: &str, v: &str| {
        config::parse_span(v)
            .and_then(|d| d.to_std().ok())
            .with_context(|| format!("{flag} {v:?}: expected a span (300s, 5m, 72h)"))
    };
    let roll_age = span("--roll-age", &args.roll_age)?;
    let dedupe_window = span("--dedupe-window", &args.dedupe_window)?;
    let limits = client_limits(args, &span)?;
    let auth = auth(args)?;
    if !args.path.starts_with('/') {
        bail!("--path {:?} must start with /", args.path);
    }

    let (location, dir, prefix) = locations(global, args)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let spool = ArchiveLocation::Local {
        dir: dir.clone(),
        prefix: prefix.clone(),
    };
    let metrics = Arc::new(Metrics::default());
    let (index, known) = rebuild_index(global, &location, &spool, dedupe_window, &metrics).await?;

    let forwards = forward_targets(global, args)?;
    let dashboard = dashboard::prepare(args).await?;
    let progress = Arc::new(forward::Progress::new(
        forwards
            .iter()
            .map(|f| f.0.as_str())
            .chain(dashboard.as_ref().map(|_| dashboard::PROGRESS_NAME)),
    ));
    let (uploader, on_complete) =
        start_uploader(global, &location, &dir, progress.clone(), metrics.clone()).await?;

    let outbox = forward::Outbox {
        dir: dir.clone(),
        prefix: prefix.clone(),
    };
    let writer = ArchiveWriter::start(
        WriterConfig {
            dir: dir.clone(),
            prefix,
            stream: args.stream.clone(),
            roll_bytes: args.roll_bytes,
            roll_age,
            on_complete,
        },
        metrics.clone(),
    )
    .with_context(|| format!("starting the archive writer in {}", dir.display()))?;
    let forward = start_forwarders(forwards, &outbox, &metrics, &progress).await?;
    let (ui_stop, ui_stopped) = tokio::sync::watch::channel(false);
    let dashboard = match dashboard {
        Some(d) => Some(d.start(
            &auth,
            (&location, cfg_endpoint(global), &outbox),
            progress.clone(),
            metrics.clone(),
            ui_stopped,
        )?),
        None => None,
    };
    let state = Arc::new(AppState {
        auth,
        writer,
        index,
        metrics,
        forward,
        followers: dashboard.iter().map(dashboard::Running::wake).collect(),
        body_timeout: limits.body_timeout,
    });

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let reconcile = prepare_reconcile(args, &span, &dir, dedupe_window, state.metrics.clone())?
        .map(|r| tokio::spawn(r.run(state.clone())));
    eprintln!(
        "ghreplay serve: listening on http://{addr}{} (archive {location}, {} delivery ids known){}",
        args.path,
        known,
        dashboard
            .as_ref()
            .map(|d| format!("; dashboard on {}", d.url()))
            .unwrap_or_default()
    );
    let stopped = server::serve(
        listener,
        state.clone(),
        &args.path,
        dedupe_window,
        limits,
        shutdown_signal(ui_stop),
    )
    .await;
    say_cut(stopped.cut, &args.shutdown_grace);
    close(&state, dashboard, uploader, reconcile).await;
    Ok(Outcome::Done)
}

/// Connections still open past the grace period were cut: what that means.
fn say_cut(cut: usize, grace: &str) {
    if cut > 0 {
        eprintln!(
            "ghreplay serve: cut {cut} connection(s) still open after --shutdown-grace {grace}; nothing they sent was acknowledged (a write already started still completes, and a redelivery of it is answered as a duplicate)",
        );
    }
}

/// `--reconcile`: the background audit, checked and loaded once the
/// listener is bound and before it serves (bad credentials, hooks or state
/// stop the start; the first pass's redeliveries find the port open).
fn prepare_reconcile(
    args: &ServeArgs,
    span: &impl Fn(&str, &str) -> anyhow::Result<std::time::Duration>,
    dir: &std::path::Path,
    dedupe_window: std::time::Duration,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<Reconciler>> {
    if args.reconcile.is_empty() {
        return Ok(None);
    }
    let every =
        span("--reconcile-every", &args.reconcile_every)?.max(std::time::Duration::from_secs(1));
    let settle = chrono::Duration::from_std(span("--reconcile-settle", &args.reconcile_settle)?)?;
    let index_covers = chrono::Duration::from_std(dedupe_window)?;
    if index_covers < chrono::Duration::hours(2) {
        bail!("--reconcile needs a --dedupe-window of at least 2h: the window is what it can check against");
    }
    let rate = config::request_rate("--reconcile-rate", args.reconcile_rate)?;
    let hooks = super::audit::hooks(&args.reconcile)?;
    let client = super::audit::client(&args.github, &hooks)?;
    let reconciler = Reconciler::new(
        ReconcileConfig {
            hooks,
            every,
            settle,
            index_covers,
            state_dir: reconcile::state_dir(dir),
            asking: Asking {
                include_futile: false,
                rate,
            },
        },
        client,
        metrics,
    )?;
    Ok(Some(reconciler))
}

/// The archive is the truth about what was received: the index of
/// delivery ids is rebuilt from its last dedupe window (and the spool's).
/// Gives the index and how many ids it holds.
async fn rebuild_index(
    global: &GlobalArgs,
    location: &ArchiveLocation,
    spool: &ArchiveLocation,
    dedupe_window: std::time::Duration,
    metrics: &Metrics,
) -> anyhow::Result<(DeliveryIndex, usize)> {
    let mut known = archived_ids(global, location, cfg_endpoint(global), dedupe_window).await?;
    if spool != location {
        known.extend(archived_ids(global, spool, None, dedupe_window).await?);
    }
    if let Some(t) = known.newest {
        metrics.delivered_at(t);
    }
    let index = DeliveryIndex::default();
    index.extend_durable(known.ids.iter().map(String::as_str));
    Ok((index, known.ids.len()))
}

/// Starts a follower for each `--forward` target.
async fn start_forwarders(
    forwards: Vec<(String, ForwardTarget)>,
    outbox: &forward::Outbox,
    metrics: &Arc<Metrics>,
    progress: &Arc<forward::Progress>,
) -> anyhow::Result<Vec<Forwarder>> {
    let mut started = Vec::new();
    for (_, target) in forwards {
        started.push(
            Forwarder::start(target, outbox.clone(), metrics.clone(), progress.clone()).await?,
        );
    }
    Ok(started)
}

/// After the listener stopped: the archive flushed (and uploaded), then
/// what follows it.
async fn close(
    state: &AppState,
    dashboard: Option<dashboard::Running>,
    uploader: Option<tokio::task::JoinHandle<()>>,
    reconcile: Option<tokio::task::JoinHandle<()>>,
) {
    if let Some(r) = reconcile {
        r.abort();
    }
    // Closing the writer completes the open object and ends the hand-off
    // channel, so the uploader finishes once the queue is uploaded.
    state.writer.close().await;
    for f in &state.forward {
        f.close().await;
    }
    if let Some(d) = dashboard {
        d.close().await;
    }
    if let Some(u) = uploader {
        let _ = u.await;
    }
    eprintln!("ghreplay serve: stopped; every acknowledged delivery is on disk");
}

/// What bounds each client, from the flags; the open-file limit is raised
/// first, and the figures logged.
fn client_limits(
    args: &ServeArgs,
    span: &impl Fn(&str, &str) -> anyhow::Result<std::time::Duration>,
) -> anyhow::Result<conn::Limits> {
    let open_files = conn::raise_open_files();
    let limits = conn::Limits {
        header_timeout: span("--header-timeout", &args.header_timeout)?,
        body_timeout: span("--body-timeout", &args.body_timeout)?,
        max_connections: args
            .max_connections
            .unwrap_or_else(|| conn::default_max_connections(open_files)),
        shutdown_grace: span("--shutdown-grace", &args.shutdown_grace)?,
    };
    if limits.max_connections as u64 >= open_files {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_files,
            "--max-connections is not below the open-file limit: accepting can fail with `Too many open files`"
        );
    }
    tracing::info!(
        open_files,
        max_connections = limits.max_connections,
        header_timeout_s = limits.header_timeout.as_secs_f64(),
        body_timeout_s = limits.body_timeout.as_secs_f64(),
        "client bounds"
    );
    Ok(limits)
}

/// The archive, and where records are written durably under the same keys:
/// the archive directory itself, or for an S3 archive the spool.
fn locations(
    global: &GlobalArgs,
    args: &ServeArgs,
) -> anyhow::Result<(ArchiveLocation, PathBuf, String)> {
    if global.archive().starts_with("s3://") {
        let location = ArchiveLocation::parse(global.archive())?;
        let ArchiveLocation::S3 { prefix, .. } = &location else {
            unreachable!("an s3:// archive parses as S3")
        };
        let prefix = prefix.clone();
        Ok((location, args.spool.clone(), prefix))
    } else {
        // Always a directory here (created if need be), never a key prefix.
        let dir = PathBuf::from(global.archive());
        let location = ArchiveLocation::Local {
            dir: dir.clone(),
            prefix: String::new(),
        };
        Ok((location, dir, String::new()))
    }
}

type Uploader = (
    Option<tokio::task::JoinHandle<()>>,
    Option<tokio::sync::mpsc::UnboundedSender<PathBuf>>,
);

/// For an S3 archive: the task that uploads completed objects, and its
/// queue, already holding what an earlier run left in the spool.
async fn start_uploader(
    global: &GlobalArgs,
    location: &ArchiveLocation,
    spool: &std::path::Path,
    forwarded: Arc<forward::Progress>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Uploader> {
    let ArchiveLocation::S3 { .. } = location else {
        return Ok((None, None));
    };
    let store = Store::open(location, cfg_endpoint(global)).await?;
    let s3 = store.s3().cloned().context("an S3 store")?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for leftover in upload::leftovers(spool) {
        let _ = tx.send(leftover);
    }
    Ok((
        Some(tokio::spawn(upload::run(
            s3,
            spool.to_owned(),
            rx,
            forwarded,
            metrics,
        ))),
        Some(tx),
    ))
}

/// The `--forward` targets with their settings, by shown name.
fn forward_targets(
    global: &GlobalArgs,
    args: &ServeArgs,
) -> anyhow::Result<Vec<(String, ForwardTarget)>> {
    let base = TargetOptions {
        exchange: args.forward_exchange.clone(),
        declare: args.forward_declare,
        mandatory: false,
        endpoint_url: cfg_endpoint(global).map(str::to_owned),
        sign_secret: None,
        timeout: crate::deliver::http::DEFAULT_TIMEOUT,
        window: 100,
        retry: RetryPolicy::new(std::time::Duration::from_secs(10)),
        ca_pem: super::read_ca_file(args.forward_ca_file.as_deref())?,
    };
    let mut out: Vec<(String, ForwardTarget)> = Vec::new();
    for spec in &args.forward {
        let t = ForwardTarget::parse(spec, &base, args.forward_include_private)?;
        let shown = t.shown();
        if out.iter().any(|(s, _)| *s == shown) {
            bail!("--forward {shown} is given twice");
        }
        out.push((shown, t));
    }
    Ok(out)
}

fn cfg_endpoint(global: &GlobalArgs) -> Option<&str> {
    global.endpoint_url.as_deref().filter(|u| !u.is_empty())
}

fn auth(args: &ServeArgs) -> anyhow::Result<Auth> {
    let mut secrets: Vec<Secret> = Vec::new();
    if let Some(path) = &args.secret_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --secret-file {}", path.display()))?;
        secrets.extend(signature::parse_secrets(&text));
    }
    if let Ok(text) = std::env::var("GHREPLAY_WEBHOOK_SECRET") {
        secrets.extend(signature::parse_secrets(&text));
    }
    match (secrets.is_empty(), args.insecure_no_verify) {
        (_, true) => {
            tracing::warn!("--insecure-no-verify: deliveries are accepted without checking signatures");
            Ok(Auth::Insecure)
        }
        (true, false) => bail!("no webhook secret: give --secret-file FILE or GHREPLAY_WEBHOOK_SECRET (or, for testing only, --insecure-no-verify)"),
        (false, false) => Ok(Auth::Secrets {
            secrets,
            allow_sha1: args.allow_sha1,
        }),
    }
}

/// Collects the delivery ids of the archive read, and when the newest
/// was received.
#[derive(Default)]
struct Ids {
    ids: Vec<String>,
    newest: Option<chrono::DateTime<Utc>>,
}

impl Ids {
    fn extend(&mut self, other: Ids) {
        self.ids.extend(other.ids);
        self.newest = self.newest.max(other.newest);
    }
}

impl Sink for Ids {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, _: bool) -> Result<(), SinkError> {
        self.ids.extend(e.delivery_id.clone());
        self.newest = self
            .newest
            .max(crate::filter::event_time(e, obj.object_time));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Delivery ids archived within `window` of now.
async fn archived_ids(
    global: &GlobalArgs,
    location: &ArchiveLocation,
    endpoint_url: Option<&str>,
    window: std::time::Duration,
) -> anyhow::Result<Ids> {
    let since = Utc::now() - chrono::Duration::from_std(window)?;
    let cfg = ReadConfig {
        archive: location.clone(),
        endpoint_url: endpoint_url.map(str::to_owned),
        selection: Selection {
            time: TimeRange::new(Some(since), None)?,
            ..Selection::default()
        },
        dedupe: Dedupe::Off,
        fetch_jobs: 0,
        read_memory: crate::source::DEFAULT_READ_MEMORY,
        part_size: crate::source::DEFAULT_PART_SIZE,
        decode: DecodeOptions::default(),
    };
    let store = Store::open(location, endpoint_url).await?;
    let listed = source::list(&store, &cfg.selection.time);
    let finished = pipeline::run(store, listed, &cfg, Ids::default(), ()).await?;
    finished
        .result
        .with_context(|| format!("rebuilding the delivery index from {location}"))?;
    let s = &finished.summary;
    if s.corrupt_objects + s.corrupt_records > 0 {
        // A torn last record after a crash is expected; it was never acknowledged.
        tracing::warn!(
            objects = s.corrupt_objects,
            records = s.corrupt_records,
            "skipped damaged archive records while rebuilding the delivery index"
        );
    }
    if !global.quiet {
        tracing::info!(
            objects = s.objects,
            ids = finished.sink.ids.len(),
            "delivery index rebuilt"
        );
    }
    Ok(finished.sink)
}

/// Ctrl-C or SIGTERM; the dashboard is told too.
async fn shutdown_signal(ui: tokio::sync::watch::Sender<bool>) {
    super::interrupted().await;
    eprintln!("ghreplay serve: shutting down: finishing requests in flight, flushing the archive");
    let _ = ui.send(true);
}
