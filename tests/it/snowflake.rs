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

#[test]
fn recent_raw_hours_refresh_the_pipe_and_old_ones_are_copied_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let recent = dir.path().join("recent");
    let start = (chrono::Utc::now() - chrono::Duration::hours(30))
        .format("%Y-%m-%dT%H")
        .to_string();
    make_archive(
        &recent,
        &[
            "--events",
            "60",
            "--hours",
            "3",
            "--start",
            &start,
            "--envelope",
            "raw",
            "--records-per-object",
            "10",
        ],
    );
    let sql = stdout(&[
        "--archive",
        recent.to_str().unwrap(),
        "snowflake",
        "refresh",
        "--name",
        "acme",
        "--since",
        "2d",
    ]);
    assert!(sql.contains("raw shape"), "{sql}");
    let refreshes: Vec<&str> = sql
        .lines()
        .filter(|l| l.starts_with("ALTER PIPE"))
        .collect();
    assert_eq!(refreshes.len(), 3, "one per hour prefix: {sql}");
    assert!(
        refreshes[0]
            .starts_with("ALTER PIPE data.GITHUB_WEBHOOKS_S3_ACME_EVENTS_PIPE REFRESH PREFIX = '"),
        "{sql}"
    );
    assert!(refreshes.iter().all(|r| r.contains("MODIFIED_AFTER = '")));
    assert!(!sql.contains("COPY INTO"), "{sql}");

    let old = dir.path().join("old");
    make_archive(
        &old,
        &[
            "--events",
            "1001",
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
    let sql = stdout(&[
        "--archive",
        old.to_str().unwrap(),
        "snowflake",
        "refresh",
        "--name",
        "acme",
        "--since",
        "2025-06-01",
    ]);
    assert!(!sql.contains("ALTER PIPE"), "older than the refresh window");
    assert_eq!(
        sql.matches("COPY INTO").count(),
        2,
        "1,001 files in statements of at most 1,000"
    );
    assert!(
        sql.contains("SELECT current_timestamp, $1, HASH($1), $1:ref,"),
        "raw payloads are $1"
    );
    assert!(!sql.contains("$1:body"));
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
