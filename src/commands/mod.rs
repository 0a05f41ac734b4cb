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

/// Lists the configured range and reads it into `sink`, with a spinner
/// while listing and a progress bar while reading (on a terminal).
async fn read_into<S: Sink + 'static>(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    sink: S,
) -> anyhow::Result<(Summary, S, Result<(), SinkError>)> {
    let (store, plan) = list(global, cfg, &cfg.selection.time).await?;
    read_plan(global, cfg, store, plan, sink).await
}

/// Lists the archive's objects for `range`, and keeps the configured
/// shard's hours, with a spinner while listing.
async fn list(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    range: &crate::model::TimeRange,
) -> anyhow::Result<(Store, source::Plan)> {
    let store = Store::open(&cfg.archive, cfg.endpoint_url.as_deref()).await?;
    let spinner = Progress::spinner("listing", global.quiet);
    let plan = source::plan(&store, range).await;
    spinner.finish();
    let mut plan = plan.with_context(|| format!("listing {}", cfg.archive))?;
    if let Some(shard) = cfg.selection.shard {
        plan.objects.retain(|o| shard.owns(o.hour));
    }
    Ok((store, plan))
}

/// Reads a listed plan into `sink`, with a progress bar (on a terminal).
async fn read_plan<S: Sink + 'static>(
    global: &GlobalArgs,
    cfg: &ReadConfig,
    store: Store,
    plan: source::Plan,
    sink: S,
) -> anyhow::Result<(Summary, S, Result<(), SinkError>)> {
    let total = plan.objects.iter().map(|o| o.size).sum();
    let progress = Progress::bytes(total, global.quiet);
    let f = pipeline::run(store, plan, cfg, sink, progress).await?;
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
        Command::Ui(args) => ui::run(&args).await,
    }
}
