//! `ghreplay cat` on local archives: the bundled fixture (counted by hand in
//! fixtures/README.md), selection, and every kind of bad input.

use std::path::Path;

use crate::common;
use crate::common::{fixture_archive, ndjson, run, stderr};
use serde_json::Value;

fn cat(args: &[&str]) -> std::process::Output {
    let archive = fixture_archive();
    let mut all = vec!["--archive", &archive, "cat"];
    all.extend_from_slice(args);
    run(&all)
}

fn field<'a>(lines: &'a [Value], key: &str) -> Vec<&'a str> {
    lines
        .iter()
        .map(|l| l[key].as_str().unwrap_or("-"))
        .collect()
}

#[test]
fn every_record_of_every_shape_comes_out_in_key_order_without_the_duplicate() {
    let out = cat(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = ndjson(&out);
    assert_eq!(
        field(&lines, "event"),
        [
            "push",
            "release",
            "pull_request",
            "member",
            "push",
            "issues", // Mozilla, hour 10
            "release",
            "watch",
            "repository",
            "ping",          // raw, inferred
            "issue_comment", // hour 11; its push is the duplicate
            "release",
            "pull_request", // ghreplay's own
        ]
    );
    assert_eq!(
        field(&lines, "shape"),
        [
            ["mozilla"; 6].as_slice(),
            &["raw"; 4],
            &["mozilla"],
            &["ghreplay"; 2]
        ]
        .concat()
    );
    let keys = field(&lines, "object");
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    assert!(
        stderr(&out).contains("1 duplicate delivery id"),
        "{}",
        stderr(&out)
    );

    // Payloads are the archived GitHub payloads, whatever the envelope.
    assert_eq!(lines[0]["payload"]["pusher"]["name"], "alice");
    assert_eq!(lines[6]["payload"]["release"]["tag_name"], "v2.0.0");
    assert_eq!(
        lines[12]["payload"]["pull_request"]["merged"], true,
        "form-encoded body"
    );
    assert_eq!(lines[11]["received_at"], "2026-01-15T12:00:01.250Z");
    assert_eq!(lines[0]["received_at"], Value::Null);
    assert_eq!(
        lines[0]["delivery_id"],
        "00000000-0000-4000-8000-000000000101"
    );
    assert_eq!(
        lines[6]["delivery_id"],
        Value::Null,
        "raw payloads have no delivery id"
    );
    assert_eq!(lines[4]["private"], true);
    assert_eq!(lines[1]["sender"], "bob");
}

#[test]
fn public_only_applies_the_privacy_filter() {
    let out = cat(&["--public-only"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = ndjson(&out);
    assert_eq!(lines.len(), 9);
    assert!(lines.iter().all(|l| l["public"] == true));
    let repos: Vec<_> = lines
        .iter()
        .map(|l| l["repository"].as_str().unwrap())
        .collect();
    assert!(!repos.contains(&"acme/secret-sauce"));
    let events = field(&lines, "event");
    for never in ["member", "repository", "ping"] {
        assert!(!events.contains(&never), "{never} leaked");
    }
    assert!(stderr(&out).contains("4 private"), "{}", stderr(&out));
}

#[test]
fn selection_by_event_action_and_repo() {
    let lines = ndjson(&cat(&["--event", "release"]));
    assert_eq!(
        field(&lines, "repository"),
        ["acme/widgets", "mozilla/gecko-dev", "acme/widgets"]
    );

    let lines = ndjson(&cat(&["--event", "pull_request", "--action", "closed"]));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["payload"]["pull_request"]["merged"], true);

    let lines = ndjson(&cat(&[
        "--repo",
        "Mozilla/Gecko-Dev",
        "--event",
        "push",
        "--event",
        "issues",
    ]));
    assert_eq!(field(&lines, "event"), ["push", "issues"]);
}

#[test]
fn time_range_keeps_the_in_range_copy_of_a_duplicate() {
    // Hour 11 holds the second copy of delivery ...101; its first copy is in
    // hour 10, outside the range, and must not hide it.
    let out = cat(&[
        "--since",
        "2026-01-15T11:00:00Z",
        "--until",
        "2026-01-15T12",
    ]);
    let lines = ndjson(&out);
    assert_eq!(field(&lines, "event"), ["push", "issue_comment"]);
    assert!(
        stderr(&out).contains("outside the time range"),
        "{}",
        stderr(&out)
    );

    // Records with their own receive time are placed by it.
    let lines = ndjson(&cat(&["--since", "2026-01-15T12:00:03Z"]));
    assert_eq!(field(&lines, "event"), ["pull_request"]);
}

#[test]
fn nothing_matched_exits_1_and_keep_duplicates_keeps_them() {
    let out = cat(&["--event", "no_such_event"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(ndjson(&cat(&["--keep-duplicates"])).len(), 14);
    assert_eq!(ndjson(&cat(&["--dedupe-window", "all"])).len(), 13);
    assert_eq!(ndjson(&cat(&["--dedupe-window", "2h"])).len(), 13);
    let out = cat(&["--dedupe-window", "forever"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--dedupe-window"), "{}", stderr(&out));
}

#[test]
fn bad_time_and_missing_archive_are_errors_that_say_what_to_do() {
    let out = cat(&["--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));

    let out = run(&["--archive", "/nonexistent/ghreplay-archive/", "cat"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no archive at"), "{}", stderr(&out));
}

#[test]
fn a_closed_output_is_a_normal_end() {
    use std::fmt::Write as _;
    use std::io::{BufRead as _, BufReader};
    // Far more output than a pipe buffers, so the writer meets the closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let hour = dir.path().join("2026/02/01/00");
    std::fs::create_dir_all(&hour).unwrap();
    let mut records = String::new();
    for i in 0..10_000 {
        write!(
            records,
            r#"{{"body": {{"zen": "z", "hook_id": {i}}}, "event": "ping", "request_id": "r{i}"}}"#
        )
        .unwrap();
    }
    std::fs::write(
        hour.join("s-1-2026-02-01-00-00-00-00000000-0000-4000-8000-000000000001"),
        records,
    )
    .unwrap();
    let mut child = common::bin()
        .args(["--archive", dir.path().to_str().unwrap(), "cat"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: stdout is closed after one line.
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("\"delivery_id\":\"r0\""), "{first}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("output closed early"),
        "{}",
        stderr(&out)
    );
}

/// Length of a `damaged_archive` record with a 2-character id.
const RECORD_LEN: usize = 142;

/// An archive with one of each kind of damage beside good records.
fn damaged_archive(dir: &Path) {
    let good = r#"{"body": {"action": "published", "release": {}, "repository": {"full_name": "o/r", "private": false}}, "event": "release", "request_id": "ID"}"#;
    let rec = |id: &str| good.replace("ID", id);
    assert_eq!(rec("j1").len(), RECORD_LEN);
    let hour = dir.join("2026/02/01/00");
    std::fs::create_dir_all(&hour).unwrap();
    let name = |n: u32| format!("s-1-2026-02-01-00-0{n}-00-00000000-0000-4000-8000-00000000000{n}");
    // 1: good, gzip.
    std::fs::write(
        hour.join(name(1) + ".gz"),
        common::gzip((rec("g1") + &rec("g2")).as_bytes()),
    )
    .unwrap();
    // 2: truncated gzip: the first records survive.
    let long: String = (0..300).map(|i| rec(&format!("t{i}"))).collect();
    let gz = common::gzip(long.as_bytes());
    std::fs::write(hour.join(name(2) + ".gz"), &gz[..gz.len() / 2]).unwrap();
    // 3: junk between records.
    std::fs::write(
        hour.join(name(3)),
        rec("j1") + "<html>502 Bad Gateway</html>\n" + &rec("j2"),
    )
    .unwrap();
    // 4: empty object.
    std::fs::write(hour.join(name(4)), b"").unwrap();
    // A key outside Firehose naming, and an hour prefix with no objects.
    std::fs::write(hour.join("README.txt"), b"notes").unwrap();
    std::fs::create_dir_all(dir.join("2026/02/01/01")).unwrap();
}

#[test]
fn damaged_input_is_reported_and_skipped_and_no_good_record_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    damaged_archive(dir.path());
    let archive = dir.path().to_str().unwrap();
    let out = run(&["--archive", archive, "cat"]);
    assert_eq!(out.status.code(), Some(3), "skipped input gives exit 3");
    let ids: Vec<String> = ndjson(&out)
        .iter()
        .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    for want in ["g1", "g2", "t0", "t1", "j1", "j2"] {
        assert!(ids.iter().any(|i| i == want), "{want} lost: {ids:?}");
    }
    let err = stderr(&out);
    let junk_at = format!("-000000000003: record at byte {RECORD_LEN}: not a JSON record");
    for want in [
        "SKIPPED: 1 corrupt object, 2 corrupt records, 1 key outside Firehose naming",
        "-000000000002.gz: gzip stream ends early",
        "-000000000002.gz: record at byte",
        &junk_at,
        "README.txt: name does not follow Firehose naming",
        "1 object held nothing",
    ] {
        assert!(err.contains(want), "stderr lacks {want:?}:\n{err}");
    }

    let out = run(&["--archive", archive, "cat", "--allow-skipped", "-q"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "-q prints nothing: {}", stderr(&out));
}

#[test]
fn a_mistyped_archive_path_is_an_error_not_an_empty_range() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("archvie");
    let out = run(&["--archive", typo.to_str().unwrap(), "cat"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no archive at"), "{}", stderr(&out));
}
