//! `ghreplay cat`: archived events as NDJSON on stdout.

use super::Outcome;
use crate::cli::{CatArgs, GlobalArgs};
use crate::config;
use crate::output;
use crate::sink::ndjson::NdjsonSink;

pub async fn run(global: &GlobalArgs, args: &CatArgs) -> anyhow::Result<Outcome> {
    let cfg = config::read_config(
        global,
        &args.range,
        &args.select,
        args.public_only,
        &args.read,
    )?;
    let sink = NdjsonSink::new(output::stdout());
    let (summary, _, result) = super::read_into(global, &cfg, sink).await?;
    if !global.quiet {
        output::summary("cat", &summary);
    }
    result?;
    Ok(Outcome::of_read(&summary, false, args.read.allow_skipped))
}
