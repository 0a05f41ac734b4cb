//! `ghreplay snowflake setup|refresh`: SQL on stdout, nothing connects.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{bail, Context as _};
use chrono::Utc;

use super::Outcome;
use crate::cli::{GlobalArgs, SnowflakeCommand, SnowflakeObjects};
use crate::config;
use crate::decode::{decode_object, DecodeOptions};
use crate::model::ArchiveLocation;
use crate::model::Shape;
use crate::model::TimeRange;
use crate::output;
use crate::snowflake::{self, Objects, StagedObject};
use crate::source::{self, Store};

pub async fn run(global: &GlobalArgs, cmd: &SnowflakeCommand) -> anyhow::Result<Outcome> {
    let sql = match cmd {
        SnowflakeCommand::Setup {
            objects,
            stage_url,
            aws_role,
            shape,
            recreate_pipe,
        } => snowflake::setup(&snowflake::Setup {
            objects: &names(objects)?,
            stage_url,
            aws_role,
            shape: parse_shape(shape).unwrap_or(Shape::Raw),
            recreate_pipe: *recreate_pipe,
        })?,
        SnowflakeCommand::Refresh {
            objects,
            since,
            until,
            stage_url,
            shape,
        } => {
            let objects = names(objects)?;
            let now = Utc::now();
            let since = config::parse_time(since, now)?;
            let until = until
                .as_deref()
                .map(|u| config::parse_time(u, now))
                .transpose()?;
            let range = TimeRange::new(Some(since), until)?;
            let location = ArchiveLocation::parse(global.archive())?;
            let store = Store::open(&location, global.endpoint_url.as_deref()).await?;
            let plan = source::plan(&store, &range)
                .await
                .with_context(|| format!("listing {location}"))?;
            if plan.objects.is_empty() {
                eprintln!("ghreplay snowflake refresh: no objects in {location} for that range");
                return Ok(Outcome::NothingMatched);
            }
            let root = stage_prefix(&location, stage_url.as_deref())?;
            let (shape, detected_from) = if let Some(shape) = parse_shape(shape) {
                (shape, None)
            } else {
                let first = &plan.objects[0];
                let bytes = store.get(&first.key).await?;
                let obj = decode_object(first.key.clone(), None, bytes, &DecodeOptions::default());
                let Some(e) = obj.events.first() else {
                    bail!(
                        "cannot tell the records' shape from {}; pass --shape",
                        first.key
                    );
                };
                (e.shape, Some(first.key.clone()))
            };
            let staged = plan
                .objects
                .iter()
                .map(|o| {
                    let path = o.key.strip_prefix(&root).with_context(|| {
                        format!("{} is not under the stage's prefix {root:?}", o.key)
                    })?;
                    Ok(StagedObject {
                        path: path.to_owned(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut sql = String::new();
            if let Some(key) = detected_from {
                let _ = writeln!(
                    sql,
                    "-- shape read from {key}; for an archive of mixed shapes pass --shape"
                );
            }
            sql + &snowflake::refresh(&objects, shape, &staged)
        }
    };
    let mut out = output::stdout();
    out.write_all(sql.as_bytes())?;
    out.flush()?;
    Ok(Outcome::Done)
}

/// `SnowAlert`'s names for the connection, with those given instead.
fn names(a: &SnowflakeObjects) -> Result<Objects, snowflake::SnowflakeError> {
    Objects::new(&a.name)?.with(a.stage.as_deref(), a.table.as_deref(), a.pipe.as_deref())
}

/// `raw`, `mozilla` or `ghreplay`; `None` for `auto`.
fn parse_shape(s: &str) -> Option<Shape> {
    match s {
        "raw" => Some(Shape::Raw),
        "mozilla" => Some(Shape::Mozilla),
        "ghreplay" => Some(Shape::Ghreplay),
        _ => None,
    }
}

/// The key prefix the stage's URL stands for: `--stage-url`'s, or the
/// archive's own.
fn stage_prefix(archive: &ArchiveLocation, stage_url: Option<&str>) -> anyhow::Result<String> {
    match stage_url {
        None => Ok(match archive {
            ArchiveLocation::Local { prefix, .. } | ArchiveLocation::S3 { prefix, .. } => {
                prefix.clone()
            }
        }),
        Some(url) => match (ArchiveLocation::parse(url)?, archive) {
            (ArchiveLocation::S3 { bucket, prefix }, ArchiveLocation::S3 { bucket: b, .. })
                if bucket == *b =>
            {
                Ok(prefix)
            }
            (ArchiveLocation::S3 { prefix, .. }, ArchiveLocation::Local { .. }) => Ok(prefix),
            _ => bail!("--stage-url {url}: must be s3:// in the archive's bucket"),
        },
    }
}
