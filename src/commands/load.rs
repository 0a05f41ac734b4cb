//! `ghreplay load`: archived events into a DuckDB database file.

use super::Outcome;
use crate::cli::{GlobalArgs, LoadArgs};
use crate::config;
use crate::db::Database;
use crate::output;
use crate::sink::database::DatabaseSink;

pub async fn run(global: &GlobalArgs, args: &LoadArgs) -> anyhow::Result<Outcome> {
    let cfg = config::events_config(global, &args.events)?;
    let database = Database::File(args.db.clone());
    let sink = DatabaseSink::new(database.open_for_load(args.memory_limit.as_deref())?)?
        .commit_every(args.commit_every);
    let (summary, sink, result) = super::read_into(global, &cfg, sink).await?;
    if !global.quiet {
        output::summary("load", &summary);
        output::loaded(&args.db.display().to_string(), sink.counts);
    }
    drop(sink); // closes the database, which checkpoints it
    result?;
    Ok(Outcome::of_read(
        &summary,
        false,
        args.events.read.allow_skipped,
    ))
}
