//! `republish --to sns:...` through moto (the real SNS wire protocol): an SQS
//! queue subscribed to the topic receives every message, read back and
//! compared with the archive.

use crate::common;
use crate::common::{fixture_archive, ndjson, stderr, topic_with_queue, Moto};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn every_public_event_reaches_a_subscriber_in_mozillas_string_form() {
    let moto = Moto::start();
    let topic = topic_with_queue(&moto).await;
    let archive = fixture_archive();
    let out = moto.run(&[
        "--archive",
        &archive,
        "republish",
        "--to",
        &format!("sns:{}", topic.arn),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("9 sent, 9 confirmed"),
        "{}",
        stderr(&out)
    );

    let expected = ndjson(&common::run(&[
        "--archive",
        &archive,
        "cat",
        "--public-only",
    ]));
    let got = topic.drain().await;
    assert_eq!(got.len(), expected.len());
    // SNS to SQS does not keep order: match by payload and delivery id.
    for want in &expected {
        let found = got.iter().find(|env| {
            let m: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
            m["body"] == want["payload"] && m["request_id"] == want["delivery_id"]
        });
        let env = found.unwrap_or_else(|| panic!("not delivered: {}", want["payload"]));
        let message: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
        // What Mozilla's subscribers parse: {"body", "event", "request_id"}.
        assert_eq!(message.as_object().unwrap().len(), 3);
        assert_eq!(message["event"], want["event"]);
        assert_eq!(message["request_id"], want["delivery_id"]);
        let text = env["Message"].as_str().unwrap();
        assert!(
            text.starts_with(r#"{"body": {"#),
            "json.dumps(sort_keys=True) form: {text:.60}"
        );
        let attrs = &env["MessageAttributes"];
        assert_eq!(attrs["event"]["Value"], want["event"]);
        assert_eq!(attrs["repository"]["Value"], want["repository"]);
        if want["delivery_id"].is_string() {
            assert_eq!(attrs["delivery_id"]["Value"], want["delivery_id"]);
        } else {
            assert!(
                attrs.get("delivery_id").is_none(),
                "no empty attribute for a raw payload"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_messages_are_listed_not_dropped_and_a_missing_topic_fails_first() {
    let moto = Moto::start();
    let topic = topic_with_queue(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let hour = dir.path().join("2026/03/01/00");
    std::fs::create_dir_all(&hour).unwrap();
    let big = "x".repeat(300_000);
    let small = r#"{"body": {"action": "published", "release": {}, "repository": {"full_name": "o/r", "private": false}}, "event": "release", "request_id": "small"}"#;
    let large = small
        .replace(
            "{}, \"repository\"",
            &format!("{{\"body\": \"{big}\"}}, \"repository\""),
        )
        .replace("small", "large");
    std::fs::write(
        hour.join("s-1-2026-03-01-00-00-00-00000000-0000-4000-8000-000000000001"),
        format!("{small}{large}"),
    )
    .unwrap();
    let list = dir.path().join("oversize.ndjson");
    let out = moto.run(&[
        "--archive",
        dir.path().to_str().unwrap(),
        "republish",
        "--to",
        &format!("sns:{}", topic.arn),
        "--oversize-list",
        list.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "oversize is skipped input: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("SKIPPED: 1 event over SNS's 256 KiB limit"),
        "{}",
        stderr(&out)
    );
    let listed: Value =
        serde_json::from_str(std::fs::read_to_string(&list).unwrap().trim()).unwrap();
    assert_eq!(listed["delivery_id"], "large");
    let got = topic.drain().await;
    assert_eq!(got.len(), 1);

    let out = moto.run(&[
        "--archive",
        &fixture_archive(),
        "republish",
        "--to",
        "sns:arn:aws:sns:us-east-1:123456789012:no-such-topic",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot use SNS topic"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_sns_run_resumes_from_its_checkpoint_with_no_gap() {
    const WINDOW: usize = 50;
    let moto = Moto::start();
    let topic = topic_with_queue(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    common::make_archive(
        &archive,
        &[
            "--events",
            "600",
            "--hours",
            "2",
            "--seed",
            "13",
            "--records-per-object",
            "50",
        ],
    );
    let archive = archive.to_str().unwrap();
    let expected: std::collections::HashSet<String> = ndjson(&common::run(&[
        "--archive",
        archive,
        "cat",
        "-q",
        "--public-only",
    ]))
    .iter()
    .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
    .collect();
    let cp = dir.path().join("cp.json");
    let republish = |extra: &[&str]| {
        let mut c = moto.command();
        c.args(["--archive", archive, "republish", "--to"])
            .arg(format!("sns:{}", topic.arn))
            .args(["--confirm-window", &WINDOW.to_string(), "--rate", "200"])
            .args(["--checkpoint", cp.to_str().unwrap()])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let mut child = republish(&[]).spawn().unwrap();
    common::wait_for_progress(&cp).await;
    child.kill().unwrap(); // SIGKILL: no chance to save anything more
    child.wait().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(saved["complete"], false, "{saved}");

    let out = republish(&["--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let got = topic.drain().await;
    let ids: Vec<String> = got
        .iter()
        .map(|env| {
            let m: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
            m["request_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let unique: std::collections::HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique, expected, "every public event, nothing else");
    let twice = ids.len() - unique.len();
    let bound = ghreplay::deliver::ledger::resend_bound(WINDOW) as usize;
    assert!(twice <= bound, "{twice} sent twice, bound {bound}");
}
