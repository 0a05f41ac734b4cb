//! The baseline for `benches/republish.sh`: the least a publisher with
//! confirms can do. It loads events (as `ghreplay cat` prints them) into
//! memory first, then only publishes them, `window` unconfirmed at most,
//! settled in order as ghreplay settles them.
//!
//! ```text
//! cargo bench --bench amqp_bare -- setup   URL EXCHANGE QUEUE
//! cargo bench --bench amqp_bare -- purge   URL QUEUE
//! cargo bench --bench amqp_bare -- publish URL EXCHANGE WINDOW EVENTS.ndjson
//! ```
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // a benchmark tool

#[path = "support/args.rs"]
mod args;

use std::collections::VecDeque;
use std::time::Instant;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};

#[tokio::main]
async fn main() {
    let args = args::args();
    let conn = Connection::connect(&args[1], ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    match args[0].as_str() {
        "setup" => {
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            ch.exchange_declare(
                args[2].as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .unwrap();
            let q = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            ch.queue_declare(args[3].as_str().into(), q, FieldTable::default())
                .await
                .unwrap();
            ch.queue_bind(
                args[3].as_str().into(),
                args[2].as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        "purge" => {
            ch.queue_purge(args[2].as_str().into(), QueuePurgeOptions::default())
                .await
                .unwrap();
        }
        "publish" => {
            let window: usize = args[3].parse().unwrap();
            let messages: Vec<(String, Vec<u8>)> = std::fs::read_to_string(&args[4])
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let key = format!(
                        "{}/{}",
                        v["repository"].as_str().unwrap_or("-"),
                        v["event"].as_str().unwrap()
                    );
                    (key, serde_json::to_vec(&v["payload"]).unwrap())
                })
                .collect();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let start = Instant::now();
            let mut pending = VecDeque::new();
            for (key, body) in &messages {
                if pending.len() >= window {
                    let c: lapin::PublisherConfirm = pending.pop_front().unwrap();
                    assert!(matches!(c.await.unwrap(), Confirmation::Ack(None)));
                }
                let c = ch
                    .basic_publish(
                        args[2].as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        props.clone(),
                    )
                    .await
                    .unwrap();
                pending.push_back(c);
            }
            for c in pending {
                assert!(matches!(c.await.unwrap(), Confirmation::Ack(None)));
            }
            let secs = start.elapsed().as_secs_f64();
            println!("{} {secs:.3}", messages.len());
        }
        other => panic!("unknown mode {other}"),
    }
    conn.close(200, "done".into()).await.unwrap();
}
