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
