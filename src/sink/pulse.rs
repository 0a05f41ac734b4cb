//! Pulse: Mozilla's `RabbitMQ` exchange (formats.md section 5), with publisher
//! confirms. Each message is shaped as Mozilla's `lambda_pulse.py` shaped it;
//! unlike it, nothing counts as sent until the broker confirms it.
//!
//! Up to `window` messages are unconfirmed at once. Confirms are settled in
//! publish order, so the checkpoint is a contiguous watermark. A nack is
//! retried; a returned (unroutable, with `--mandatory`) message or a broker
//! that stays away longer than `retry_for` stops the run, resumable.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use lapin::{Confirmation, PublisherConfirm};
use tokio::runtime::Handle;

use super::delivery::Delivery;
use super::{Sink, SinkError};
use crate::checkpoint::Position;
use crate::decode::{DecodedObject, Event};

/// Pulse's exchange for GitHub events.
pub const DEFAULT_EXCHANGE: &str = "exchange/github-webhooks/v1";

/// How a Pulse target is reached.
#[derive(Clone)]
pub struct PulseConfig {
    /// `amqp://user:pass@host:port/vhost` or `amqps://...`.
    pub url: String,
    pub exchange: String,
    /// Declare the exchange (topic, durable) instead of checking it exists.
    pub declare: bool,
    /// Ask the broker to return messages no queue takes, and fail on them.
    pub mandatory: bool,
    pub window: usize,
    /// How long to keep reconnecting after losing the broker.
    pub retry_for: Duration,
}

impl std::fmt::Debug for PulseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulseConfig")
            .field("url", &redact_url(&self.url))
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

/// A URL with its password replaced, for logs and checkpoints.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The routing key Pulse consumers bind to: `<owner>/<repo>/<event>`.
/// An event without a repository is routed by its name alone.
#[must_use]
pub fn routing_key(e: &Event) -> String {
    match &e.repository {
        Some(repo) => format!("{repo}/{}", e.event),
        None => e.event.clone(),
    }
}

/// The message body, as kombu's JSON serializer wrote Mozilla's:
/// `{event, request_id, payload, _meta{exchange, routing_key, serializer, sent}}`,
/// with `sent` a naive UTC ISO-8601 time. The payload goes in as archived.
#[must_use]
pub fn message_body(obj: &DecodedObject, e: &Event, exchange: &str, routing_key: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Meta<'a> {
        exchange: &'a str,
        routing_key: &'a str,
        serializer: &'a str,
        sent: String,
    }
    let payload = obj.bytes(&e.payload);
    let mut out = Vec::with_capacity(payload.len() + 256);
    // Serialising strings into a Vec cannot fail.
    out.extend_from_slice(b"{\"event\":");
    serde_json::to_writer(&mut out, &e.event).unwrap_or_default();
    out.extend_from_slice(b",\"request_id\":");
    serde_json::to_writer(&mut out, &e.delivery_id).unwrap_or_default();
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload);
    out.extend_from_slice(b",\"_meta\":");
    let meta = Meta {
        exchange,
        routing_key,
        serializer: "json",
        sent: Utc::now()
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
    };
    serde_json::to_writer(&mut out, &meta).unwrap_or_default();
    out.push(b'}');
    out
}

fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
}

/// A message the broker has not confirmed yet.
struct InFlight {
    pos: Position,
    routing_key: String,
    body: Vec<u8>,
    confirm: Option<PublisherConfirm>,
}

/// Publishes to a Pulse exchange with confirms.
pub struct PulseSink {
    rt: Handle,
    cfg: PulseConfig,
    conn: Option<(Connection, Channel)>,
    in_flight: VecDeque<InFlight>,
    pub delivery: Delivery,
}

/// A nacked message is sent again this many times before the run stops.
const NACK_RETRIES: u32 = 3;

impl PulseSink {
    /// Connects and checks the exchange (declaring it with `declare`): the
    /// healthcheck that runs before any object is read.
    pub async fn connect(cfg: PulseConfig, delivery: Delivery) -> Result<Self, SinkError> {
        let conn = open(&cfg).await.map_err(|e| {
            let hint = if e.to_string().contains("NOT_FOUND") && !cfg.declare {
                " (it must exist; --declare creates it)"
            } else {
                ""
            };
            SinkError::Target(format!(
                "cannot use {} exchange {:?}{hint}: {e}",
                redact_url(&cfg.url),
                cfg.exchange
            ))
        })?;
        Ok(Self {
            rt: Handle::current(),
            cfg,
            conn: Some(conn),
            in_flight: VecDeque::new(),
            delivery,
        })
    }

    fn channel(&self) -> Option<&Channel> {
        self.conn.as_ref().map(|(_, ch)| ch)
    }

    async fn publish(&mut self, msg: InFlight) -> Result<(), SinkError> {
        while self.in_flight.len() >= self.cfg.window.max(1) {
            self.settle_front().await?;
        }
        self.in_flight.push_back(msg);
        let last = self.in_flight.len() - 1;
        if let Err(e) = self.send(last).await {
            self.recover(&e).await?;
        }
        Ok(())
    }

    /// Sends the in-flight message at `i` on the current channel.
    async fn send(&mut self, i: usize) -> Result<(), lapin::Error> {
        let Some(ch) = self.channel().cloned() else {
            return Err(io_error(
                std::io::ErrorKind::NotConnected,
                "no connection to the broker",
            ));
        };
        let m = &self.in_flight[i];
        let confirm = ch
            .basic_publish(
                self.cfg.exchange.as_str().into(),
                m.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: self.cfg.mandatory,
                    ..BasicPublishOptions::default()
                },
                &m.body,
                properties(),
            )
            .await?;
        self.in_flight[i].confirm = Some(confirm);
        self.delivery.counts.sent += 1;
        Ok(())
    }

    /// Waits for the oldest message's confirm and settles it.
    async fn settle_front(&mut self) -> Result<(), SinkError> {
        let mut nacks = 0;
        loop {
            let Some(front) = self.in_flight.front_mut() else {
                return Ok(());
            };
            let outcome = match front.confirm.take() {
                Some(c) => c.await,
                None => Err(io_error(
                    std::io::ErrorKind::NotConnected,
                    "sent on a connection that was lost",
                )),
            };
            match outcome {
                Ok(Confirmation::Ack(None)) => {
                    if let Some(m) = self.in_flight.pop_front() {
                        self.delivery.done(m.pos, true)?;
                    }
                    return Ok(());
                }
                Ok(Confirmation::Ack(Some(_))) => {
                    let key = front.routing_key.clone();
                    return Err(self.delivery.stopped(format!(
                        "the broker returned a message for routing key {key:?}: no queue is bound \
                         to take it (--mandatory). Bind a queue, or drop --mandatory"
                    )));
                }
                Ok(Confirmation::Nack(_)) if nacks < NACK_RETRIES => {
                    nacks += 1;
                    tracing::warn!(routing_key = %front.routing_key, attempt = nacks, "broker nacked a message; sending it again");
                    if let Err(e) = self.send(0).await {
                        self.recover(&e).await?;
                    }
                }
                Ok(Confirmation::Nack(_) | Confirmation::NotRequested) => {
                    return Err(self.delivery.stopped(format!(
                        "the broker refused (nacked) a message {} times",
                        NACK_RETRIES + 1
                    )));
                }
                Err(e) => self.recover(&e).await?,
            }
        }
    }

    /// Reconnects with backoff for up to `retry_for`, then sends every
    /// unconfirmed message again (they may arrive twice; they are counted).
    async fn recover(&mut self, cause: &lapin::Error) -> Result<(), SinkError> {
        tracing::warn!(error = %cause, "lost the broker; reconnecting");
        self.conn = None;
        let deadline = Instant::now() + self.cfg.retry_for;
        let mut backoff = Duration::from_millis(250);
        loop {
            // Every failed attempt, to connect or to re-send, counts against
            // the deadline: a broker that accepts and then drops the
            // connection must not hold the run forever.
            let failure = match open(&self.cfg).await {
                Ok(conn) => {
                    self.conn = Some(conn);
                    let mut resent = true;
                    for i in 0..self.in_flight.len() {
                        if self.send(i).await.is_err() {
                            resent = false;
                            break;
                        }
                        self.delivery.counts.resent += 1;
                    }
                    if resent {
                        tracing::info!(resent = self.in_flight.len(), "reconnected");
                        return Ok(());
                    }
                    self.conn = None;
                    "the connection dropped again while re-sending".to_owned()
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() + backoff > deadline {
                return Err(self.delivery.stopped(format!(
                    "lost the broker at {} ({cause}) and could not reconnect for {} s ({failure})",
                    redact_url(&self.cfg.url),
                    self.cfg.retry_for.as_secs()
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Settles every unconfirmed message.
    async fn drain(&mut self) -> Result<(), SinkError> {
        while !self.in_flight.is_empty() {
            self.settle_front().await?;
        }
        Ok(())
    }
}

fn io_error(kind: std::io::ErrorKind, message: &str) -> lapin::Error {
    std::io::Error::new(kind, message.to_owned()).into()
}

/// Opens a connection and a confirming channel, and checks the exchange.
async fn open(cfg: &PulseConfig) -> Result<(Connection, Channel), lapin::Error> {
    let props = ConnectionProperties::default().with_connection_name("ghreplay republish".into());
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(&cfg.url, props),
    )
    .await
    .map_err(|_| {
        io_error(
            std::io::ErrorKind::TimedOut,
            "connecting timed out after 10 s",
        )
    })??;
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        cfg.exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            passive: !cfg.declare,
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok((conn, ch))
}

impl Sink for PulseSink {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        let Some(pos) = self.delivery.claim(obj, e) else {
            return Ok(());
        };
        if let Err(err) = self.delivery.before_send() {
            let rt = self.rt.clone();
            rt.block_on(self.drain())?;
            return Err(match err {
                SinkError::Interrupted => self.delivery.stopped("interrupted".into()),
                other => other,
            });
        }
        self.delivery.note_private(public);
        let routing_key = routing_key(e);
        let body = message_body(obj, e, &self.cfg.exchange, &routing_key);
        let rt = self.rt.clone();
        rt.block_on(self.publish(InFlight {
            pos,
            routing_key,
            body,
            confirm: None,
        }))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let rt = self.rt.clone();
        rt.block_on(self.drain())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let rt = self.rt.clone();
        rt.block_on(async {
            self.drain().await?;
            self.delivery.save(true)?;
            if let Some((conn, _)) = self.conn.take() {
                let _ = conn.close(200, "done".into()).await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("amqp://user:s3cret@host:5672/%2f"),
            "amqp://user@host:5672/%2f"
        );
        assert_eq!(redact_url("amqps://host/vhost"), "amqps://host/vhost");
        let cfg = PulseConfig {
            url: "amqp://u:s3cret@h".into(),
            exchange: "x".into(),
            declare: false,
            mandatory: false,
            window: 1,
            retry_for: Duration::ZERO,
        };
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}
