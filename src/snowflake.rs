//! The SQL that Snowflake needs to load these archives (formats.md section 6):
//! the stage, file format, landing table and pipe that `SnowAlert`'s GitHub
//! webhooks connector creates (same names, same 62 columns, so existing
//! deployments keep working), and the statements that backfill a range.
//! Pure text generation: nothing here connects to Snowflake.

use std::fmt::Write as _;

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

/// The columns ghreplay adds after `SnowAlert`'s 62 (`ALTER TABLE ... ADD
/// COLUMN IF NOT EXISTS`, so an existing table keeps its rows): what the
/// enveloped shapes know beside the payload, and what `refresh` dedupes on.
pub const ADDED_COLUMNS: [(&str, &str); 2] =
    [("delivery_id", "VARCHAR(64)"), ("event", "VARCHAR(256)")];

/// Names in one `COPY INTO ... FILES = (...)` (Snowflake's limit).
const FILES_PER_COPY: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SnowflakeError {
    #[error("--name {0:?}: use letters, digits and _ (it becomes part of object names)")]
    Name(String),
    #[error("--{flag} {name:?}: an object name is up to three parts (db.schema.name) of letters, digits, _ and $")]
    Object { flag: &'static str, name: String },
    #[error("{0:?}: a stage URL is written s3://bucket/prefix")]
    StageUrl(String),
}

/// The object names of one connection: `SnowAlert`'s, or the deployment's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objects {
    pub stage: String,
    pub table: String,
    pub pipe: String,
}

impl Objects {
    /// `SnowAlert`'s names for connection `name`.
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

    /// Replaces the names given (each an unquoted identifier of up to three
    /// parts: the SQL is pasted, so nothing else may ride along).
    pub fn with(
        mut self,
        stage: Option<&str>,
        table: Option<&str>,
        pipe: Option<&str>,
    ) -> Result<Self, SnowflakeError> {
        for (flag, given, slot) in [
            ("stage", stage, &mut self.stage),
            ("table", table, &mut self.table),
            ("pipe", pipe, &mut self.pipe),
        ] {
            if let Some(name) = given {
                let part = |p: &str| {
                    p.bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
                };
                let parts: Vec<&str> = name.split('.').collect();
                if parts.len() > 3 || !parts.iter().all(|p| part(p)) {
                    return Err(SnowflakeError::Object {
                        flag,
                        name: name.to_owned(),
                    });
                }
                name.clone_into(slot);
            }
        }
        Ok(self)
    }

    /// The temporary table `refresh` loads into before merging.
    fn loading(&self) -> String {
        format!("{}_GHREPLAY_LOAD", self.table)
    }
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Where a shape keeps what the landing table's columns are filled from.
struct Fields {
    /// The GitHub payload (the 59 payload columns read from it).
    document: &'static str,
    /// `raw`: the payload, or what the record has instead of one.
    raw: &'static str,
    delivery_id: &'static str,
    event: &'static str,
}

fn fields(shape: Shape) -> Fields {
    match shape {
        Shape::Raw => Fields {
            document: "$1",
            raw: "$1",
            delivery_id: "NULL",
            event: "NULL",
        },
        Shape::Mozilla => Fields {
            document: "$1:body",
            raw: "$1:body",
            delivery_id: "$1:request_id::VARCHAR",
            event: "$1:event::VARCHAR",
        },
        // A form-encoded body (`body_base64`) lands as its text in `raw`
        // with the payload columns NULL: Snowflake has no URL-decoding to
        // read the JSON inside `payload=...`.
        Shape::Ghreplay => Fields {
            document: "$1:body",
            raw: "COALESCE($1:body, TO_VARIANT(TRY_BASE64_DECODE_STRING($1:body_base64)))",
            delivery_id: "$1:delivery_id::VARCHAR",
            event: "$1:event::VARCHAR",
        },
    }
}

/// Every column of the landing table, in order.
fn column_names() -> Vec<&'static str> {
    LANDING_COLUMNS
        .iter()
        .chain(&ADDED_COLUMNS)
        .map(|(c, _)| *c)
        .collect()
}

/// The `SELECT` list that fills [`column_names`] from a staged record.
fn select_list(shape: Shape) -> String {
    let f = fields(shape);
    let mut cols = vec![
        "current_timestamp".to_owned(),
        f.raw.to_owned(),
        format!("HASH({})", f.raw),
    ];
    cols.extend(
        LANDING_COLUMNS[3..]
            .iter()
            .map(|(c, _)| format!("{}:{c}", f.document)),
    );
    cols.push(f.delivery_id.to_owned());
    cols.push(f.event.to_owned());
    cols.join(", ")
}

/// `COPY INTO table (columns) FROM (SELECT ... FROM @stage/)`.
fn copy_into(table: &str, o: &Objects, shape: Shape) -> String {
    format!(
        "COPY INTO {table} ({})\n  FROM (SELECT {} FROM @{}/)",
        column_names().join(", "),
        select_list(shape),
        o.stage
    )
}

/// What `snowflake setup` is asked for.
pub struct Setup<'a> {
    pub objects: &'a Objects,
    pub stage_url: &'a str,
    pub aws_role: &'a str,
    pub shape: Shape,
    pub recreate_pipe: bool,
}

/// `snowflake setup`: stage (with its file format), landing table and pipe,
/// then the AWS side as comments.
pub fn setup(s: &Setup<'_>) -> Result<String, SnowflakeError> {
    let o = s.objects;
    let Some((bucket, prefix)) = s
        .stage_url
        .strip_prefix("s3://")
        .map(|r| r.split_once('/').unwrap_or((r, "")))
        .filter(|(b, _)| !b.is_empty())
    else {
        return Err(SnowflakeError::StageUrl(s.stage_url.to_owned()));
    };
    let mut sql =
        "-- ghreplay snowflake setup: the objects of SnowAlert's GitHub webhooks (S3) connector.\n\
         -- IF NOT EXISTS throughout: an existing deployment keeps its objects and rows.\n\n"
            .to_owned();
    let _ = writeln!(
        sql,
        "CREATE STAGE IF NOT EXISTS {}\n  URL = {}\n  CREDENTIALS = (AWS_ROLE = {})\n  \
         FILE_FORMAT = (TYPE = 'JSON', COMPRESSION = 'AUTO', ENABLE_OCTAL = FALSE, ALLOW_DUPLICATE = FALSE,\n                 \
         STRIP_OUTER_ARRAY = TRUE, STRIP_NULL_VALUES = FALSE, IGNORE_UTF8_ERRORS = FALSE,\n                 \
         SKIP_BYTE_ORDER_MARK = TRUE);\n",
        o.stage,
        literal(s.stage_url),
        literal(s.aws_role)
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
        "-- ghreplay's columns after SnowAlert's 62 (NULL for cztack's shape and for rows loaded before)."
    );
    for (c, t) in ADDED_COLUMNS {
        let _ = writeln!(
            sql,
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {c} {t};",
            o.table
        );
    }
    let _ = writeln!(
        sql,
        "\n-- The pipe reads {} records: the payload from {}.",
        s.shape.as_str(),
        fields(s.shape).document
    );
    let create = if s.recreate_pipe {
        let _ = writeln!(
            sql,
            "-- REPLACES the pipe: its load history is lost, so a later ALTER PIPE ... REFRESH may load\n\
             -- files again (`ghreplay snowflake refresh` merges on the delivery id instead)."
        );
        "CREATE OR REPLACE PIPE"
    } else {
        let _ = writeln!(
            sql,
            "-- An existing pipe is left as it is (replacing one loses its load history); to make it\n\
             -- read this shape, run setup again with --recreate-pipe."
        );
        "CREATE PIPE IF NOT EXISTS"
    };
    let _ = writeln!(
        sql,
        "{create} {} AUTO_INGEST = TRUE AS\n  {};",
        o.pipe,
        copy_into(&o.table, o, s.shape)
    );
    aws_steps(&mut sql, o, bucket, prefix, s.aws_role);
    Ok(sql)
}

/// What to do in AWS, as comments: the role's trust policy (Snowflake's
/// IAM user and external id, from `DESC STAGE`), its permissions on the
/// bucket, and the bucket's notifications to the pipe's queue.
fn aws_steps(sql: &mut String, o: &Objects, bucket: &str, prefix: &str, role: &str) {
    // In AWS's own order (Version first), which a JSON map would not keep.
    let trust = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"AWS": "<SNOWFLAKE_IAM_USER>"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"sts:ExternalId": "<AWS_EXTERNAL_ID>"}}
  }]
}"#;
    let permissions = format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:GetObjectVersion"],
      "Resource": "arn:aws:s3:::{bucket}/{prefix}*"
    }},
    {{
      "Effect": "Allow",
      "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
      "Resource": "arn:aws:s3:::{bucket}",
      "Condition": {{"StringLike": {{"s3:prefix": ["{prefix}*"]}}}}
    }}
  ]
}}"#
    );
    let comment = |text: &str| {
        let mut out = String::new();
        for l in text.lines() {
            let _ = writeln!(out, "--   {l}");
        }
        out
    };
    let _ = write!(
        sql,
        "\n-- Then, in AWS and Snowflake:\n\
         -- 1. DESC STAGE {stage};\n\
         --    Its SNOWFLAKE_IAM_USER and AWS_EXTERNAL_ID go into the trust policy of the role\n\
         --    {role}:\n{trust}\
         -- 2. The role's permissions policy (read the archive, nothing else):\n{permissions}\
         -- 3. DESC PIPE {pipe};\n\
         --    Its notification_channel is an SQS queue: in the bucket's properties, add an event\n\
         --    notification for s3:ObjectCreated:* under prefix '{prefix}' to that queue (SQS ARN).\n\
         -- 4. SELECT SYSTEM$PIPE_STATUS('{pipe}');\n\
         --    says RUNNING once it is connected. Load what came before with\n\
         --    `ghreplay snowflake refresh --since ...`.\n",
        stage = o.stage,
        pipe = o.pipe,
        trust = comment(trust),
        permissions = comment(&permissions),
    );
}

/// An archived object, as `refresh` needs it.
#[derive(Debug, Clone)]
pub struct StagedObject {
    /// The key relative to the stage's URL.
    pub path: String,
}

/// `snowflake refresh`: statements that load exactly the objects given
/// (those `list` finds for the range), each delivery once: `COPY INTO` a
/// temporary table by file name (`FORCE`: whatever any load history says),
/// then `MERGE` into the landing table what it lacks, keyed on the delivery
/// id (for cztack's shape, which keeps none, the payload's hash), one row
/// per key.
#[must_use]
pub fn refresh(o: &Objects, shape: Shape, objects: &[StagedObject]) -> String {
    // A record without a delivery id (cztack's shape, or one such record in
    // an enveloped archive) is keyed on its payload's hash.
    let key = |table: &str| {
        if shape == Shape::Raw {
            format!("{table}hash_raw")
        } else {
            format!("COALESCE({table}delivery_id, TO_VARCHAR({table}hash_raw))")
        }
    };
    let loading = o.loading();
    let mut sql = format!(
        "-- ghreplay snowflake refresh: {} objects, {} shape, merged on {}\n\
         CREATE TEMPORARY TABLE IF NOT EXISTS {loading} LIKE {};\n\
         TRUNCATE TABLE {loading};\n",
        objects.len(),
        shape.as_str(),
        key(""),
        o.table
    );
    for chunk in objects.chunks(FILES_PER_COPY) {
        let files: Vec<String> = chunk
            .iter()
            .map(|s| format!("    {}", literal(&s.path)))
            .collect();
        let _ = writeln!(
            sql,
            "{}\n  FILES = (\n{}\n  )\n  FORCE = TRUE;",
            copy_into(&loading, o, shape),
            files.join(",\n")
        );
    }
    let cols = column_names();
    let values: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
    let _ = writeln!(
        sql,
        "MERGE INTO {} AS t\n  USING (SELECT * FROM {loading}\n         \
         QUALIFY ROW_NUMBER() OVER (PARTITION BY {} ORDER BY insert_time) = 1) AS s\n  \
         ON {} = {}\n  \
         WHEN NOT MATCHED THEN INSERT ({})\n  VALUES ({});\n\
         DROP TABLE IF EXISTS {loading};",
        o.table,
        key(""),
        key("t."),
        key("s."),
        cols.join(", "),
        values.join(", ")
    );
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
    fn a_deployments_own_names_replace_snowalerts_and_nothing_rides_along() {
        let o = Objects::new("acme")
            .unwrap()
            .with(
                None,
                Some("db.data.T"),
                Some("data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_PIPE"),
            )
            .unwrap();
        assert_eq!(o.stage, "data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_STAGE");
        assert_eq!(o.table, "db.data.T");
        assert_eq!(o.pipe, "data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_PIPE");
        for bad in [
            "a.b.c.d",
            "t; DROP TABLE x",
            "\"quoted\"",
            "1abc",
            "a..b",
            "",
        ] {
            assert!(
                Objects::new("x")
                    .unwrap()
                    .with(Some(bad), None, None)
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
