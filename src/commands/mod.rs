//! One file per subcommand: flags in, stage calls, summary out.

mod audit;
mod cat;
mod dashboard;
mod export;
mod list;
#[cfg(feature = "duckdb")]
mod load;
#[cfg(feature = "duckdb")]
mod query;
mod republish;
mod serve;
mod snowflake;
#[cfg(feature = "duckdb")]
mod ui;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::ReadConfig;
use crate::output::Progress;
use crate::pipeline::{self, Summary};
use crate::sink::{Sink, SinkError};
use crate::source::{self, Store};

/// How a command ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Did what was asked.
    Done,
    /// Ran fine, but nothing matched.
    NothingMatched,
    /// Finished, but input was skipped (corrupt, or outside Firehose naming).
    InputSkipped,
    /// Stopped part way; a checkpoint (if any) resumes it.
    Stopped,
    /// `audit`: deliveries missing from the archive (not asked for again).
    Missing,
    /// `audit`: deliveries lost after they were acknowledged.
    Lost,
}

impl Outcome {
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::NothingMatched => 1,
            Outcome::InputSkipped => 3,
            Outcome::Stopped => 4,
            Outcome::Missing => 5,
            Outcome::Lost => 6,
        }
    }
}

impl Outcome {
    /// How a command that read events ended: input passed over (corrupt,
    /// outside Firehose naming, or `target_skipped` by the destination)
    /// unless `--allow-skipped`, else whether anything was kept.
    #[must_use]
    pub fn of_read(summary: &Summary, target_skipped: bool, allow_skipped: bool) -> Self {
        if (summary.input_skipped() || target_skipped) && !allow_skipped {
            Outcome::InputSkipped
        } else if summary.events.kept == 0 {
            Outcome::NothingMatched
        } else {
            Outcome::Done
        }
    }
}

/// `--ca-file`'s certificates (PEM), read once at start.
fn read_ca_file(path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    path.map(|p| {
        std::fs::read_to_string(p).with_context(|| format!("reading --ca-file {}", p.display()))
    })
    .transpose()
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The exit status for errors (bad flags, unreachable archive, I/O).
pub const EXIT_ERROR: u8 = 2;

/// Lists the configured range and reads it into `sink` as the listing
/// streams it, with a spinner until the listing first answers and a
/// progress bar while reading (on a terminal).
async fn read_into<S: Sink + 'static>(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    sink: S,
) -> anyhow::Result<(Summary, S, Result<(), SinkError>)> {
    let (store, listed) = start_listing(global, cfg, &cfg.selection.time).await?;
    read_listed(global, cfg, store, listed, sink).await
}

/// Opens the archive and starts listing `range`, keeping the configured
/// shard's hours. Returns once the listing has first answered, so that an
/// archive that cannot be listed at all (no bucket, no network) is an
/// error before anything is read; a listing that fails later stops the
/// read there.
async fn start_listing(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    range: &crate::model::TimeRange,
) -> anyhow::Result<(Store, source::Listed)> {
    let store = Store::open(&cfg.archive, cfg.endpoint_url.as_deref()).await?;
    let spinner = Progress::spinner("listing", global.quiet);
    let mut listed = source::list(&store, range);
    let first = listed.next().await;
    spinner.finish();
    let first = first
        .transpose()
        .with_context(|| format!("listing {}", cfg.archive))?;
    let shard = cfg.selection.shard;
    let listed = futures::stream::iter(first.map(Ok))
        .chain(listed)
        .map_ok(move |mut piece| {
            if let Some(shard) = shard {
                piece.objects.retain(|o| shard.owns(o.hour));
            }
            piece
        })
        .boxed();
    Ok((store, listed))
}

/// Lists `range` whole (the configured shard's hours), for a command that
/// plans from the whole listing before reading (`export`).
async fn list(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    range: &crate::model::TimeRange,
) -> anyhow::Result<(Store, source::Plan)> {
    let (store, listed) = start_listing(global, cfg, range).await?;
    let plan = source::collect(listed)
        .await
        .with_context(|| format!("listing {}", cfg.archive))?;
    Ok((store, plan))
}

/// Reads what `listed` streams into `sink`, with a progress bar (on a
/// terminal) whose total grows as the listing does.
async fn read_listed<S: Sink + 'static>(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    store: Store,
    listed: source::Listed,
    sink: S,
) -> anyhow::Result<(Summary, S, Result<(), SinkError>)> {
    let progress = Progress::bytes(global.quiet);
    let f = pipeline::run(store, listed, cfg, sink, progress).await?;
    Ok((f.summary, f.sink, f.result))
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::List(args) => list::run(&cli.global, &args).await,
        Command::Cat(args) => cat::run(&cli.global, &args).await,
        #[cfg(feature = "duckdb")]
        Command::Load(args) => load::run(&cli.global, &args).await,
        #[cfg(feature = "duckdb")]
        Command::Query(args) => query::run(&cli.global, &args).await,
        Command::Republish(args) => republish::run(&cli.global, &args).await,
        Command::Serve(args) => serve::run(&cli.global, &args).await,
        Command::Export(args) => export::run(&cli.global, &args).await,
        Command::Snowflake(cmd) => snowflake::run(&cli.global, &cmd).await,
        Command::Audit(args) => audit::run(&cli.global, &args).await,
        #[cfg(feature = "duckdb")]
        Command::Ui(args) => ui::run(&cli.global, &args).await,
    }
}
