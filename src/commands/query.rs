//! `ghreplay query`: a canned query, a file or SQL, against a database file
//! or an archive read into memory.

use anyhow::bail;
use chrono::Utc;

use super::Outcome;
use crate::cli::{GlobalArgs, QueryArgs};
use crate::config;
use crate::db::{self, catalog, render, Database};
use crate::output;
use crate::sink::database::DatabaseSink;

pub async fn run(global: &GlobalArgs, args: &QueryArgs) -> anyhow::Result<Outcome> {
    if args.list {
        output::canned_list(&mut output::stdout(), catalog::CANNED)?;
        return Ok(Outcome::Done);
    }
    let text = catalog::resolve(args.query.as_deref().unwrap_or_default())?;
    let range = config::time_range(&args.events.range, Utc::now())?;

    let (conn, skipped) = match (&args.db, &global.archive) {
        (None, Some(_)) => {
            let cfg = config::events_config(global, &args.events)?;
            let sink = DatabaseSink::new(Database::Memory.open_for_load(None)?)?;
            let (summary, sink, result) = super::read_into(global, &cfg, sink).await?;
            if !global.quiet {
                output::summary("query", &summary);
            }
            result?;
            let skipped = summary.input_skipped() && !args.events.read.allow_skipped;
            (sink.into_connection(), skipped)
        }
        (db, _) => {
            let s = &args.events.select;
            if args.events.public_only
                || !(s.events.is_empty() && s.actions.is_empty() && s.repos.is_empty())
            {
                bail!("--event, --action, --repo and --public-only choose what is read from an archive (--archive); against a database, say it in SQL (the columns event, action, repository, public)");
            }
            let path = db.clone().unwrap_or_else(|| db::DEFAULT_FILE.into());
            (Database::File(path).open_for_query()?, false)
        }
    };
    db::set_range(&conn, &range)?;
    let result = db::run(&conn, text.sql())?;
    render::write(&result, args.format, &mut output::stdout())?;
    Ok(if skipped {
        Outcome::InputSkipped
    } else if result.rows() == 0 {
        Outcome::NothingMatched
    } else {
        Outcome::Done
    })
}
