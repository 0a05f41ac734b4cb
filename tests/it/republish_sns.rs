//! `republish --to sns:...` through moto (the real SNS wire protocol): an SQS
//! queue subscribed to the topic receives every message, read back and
//! compared with the archive.

use crate::common;
use crate::common::{fixture_archive, ndjson, stderr, unique_name, Moto};
use serde_json::Value;

struct Topic {
    arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

async fn topic_with_queue(moto: &Moto) -> Topic {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let arn = sns
        .create_topic()
        .name(unique_name("github-webhooks-all"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("subscriber"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    Topic {
        arn,
        queue_url,
        sqs,
    }
}

impl Topic {
    /// Every SNS envelope in the queue (until it stays empty).
    async fn drain(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut empty = 0;
        while empty < 2 && std::time::Instant::now() < deadline {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                empty += 1;
            }
            for m in msgs {
                out.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }
}

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
