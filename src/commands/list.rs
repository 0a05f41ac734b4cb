//! `ghreplay list`: which hours and objects hold a time range.

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::Context as _;
use chrono::Utc;

use super::Outcome;
use crate::cli::{GlobalArgs, ListArgs};
use crate::config;
use crate::model::ArchiveLocation;
use crate::output::{self, HourRow, Progress};
use crate::source::{self, Store};

pub async fn run(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<Outcome> {
    let range = config::time_range(&args.range, Utc::now())?;
    let location = ArchiveLocation::parse(global.archive())?;
    let store = Store::open(&location, global.endpoint_url.as_deref()).await?;
    let spinner = Progress::spinner("listing", global.quiet);
    let plan = source::plan(&store, &range).await;
    spinner.finish();
    let plan = plan.with_context(|| format!("listing {location}"))?;

    let mut hours: BTreeMap<String, HourRow> = BTreeMap::new();
    for o in &plan.objects {
        let hour = o.hour.format("%Y-%m-%dT%H:00Z").to_string();
        let row = hours.entry(hour.clone()).or_insert(HourRow {
            hour,
            objects: 0,
            bytes: 0,
        });
        row.objects += 1;
        row.bytes += o.size;
    }
    let hours: Vec<HourRow> = hours.into_values().collect();
    let mut out = output::stdout();
    if args.json {
        let objects: Vec<_> = plan
            .objects
            .iter()
            .map(|o| {
                serde_json::json!({
                    "key": o.key,
                    "bytes": o.size,
                    "hour": o.hour.format("%Y-%m-%dT%H:00:00Z").to_string(),
                    "written_at": o.name.written_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "stream": o.name.stream,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "archive": location.to_string(),
            "since": range.since.map(|t| t.to_rfc3339()),
            "until": range.until.map(|t| t.to_rfc3339()),
            "hours": hours,
            "objects": objects,
            "skipped": plan.skipped,
            "totals": {
                "hours": hours.len(),
                "objects": plan.objects.len(),
                "bytes": plan.objects.iter().map(|o| o.size).sum::<u64>(),
                "list_requests": store.list_requests(),
            },
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        output::list_table(&mut out, &location.to_string(), &plan, &hours, args.objects)?;
    }
    out.flush()?;
    Ok(if plan.objects.is_empty() {
        Outcome::NothingMatched
    } else {
        Outcome::Done
    })
}
