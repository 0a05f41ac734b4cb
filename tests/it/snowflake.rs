//! `ghreplay snowflake`: the SQL text (snapshots), the landing table's
//! columns against formats.md, and refresh's choice between the pipe and
//! COPY INTO.

use crate::common;
use crate::common::{fixture_archive, make_archive, run, stderr};
use ghreplay::snowflake::LANDING_COLUMNS;

fn stdout(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn setup_sql() {
    insta::assert_snapshot!(stdout(&[
        "snowflake",
        "setup",
        "--name",
        "acme",
        "--stage-url",
        "s3://acme-webhooks/kinesis/",
        "--aws-role",
        "arn:aws:iam::012345678987:role/github-reader",
    ]));
}

#[test]
fn refresh_sql_for_an_enveloped_archive_reads_body() {
    insta::assert_snapshot!(stdout(&[
        "--archive",
        &fixture_archive(),
        "snowflake",
        "refresh",
        "--name",
        "acme",
        "--since",
        "2026-01-15T11",
        "--until",
        "2026-01-15T13",
        "--shape",
        "mozilla",
    ]));
}

/// The 59 payload columns of formats.md section 6, as written there.
fn formats_md_columns() -> Vec<String> {
    let text = std::fs::read_to_string(common::shared().join("reference/formats.md")).unwrap();
    let start = text
        .find("top-level keys of the raw GitHub payload")
        .unwrap();
    let open = start + text[start..].find("(`").unwrap() + 2;
    let close = open + text[open..].find("`)").unwrap();
    text[open..close]
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect()
}

#[test]
fn every_column_matches_formats_md() {
    let want = formats_md_columns();
    assert_eq!(want.len(), 59);
    let names: Vec<&str> = LANDING_COLUMNS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names[..3], ["insert_time", "raw", "hash_raw"]);
    assert_eq!(
        names[3..],
        want.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    let sql = stdout(&[
        "snowflake",
        "setup",
        "--name",
        "x",
        "--stage-url",
        "s3://b/p/",
        "--aws-role",
        "r",
    ]);
    for c in &want {
        assert!(sql.contains(&format!("\n  {c} ")), "table lacks {c}");
        assert!(
            sql.contains(&format!("$1:{c},")) || sql.contains(&format!("$1:{c} FROM")),
            "pipe lacks {c}"
        );
    }
}

/// `snowflake refresh --name acme --since SINCE` over `archive`, with `extra`.
fn refresh(archive: &str, since: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--archive",
        archive,
        "snowflake",
        "refresh",
        "--name",
        "acme",
        "--since",
        since,
    ];
    args.extend_from_slice(extra);
    stdout(&args)
}

/// An archive of `objects` raw-shape objects of one record each, in June 2025.
fn raw_archive(dir: &std::path::Path, objects: usize) -> String {
    let archive = dir.join("raw");
    make_archive(
        &archive,
        &[
            "--events",
            &objects.to_string(),
            "--hours",
            "1",
            "--start",
            "2025-06-01T00",
            "--envelope",
            "raw",
            "--records-per-object",
            "1",
        ],
    );
    archive.to_str().unwrap().to_owned()
}

#[test]
fn refresh_copies_by_name_into_a_temporary_table_and_merges_each_delivery_once() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_archive(dir.path(), 1001);
    let sql = refresh(&raw, "2025-06-01", &[]);
    let loading = "data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_CONNECTION_GHREPLAY_LOAD";
    assert!(
        sql.contains(&format!("CREATE TEMPORARY TABLE IF NOT EXISTS {loading} LIKE data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_CONNECTION;")),
        "{sql}"
    );
    assert_eq!(
        sql.matches(&format!("COPY INTO {loading} (")).count(),
        2,
        "1,001 files in statements of at most 1,000"
    );
    assert_eq!(
        sql.matches("FORCE = TRUE;").count(),
        2,
        "whatever the load history says"
    );
    assert!(
        !sql.contains("ALTER PIPE"),
        "the pipe's history is not trusted: {sql}"
    );
    // cztack's shape keeps no delivery id: the payload's hash is the key.
    assert!(
        sql.contains("SELECT current_timestamp, $1, HASH($1), $1:ref,"),
        "{sql}"
    );
    assert!(
        sql.contains("PARTITION BY hash_raw ORDER BY insert_time) = 1"),
        "{sql}"
    );
    assert!(
        sql.contains("ON t.hash_raw = s.hash_raw\n  WHEN NOT MATCHED THEN INSERT"),
        "{sql}"
    );
    assert!(sql
        .trim_end()
        .ends_with(&format!("DROP TABLE IF EXISTS {loading};")));

    // Mozilla's shape: the payload in body, merged on the delivery id; an
    // existing deployment's own names.
    let sql = refresh(
        &fixture_archive(),
        "2026-01-15T11",
        &[
            "--table",
            "data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_CONNECTION",
            "--stage",
            "data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_STAGE",
            "--until",
            "2026-01-15T13",
            "--shape",
            "mozilla",
        ],
    );
    assert!(
        sql.contains("ON COALESCE(t.delivery_id, TO_VARCHAR(t.hash_raw)) = COALESCE(s.delivery_id, TO_VARCHAR(s.hash_raw))"),
        "a record without an id is keyed on its hash: {sql}"
    );
    assert!(sql.contains("$1:body:ref,"), "{sql}");
    assert!(sql.contains("$1:request_id::VARCHAR, $1:event::VARCHAR FROM @data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_STAGE/)"), "{sql}");
    assert!(
        sql.contains("MERGE INTO data.GITHUB_ORGANIZATIONS_DEFAULT_EVENTS_CONNECTION AS t"),
        "{sql}"
    );
}

fn assert_parses_as_snowflake(what: &str, sql: &str) {
    common::assert_parses("snowflake", what, sql);
}

#[test]
fn every_statement_parses_as_snowflake_sql() {
    let setup = |extra: &[&str]| {
        let mut args = vec![
            "snowflake",
            "setup",
            "--name",
            "acme",
            "--stage-url",
            "s3://acme-webhooks/kinesis/",
            "--aws-role",
            "arn:aws:iam::012345678987:role/github-reader",
        ];
        args.extend_from_slice(extra);
        stdout(&args)
    };
    for shape in ["raw", "mozilla", "ghreplay"] {
        let sql = setup(&["--shape", shape]);
        assert_parses_as_snowflake(&format!("setup --shape {shape}"), &sql);
    }
    let sql = setup(&[
        "--shape",
        "ghreplay",
        "--recreate-pipe",
        "--pipe",
        "db.data.P",
    ]);
    assert!(
        sql.contains("CREATE OR REPLACE PIPE db.data.P AUTO_INGEST = TRUE AS"),
        "{sql}"
    );
    assert!(
        sql.contains("TRY_BASE64_DECODE_STRING($1:body_base64)"),
        "{sql}"
    );
    assert_parses_as_snowflake("setup --recreate-pipe", &sql);

    let dir = tempfile::tempdir().unwrap();
    let raw = raw_archive(dir.path(), 3);
    let sql = refresh(&raw, "2025-06-01", &[]);
    assert_parses_as_snowflake("refresh, raw", &sql);
    let sql = refresh(
        &fixture_archive(),
        "2026-01-15T11",
        &["--until", "2026-01-15T13", "--shape", "ghreplay"],
    );
    assert_parses_as_snowflake("refresh, ghreplay", &sql);
}

#[test]
fn bad_names_and_empty_ranges() {
    let out = run(&[
        "snowflake",
        "setup",
        "--name",
        "a-b",
        "--stage-url",
        "s3://b/",
        "--aws-role",
        "r",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("letters, digits and _"),
        "{}",
        stderr(&out)
    );
    // An object name is pasted into SQL: nothing may ride along.
    let out = run(&[
        "snowflake",
        "setup",
        "--name",
        "a",
        "--table",
        "t; DROP TABLE x",
        "--stage-url",
        "s3://b/",
        "--aws-role",
        "r",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--table \"t; DROP TABLE x\": an object name is up to three parts"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--archive",
        &fixture_archive(),
        "snowflake",
        "refresh",
        "--name",
        "a",
        "--since",
        "2030-01-01",
    ]);
    assert_eq!(out.status.code(), Some(1));
}
