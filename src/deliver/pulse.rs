//! Pulse: Mozilla's `RabbitMQ` exchange (formats.md section 5), with publisher
//! confirms. Each message is shaped as Mozilla's `lambda_pulse.py` shaped it;
//! unlike it, nothing counts as sent until the broker confirms it.
//!
//! The wire only: the engine keeps the window, settles in order and
//! retries. A nack or a lost connection is a passing failure (the message
//! is published again, on a new connection if need be); a returned message
//! (unroutable, with `--mandatory`) stops the run.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use super::{Pending, Refusal, SendError, TargetError, Transport};
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
    /// `amqps://`: certificate authorities (PEM) to trust besides the
    /// system's.
    pub ca_pem: Option<String>,
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

/// One event as a Pulse message.
pub struct PulseMessage {
    routing_key: String,
    body: Vec<u8>,
}

/// The broker connection, replaced when it is lost. `generation` tells a
/// late failure on an old connection from one on the current connection.
#[derive(Default)]
struct Link {
    generation: u64,
    live: Option<(Connection, Channel)>,
}

/// Pulse's wire: AMQP publishes with publisher confirms.
pub struct Pulse {
    cfg: PulseConfig,
    link: Arc<Mutex<Link>>,
}

impl Pulse {
    /// Connects and checks the exchange (declaring it with `declare`): the
    /// healthcheck that runs before any object is read.
    pub async fn connect(cfg: PulseConfig) -> Result<Self, TargetError> {
        let conn = open(&cfg).await.map_err(|e| {
            let hint = if e.to_string().contains("NOT_FOUND") && !cfg.declare {
                " (it must exist; --declare creates it)"
            } else {
                ""
            };
            TargetError::Unusable(format!(
                "cannot use {} exchange {:?}{hint}: {e}",
                redact_url(&cfg.url),
                cfg.exchange
            ))
        })?;
        Ok(Self {
            cfg,
            link: Arc::new(Mutex::new(Link {
                generation: 1,
                live: Some(conn),
            })),
        })
    }
}

/// Forgets the connection of `generation` if it is still the current one.
async fn lost(link: &Mutex<Link>, generation: u64, cause: &lapin::Error) {
    let mut l = link.lock().await;
    if l.generation == generation && l.live.is_some() {
        tracing::warn!(error = %cause, "lost the broker; reconnecting");
        l.live = None;
    }
}

fn one(verdict: Result<(), SendError>) -> Pending {
    Box::pin(std::future::ready(vec![verdict]))
}

impl Transport for Pulse {
    type Message = PulseMessage;

    fn describe(&self) -> String {
        redact_url(&self.cfg.url)
    }

    fn encode(&self, obj: &DecodedObject, e: &Event) -> Result<PulseMessage, Refusal> {
        let routing_key = routing_key(e);
        let body = message_body(obj, e, &self.cfg.exchange, &routing_key);
        Ok(PulseMessage { routing_key, body })
    }

    fn size(&self, m: &PulseMessage) -> usize {
        m.body.len()
    }

    async fn start(&self, batch: Vec<Arc<PulseMessage>>) -> Pending {
        let Some(m) = batch.into_iter().next() else {
            return Box::pin(std::future::ready(Vec::new()));
        };
        let mut link = self.link.lock().await;
        if link.live.is_none() {
            match open(&self.cfg).await {
                Ok(conn) => {
                    link.live = Some(conn);
                    link.generation += 1;
                    tracing::info!("reconnected to the broker");
                }
                Err(e) => return one(Err(SendError::passing(e))),
            }
        }
        let generation = link.generation;
        let Some((_, channel)) = link.live.as_ref() else {
            return one(Err(SendError::passing_msg("no connection to the broker")));
        };
        let published = channel
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
            .await;
        drop(link);
        let confirm = match published {
            Ok(c) => c,
            Err(e) => {
                lost(&self.link, generation, &e).await;
                return one(Err(SendError::passing(e)));
            }
        };
        let link = self.link.clone();
        Box::pin(async move {
            let verdict = match confirm.await {
                Ok(Confirmation::Ack(None)) => Ok(()),
                Ok(Confirmation::Ack(Some(_))) => Err(SendError::Fatal(format!(
                    "the broker returned a message for routing key {:?}: no queue is bound \
                     to take it (--mandatory). Bind a queue, or drop --mandatory",
                    m.routing_key
                ))),
                Ok(Confirmation::Nack(_)) => Err(SendError::passing_msg(
                    "the broker refused (nacked) a message",
                )),
                Ok(Confirmation::NotRequested) => Err(SendError::Fatal(
                    "the broker did not confirm a message (confirms are off)".into(),
                )),
                Err(e) => {
                    lost(&link, generation, &e).await;
                    Err(SendError::passing(e))
                }
            };
            vec![verdict]
        })
    }

    fn gave_up(&self, last: &SendError, _messages: usize, retry_for: Duration) -> String {
        format!(
            "lost the broker at {} and could not reconnect for {} s ({last})",
            redact_url(&self.cfg.url),
            retry_for.as_secs()
        )
    }

    async fn close(&self) {
        if let Some((conn, _)) = self.link.lock().await.live.take() {
            let _ = conn.close(200, "done".into()).await;
        }
    }
}

fn io_error(kind: std::io::ErrorKind, message: &str) -> lapin::Error {
    std::io::Error::new(kind, message.to_owned()).into()
}

/// Opens a connection and a confirming channel, and checks the exchange.
async fn open(cfg: &PulseConfig) -> Result<(Connection, Channel), lapin::Error> {
    // The process id lets an operator (or a test) find this connection.
    let name = format!("ghreplay (pid {})", std::process::id());
    let props = ConnectionProperties::default().with_connection_name(name.into());
    // With no CA given, the TLS settings are lapin's defaults (the
    // system's roots), as `Connection::connect` uses.
    let connecting = async {
        lapin::DefaultConnectionBuilder::new()?
            .with_uri_str(cfg.url.clone())
            .with_properties(props)
            .with_tls_config(lapin::tcp::OwnedTLSConfig {
                identity: None,
                cert_chain: cfg.ca_pem.clone(),
            })
            .connect()
            .await
    };
    let conn = tokio::time::timeout(Duration::from_secs(10), connecting)
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
            ca_pem: None,
        };
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}
