//! `republish` when the broker goes away mid-run: through a TCP proxy in front
//! of the real `RabbitMQ`, the connection is cut, refused for longer than
//! `--retry-for`, or the process is killed with SIGKILL. Every event must
//! arrive, and duplicates stay within twice the confirm window.

use std::collections::HashSet;
use std::path::Path;

use crate::common;
use crate::common::{
    amqp_url, assert_complete, make_archive, ndjson, run, stderr, wait_for_progress, Bound, Proxy,
    RABBIT_PORT,
};

const WINDOW: usize = 50;
/// Messages in the queue that show a run is well under way (of 1,500 sent
/// at 600/s), when a test cuts, refuses or kills.
const UNDER_WAY: u32 = 200;

/// An archive of 1,500 deliveries and their ids.
fn archive(dir: &Path) -> (String, HashSet<String>) {
    let path = dir.join("archive");
    make_archive(
        &path,
        &[
            "--events",
            "1500",
            "--hours",
            "2",
            "--seed",
            "11",
            "--records-per-object",
            "50",
        ],
    );
    let archive = path.to_str().unwrap().to_owned();
    let ids = ndjson(&run(&["--archive", &archive, "cat", "-q"]))
        .iter()
        .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    (archive, ids)
}

fn republish_cmd(
    archive: &str,
    port: u16,
    exchange: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut c = common::bin();
    c.args([
        "--archive",
        archive,
        "republish",
        "--include-private",
        "--to",
    ])
    .arg(amqp_url(port))
    .args([
        "--exchange",
        exchange,
        "--confirm-window",
        &WINDOW.to_string(),
        "--rate",
        "600",
    ])
    .args(extra)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_connection_is_reconnected_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, expected) = archive(dir.path());
    let q = Bound::new("cut").await;
    let proxy = Proxy::start(RABBIT_PORT);
    let child = republish_cmd(&archive, proxy.port, &q.exchange, &[])
        .spawn()
        .unwrap();
    q.wait_for(UNDER_WAY).await;
    proxy.cut();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sent again after reconnecting"),
        "{}",
        stderr(&out)
    );
    assert_complete(&q.drain().await, &expected, WINDOW);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_gone_too_long_stops_with_a_checkpoint_that_resumes_with_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, expected) = archive(dir.path());
    let cp = dir.path().join("cp.json");
    let cps = cp.to_str().unwrap();
    let q = Bound::new("outage").await;
    let proxy = Proxy::start(RABBIT_PORT);
    let child = republish_cmd(
        &archive,
        proxy.port,
        &q.exchange,
        &["--checkpoint", cps, "--retry-for", "2s"],
    )
    .spawn()
    .unwrap();
    q.wait_for(UNDER_WAY).await;
    proxy.refuse();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("could not reconnect for 2 s"), "{err}");
    assert!(
        err.contains(&format!("--resume --checkpoint {cps}")),
        "{err}"
    );

    proxy.accept();
    let out = republish_cmd(
        &archive,
        proxy.port,
        &q.exchange,
        &["--checkpoint", cps, "--resume"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already sent by an earlier run"),
        "{}",
        stderr(&out)
    );
    assert_complete(&q.drain().await, &expected, 2 * WINDOW);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_resumes_from_its_checkpoint_with_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, expected) = archive(dir.path());
    let cp = dir.path().join("cp.json");
    let cps = cp.to_str().unwrap();
    let q = Bound::new("kill").await;
    let mut child = republish_cmd(&archive, RABBIT_PORT, &q.exchange, &["--checkpoint", cps])
        .spawn()
        .unwrap();
    wait_for_progress(&cp).await;
    child.kill().unwrap(); // SIGKILL: no chance to save anything more
    child.wait().unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert!(
        saved["confirmed"].as_u64().unwrap() > 0,
        "progress was saved while running: {saved}"
    );
    assert_eq!(saved["complete"], false);

    let out = republish_cmd(
        &archive,
        RABBIT_PORT,
        &q.exchange,
        &["--checkpoint", cps, "--resume"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("may already have delivered up to {}", 2 * WINDOW)),
        "the possible duplicates are reported: {}",
        stderr(&out)
    );
    assert_complete(&q.drain().await, &expected, 2 * WINDOW);
    q.delete().await;
}
