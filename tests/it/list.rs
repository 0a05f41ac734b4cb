//! `ghreplay list`: hours and objects in a range, and what listing costs.

use crate::common;
use crate::common::{fixture_archive, run, stderr};
use serde_json::Value;

fn list_json(archive: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--archive", archive, "list", "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lists_hours_objects_and_bytes() {
    let doc = list_json(&fixture_archive(), &[]);
    let hours: Vec<_> = doc["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["hour"].as_str().unwrap(), h["objects"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        hours,
        [
            ("2026-01-15T10:00Z", 2),
            ("2026-01-15T11:00Z", 1),
            ("2026-01-15T12:00Z", 1)
        ]
    );
    assert_eq!(doc["totals"]["objects"], 4);
    let bytes: u64 = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(doc["totals"]["bytes"], bytes);
    // No range: the whole archive in one recursive listing.
    assert_eq!(doc["totals"]["list_requests"], 1);

    let table = run(&["--archive", &fixture_archive(), "list", "--objects"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("HOUR (UTC)"), "{text}");
    assert!(text.contains("3 hours, 4 objects"), "{text}");
    assert!(text.contains("ghreplay-1-2026-01-15-12-00-10-"), "{text}");
}

#[test]
fn a_narrow_range_never_lists_the_whole_archive() {
    let dir = tempfile::tempdir().unwrap();
    common::make_archive(
        dir.path(),
        &[
            "--events",
            "400",
            "--hours",
            "96",
            "--records-per-object",
            "5",
            "--start",
            "2026-03-30T00",
        ],
    );
    let archive = dir.path().to_str().unwrap();
    let all = list_json(archive, &[]);
    let narrow = list_json(
        archive,
        &[
            "--since",
            "2026-04-01T10:20:00Z",
            "--until",
            "2026-04-01T10:40:00Z",
        ],
    );
    // root, year, month, day: one delimiter listing each; then the hours
    // 09..11 (one hour either side), each wholly inside: one listing each.
    assert_eq!(narrow["totals"]["list_requests"], 7, "{narrow}");
    let hours: Vec<_> = narrow["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hour"].as_str().unwrap())
        .collect();
    assert!(
        hours.iter().all(|h| h.starts_with("2026-04-01T1")),
        "{hours:?}"
    );
    // Only objects within 15 minutes (Firehose's longest buffer) of the range.
    for o in narrow["objects"].as_array().unwrap() {
        let t = o["written_at"].as_str().unwrap();
        assert!(
            ("2026-04-01T10:05:00Z"..="2026-04-01T10:55:00Z").contains(&t),
            "{t}"
        );
    }
    assert!(
        narrow["totals"]["objects"].as_u64().unwrap()
            < all["totals"]["objects"].as_u64().unwrap() / 10
    );

    // Three whole days inside a wide range: a recursive listing per covered day.
    let wide = list_json(archive, &["--since", "2026-03-31", "--until", "2026-04-03"]);
    assert!(
        wide["totals"]["list_requests"].as_u64().unwrap() <= 12,
        "{wide}"
    );
}

#[test]
fn an_empty_range_exits_1_and_a_prefix_outside_the_layout_is_named() {
    let out = run(&[
        "--archive",
        &fixture_archive(),
        "list",
        "--since",
        "2030-01-01",
    ]);
    assert_eq!(out.status.code(), Some(1));

    // The archive one level up: `archive/` is not a year prefix.
    let parent = std::path::Path::new(&fixture_archive())
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let doc = list_json(&parent, &[]);
    assert_eq!(doc["totals"]["objects"], 0);
    let reasons: Vec<_> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["key"], s["reason"]))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("archive/") && r.contains("--archive")),
        "{reasons:?}"
    );
}
