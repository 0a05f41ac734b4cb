//! `republish` when the broker goes away mid-run: through a TCP proxy in front
//! of the real `RabbitMQ`, the connection is cut, refused for longer than
//! `--retry-for`, or the process is killed with SIGKILL. Every event must
//! arrive, and duplicates stay within `resend_bound` (three confirm windows).

use std::collections::HashSet;

use crate::common;
use crate::common::{
    amqp_url, assert_complete, make_archive, ndjson, run, stderr, wait_for_progress, Bound, Proxy,
    RABBIT_PORT,
};

const WINDOW: usize = 50;
/// What a stopped run may have sent past its checkpoint.
const BOUND: usize = ghreplay::deliver::ledger::resend_bound(WINDOW) as usize;
/// Messages in the queue that show a run is well under way (of 1,500 sent
/// at 600/s), when a test cuts, refuses or kills.
const UNDER_WAY: u32 = 200;

/// A test's scratch directory with an archive of 1,500 deliveries, their
/// ids, and where its checkpoint goes.
struct Scratch {
    dir: tempfile::TempDir,
    archive: String,
    expected: HashSet<String>,
    cp: String,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
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
    let expected = ndjson(&run(&["--archive", &archive, "cat", "-q"]))
        .iter()
        .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    let cp = dir.path().join("cp.json").to_str().unwrap().to_owned();
    Scratch {
        dir,
        archive,
        expected,
        cp,
    }
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
    let s = scratch();
    let q = Bound::new("cut").await;
    let proxy = Proxy::start(RABBIT_PORT);
    let child = republish_cmd(&s.archive, proxy.port, &q.exchange, &[])
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
    assert_complete(&q.drain().await, &s.expected, WINDOW);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_gone_too_long_stops_with_a_checkpoint_that_resumes_with_no_gap() {
    let s = scratch();
    let cps = s.cp.as_str();
    let q = Bound::new("outage").await;
    let proxy = Proxy::start(RABBIT_PORT);
    let child = republish_cmd(
        &s.archive,
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
        &s.archive,
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
    assert_complete(&q.drain().await, &s.expected, BOUND);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_resumes_from_its_checkpoint_with_no_gap() {
    let s = scratch();
    let cps = s.cp.as_str();
    let q = Bound::new("kill").await;
    let mut child = republish_cmd(&s.archive, RABBIT_PORT, &q.exchange, &["--checkpoint", cps])
        .spawn()
        .unwrap();
    wait_for_progress(s.cp.as_ref()).await;
    child.kill().unwrap(); // SIGKILL: no chance to save anything more
    child.wait().unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.cp).unwrap()).unwrap();
    assert!(
        saved["confirmed"].as_u64().unwrap() > 0,
        "progress was saved while running: {saved}"
    );
    assert_eq!(saved["complete"], false);

    let out = republish_cmd(
        &s.archive,
        RABBIT_PORT,
        &q.exchange,
        &["--checkpoint", cps, "--resume"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("may already have delivered up to {BOUND}")),
        "the possible duplicates are reported: {}",
        stderr(&out)
    );
    assert_complete(&q.drain().await, &s.expected, BOUND);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_settles_saves_the_checkpoint_exits_4_and_a_resume_has_no_gap() {
    let s = scratch();
    let cps = s.cp.as_str();
    let q = Bound::new("sigint").await;
    let child = republish_cmd(&s.archive, RABBIT_PORT, &q.exchange, &["--checkpoint", cps])
        .spawn()
        .unwrap();
    wait_for_progress(s.cp.as_ref()).await;
    crate::common::signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(4),
        "Ctrl-C is a resumable stop: {err}"
    );
    assert!(err.contains("--resume --checkpoint"), "{err}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.cp).unwrap()).unwrap();
    assert_eq!(saved["complete"], false, "{saved}");
    let confirmed = saved["confirmed"].as_u64().unwrap();
    assert!(
        confirmed > 0 && confirmed < s.expected.len() as u64,
        "stopped part way: {saved}"
    );
    // Everything sent before the stop was settled into the checkpoint.
    let mut got = q.drain().await;
    assert_eq!(got.len() as u64, confirmed, "{saved}");

    let out = republish_cmd(
        &s.archive,
        RABBIT_PORT,
        &q.exchange,
        &["--checkpoint", cps, "--resume"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Resumed exactly after the checkpoint: no gap, and nothing twice.
    got.extend(q.drain().await);
    assert_complete(&got, &s.expected, 0);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_nacks_are_retried_then_stop_the_run_and_a_resume_completes_it() {
    let s = scratch();
    let cps = s.cp.as_str();
    // The queue takes 300 messages, then the broker nacks every publish.
    let q = Bound::rejecting_past("nack", 300).await;
    let out = republish_cmd(
        &s.archive,
        RABBIT_PORT,
        &q.exchange,
        &["--checkpoint", cps, "--retry-for", "3s"],
    )
    .output()
    .unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(4),
        "nacks past --retry-for stop the run: {err}"
    );
    assert!(err.contains("nack"), "says the broker refused: {err}");
    assert!(err.contains("sending again"), "retried first: {err}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.cp).unwrap()).unwrap();
    assert!(
        saved["confirmed"].as_u64().unwrap() <= 300,
        "nothing nacked counts as confirmed: {saved}"
    );

    // Room again: drain the queue, then resume, draining as it goes (the
    // queue still holds only 300 at a time).
    let mut got = q.drain().await;
    let log = s.dir.path().join("resume.log");
    let mut child = republish_cmd(
        &s.archive,
        RABBIT_PORT,
        &q.exchange,
        &["--checkpoint", cps, "--resume"],
    )
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        got.extend(q.drain().await);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resume did not finish"
        );
    };
    got.extend(q.drain().await);
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{said}");
    assert_complete(&got, &s.expected, BOUND);
    q.delete().await;
}
