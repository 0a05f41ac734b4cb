//! The SQL that Snowflake needs to load these archives (formats.md section 6):
//! the stage, file format, landing table and pipe that `SnowAlert`'s GitHub
//! webhooks connector creates (same names, same 62 columns, so existing
//! deployments keep working), and the statements that backfill a range.
//! Pure text generation: nothing here connects to Snowflake.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use crate::model::Shape;

/// The landing table: load time, the raw document, its hash, then one column
/// per top-level key of the GitHub payload (`SnowAlert`'s
/// `github_webhooks_s3` connector).
pub const LANDING_COLUMNS: [(&str, &str); 62] = [
    ("insert_time", "TIMESTAMP_LTZ(9)"),
    ("raw", "VARIANT"),
    ("hash_raw", "NUMBER"),
    ("ref", "VARCHAR(256)"),
    ("before", "VARCHAR(256)"),
    ("after", "VARCHAR(256)"),
    ("created", "BOOLEAN"),
    ("deleted", "BOOLEAN"),
    ("forced", "BOOLEAN"),
    ("base_ref", "VARCHAR(256)"),
    ("compare", "VARCHAR(256)"),
    ("commits", "VARIANT"),
    ("head_commit", "VARIANT"),
    ("repository", "VARIANT"),
    ("pusher", "VARIANT"),
    ("organization", "VARIANT"),
    ("sender", "VARIANT"),
    ("action", "VARCHAR(256)"),
    ("check_run", "VARIANT"),
    ("check_suite", "VARIANT"),
    ("number", "NUMBER(38,0)"),
    ("pull_request", "VARIANT"),
    ("label", "VARIANT"),
    ("requested_team", "VARIANT"),
    ("ref_type", "VARCHAR(256)"),
    ("master_branch", "VARCHAR(256)"),
    ("description", "VARCHAR(256)"),
    ("pusher_type", "VARCHAR(256)"),
    ("review", "VARIANT"),
    ("changes", "VARIANT"),
    ("comment", "VARIANT"),
    ("issue", "VARIANT"),
    ("id", "NUMBER(38,0)"),
    ("sha", "VARCHAR(256)"),
    ("name", "VARCHAR(256)"),
    ("target_url", "VARCHAR(8192)"),
    ("context", "VARCHAR(256)"),
    ("state", "VARCHAR(256)"),
    ("commit", "VARIANT"),
    ("branches", "VARIANT"),
    ("created_at", "TIMESTAMP_LTZ(9)"),
    ("updated_at", "TIMESTAMP_LTZ(9)"),
    ("assignee", "VARIANT"),
    ("release", "VARIANT"),
    ("membership", "VARIANT"),
    ("alert", "VARIANT"),
    ("scope", "VARCHAR(256)"),
    ("member", "VARIANT"),
    ("requested_reviewer", "VARIANT"),
    ("team", "VARIANT"),
    ("starred_at", "TIMESTAMP_LTZ(9)"),
    ("pages", "VARIANT"),
    ("project_card", "VARIANT"),
    ("build", "VARIANT"),
    ("deployment_status", "VARIANT"),
    ("deployment", "VARIANT"),
    ("forkee", "VARIANT"),
    ("milestone", "VARIANT"),
    ("key", "VARIANT"),
    ("project_column", "VARIANT"),
    ("status", "VARCHAR(256)"),
    ("avatar_url", "VARCHAR(256)"),
];

/// How long `ALTER PIPE ... REFRESH` looks back (Snowflake documents 7 days).
pub const REFRESH_WINDOW: Duration = Duration::days(7);
/// Names in one `COPY INTO ... FILES = (...)` (Snowflake's limit).
const FILES_PER_COPY: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SnowflakeError {
    #[error("--name {0:?}: use letters, digits and _ (it becomes part of object names)")]
    Name(String),
    #[error("{0:?}: a stage URL is written s3://bucket/prefix")]
    StageUrl(String),
}

/// The object names of one connection, as `SnowAlert` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objects {
    pub stage: String,
    pub table: String,
    pub pipe: String,
}

impl Objects {
    pub fn new(name: &str) -> Result<Self, SnowflakeError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SnowflakeError::Name(name.to_owned()));
        }
        let base = format!("GITHUB_WEBHOOKS_S3_{}_EVENTS", name.to_ascii_uppercase());
        Ok(Self {
            stage: format!("data.{base}_STAGE"),
            table: format!("data.{base}_CONNECTION"),
            pipe: format!("data.{base}_PIPE"),
        })
    }
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The `SELECT` list of the load: what the pipe selects from a raw payload,
/// or, with `body`, from the payload inside an envelope (`$1:body`).
fn select_list(document: &str) -> String {
    let mut cols = vec![
        "current_timestamp".to_owned(),
        document.to_owned(),
        format!("HASH({document})"),
    ];
    cols.extend(
        LANDING_COLUMNS[3..]
            .iter()
            .map(|(c, _)| format!("{document}:{c}")),
    );
    cols.join(", ")
}

/// The document a shape's payload is in.
fn document(shape: Shape) -> &'static str {
    match shape {
        Shape::Raw => "$1",
        Shape::Mozilla | Shape::Ghreplay => "$1:body",
    }
}

/// `snowflake setup`: stage (with its file format), landing table and pipe.
pub fn setup(name: &str, stage_url: &str, aws_role: &str) -> Result<String, SnowflakeError> {
    let o = Objects::new(name)?;
    if !stage_url.starts_with("s3://") || stage_url.len() <= "s3://".len() {
        return Err(SnowflakeError::StageUrl(stage_url.to_owned()));
    }
    let mut sql = format!(
        "-- ghreplay snowflake setup: the objects of SnowAlert's GitHub webhooks (S3) connector\n\
         -- for connection {name}. IF NOT EXISTS throughout: an existing deployment is left as it is\n\
         -- (replacing a pipe would reset its load history).\n\n"
    );
    let _ = writeln!(
        sql,
        "CREATE STAGE IF NOT EXISTS {}\n  URL = {}\n  CREDENTIALS = (AWS_ROLE = {})\n  \
         FILE_FORMAT = (TYPE = 'JSON', COMPRESSION = 'AUTO', ENABLE_OCTAL = FALSE, ALLOW_DUPLICATE = FALSE,\n                 \
         STRIP_OUTER_ARRAY = TRUE, STRIP_NULL_VALUES = FALSE, IGNORE_UTF8_ERRORS = FALSE,\n                 \
         SKIP_BYTE_ORDER_MARK = TRUE);\n",
        o.stage,
        literal(stage_url),
        literal(aws_role)
    );
    let cols: Vec<String> = LANDING_COLUMNS
        .iter()
        .map(|(c, t)| format!("  {c} {t}"))
        .collect();
    let _ = writeln!(
        sql,
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n",
        o.table,
        cols.join(",\n")
    );
    let _ = writeln!(
        sql,
        "-- Expects raw payloads (cztack's shape); see `ghreplay snowflake refresh` for the others.\n\
         CREATE PIPE IF NOT EXISTS {} AUTO_INGEST = TRUE AS\n  COPY INTO {}\n  FROM (SELECT {} FROM @{}/);",
        o.pipe,
        o.table,
        select_list(document(Shape::Raw)),
        o.stage
    );
    Ok(sql)
}

/// An archived object, as `refresh` needs it.
#[derive(Debug, Clone)]
pub struct StagedObject {
    /// The key relative to the stage's URL.
    pub path: String,
    /// The hour prefix relative to the stage's URL (`2026/01/15/10/`).
    pub hour_prefix: String,
    pub hour: DateTime<Utc>,
}

/// `snowflake refresh`: statements that load exactly the objects given
/// (those `list` finds for the range). For raw payloads, hours still inside
/// the pipe's refresh window get `ALTER PIPE ... REFRESH` per hour prefix;
/// older hours, and every object of the enveloped shapes (whose payload is
/// in `$1:body`, which the pipe does not read), get `COPY INTO ... FILES`.
#[must_use]
pub fn refresh(
    o: &Objects,
    shape: Shape,
    objects: &[StagedObject],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let mut sql = format!(
        "-- ghreplay snowflake refresh: {} objects, {} shape\n",
        objects.len(),
        shape.as_str()
    );
    let (recent, old): (Vec<&StagedObject>, Vec<&StagedObject>) = objects
        .iter()
        .partition(|s| shape == Shape::Raw && s.hour >= now - REFRESH_WINDOW);
    if !recent.is_empty() {
        // Objects are written a little after their hour starts: look back one
        // buffering interval before the range.
        let after =
            (since - Duration::minutes(15)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let _ = writeln!(
            sql,
            "\n-- Within the pipe's 7-day refresh window: the pipe loads them."
        );
        let mut last = "";
        for s in recent {
            if s.hour_prefix != last {
                let _ = writeln!(
                    sql,
                    "ALTER PIPE {} REFRESH PREFIX = {} MODIFIED_AFTER = {};",
                    o.pipe,
                    literal(&s.hour_prefix),
                    literal(&after)
                );
                last = &s.hour_prefix;
            }
        }
    }
    if !old.is_empty() {
        let why = if shape == Shape::Raw {
            "Older than the refresh window"
        } else {
            "Enveloped records: the payload is $1:body, which the pipe does not read"
        };
        let _ = writeln!(sql, "\n-- {why}: loaded by name.");
        for chunk in old.chunks(FILES_PER_COPY) {
            let files: Vec<String> = chunk
                .iter()
                .map(|s| format!("    {}", literal(&s.path)))
                .collect();
            let _ = writeln!(
                sql,
                "COPY INTO {}\n  FROM (SELECT {} FROM @{}/)\n  FILES = (\n{}\n  );",
                o.table,
                select_list(document(shape)),
                o.stage,
                files.join(",\n")
            );
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_snowalert() {
        let o = Objects::new("acme").unwrap();
        assert_eq!(o.stage, "data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_STAGE");
        assert_eq!(o.table, "data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_CONNECTION");
        assert_eq!(o.pipe, "data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_PIPE");
        assert!(Objects::new("a-b").is_err());
        assert!(Objects::new("").is_err());
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
