//! `ghreplay republish`: send a range of the archive again, to Pulse, SNS or
//! any webhook receiver over HTTP.
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
use crate::config::{self, ConfigError, ReadConfig};
use crate::deliver::target::TargetOptions;
use crate::deliver::{self, DeliveryCounts, Ledger, Refused, RetryPolicy, Target};
use crate::model::Dedupe;
use crate::output;
use crate::pipeline::Summary;
use crate::signature::{self, Secret};
use crate::sink::count::CountSink;
use crate::sink::ndjson::NdjsonSink;
use crate::sink::SinkError;

pub async fn run(global: &GlobalArgs, args: &RepublishArgs) -> anyhow::Result<Outcome> {
    let mut cfg = config::read_config(
        global,
        &args.range,
        &args.select,
        !args.include_private,
        &args.read,
    )?;
    cfg.selection.shard = args
        .shard
        .as_deref()
        .map(crate::model::Shard::parse)
        .transpose()?;
    let target = Target::parse(&args.to)?;
    let span = |flag: &str, v: &str| {
        config::parse_span(v)
            .and_then(|d| d.to_std().ok())
            .with_context(|| format!("{flag} {v:?}: expected a span (30s, 2m)"))
    };
    let retry_for = config::parse_span(&args.retry_for)
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| ConfigError::RetryFor(args.retry_for.clone()))?;
    let timeout = span("--timeout", &args.timeout)?;
    if let Some(rate) = args.rate.filter(|r| r.is_nan() || *r <= 0.0) {
        return Err(ConfigError::Rate(rate).into());
    }
    let sign_secret = args
        .sign_secret_file
        .as_deref()
        .map(read_sign_secret)
        .transpose()?;
    if args.dry_run {
        return dry_run(global, &cfg, &target, args.read.allow_skipped).await;
    }
    if let Target::Ndjson(path) = &target {
        return to_ndjson(global, args, &cfg, &target.display(), path.as_deref()).await;
    }
    let window = args
        .confirm_window
        .unwrap_or_else(|| target.default_window())
        .max(1);
    let Some(checkpoint) = open_checkpoint(args, &mut cfg, &target, window)? else {
        return Ok(Outcome::Done);
    };

    let ledger = Ledger::new(checkpoint.resumed, args.rate, window, stop_on_ctrl_c());
    let opts = TargetOptions {
        exchange: args.exchange.clone(),
        declare: args.declare,
        mandatory: args.mandatory,
        endpoint_url: cfg.endpoint_url.clone(),
        sign_secret,
        timeout,
        window,
        retry: RetryPolicy::new(retry_for),
        ca_pem: super::read_ca_file(args.ca_file.as_deref())?,
    };
    let mut sink = deliver::connect(&target, &opts, ledger).await?;
    // Created only once the target has answered the healthcheck, so a
    // target that cannot be used leaves no checkpoint behind.
    if let (Some(path), false) = (&args.checkpoint, args.resume) {
        sink.attach(CheckpointFile::create(
            path,
            checkpoint.identity.clone(),
            checkpoint.bound,
        )?);
    }
    let (summary, sink, result) = super::read_into(global, &cfg, sink).await?;
    if let Some(path) = &args.refused_list {
        write_refused(path, sink.refused())?;
    }
    finish(
        global,
        args,
        &sink.describe(),
        &summary,
        sink.counts(),
        sink.refused(),
        result,
    )
}

/// The first line of `--sign-secret-file`.
fn read_sign_secret(path: &std::path::Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --sign-secret-file {}", path.display()))?;
    signature::parse_secrets(&text)
        .into_iter()
        .next()
        .with_context(|| format!("--sign-secret-file {} holds no secret", path.display()))
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
        anyhow::bail!("--checkpoint applies to network targets (amqp, sns, http), not ndjson");
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
    window: usize,
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
    let bound = crate::deliver::ledger::resend_bound(window);
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
        shard: s.shard.map(|x| x.to_string()),
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

fn write_refused(path: &std::path::Path, refused: &[Refused]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for r in refused {
        serde_json::to_writer(&mut f, r)?;
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
    refused: &[Refused],
    result: Result<(), SinkError>,
) -> anyhow::Result<Outcome> {
    if !global.quiet {
        output::summary("republish", summary);
        output::delivery(target, counts, refused, args.include_private);
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
        !refused.is_empty(),
        args.read.allow_skipped,
    ))
}
