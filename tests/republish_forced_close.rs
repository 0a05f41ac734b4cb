//! The broker itself closes every connection mid-run (`rabbitmqctl
//! close_all_connections`, as an operator or a broker restart would): the
//! run reconnects and every event arrives. Alone in its test binary, since
//! it closes everyone's connections.
#![allow(clippy::unwrap_used)] // a panic is the test failure report

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{amqp_url, assert_complete, make_archive, ndjson, run, stderr, Bound, RABBIT_PORT};

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_forced_close_is_reconnected_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    make_archive(
        &path,
        &[
            "--events",
            "1200",
            "--hours",
            "1",
            "--seed",
            "5",
            "--records-per-object",
            "40",
        ],
    );
    let archive = path.to_str().unwrap();
    let expected: HashSet<String> = ndjson(&run(&["--archive", archive, "cat", "-q"]))
        .iter()
        .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    let q = Bound::new("forced").await;
    let child = common::bin()
        .args([
            "--archive",
            archive,
            "republish",
            "--include-private",
            "--to",
            &amqp_url(RABBIT_PORT),
        ])
        .args([
            "--exchange",
            &q.exchange,
            "--confirm-window",
            "50",
            "--rate",
            "500",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = std::process::Command::new("rabbitmqctl")
        .args(["close_all_connections", "ghreplay forced-close test"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sent again after reconnecting"),
        "{}",
        stderr(&out)
    );

    assert_complete(&q.drain().await, &expected, 50);
    q.delete().await;
}
