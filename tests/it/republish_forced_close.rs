//! The broker itself closes the run's connection mid-run (`rabbitmqctl
//! close_connection`, as an operator or a broker restart would): the run
//! reconnects and every event arrives. Only this run's connection is closed
//! (found by the process id in its connection name), so the tests running
//! beside it keep theirs.

use std::collections::HashSet;

use crate::common;
use crate::common::{
    amqp_url, assert_complete, make_archive, ndjson, run, stderr, Bound, RABBIT_PORT,
};

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
            "150",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    q.wait_for(100).await;
    close_connections_of(child.id());
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

/// Closes, from the broker's side, every connection that process `pid`
/// opened (its connection name says `pid N`).
fn close_connections_of(pid: u32) {
    let rabbitmqctl = |args: &[&str]| {
        let out = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listing = rabbitmqctl(&["list_connections", "-q", "pid", "client_properties"]);
    let ours: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(&format!("(pid {pid})")))
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert!(
        !ours.is_empty(),
        "no connection of pid {pid} in:\n{listing}"
    );
    for conn in ours {
        rabbitmqctl(&["close_connection", conn, "ghreplay forced-close test"]);
    }
}
