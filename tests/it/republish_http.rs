//! `republish --to http://…`: deliveries re-sent to a webhook receiver.
//!
//! The receiver is a second, real `ghreplay serve` (it verifies signatures,
//! archives the raw bytes and dedupes on the delivery id), or, for the
//! answers a receiver may give (503 for a while, 429 with `Retry-After`, a
//! 400, a redirect), a small HTTP server in this file that answers as told.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{
    fixture_archive, make_archive, metric, ndjson, run, stderr, wait_for_progress, walk, Server,
};
use ghreplay::decode::{decode_object, DecodeOptions};
use ghreplay::signature::{self, Secret};

/// The secret the fixture archive's ghreplay records were signed with.
const FIXTURE_SECRET: &str = "fixture-secret";

fn write_secret(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A ghreplay-shape record: event, raw body, kept headers.
type Kept = (String, Vec<u8>, BTreeMap<String, String>);

/// Every ghreplay-shape record under `archive`, by delivery id.
fn records(archive: &Path) -> BTreeMap<String, Kept> {
    let mut out = BTreeMap::new();
    for entry in walk(archive) {
        let bytes = std::fs::read(&entry).unwrap();
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut d = flate2::read::MultiGzDecoder::new(&bytes[..]);
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut v).unwrap();
            v
        } else {
            bytes
        };
        let obj = decode_object("k".into(), None, bytes, &DecodeOptions::default());
        for e in &obj.events {
            let (Some(id), Some(raw), Some(h)) = (&e.delivery_id, &e.raw_body, &e.headers) else {
                continue;
            };
            out.insert(
                id.clone(),
                (
                    e.event.clone(),
                    obj.bytes(raw).to_vec(),
                    serde_json::from_str(h).unwrap(),
                ),
            );
        }
    }
    out
}

#[test]
fn deliveries_arrive_as_github_sent_them_and_sending_twice_archives_once() {
    let dir = tempfile::tempdir().unwrap();
    let fixture_secret = write_secret(dir.path(), "fixture-secret", FIXTURE_SECRET);
    let received = dir.path().join("received");
    let target = Server::start(&received, &["--secret-file", &fixture_secret]);
    let to = target.url("/webhook");
    let fixture = fixture_archive();
    let refused = dir.path().join("refused.ndjson");

    // Unsigned: the two ghreplay records carry GitHub's signatures and
    // arrive; the Mozilla and cztack records have none, and a verifying
    // receiver refuses them (401): listed, exit 3.
    let out = run(&[
        "--archive",
        &fixture,
        "republish",
        "--include-private",
        "--to",
        &to,
        "--refused-list",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let listed: Vec<serde_json::Value> = std::fs::read_to_string(&refused)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 11, "13 deliveries, 2 of them signed");
    assert!(listed
        .iter()
        .all(|r| r["detail"].as_str().unwrap().starts_with("HTTP 401")));
    assert!(stderr(&out).contains("SKIPPED: 11 events refused by the target"));

    let sent = records(Path::new(&fixture));
    let got = records(&received);
    assert_eq!(got.len(), 2);
    for (id, (event, body, headers)) in &got {
        let (want_event, want_body, want_headers) = &sent[id];
        assert_eq!(event, want_event, "{id}");
        assert_eq!(body, want_body, "{id}: the body arrives byte for byte");
        assert_eq!(
            headers["content-type"], want_headers["content-type"],
            "{id}"
        );
        assert_eq!(headers["x-github-hook-id"], "42", "{id}");
        let sig = headers["x-hub-signature-256"].as_bytes();
        assert_eq!(
            signature::verify(&[Secret::new(FIXTURE_SECRET)], body, Some(sig), None, false),
            Ok(()),
            "{id}: the original signature verifies"
        );
    }

    // Re-signed under the receiver's secret: every delivery arrives, the
    // cztack ones under deterministic ids.
    let resign = ["--sign-secret-file", &fixture_secret];
    let all = |extra: &[&str]| {
        let mut args = vec![
            "--archive",
            &fixture,
            "republish",
            "--include-private",
            "--to",
            &to,
        ];
        args.extend(extra);
        run(&args)
    };
    let out = all(&resign);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let by_event = |archive: &str| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for l in ndjson(&run(&["--archive", archive, "cat", "-q"])) {
            *counts
                .entry(l["event"].as_str().unwrap().into())
                .or_default() += 1;
        }
        counts
    };
    let first = by_event(received.to_str().unwrap());
    assert_eq!(
        first.values().sum::<usize>(),
        13,
        "every distinct delivery, once"
    );
    assert_eq!(first, by_event(&fixture), "the event names arrive");

    // The same range again: the receiver sees every id again and keeps none.
    let out = all(&resign);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = by_event(received.to_str().unwrap());
    assert_eq!(
        again.values().sum::<usize>(),
        13,
        "sending twice archives once"
    );
    assert_eq!(metric(target.port, "ghreplay_duplicates_total"), 15);
}

/// What the scripted receiver does with a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Status(u16),
    RetryAfter(u16, u64),
    Redirect,
}

/// A receiver that answers by delivery id and by request count.
#[derive(Default)]
struct Script {
    /// Every request: (delivery id, when, status answered).
    log: Vec<(String, Instant, u16)>,
    /// Answers for a delivery id, used in turn; the last one stays.
    by_id: HashMap<String, Vec<Answer>>,
    /// The first N requests of all get 503.
    unavailable_first: usize,
}

async fn scripted(script: Arc<Mutex<Script>>) -> (u16, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, _body: axum::body::Bytes| {
            let script = script.clone();
            async move {
                let id = headers
                    .get("x-github-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut s = script.lock().unwrap();
                let answer = if s.log.len() < s.unavailable_first {
                    Answer::Status(503)
                } else {
                    match s.by_id.get_mut(&id) {
                        Some(list) if list.len() > 1 => list.remove(0),
                        Some(list) => list[0],
                        None => Answer::Ok,
                    }
                };
                let (status, retry_after, location) = match answer {
                    Answer::Ok => (200, None, None),
                    Answer::Status(c) => (c, None, None),
                    Answer::RetryAfter(c, secs) => (c, Some(secs.to_string()), None),
                    Answer::Redirect => (302, None, Some("/elsewhere")),
                };
                s.log.push((id, Instant::now(), status));
                let mut h = HeaderMap::new();
                if let Some(r) = retry_after {
                    h.insert("retry-after", r.parse().unwrap());
                }
                if let Some(l) = location {
                    h.insert("location", l.parse().unwrap());
                }
                (StatusCode::from_u16(status).unwrap(), h, "as scripted").into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn passing_failures_are_retried_and_final_refusals_listed() {
    // A window of 4 posts one delivery per batch.
    retried_and_refused_with_window(4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passing_failures_and_refusals_inside_a_batch_are_told_apart() {
    // A window of 32 posts 8 deliveries per batch: the refused, the
    // retried and the confirmed share one batch.
    retried_and_refused_with_window(32).await;
}

async fn retried_and_refused_with_window(window: usize) {
    let fixture = fixture_archive();
    let all: Vec<String> = ndjson(&run(&["--archive", &fixture, "cat", "-q"]))
        .iter()
        .filter_map(|l| l["delivery_id"].as_str().map(str::to_owned))
        .collect();
    // Two Mozilla deliveries the receiver refuses for good, one it asks to
    // wait for, the rest after a spell of 503s.
    let (bad, moved, busy) = (all[0].clone(), all[1].clone(), all[2].clone());
    let script = Arc::new(Mutex::new(Script {
        unavailable_first: 6,
        by_id: HashMap::from([
            (bad.clone(), vec![Answer::Status(400)]),
            (moved.clone(), vec![Answer::Redirect]),
            (busy.clone(), vec![Answer::RetryAfter(429, 2), Answer::Ok]),
        ]),
        ..Script::default()
    }));
    let (port, server) = scripted(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let refused = dir.path().join("refused.ndjson");
    let out = tokio::task::spawn_blocking({
        let (fixture, refused) = (fixture.clone(), refused.clone());
        move || {
            run(&[
                "--archive",
                &fixture,
                "republish",
                "--include-private",
                "--to",
                &format!("http://127.0.0.1:{port}/hook"),
                "--confirm-window",
                &window.to_string(),
                "--retry-for",
                "30s",
                "--refused-list",
                refused.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "refusals are skipped input: {}",
        stderr(&out)
    );

    let listed: HashSet<String> = std::fs::read_to_string(&refused)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["delivery_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, HashSet::from([bad.clone(), moved.clone()]));
    let err = stderr(&out);
    assert!(err.contains("HTTP 400 Bad Request"), "{err}");
    assert!(err.contains("HTTP 302 Found"), "{err}");

    let s = script.lock().unwrap();
    let confirmed: HashSet<&str> = s
        .log
        .iter()
        .filter(|(_, _, status)| *status == 200)
        .map(|(id, _, _)| id.as_str())
        .collect();
    let ids_sent: HashSet<String> = s.log.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(
        ids_sent.len(),
        13,
        "the cztack records went with made-up ids"
    );
    assert_eq!(
        confirmed.len(),
        11,
        "everything but the two refused: nothing lost"
    );
    // The redirect was not followed, and each refusal was final: asked
    // again only while the receiver answered 503.
    let answered = |want: &str| {
        s.log
            .iter()
            .filter(|(id, _, status)| id == want && *status != 503)
            .count()
    };
    assert_eq!(answered(&moved), 1);
    assert_eq!(answered(&bad), 1);
    assert!(
        s.log.iter().filter(|(_, _, status)| *status == 503).count() == 6,
        "the spell of 503s was retried through"
    );
    assert_retry_after_honoured(&s.log, &busy, Duration::from_secs(2));
    server.abort();
}

/// The delivery answered 429 with a `Retry-After` was asked again, once,
/// no sooner than it said.
fn assert_retry_after_honoured(log: &[(String, Instant, u16)], busy: &str, wait: Duration) {
    let busy_at: Vec<Instant> = log
        .iter()
        .filter(|(id, _, status)| id == busy && *status != 503)
        .map(|(_, at, _)| *at)
        .collect();
    assert_eq!(busy_at.len(), 2, "429, then 200");
    assert!(
        busy_at[1] - busy_at[0] >= wait,
        "waited {:?}",
        busy_at[1] - busy_at[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_down_too_long_stops_with_a_checkpoint_that_resumes() {
    let script = Arc::new(Mutex::new(Script {
        unavailable_first: usize::MAX,
        ..Script::default()
    }));
    let (port, server) = scripted(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let cps = cp.to_str().unwrap().to_owned();
    let to = format!("http://127.0.0.1:{port}/hook");
    let republish = {
        let (to, cps) = (to.clone(), cps.clone());
        move |extra: &'static [&'static str]| {
            let mut args = vec![
                "--archive".to_owned(),
                fixture_archive(),
                "republish".into(),
                "--to".into(),
                to.clone(),
                "--checkpoint".into(),
                cps.clone(),
            ];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&args)
        }
    };
    let out = tokio::task::spawn_blocking({
        let r = republish.clone();
        move || r(&["--retry-for", "2s"])
    })
    .await
    .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("did not take"), "{err}");
    assert!(err.contains("HTTP 503"), "{err}");
    assert!(
        err.contains(&format!("--resume --checkpoint {cps}")),
        "{err}"
    );

    script.lock().unwrap().unavailable_first = 0;
    let out = tokio::task::spawn_blocking(move || republish(&["--resume"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = script.lock().unwrap();
    let confirmed: HashSet<&str> = s
        .log
        .iter()
        .filter(|(_, _, st)| *st == 200)
        .map(|(id, _, _)| id.as_str())
        .collect();
    assert_eq!(confirmed.len(), 9, "every public delivery of the fixture");
    server.abort();
}

#[test]
fn a_killed_run_resumes_and_the_receiver_holds_every_delivery() {
    const WINDOW: usize = 20;
    const BOUND: usize = ghreplay::deliver::ledger::resend_bound(WINDOW) as usize;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    make_archive(
        &archive,
        &[
            "--events",
            "1200",
            "--hours",
            "2",
            "--seed",
            "3",
            "--records-per-object",
            "50",
        ],
    );
    let archive = archive.to_str().unwrap();
    let expected: HashSet<String> =
        ndjson(&run(&["--archive", archive, "cat", "-q", "--public-only"]))
            .iter()
            .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
            .collect();
    let secret = write_secret(dir.path(), "secret", "resign");
    let received = dir.path().join("received");
    let target = Server::start(&received, &["--secret-file", &secret]);
    let cp = dir.path().join("cp.json");
    let cps = cp.to_str().unwrap();
    let cmd = |extra: &[&str]| {
        let mut c = crate::common::bin();
        c.args([
            "--archive",
            archive,
            "republish",
            "--to",
            &target.url("/webhook"),
        ])
        .args(["--sign-secret-file", &secret, "--checkpoint", cps])
        .args(["--confirm-window", &WINDOW.to_string(), "--rate", "400"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        c
    };
    let mut child = cmd(&[]).spawn().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(wait_for_progress(&cp));
    child.kill().unwrap(); // SIGKILL mid-run
    child.wait().unwrap();

    let out = cmd(&["--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("may already have delivered up to {BOUND}")),
        "{}",
        stderr(&out)
    );
    let got: Vec<String> = ndjson(&run(&[
        "--archive",
        received.to_str().unwrap(),
        "cat",
        "-q",
    ]))
    .iter()
    .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
    .collect();
    let got_set: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "the receiver archived each once");
    assert_eq!(got_set, expected, "nothing lost");
    let duplicates = metric(target.port, "ghreplay_duplicates_total");
    assert!(
        duplicates <= BOUND as u64,
        "{duplicates} re-sent, bound {BOUND}"
    );
}
