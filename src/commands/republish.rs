//! `ghreplay republish`: send a range of the archive again, to Pulse or SNS.
//!
//! Order of work: flags, checkpoint (refusing to clobber or to resume another
//! run), target healthcheck, and only then listing and reading.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

use super::Outcome;
use crate::checkpoint::{CheckpointError, CheckpointFile, RunIdentity};
use crate::cli::{GlobalArgs, RepublishArgs};
use crate::config::{self, ConfigError, ReadConfig, Target};
use crate::filter::Dedupe;
use crate::output;
use crate::pipeline::Summary;
use crate::sink::count::CountSink;
use crate::sink::delivery::{Delivery, DeliveryCounts};
use crate::sink::ndjson::NdjsonSink;
use crate::sink::pulse::{PulseConfig, PulseSink};
use crate::sink::sns::{Oversize, SnsConfig, SnsSink};
use crate::sink::SinkError;

pub async fn run(global: &GlobalArgs, args: &RepublishArgs) -> anyhow::Result<Outcome> {
    let mut cfg = config::read_config(
        global,
        &args.range,
        &args.select,
        !args.include_private,
        &args.read,
    )?;
    let target = Target::parse(&args.to)?;
    let retry_for = config::parse_span(&args.retry_for)
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| ConfigError::RetryFor(args.retry_for.clone()))?;
    if let Some(rate) = args.rate.filter(|r| r.is_nan() || *r <= 0.0) {
        return Err(ConfigError::Rate(rate).into());
    }
    if args.dry_run {
        return dry_run(global, &cfg, &target, args.read.allow_skipped).await;
    }
    let Some(checkpoint) = open_checkpoint(args, &mut cfg, &target)? else {
        return Ok(Outcome::Done);
    };

    let delivery = Delivery::new(
        checkpoint.resumed,
        args.rate,
        args.confirm_window,
        stop_on_ctrl_c(),
    );
    // Created only once the target has answered the healthcheck, so a
    // target that cannot be used leaves no checkpoint behind.
    let new_checkpoint = |d: &mut Delivery| -> Result<(), CheckpointError> {
        if let (Some(path), false) = (&args.checkpoint, args.resume) {
            d.attach(CheckpointFile::create(
                path,
                checkpoint.identity.clone(),
                checkpoint.bound,
            )?);
        }
        Ok(())
    };

    let shown = target.display();
    match target {
        Target::Amqp(url) => {
            let mut sink = PulseSink::connect(
                PulseConfig {
                    url,
                    exchange: args.exchange.clone(),
                    declare: args.declare,
                    mandatory: args.mandatory,
                    window: args.confirm_window.max(1),
                    retry_for,
                },
                delivery,
            )
            .await?;
            new_checkpoint(&mut sink.delivery)?;
            let (summary, sink, result) = super::read_into(global, &cfg, sink).await?;
            finish(
                global,
                args,
                &shown,
                &summary,
                &sink.delivery.counts,
                &[],
                result,
            )
        }
        Target::Sns(topic_arn) => {
            let mut sink = SnsSink::connect(
                SnsConfig {
                    topic_arn,
                    endpoint_url: cfg.endpoint_url.clone(),
                    retry_for,
                },
                delivery,
            )
            .await?;
            new_checkpoint(&mut sink.delivery)?;
            let (summary, sink, result) = super::read_into(global, &cfg, sink).await?;
            if let Some(path) = &args.oversize_list {
                write_oversize(path, &sink.oversize)?;
            }
            finish(
                global,
                args,
                &shown,
                &summary,
                &sink.delivery.counts,
                &sink.oversize,
                result,
            )
        }
        Target::Ndjson(path) => to_ndjson(global, args, &cfg, &shown, path.as_deref()).await,
    }
}

/// A flag that Ctrl-C raises; sinks stop at the next event, settled.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    stop
}

/// `--to ndjson[:FILE]`: what would be sent, as `cat` prints it.
async fn to_ndjson(
    global: &GlobalArgs,
    args: &RepublishArgs,
    cfg: &ReadConfig,
    shown: &str,
    path: Option<&std::path::Path>,
) -> anyhow::Result<Outcome> {
    if args.checkpoint.is_some() {
        anyhow::bail!("--checkpoint applies to amqp and sns targets, not ndjson");
    }
    let out: Box<dyn std::io::Write + Send> = match path {
        None => Box::new(output::stdout()),
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
    };
    let (summary, _, result) = super::read_into(global, cfg, NdjsonSink::new(out)).await?;
    let counts = DeliveryCounts {
        sent: summary.events.kept,
        confirmed: summary.events.kept,
        ..DeliveryCounts::default()
    };
    finish(global, args, shown, &summary, &counts, &[], result)
}

/// This run's checkpoint state, before the target is contacted.
struct PreparedCheckpoint {
    resumed: Option<CheckpointFile>,
    identity: RunIdentity,
    bound: u64,
}

/// Refuses to clobber a checkpoint or to resume another run's; a resumed
/// run takes its range from the checkpoint unless given again (a relative
/// `--since` would otherwise mean another range now). `None`: the
/// checkpoint's run is already complete.
fn open_checkpoint(
    args: &RepublishArgs,
    cfg: &mut ReadConfig,
    target: &Target,
) -> Result<Option<PreparedCheckpoint>, CheckpointError> {
    match (&args.checkpoint, args.resume) {
        (Some(path), true) => {
            let saved = CheckpointFile::load(path)?;
            if args.range.since.is_none() && args.range.until.is_none() {
                cfg.selection.time.since = saved.run.since;
                cfg.selection.time.until = saved.run.until;
            }
        }
        (Some(path), false) if path.exists() => return Err(CheckpointError::Exists(path.clone())),
        _ => {}
    }
    let identity = identity(cfg, target);
    let bound = 2 * args.confirm_window as u64;
    let resumed = match (&args.checkpoint, args.resume) {
        (Some(path), true) => Some(CheckpointFile::resume(path, &identity)?),
        _ => None,
    };
    if let Some(cp) = resumed.as_ref().filter(|c| c.state.complete) {
        eprintln!(
            "ghreplay republish: {} is complete ({} events confirmed); nothing to resume",
            cp.path().display(),
            cp.state.confirmed
        );
        return Ok(None);
    }
    Ok(Some(PreparedCheckpoint {
        resumed,
        identity,
        bound,
    }))
}

/// What a checkpoint must match to be resumed by this run.
fn identity(cfg: &ReadConfig, target: &Target) -> RunIdentity {
    let s = &cfg.selection;
    RunIdentity {
        archive: cfg.archive.to_string(),
        target: target.display(),
        since: s.time.since,
        until: s.time.until,
        events: s.events.clone(),
        actions: s.actions.clone(),
        repos: s.repos.clone(),
        public_only: s.public_only,
        dedupe: match cfg.dedupe {
            Dedupe::Off => "off".into(),
            Dedupe::All => "all".into(),
            Dedupe::Window(w) => format!("{}h", w.num_hours()),
        },
    }
}

async fn dry_run(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    target: &Target,
    allow_skipped: bool,
) -> anyhow::Result<Outcome> {
    let (summary, counts, result) = super::read_into(global, cfg, CountSink::default()).await?;
    result?;
    let mut out = output::stdout();
    output::dry_run(&mut out, &target.display(), &counts)?;
    out.flush()?;
    if !global.quiet {
        output::summary("republish --dry-run", &summary);
    }
    Ok(Outcome::of_read(&summary, false, allow_skipped))
}

fn write_oversize(path: &std::path::Path, oversize: &[Oversize]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for o in oversize {
        serde_json::to_writer(&mut f, o)?;
        writeln!(f)?;
    }
    Ok(())
}

fn finish(
    global: &GlobalArgs,
    args: &RepublishArgs,
    target: &str,
    summary: &Summary,
    counts: &DeliveryCounts,
    oversize: &[Oversize],
    result: Result<(), SinkError>,
) -> anyhow::Result<Outcome> {
    if !global.quiet {
        output::summary("republish", summary);
        output::delivery(target, counts, oversize, args.include_private);
    }
    match result {
        Ok(()) => {}
        Err(e @ (SinkError::Stopped { .. } | SinkError::Interrupted)) => {
            eprintln!("ghreplay republish: stopped: {e}");
            return Ok(Outcome::Stopped);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Outcome::of_read(
        summary,
        !oversize.is_empty(),
        args.read.allow_skipped,
    ))
}
