//! The read path against S3, served by moto on 127.0.0.1 (real wire protocol).

use crate::common;
use crate::common::{fixture_archive, ndjson, stderr, unique_name, Moto};

/// The fixture archive, read locally, as the reference.
fn local_cat() -> Vec<serde_json::Value> {
    let out = common::run(&["--archive", &fixture_archive(), "cat"]);
    ndjson(&out)
}

fn without_object(mut lines: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    for l in &mut lines {
        l.as_object_mut().unwrap().remove("object");
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_reads_the_same_events_as_the_local_directory() {
    let moto = Moto::start();
    let bucket = unique_name("ghreplay-s3");
    moto.upload_dir(
        &bucket,
        std::path::Path::new(&fixture_archive()),
        "kinesis/",
    )
    .await;
    let archive = format!("s3://{bucket}/kinesis/");

    let out = moto.run(&["--archive", &archive, "cat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = ndjson(&out);
    assert!(lines[0]["object"]
        .as_str()
        .unwrap()
        .starts_with("kinesis/2026/01/15/10/"));
    assert_eq!(without_object(lines), without_object(local_cat()));

    // One object at a time under the tightest --read-memory, and a fixed
    // --fetch-jobs: the same events, in the same order.
    for flags in [["--read-memory", "1"], ["--fetch-jobs", "1"]] {
        let out = moto.run(&[&["--archive", &archive, "cat"][..], &flags[..]].concat());
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", stderr(&out));
        assert_eq!(
            without_object(ndjson(&out)),
            without_object(local_cat()),
            "{flags:?}"
        );
    }
    let out = moto.run(&["--archive", &archive, "cat", "--fetch-jobs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("or auto"), "{}", stderr(&out));

    let out = moto.run(&[
        "--archive",
        &archive,
        "list",
        "--json",
        "--since",
        "2026-01-15T12",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["totals"]["objects"], 1, "{doc}");

    // A prefix with no slash, as Firehose allows: kinesis2026/01/...
    moto.upload_dir(
        &bucket,
        std::path::Path::new(&fixture_archive()),
        "firehose",
    )
    .await;
    let out = moto.run(&[
        "--archive",
        &format!("s3://{bucket}/firehose"),
        "cat",
        "--public-only",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ndjson(&out).len(), 9);

    // The bucket root holds kinesis/ and firehose...: named, not read.
    let out = moto.run(&["--archive", &format!("s3://{bucket}"), "cat"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kinesis/: not a YYYY/ prefix"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_bucket_and_unreachable_endpoint_are_clear_errors() {
    let moto = Moto::start();
    let out = moto.run(&["--archive", "s3://no-such-bucket-here/", "cat"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no such bucket"), "{}", stderr(&out));

    let closed = common::free_port();
    let out = moto.run(&[
        "--archive",
        "s3://b/",
        "--endpoint-url",
        &format!("http://127.0.0.1:{closed}"),
        "list",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach S3 at http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("--endpoint-url"), "{err}");
}

/// A copy of the fixture archive with an object in the year before and
/// stray keys at every level of the date tree.
fn archive_with_strays() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::PathBuf::from(fixture_archive());
    for p in common::walk_files(&fixture) {
        let to = dir.path().join(p.strip_prefix(&fixture).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&p, &to).unwrap();
    }
    let first =
        "2026/01/15/10/github-webhooks-1-2026-01-15-10-05-00-00000000-0000-4000-8000-000000000001";
    let before =
        "2025/12/31/23/github-webhooks-1-2025-12-31-23-59-00-00000000-0000-4000-8000-000000000009";
    for (key, from) in [
        (before, Some(first)),
        ("2026/01/junk/x", None),
        ("2026/01/15/notes.txt", None),
        ("2026/13/01/00/x", None),
        ("2026/01/15/10/sub/f", None),
    ] {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match from {
            Some(f) => std::fs::copy(dir.path().join(f), &path).map(drop).unwrap(),
            None => std::fs::write(&path, b"stray").unwrap(),
        }
    }
    dir
}

/// The ranges the listing tests read: none, open at either end, across a
/// year's end, within an hour.
const RANGES: [&[&str]; 5] = [
    &[],
    &["--since", "2026-01-15T11"],
    &["--until", "2026-01-15T11"],
    &["--since", "2025-12-31T23:30", "--until", "2026-01-15T12"],
    &["--since", "2026-01-15T10:30", "--until", "2026-01-15T10:40"],
];

#[tokio::test(flavor = "multi_thread")]
async fn every_range_lists_and_reads_from_s3_as_from_the_local_directory() {
    // From S3 the walk lists the calendar's children of a cut node before
    // that node's own listing answers, and reads while it lists; the
    // local walk does neither. Both must find the same objects in the same
    // order, and report the same strays.
    let dir = archive_with_strays();
    let moto = Moto::start();
    let bucket = unique_name("ghreplay-ranges");
    moto.upload_dir(&bucket, dir.path(), "").await;
    let (local, s3) = (
        dir.path().to_str().unwrap().to_owned(),
        format!("s3://{bucket}/"),
    );
    for range in RANGES {
        let args = |archive: &str, command: &[&str]| -> Vec<String> {
            [&["--archive", archive][..], command, range]
                .concat()
                .into_iter()
                .map(str::to_owned)
                .collect()
        };
        let run = |archive: &str, command: &[&str]| {
            let args = args(archive, command);
            moto.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let (l, s) = (
            run(&local, &["list", "--json"]),
            run(&s3, &["list", "--json"]),
        );
        assert_eq!(
            l.status.code(),
            s.status.code(),
            "{range:?}: {}",
            stderr(&s)
        );
        let (l, s): (serde_json::Value, serde_json::Value) = (
            serde_json::from_slice(&l.stdout).unwrap(),
            serde_json::from_slice(&s.stdout).unwrap(),
        );
        assert_eq!(l["objects"], s["objects"], "{range:?}");
        assert_eq!(l["skipped"], s["skipped"], "{range:?}");

        let (l, s) = (run(&local, &["cat"]), run(&s3, &["cat"]));
        assert_eq!(
            s.status.code(),
            Some(3),
            "strays are reported: {}",
            stderr(&s)
        );
        assert_eq!(l.status.code(), s.status.code(), "{range:?}");
        assert_eq!(ndjson(&l), ndjson(&s), "{range:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn large_objects_are_read_in_ranged_parts_and_again_whole_if_they_change() {
    let moto = Moto::start();
    let bucket = unique_name("ghreplay-parts");
    moto.upload_dir(&bucket, std::path::Path::new(&fixture_archive()), "")
        .await;
    let archive = format!("s3://{bucket}/");
    let faults = common::S3Faults::start(&moto.endpoint);
    let cat = |extra: &[&str]| {
        moto.run(
            &[
                &[
                    "--archive",
                    &archive,
                    "--endpoint-url",
                    &faults.endpoint,
                    "cat",
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    let whole = cat(&[]);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    assert_eq!(faults.ranged_gets(), 0, "small objects: one GET each");

    // Parts of 100 bytes: every fixture object is several.
    let parts = cat(&["--fetch-part-size", "100"]);
    assert_eq!(parts.status.code(), Some(0), "{}", stderr(&parts));
    assert_eq!(ndjson(&parts), ndjson(&whole));
    let expected: u64 = common::walk_files(std::path::Path::new(&fixture_archive()))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len().div_ceil(100))
        .filter(|&n| n > 1)
        .sum();
    assert!(expected > 10);
    assert_eq!(
        u64::from(faults.ranged_gets()),
        expected,
        "one GET per part"
    );

    // One part from another version of its object: that object is read
    // again whole, and the output is the same.
    faults.other_versions(1);
    let changed = cat(&["--fetch-part-size", "100"]);
    assert_eq!(faults.served(), 1, "the fault was met");
    assert_eq!(changed.status.code(), Some(0), "{}", stderr(&changed));
    assert_eq!(ndjson(&changed), ndjson(&whole));
    assert!(
        stderr(&changed).contains("changed while it was read in parts"),
        "{}",
        stderr(&changed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_fails_part_way_stops_the_read_there() {
    let moto = Moto::start();
    let bucket = unique_name("ghreplay-deny");
    moto.upload_dir(&bucket, std::path::Path::new(&fixture_archive()), "")
        .await;
    let archive = format!("s3://{bucket}/");
    let faults = common::S3Faults::start(&moto.endpoint);
    // The fixture's hours are 10, 11 and 12; the listing of 12 is refused
    // once 10 and 11 have been listed (and, reading as it lists, read).
    faults.deny_listing("2026/01/15/12/");
    let range = ["--since", "2026-01-15T10", "--until", "2026-01-15T13"];
    let out = moto.run(
        &[
            &[
                "--archive",
                &archive,
                "--endpoint-url",
                &faults.endpoint,
                "cat",
            ][..],
            &range,
        ]
        .concat(),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("AccessDenied"), "{err}");
    assert!(err.contains("2026/01/15/12/"), "{err}");

    let all = moto.run(&[&["--archive", &archive, "cat"][..], &range].concat());
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    let before_12: Vec<_> = ndjson(&all)
        .into_iter()
        .filter(|l| !l["object"].as_str().unwrap().starts_with("2026/01/15/12/"))
        .collect();
    assert!(!before_12.is_empty());
    assert_eq!(
        ndjson(&out),
        before_12,
        "what was listed before the failure is read, in order, and nothing after"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hour_of_more_than_a_page_of_objects_is_listed_whole() {
    // S3 answers 1,000 keys a page; the listing streams page after page
    // (with the continuation token), and must lose none.
    use futures::StreamExt as _;
    const OBJECTS: usize = 1_234;
    let moto = Moto::start();
    let bucket = moto.new_bucket("ghreplay-pages").await;
    let s3 = moto.s3();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let (s3, bucket) = (s3.clone(), bucket.clone());
            async move {
                let (minute, second) = (i / 60 % 60, i % 60);
                let key = format!(
                    "2026/01/15/10/github-webhooks-1-2026-01-15-10-{minute:02}-{second:02}-00000000-0000-4000-8000-{i:012}"
                );
                let record = format!(
                    r#"{{"body":{{"zen":"z","hook_id":1}},"event":"ping","request_id":"ping-{i}"}}"#
                );
                s3.put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(record.into_bytes().into())
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let archive = format!("s3://{bucket}/");
    // The whole archive (the root listed recursively), and a range (the
    // hour listed recursively, beside the calendar's walk).
    for range in [
        &[][..],
        &["--since", "2026-01-15T10", "--until", "2026-01-15T11"],
    ] {
        let out = moto.run(&[&["--archive", &archive, "list", "--json"][..], range].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["totals"]["objects"], OBJECTS, "{range:?}");

        let out = moto.run(&[&["--archive", &archive, "cat"][..], range].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let ids: std::collections::BTreeSet<String> = ndjson(&out)
            .iter()
            .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), OBJECTS, "{range:?}");
    }
}
