//! The read path when S3 misbehaves: throttling, and downloads that break
//! off or stall part way (the SDK's stalled-stream protection ends those
//! after its grace period), injected by a proxy in front of moto (the real
//! wire protocol).

use crate::common::{self, ndjson, stderr, unique_name, Moto, S3Faults};

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_broken_downloads_are_retried_and_nothing_is_skipped() {
    let moto = Moto::start();
    let bucket = unique_name("ghreplay-faults");
    moto.upload_dir(
        &bucket,
        std::path::Path::new(&common::fixture_archive()),
        "",
    )
    .await;
    let archive = format!("s3://{bucket}/");
    let run =
        |endpoint: &str| moto.run(&["--archive", &archive, "--endpoint-url", endpoint, "cat"]);
    let clean = run(&moto.endpoint);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let expected = ndjson(&clean);
    assert!(!expected.is_empty());

    let faults = S3Faults::start(&moto.endpoint);
    faults.slow_down(3);
    faults.cut_bodies(2);
    faults.stall_bodies(1);
    let out = run(&faults.endpoint);
    assert_eq!(faults.served(), 6, "every fault was met");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ndjson(&out), expected, "the same events, none skipped");
    assert!(
        stderr(&out).contains("trying again"),
        "a broken download is retried, and says so: {}",
        stderr(&out)
    );
}
