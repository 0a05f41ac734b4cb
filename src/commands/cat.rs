//! `ghreplay cat`: archived events as NDJSON on stdout.

use super::Outcome;
use crate::cli::{CatArgs, GlobalArgs};
use crate::config;
use crate::output;
use crate::sink::ndjson::NdjsonSink;

pub async fn run(global: &GlobalArgs, args: &CatArgs) -> anyhow::Result<Outcome> {
    let cfg = config::events_config(global, &args.events)?;
    let sink = NdjsonSink::new(output::stdout());
    let (summary, _, result) = super::read_into(global, &cfg, sink).await?;
    if !global.quiet {
        output::summary("cat", &summary);
    }
    result?;
    Ok(Outcome::of_read(
        &summary,
        false,
        args.events.read.allow_skipped,
    ))
}
