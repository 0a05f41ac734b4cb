//! `ghreplay load` and `ghreplay query` against the real binary: loading is
//! faithful to what `cat` reads and idempotent, the canned queries answer
//! what a hand count of the fixture says, and DuckDB's own shell reads the
//! file the same way.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::common::{fixture_archive, make_archive, ndjson, run, stderr};
use serde_json::{json, Value};

fn load(db: &Path, archive: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--archive", archive, "load", "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// `query --format json` against `db`: the rows, and the exit status.
fn query(db: &Path, extra: &[&str]) -> (Vec<Value>, Option<i32>) {
    let mut args = vec!["query", "--db", db.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "query {extra:?}: {}",
        stderr(&out)
    );
    (ndjson(&out), out.status.code())
}

fn rows(db: &Path, sql: &str) -> Vec<Value> {
    query(db, &[sql]).0
}

/// Events by name, as `cat` counts them.
fn cat_counts(archive: &str) -> BTreeMap<String, u64> {
    let out = run(&["--archive", archive, "cat", "--allow-skipped"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut counts = BTreeMap::new();
    for e in ndjson(&out) {
        *counts
            .entry(e["event"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Rows by event, as the database counts them.
fn db_counts(db: &Path) -> BTreeMap<String, u64> {
    rows(
        db,
        "SELECT event, count(*) AS n FROM deliveries GROUP BY event ORDER BY event",
    )
    .iter()
    .map(|r| {
        (
            r["event"].as_str().unwrap().to_owned(),
            r["n"].as_u64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn the_fixture_loads_one_row_per_delivery_and_loading_again_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.duckdb");
    let archive = fixture_archive();

    let out = load(&db, &archive, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("13 rows added") && stderr(&out).contains("0 events were already"),
        "{}",
        stderr(&out)
    );
    assert_eq!(db_counts(&db), cat_counts(&archive));

    // One row, every column: Mozilla's envelope, placed at its object's time.
    let push = rows(
        &db,
        "SELECT * EXCLUDE (payload), payload ->> '$.ref' AS ref FROM deliveries \
         WHERE delivery_id = '00000000-0000-4000-8000-000000000101'",
    );
    assert_eq!(
        push,
        vec![json!({
            "row_key": "00000000-0000-4000-8000-000000000101",
            "delivery_id": "00000000-0000-4000-8000-000000000101",
            "event": "push", "action": null, "repository": "mozilla/gecko-dev",
            "owner": "mozilla", "private": false, "public": true, "sender": "alice",
            "received_at": "2026-01-15T10:05:00", "object_time": "2026-01-15T10:05:00",
            "object_key": "2026/01/15/10/github-webhooks-1-2026-01-15-10-05-00-00000000-0000-4000-8000-000000000001",
            "record_index": 0, "shape": "mozilla", "ref": "refs/heads/main",
            "headers": null, "raw_body": null,
        })]
    );
    // Raw payloads have no delivery id: keyed by where they are.
    let raw = rows(
        &db,
        "SELECT row_key, event FROM deliveries WHERE shape = 'raw' ORDER BY record_index",
    );
    assert_eq!(raw.len(), 4);
    assert!(
        raw[2]["row_key"].as_str().unwrap().ends_with(".gz#2"),
        "{raw:?}"
    );
    assert_eq!(raw[2]["event"], "repository");
    // ghreplay's own records carry their receive time and headers.
    let own = rows(
        &db,
        "SELECT received_at, headers IS NOT NULL AS kept FROM deliveries WHERE shape = 'ghreplay' ORDER BY received_at",
    );
    assert_eq!(own[0]["received_at"], "2026-01-15T12:00:01.250");
    assert_eq!(own[0]["kept"], true, "{own:?}");

    let again = load(&db, &archive, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 rows added")
            && stderr(&again).contains("13 events were already"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        rows(&db, "SELECT count(*) AS n FROM deliveries")[0]["n"],
        13
    );
}

#[test]
fn a_synthetic_archive_loads_as_cat_reads_it_corrupt_objects_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.duckdb");
    for (name, args) in [
        ("mozilla", &["--envelope", "mozilla", "--corrupt", "2"][..]),
        ("raw", &["--envelope", "raw", "--delimiter", "newline"][..]),
    ] {
        let archive = dir.path().join(name);
        make_archive(
            &archive,
            &[
                &[
                    "--events",
                    "600",
                    "--hours",
                    "3",
                    "--seed",
                    "4",
                    "--records-per-object",
                    "40",
                    "--private-ratio",
                    "0.2",
                ][..],
                args,
            ]
            .concat(),
        );
        let archive = archive.to_str().unwrap();
        let out = load(&db, archive, &[]);
        let expected = if name == "mozilla" { 3 } else { 0 };
        assert_eq!(out.status.code(), Some(expected), "{}", stderr(&out));
        let expected = cat_counts(archive);
        let loaded: BTreeMap<String, u64> = rows(
            &db,
            &format!(
                "SELECT event, count(*) AS n FROM deliveries WHERE shape = '{name}' \
                 GROUP BY event ORDER BY event"
            ),
        )
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_owned(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
        assert_eq!(loaded, expected, "{name}");
        assert!(expected.values().sum::<u64>() > 500, "{expected:?}");
    }
    let before = db_counts(&db);
    let again = load(&db, dir.path().join("raw").to_str().unwrap(), &[]);
    assert!(
        stderr(&again).contains("0 rows added"),
        "{}",
        stderr(&again)
    );
    assert_eq!(db_counts(&db), before);
}

#[test]
fn public_only_loads_only_what_the_privacy_filter_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.duckdb");
    let out = load(&db, &fixture_archive(), &["--public-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = rows(
        &db,
        "SELECT count(*) AS n, bool_and(public) AS all_public FROM deliveries",
    );
    assert_eq!(r, vec![json!({"n": 9, "all_public": true})]);
}

/// The canned queries on the fixture (fixtures/README.md counts it by hand:
/// 13 deliveries, 10 of them in hour 10).
#[test]
fn each_canned_query_answers_what_a_hand_count_of_the_fixture_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.duckdb");
    let out = load(&db, &fixture_archive(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let q = |name: &str, extra: &[&str]| query(&db, &[&[name][..], extra].concat()).0;

    assert_eq!(
        q("releases-per-repository", &[]),
        vec![
            json!({"repository": "acme/widgets", "releases": 2, "tags": "v1.0.0",
                   "first_at": "2026-01-15T10:05:00", "last_at": "2026-01-15T12:00:01.250"}),
            json!({"repository": "mozilla/gecko-dev", "releases": 1, "tags": "v2.0.0",
                   "first_at": "2026-01-15T10:35:00", "last_at": "2026-01-15T10:35:00"}),
        ]
    );
    // --since/--until bound every canned query through the in_range view.
    assert_eq!(
        q(
            "releases-per-repository",
            &["--since", "2026-01-15T11:00:00Z"]
        )
        .iter()
        .map(|r| (r["repository"].clone(), r["releases"].clone()))
        .collect::<Vec<_>>(),
        vec![(json!("acme/widgets"), json!(1))]
    );

    let per_hour: Vec<(String, String, u64)> = q("events-per-hour", &[])
        .iter()
        .map(|r| {
            (
                r["hour"].as_str().unwrap()[11..13].to_owned(),
                r["event"].as_str().unwrap().to_owned(),
                r["deliveries"].as_u64().unwrap(),
            )
        })
        .collect();
    let hour = |h: &str| -> BTreeMap<String, u64> {
        per_hour
            .iter()
            .filter(|(x, ..)| x == h)
            .map(|(_, e, n)| (e.clone(), *n))
            .collect()
    };
    let expect = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(e, n)| ((*e).to_owned(), *n)).collect()
    };
    assert_eq!(
        hour("10"),
        expect(&[
            ("push", 2),
            ("release", 2),
            ("pull_request", 1),
            ("member", 1),
            ("issues", 1),
            ("watch", 1),
            ("repository", 1),
            ("ping", 1)
        ])
    );
    assert_eq!(hour("11"), expect(&[("issue_comment", 1)]));
    assert_eq!(hour("12"), expect(&[("release", 1), ("pull_request", 1)]));

    let repos: Vec<(Value, Value)> = q("active-repositories", &[])
        .iter()
        .map(|r| (r["repository"].clone(), r["deliveries"].clone()))
        .collect();
    assert_eq!(
        repos,
        vec![
            (json!("acme/widgets"), json!(8)),
            (json!("mozilla/gecko-dev"), json!(4)),
            (json!("acme/secret-sauce"), json!(1)),
        ]
    );
    let senders: Vec<(Value, Value)> = q("active-senders", &[])
        .iter()
        .map(|r| (r["sender"].clone(), r["deliveries"].clone()))
        .collect();
    assert_eq!(
        senders,
        vec![
            (json!("bob"), json!(6)),
            (json!("alice"), json!(3)),
            (json!("carol"), json!(1)),
            (json!("erin"), json!(1)),
            (json!("frank"), json!(1)),
            (json!("gina"), json!(1)),
        ]
    );

    assert_eq!(
        q("pull-requests", &[]),
        vec![json!({"repository": "acme/widgets", "opened": 1, "merged": 1, "closed_unmerged": 0})]
    );

    // acme/widgets was privatized (cztack object, 10:35); all 8 of its
    // deliveries are listed, the three of 10:05 as made while it was public.
    let went = q("went-private", &[]);
    assert_eq!(went.len(), 8, "{went:?}");
    assert!(went.iter().all(
        |r| r["repository"] == "acme/widgets" && r["went_private_at"] == "2026-01-15T10:35:00"
    ));
    assert_eq!(
        went.iter().filter(|r| r["before_private"] == true).count(),
        3
    );
}

#[test]
fn an_archive_is_queried_in_memory_with_no_load_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.duckdb");
    let archive = fixture_archive();
    assert_eq!(load(&db, &archive, &[]).status.code(), Some(0));
    for name in ["events-per-hour", "went-private"] {
        let from_db = run(&[
            "query",
            name,
            "--db",
            db.to_str().unwrap(),
            "--format",
            "csv",
        ]);
        let direct = run(&["--archive", &archive, "query", name, "--format", "csv"]);
        assert_eq!(direct.status.code(), Some(0), "{}", stderr(&direct));
        assert!(stderr(&direct).contains("13 kept"), "{}", stderr(&direct));
        assert_eq!(
            String::from_utf8_lossy(&direct.stdout),
            String::from_utf8_lossy(&from_db.stdout),
            "{name}"
        );
    }
    // The selection chooses what is read into memory.
    let out = run(&[
        "--archive",
        &archive,
        "query",
        "SELECT count(*) AS n FROM deliveries",
        "--public-only",
        "--format",
        "csv",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n9\n");
}

/// DuckDB's shell from PyPI (scripts/test.sh installs it) opens what
/// `ghreplay load` wrote and answers a canned query as `ghreplay query` does.
#[test]
fn duckdbs_own_shell_reads_the_file_and_answers_the_same() {
    let cli = std::env::var("DUCKDB_CLI")
        .expect("DUCKDB_CLI names DuckDB's shell (scripts/test.sh installs duckdb-cli)");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.duckdb");
    assert_eq!(load(&db, &fixture_archive(), &[]).status.code(), Some(0));
    for canned in [
        "releases-per-repository",
        "events-per-hour",
        "pull-requests",
        "went-private",
    ] {
        let sql = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("queries/{canned}.sql")),
        )
        .unwrap();
        let out = std::process::Command::new(&cli)
            .args(["-readonly", "-json", db.to_str().unwrap(), "-c", &sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{canned}: {}", stderr(&out));
        let theirs: Vec<Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{canned}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        let ours = query(&db, &[canned]).0;
        assert!(!ours.is_empty(), "{canned}");
        assert_eq!(normalise(ours), normalise(theirs), "{canned}");
    }
}

/// Timestamps as the shell prints them (`2026-01-15 12:00:01.25`) and as
/// Arrow does (`2026-01-15T12:00:01.250`) are the same value.
fn normalise(rows: Vec<Value>) -> Vec<Value> {
    rows.into_iter()
        .map(|mut r| {
            for v in r.as_object_mut().unwrap().values_mut() {
                if let Some(s) = v.as_str() {
                    let b = s.as_bytes();
                    if b.len() >= 19 && b[4] == b'-' && (b[10] == b'T' || b[10] == b' ') {
                        let t = s.replacen('T', " ", 1);
                        let t = if t.contains('.') {
                            t.trim_end_matches('0').trim_end_matches('.')
                        } else {
                            &t
                        };
                        *v = Value::String(t.to_owned());
                    }
                }
            }
            r
        })
        .collect()
}

#[test]
fn query_errors_say_what_to_do_and_exit_statuses_are_documented() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.duckdb");
    let out = run(&[
        "query",
        "events-per-hour",
        "--db",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no such database") && stderr(&out).contains("ghreplay load"),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists(), "a query never creates a database");

    let db = dir.path().join("e.duckdb");
    assert_eq!(load(&db, &fixture_archive(), &[]).status.code(), Some(0));
    let dbs = db.to_str().unwrap();
    let out = run(&["query", "no-such-query", "--db", dbs]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--list"), "{}", stderr(&out));

    let out = run(&["query", "SELEC nonsense", "--db", dbs]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("syntax error"), "{}", stderr(&out));

    let out = run(&["query", "events-per-hour", "--db", dbs, "--event", "push"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("in SQL"), "{}", stderr(&out));

    let (none, code) = query(&db, &["SELECT * FROM deliveries WHERE event = 'gollum'"]);
    assert!(none.is_empty());
    assert_eq!(code, Some(1), "no rows: exit 1");

    let out = run(&["query", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in ["releases-per-repository", "events-per-hour", "went-private"] {
        assert!(listed.contains(name), "{listed}");
    }

    // A query opens the file read-only: it cannot change it.
    let out = run(&["query", "DELETE FROM deliveries", "--db", dbs]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        rows(&db, "SELECT count(*) AS n FROM deliveries")[0]["n"],
        13
    );
}

#[test]
fn a_load_killed_part_way_keeps_what_it_committed_and_a_rerun_adds_exactly_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    make_archive(
        &archive,
        &[
            "--events",
            "4000",
            "--hours",
            "4",
            "--seed",
            "21",
            "--records-per-object",
            "100",
        ],
    );
    let archive = archive.to_str().unwrap();
    let db = dir.path().join("k.duckdb");
    let wal = dir.path().join("k.duckdb.wal");
    let mut child = crate::common::bin()
        .args(["--archive", archive, "load", "--db", db.to_str().unwrap()])
        .args(["--commit-every", "200000", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a commit of rows is surely whole in the write-ahead log:
    // the schema's own commit is under a kilobyte, each commit of rows adds
    // about 250 kB, and the log may be caught mid-write, so wait for more
    // than two commits' worth (a second one started means the first ended).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&wal).map_or(true, |m| m.len() < 640 * 1024) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the load finished before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no commit within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to commit more
    child.wait().unwrap();

    let kept = rows(&db, "SELECT count(*) AS n FROM deliveries")[0]["n"]
        .as_u64()
        .unwrap();
    let total = cat_counts(archive).values().sum::<u64>();
    assert!(kept > 0 && kept < total, "kept {kept} of {total}");

    let out = load(&db, archive, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{} rows added to {}, {kept} events were already there",
            total - kept,
            db.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db_counts(&db),
        cat_counts(archive),
        "exactly the archive, once"
    );
}
