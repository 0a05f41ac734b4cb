//! `ghreplay republish` to Pulse: a real `RabbitMQ` on 127.0.0.1, a queue bound
//! with `#`, and every message compared with what the archive holds.

use crate::common;
use crate::common::{amqp_url, body, fixture_archive, ndjson, run, stderr, Bound, RABBIT_PORT};
use serde_json::Value;

fn republish(extra: &[&str]) -> std::process::Output {
    let archive = fixture_archive();
    let mut args = vec!["--archive", archive.as_str(), "republish"];
    args.extend_from_slice(extra);
    run(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_public_event_arrives_as_pulse_shaped_it_and_nothing_private() {
    let q = Bound::new("shape").await;
    let url = amqp_url(RABBIT_PORT);
    let out = republish(&["--to", &url, "--exchange", &q.exchange]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("9 sent, 9 confirmed"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("guest:guest"),
        "password leaked: {}",
        stderr(&out)
    );

    let expected = ndjson(&run(&[
        "--archive",
        &fixture_archive(),
        "cat",
        "--public-only",
    ]));
    let got = q.drain().await;
    assert_eq!(got.len(), expected.len());
    for (m, want) in got.iter().zip(&expected) {
        let b = body(m);
        let repo = want["repository"].as_str().unwrap();
        let event = want["event"].as_str().unwrap();
        assert_eq!(m.delivery.routing_key.as_str(), format!("{repo}/{event}"));
        assert_eq!(b["event"], want["event"]);
        assert_eq!(b["request_id"], want["delivery_id"]);
        assert_eq!(b["payload"], want["payload"]);
        assert_eq!(b["_meta"]["exchange"], q.exchange.as_str());
        assert_eq!(b["_meta"]["routing_key"], format!("{repo}/{event}"));
        assert_eq!(b["_meta"]["serializer"], "json");
        let sent = b["_meta"]["sent"].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(sent, "%Y-%m-%dT%H:%M:%S%.f").is_ok(),
            "{sent}"
        );
        let p = &m.properties;
        assert_eq!(
            p.content_type()
                .as_ref()
                .map(lapin::types::ShortString::as_str),
            Some("application/json")
        );
        assert_eq!(
            p.content_encoding()
                .as_ref()
                .map(lapin::types::ShortString::as_str),
            Some("utf-8")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(want["public"], true);
    }
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn include_private_sends_the_rest_and_says_so_loudly() {
    let q = Bound::new("private").await;
    let out = republish(&[
        "--to",
        &amqp_url(RABBIT_PORT),
        "--exchange",
        &q.exchange,
        "--include-private",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "WARNING: --include-private: 4 events the privacy filter holds back were sent"
        ),
        "{}",
        stderr(&out)
    );
    let got = q.drain().await;
    assert_eq!(got.len(), 13);
    let keys: Vec<_> = got
        .iter()
        .map(|m| m.delivery.routing_key.to_string())
        .collect();
    assert!(
        keys.contains(&"acme/secret-sauce/push".to_owned()),
        "{keys:?}"
    );
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_counts_by_event_and_repository_and_sends_nothing() {
    let q = Bound::new("dry").await;
    let out = republish(&[
        "--to",
        &amqp_url(RABBIT_PORT),
        "--exchange",
        &q.exchange,
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("would send 9 events to amqp://guest@127.0.0.1:5672/%2f"),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned)
    };
    assert_eq!(row("release").as_deref(), Some("3"));
    assert_eq!(
        row("mozilla/gecko-dev").as_deref(),
        Some("4"),
        "its duplicate push is dropped"
    );
    assert!(q.drain().await.is_empty());
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_cannot_be_used_fails_before_anything_is_read() {
    let closed = common::free_port();
    let out = republish(&["--to", &amqp_url(closed)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("cannot use amqp://guest@127.0.0.1:{closed}/%2f")),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("objects"),
        "read before the healthcheck: {}",
        stderr(&out)
    );

    let out = republish(&[
        "--to",
        &amqp_url(RABBIT_PORT),
        "--exchange",
        "exchange/ghreplay-test/absent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--declare creates it"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unroutable_message_with_mandatory_stops_the_run_resumably() {
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let exchange = common::unique_name("exchange/ghreplay-test/unbound");
    let out = republish(&[
        "--to",
        &amqp_url(RABBIT_PORT),
        "--exchange",
        &exchange,
        "--declare",
        "--mandatory",
        "--checkpoint",
        cp.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no queue is bound"), "{err}");
    assert!(err.contains("--resume --checkpoint"), "{err}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(saved["complete"], false);
    assert_eq!(
        saved["confirmed_through"],
        Value::Null,
        "nothing was confirmed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_resume_sends_only_the_rest_and_refuses_other_runs() {
    let q = Bound::new("resume").await;
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let cps = cp.to_str().unwrap();
    let url = amqp_url(RABBIT_PORT);

    // A run over hour 10; a checkpoint belongs to that run alone.
    let out = republish(&[
        "--to",
        &url,
        "--exchange",
        &q.exchange,
        "--checkpoint",
        cps,
        "--until",
        "2026-01-15T11",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = republish(&["--to", &url, "--exchange", &q.exchange, "--checkpoint", cps]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an existing checkpoint is never overwritten"
    );
    assert!(stderr(&out).contains("pass --resume"), "{}", stderr(&out));
    let out = republish(&[
        "--to",
        &url,
        "--exchange",
        &q.exchange,
        "--checkpoint",
        cps,
        "--resume",
        "--until",
        "2026-01-16",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("different run"), "{}", stderr(&out));
    // The same run, complete: nothing to do.
    let out = republish(&[
        "--to",
        &url,
        "--exchange",
        &q.exchange,
        "--checkpoint",
        cps,
        "--resume",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("is complete"), "{}", stderr(&out));

    // A checkpoint that stopped part way: resume sends exactly the rest.
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    let all = q.drain().await;
    assert_eq!(
        all.len(),
        6,
        "hour 10: 4 public Mozilla records and 2 raw ones"
    );
    saved["complete"] = Value::Bool(false);
    saved["confirmed_through"]["index"] = Value::from(0); // only the first object's first event
    saved["confirmed_through"]["object"] = Value::from(
        "2026/01/15/10/github-webhooks-1-2026-01-15-10-05-00-00000000-0000-4000-8000-000000000001",
    );
    saved["confirmed"] = Value::from(1);
    std::fs::write(&cp, serde_json::to_vec(&saved).unwrap()).unwrap();
    let out = republish(&[
        "--to",
        &url,
        "--exchange",
        &q.exchange,
        "--checkpoint",
        cps,
        "--resume",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 already sent by an earlier run"),
        "{}",
        stderr(&out)
    );
    let rest = q.drain().await;
    let ids = |ms: &[lapin::message::BasicGetMessage]| {
        ms.iter()
            .map(|m| body(m)["payload"].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&rest), ids(&all[1..]));
    let saved: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(saved["complete"], true);
    assert_eq!(saved["confirmed"], 6);
    q.delete().await;
}

#[test]
fn dry_run_reports_skipped_input_in_its_exit_status_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let hour = dir.path().join("2026/02/01/00");
    std::fs::create_dir_all(&hour).unwrap();
    let good = r#"{"body": {"action": "published", "release": {}, "repository": {"full_name": "o/r", "private": false}}, "event": "release", "request_id": "r1"}"#;
    std::fs::write(
        hour.join("s-1-2026-02-01-00-00-00-00000000-0000-4000-8000-000000000001"),
        format!("{good}not json\n"),
    )
    .unwrap();
    let archive = dir.path().to_str().unwrap();
    let dry = |extra: &[&str]| {
        let mut args = vec![
            "--archive",
            archive,
            "republish",
            "--to",
            "ndjson",
            "--dry-run",
            "-q",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = dry(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("would send 1 event"));
    assert_eq!(dry(&["--allow-skipped"]).status.code(), Some(0));
}

/// The delivery ids and key hours `republish --to ndjson:FILE --shard` sends.
fn sharded(archive: &str, dir: &std::path::Path, shard: Option<&str>) -> Vec<(String, String)> {
    let file = dir.join(format!(
        "{}.ndjson",
        shard.unwrap_or("all").replace('/', "-")
    ));
    let to = format!("ndjson:{}", file.display());
    let mut args = vec![
        "--archive",
        archive,
        "-q",
        "republish",
        "--include-private",
        "--to",
        &to,
    ];
    if let Some(s) = shard {
        args.extend(["--shard", s]);
    }
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let key = v["object"].as_str().unwrap();
            // The key's YYYY/MM/DD/HH.
            let hour = key.split('/').take(4).collect::<Vec<_>>().join("/");
            (v["delivery_id"].as_str().unwrap().to_owned(), hour)
        })
        .collect()
}

#[test]
fn three_shards_send_what_one_run_sends_with_no_hour_in_two() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    common::make_archive(
        &archive,
        &[
            "--events",
            "300",
            "--hours",
            "7",
            "--start",
            "2026-03-01T22",
        ],
    );
    let archive = archive.to_str().unwrap();
    let mut whole: Vec<String> = sharded(archive, dir.path(), None)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    whole.sort();
    assert_eq!(whole.len(), 300);

    let mut union = Vec::new();
    let mut hours_seen: Vec<std::collections::BTreeSet<String>> = Vec::new();
    for i in 0..3 {
        let got = sharded(archive, dir.path(), Some(&format!("{i}/3")));
        assert!(!got.is_empty(), "shard {i}/3 sent nothing");
        hours_seen.push(got.iter().map(|(_, h)| h.clone()).collect());
        union.extend(got.into_iter().map(|(id, _)| id));
    }
    union.sort();
    assert_eq!(
        union, whole,
        "the shards together send the whole range once"
    );
    for a in 0..3 {
        for b in a + 1..3 {
            assert!(
                hours_seen[a].is_disjoint(&hours_seen[b]),
                "shards {a} and {b} share hours: {:?} / {:?}",
                hours_seen[a],
                hours_seen[b]
            );
        }
    }
    // Hours since the epoch modulo 3: 2026-03-01T22 is hour 492,334 (= 1
    // mod 3), so shard 1 has 22:00, 01:00 and 04:00.
    assert_eq!(
        hours_seen[1].iter().cloned().collect::<Vec<_>>(),
        ["2026/03/01/22", "2026/03/02/01", "2026/03/02/04"]
    );

    let out = run(&[
        "--archive",
        archive,
        "republish",
        "--to",
        "ndjson",
        "--shard",
        "3/3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected I/N with 0 <= I < N"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_is_its_own_run_for_its_checkpoint() {
    let q = Bound::new("shard").await;
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let cps = cp.to_str().unwrap();
    let url = amqp_url(RABBIT_PORT);
    let base = ["--to", &url, "--exchange", &q.exchange, "--checkpoint", cps];
    let out = republish(&[&base[..], &["--shard", "0/2"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = republish(&[&base[..], &["--resume", "--shard", "1/2"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("different run") && err.contains("shard"),
        "{err}"
    );
    let out = republish(&[&base[..], &["--resume", "--shard", "0/2"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("is complete"), "{}", stderr(&out));
}
