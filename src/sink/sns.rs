//! SNS: each event published in Mozilla's string form (what existing
//! subscribers of `github-webhooks-all` parse), with message attributes
//! `event`, `repository` and `delivery_id` to filter on, through
//! `PublishBatch` (10 messages per call, per-entry failures retried).
//!
//! A message over SNS's 256 KiB limit is never dropped silently: it is
//! passed over, listed in the summary (and in `--oversize-list`), and the
//! run's exit status says input was skipped.

use std::time::{Duration, Instant};

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sns::Client;
use tokio::runtime::Handle;

use super::delivery::Delivery;
use super::mozilla;
use super::{Sink, SinkError};
use crate::checkpoint::Position;
use crate::decode::{DecodedObject, Event};

/// SNS's limit on one message, attributes included, and on one batch.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
const BATCH_ENTRIES: usize = 10;

#[derive(Debug, Clone)]
pub struct SnsConfig {
    pub topic_arn: String,
    pub endpoint_url: Option<String>,
    /// How long to keep retrying a batch the service will not take.
    pub retry_for: Duration,
}

/// The region in a topic ARN (`arn:aws:sns:REGION:ACCOUNT:TOPIC`).
#[must_use]
pub fn arn_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[3].is_empty())
        .then(|| parts[3])
}

/// An event that could not be sent because it is too large.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Oversize {
    pub object: String,
    pub offset: u64,
    pub delivery_id: Option<String>,
    pub event: String,
    pub bytes: usize,
}

/// One event waiting in the batch: a message, or a passed-over event that
/// still has to be settled in order.
enum Pending {
    Message {
        pos: Position,
        entry: PublishBatchRequestEntry,
        bytes: usize,
    },
    PassedOver {
        pos: Position,
    },
}

pub struct SnsSink {
    rt: Handle,
    client: Client,
    cfg: SnsConfig,
    batch: Vec<Pending>,
    pub delivery: Delivery,
    pub oversize: Vec<Oversize>,
}

impl SnsSink {
    /// Builds the client and checks the topic exists: the healthcheck.
    pub async fn connect(cfg: SnsConfig, delivery: Delivery) -> Result<Self, SinkError> {
        let region = arn_region(&cfg.topic_arn).ok_or_else(|| {
            SinkError::Target(format!(
                "{:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)",
                cfg.topic_arn
            ))
        })?;
        let shared = crate::aws::sdk_config(cfg.endpoint_url.as_deref(), Some(region)).await;
        let client = Client::new(&shared);
        client
            .get_topic_attributes()
            .topic_arn(&cfg.topic_arn)
            .send()
            .await
            .map_err(|e| {
                SinkError::Target(format!(
                    "cannot use SNS topic {}: {}",
                    cfg.topic_arn,
                    describe(&e)
                ))
            })?;
        Ok(Self {
            rt: Handle::current(),
            client,
            cfg,
            batch: Vec::new(),
            delivery,
            oversize: Vec::new(),
        })
    }

    fn batch_bytes(&self) -> usize {
        self.batch
            .iter()
            .map(|p| match p {
                Pending::Message { bytes, .. } => *bytes,
                Pending::PassedOver { .. } => 0,
            })
            .sum()
    }

    fn batch_messages(&self) -> usize {
        self.batch
            .iter()
            .filter(|p| matches!(p, Pending::Message { .. }))
            .count()
    }

    /// Publishes the batch, retrying what fails for a reason that can pass,
    /// then settles its events in order.
    async fn publish_batch(&mut self) -> Result<(), SinkError> {
        let entries: Vec<PublishBatchRequestEntry> = self
            .batch
            .iter()
            .filter_map(|p| match p {
                Pending::Message { entry, .. } => Some(entry.clone()),
                Pending::PassedOver { .. } => None,
            })
            .collect();
        let mut remaining = entries;
        let deadline = Instant::now() + self.cfg.retry_for;
        let mut backoff = Duration::from_millis(200);
        while !remaining.is_empty() {
            let result = self
                .client
                .publish_batch()
                .topic_arn(&self.cfg.topic_arn)
                .set_publish_batch_request_entries(Some(remaining.clone()))
                .send()
                .await;
            let why = match result {
                Ok(out) => {
                    self.delivery.counts.sent += (remaining.len() - out.failed().len()) as u64;
                    if let Some(f) = out.failed().iter().find(|f| f.sender_fault()) {
                        return Err(self.delivery.stopped(format!(
                            "SNS refused a message: {} {}",
                            f.code(),
                            f.message().unwrap_or_default()
                        )));
                    }
                    let failed: Vec<&str> = out
                        .failed()
                        .iter()
                        .map(aws_sdk_sns::types::BatchResultErrorEntry::id)
                        .collect();
                    remaining.retain(|e| failed.contains(&e.id()));
                    out.failed()
                        .first()
                        .map(|f| format!("{} {}", f.code(), f.message().unwrap_or_default()))
                }
                Err(e) if is_permanent(&e) => {
                    return Err(self
                        .delivery
                        .stopped(format!("SNS refused the batch: {}", describe(&e))));
                }
                Err(e) => Some(describe(&e)),
            };
            if remaining.is_empty() {
                break;
            }
            if Instant::now() + backoff > deadline {
                return Err(self.delivery.stopped(format!(
                    "SNS did not take {} messages for {} s: {}",
                    remaining.len(),
                    self.cfg.retry_for.as_secs(),
                    why.unwrap_or_default()
                )));
            }
            tracing::warn!(messages = remaining.len(), reason = ?why, "SNS batch retried");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        for p in std::mem::take(&mut self.batch) {
            match p {
                Pending::Message { pos, .. } => self.delivery.done(pos, true)?,
                Pending::PassedOver { pos } => self.delivery.done(pos, false)?,
            }
        }
        Ok(())
    }
}

fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match e {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or_default()
        ),
        other => crate::aws::causes(other),
    }
}

/// Errors no retry will mend: a missing topic, no permission, a bad request.
fn is_permanent<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(s) if matches!(
        s.err().code(),
        Some("NotFound" | "AuthorizationError" | "InvalidParameter" | "InvalidParameterValue"
            | "BatchEntryIdsNotDistinct" | "EmptyBatchRequest" | "TooManyEntriesInBatchRequest"
            | "BatchRequestTooLong" | "InvalidBatchEntryId")
    ))
}

fn attribute(value: &str) -> Result<MessageAttributeValue, aws_sdk_sns::error::BuildError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
}

impl Sink for SnsSink {
    fn accept(&mut self, obj: &DecodedObject, e: &Event, public: bool) -> Result<(), SinkError> {
        let Some(pos) = self.delivery.claim(obj, e) else {
            return Ok(());
        };
        self.delivery.before_send().map_err(|err| match err {
            SinkError::Interrupted => {
                let rt = self.rt.clone();
                match rt.block_on(self.publish_batch()) {
                    Ok(()) => self.delivery.stopped("interrupted".into()),
                    Err(e) => e,
                }
            }
            other => other,
        })?;
        self.delivery.note_private(public);
        let message = String::from_utf8(
            mozilla::string_form(obj, e).map_err(|err| SinkError::Target(err.to_string()))?,
        )
        .map_err(|err| SinkError::Target(err.to_string()))?;
        let attributes: Vec<(&str, &str)> = [
            ("event", Some(e.event.as_str())),
            ("repository", e.repository.as_deref()),
            ("delivery_id", e.delivery_id.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        let bytes = message.len()
            + attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>();
        let rt = self.rt.clone();
        if bytes > MAX_MESSAGE_BYTES {
            self.delivery.counts.oversize += 1;
            self.oversize.push(Oversize {
                object: obj.key.clone(),
                offset: e.offset,
                delivery_id: e.delivery_id.clone(),
                event: e.event.clone(),
                bytes,
            });
            self.batch.push(Pending::PassedOver { pos });
            return Ok(());
        }
        if self.batch_messages() == BATCH_ENTRIES || self.batch_bytes() + bytes > MAX_MESSAGE_BYTES
        {
            rt.block_on(self.publish_batch())?;
        }
        let mut entry = PublishBatchRequestEntry::builder()
            .id(self.batch.len().to_string())
            .message(message);
        for (k, v) in attributes {
            let value = attribute(v).map_err(|err| SinkError::Target(err.to_string()))?;
            entry = entry.message_attributes(k, value);
        }
        let entry = entry
            .build()
            .map_err(|err| SinkError::Target(err.to_string()))?;
        self.batch.push(Pending::Message { pos, entry, bytes });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let rt = self.rt.clone();
        rt.block_on(self.publish_batch())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let rt = self.rt.clone();
        rt.block_on(self.publish_batch())?;
        self.delivery.save(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_topic_arn() {
        assert_eq!(
            arn_region("arn:aws:sns:us-west-2:699292812394:github-webhooks-all"),
            Some("us-west-2")
        );
        assert_eq!(arn_region("arn:aws:sqs:us-west-2:1:q"), None);
        assert_eq!(arn_region("github-webhooks-all"), None);
    }
}
