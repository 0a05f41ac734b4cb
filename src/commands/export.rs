//! `ghreplay export`: the archive as hour-partitioned Parquet (see `export`).

use std::sync::Arc;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};

use super::Outcome;
use crate::cli::{ExportArgs, GlobalArgs};
use crate::config;
use crate::export::{self, ddl, Dest, ExportSink, Settings};
use crate::model::{Dedupe, Shard, TimeRange};
use crate::output;

/// Manifests read at once (from S3, one request each).
const MANIFEST_READS: usize = 32;

pub async fn run(global: &GlobalArgs, args: &ExportArgs) -> anyhow::Result<Outcome> {
    let table = ddl::table_name(&args.table)?;
    let mut cfg = config::events_config(global, &args.events)?;
    cfg.selection.shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    if let Some(engine) = args.ddl {
        print!("{}", ddl::ddl(engine, &Dest::location_of(&args.to)?, table));
        return Ok(Outcome::Done);
    }

    // Partitions are object hours: the range rounds out to whole hours, and
    // every event of those hours' objects is read (no time filter). The
    // archive is listed before anything is made at --to.
    let hours_range = cfg.selection.time.whole_hours();
    let (store, mut plan) = super::list(global, &cfg, &hours_range).await?;
    let dest = Dest::open(&args.to, cfg.endpoint_url.as_deref()).await?;
    plan.objects.retain(|o| hours_range.contains(o.hour));
    let settings = Settings::of(&cfg.selection, args.events.select.keep_duplicates);
    let mut hours = export::hours(&plan.objects);
    let planned = hours.len();

    if !args.rebuild {
        let manifests: Vec<_> = futures::stream::iter(hours.iter().map(|h| dest.manifest(h.hour)))
            .buffered(MANIFEST_READS)
            .try_collect()
            .await
            .with_context(|| format!("reading the manifests under {}", dest.location()))?;
        hours = hours
            .into_iter()
            .zip(manifests)
            .filter(|(h, m)| !m.as_ref().is_some_and(|m| m.is_current(h, &settings)))
            .map(|(h, _)| h)
            .collect();
    }
    let up_to_date = (planned - hours.len()) as u64;
    let building: std::collections::HashSet<_> = hours.iter().map(|h| h.hour).collect();
    plan.objects.retain(|o| building.contains(&o.hour));

    cfg.selection.time = TimeRange::default();
    cfg.dedupe = Dedupe::Off; // per partition, in the sink
    let location = dest.location();
    let sink = ExportSink::new(Arc::new(dest), settings, hours);
    let (summary, mut sink, result) =
        super::read_listed(global, &cfg, store, plan.into_listed(), sink).await?;
    sink.counts.up_to_date = up_to_date;
    if !global.quiet {
        if summary.objects > 0 {
            output::summary("export", &summary);
        }
        output::exported(&location, &sink.counts);
    }
    result?;
    Ok(if planned == 0 {
        Outcome::NothingMatched
    } else if summary.input_skipped() && !args.events.read.allow_skipped {
        Outcome::InputSkipped
    } else {
        Outcome::Done
    })
}
