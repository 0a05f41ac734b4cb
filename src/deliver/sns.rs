//! SNS: each event published in Mozilla's string form (what existing
//! subscribers of `github-webhooks-all` parse), with message attributes
//! `event`, `repository` and `delivery_id` to filter on, through
//! `PublishBatch` (10 messages per call; the engine retries the entries
//! that failed for a passing reason).
//!
//! A message over SNS's 256 KiB limit is never dropped silently: it is
//! refused at encoding, listed in the summary (and in `--refused-list`), and
//! the run's exit status says input was skipped.

use std::sync::Arc;

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sns::Client;

use super::{mozilla, BatchLimits, Pending, Refusal, SendError, TargetError, Transport};
use crate::decode::{DecodedObject, Event};

/// SNS's limit on one message, attributes included, and on one batch.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
const BATCH_ENTRIES: usize = 10;

#[derive(Debug, Clone)]
pub struct SnsConfig {
    pub topic_arn: String,
    pub endpoint_url: Option<String>,
}

/// The region in a topic ARN (`arn:aws:sns:REGION:ACCOUNT:TOPIC`).
#[must_use]
pub fn arn_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[3].is_empty())
        .then(|| parts[3])
}

/// One event as an SNS message.
pub struct SnsMessage {
    message: String,
    attributes: Vec<(&'static str, String)>,
    bytes: usize,
}

/// SNS's wire: `PublishBatch`, per-entry verdicts.
pub struct Sns {
    client: Client,
    topic_arn: String,
}

impl Sns {
    /// Builds the client and checks the topic exists: the healthcheck.
    pub async fn connect(cfg: SnsConfig) -> Result<Self, TargetError> {
        let region = arn_region(&cfg.topic_arn).ok_or_else(|| {
            TargetError::Unusable(format!(
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
                TargetError::Unusable(format!(
                    "cannot use SNS topic {}: {}",
                    cfg.topic_arn,
                    describe(&e)
                ))
            })?;
        Ok(Self {
            client,
            topic_arn: cfg.topic_arn,
        })
    }
}

/// The reason [`Refused`](super::Refused) gives for a message over the limit.
pub const OVERSIZE: &str = "over SNS's 256 KiB limit";

impl Transport for Sns {
    type Message = SnsMessage;

    fn describe(&self) -> String {
        format!("sns:{}", self.topic_arn)
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            messages: BATCH_ENTRIES,
            bytes: MAX_MESSAGE_BYTES,
        }
    }

    fn encode(&self, obj: &DecodedObject, e: &Event) -> Result<SnsMessage, Refusal> {
        let refuse = |detail: String| Refusal {
            reason: "not encodable for SNS",
            detail,
            bytes: 0,
        };
        let message = mozilla::string_form(obj, e).map_err(|err| refuse(err.to_string()))?;
        let message = String::from_utf8(message).map_err(|err| refuse(err.to_string()))?;
        let attributes: Vec<(&'static str, String)> = [
            ("event", Some(e.event.as_str())),
            ("repository", e.repository.as_deref()),
            ("delivery_id", e.delivery_id.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v.to_owned())))
        .collect();
        let bytes = message.len()
            + attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(Refusal {
                reason: OVERSIZE,
                detail: format!("{bytes} bytes"),
                bytes,
            });
        }
        Ok(SnsMessage {
            message,
            attributes,
            bytes,
        })
    }

    fn size(&self, m: &SnsMessage) -> usize {
        m.bytes
    }

    async fn start(&self, batch: Vec<Arc<SnsMessage>>) -> Pending {
        let n = batch.len();
        let mut entries = Vec::with_capacity(n);
        for (i, m) in batch.iter().enumerate() {
            let mut entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(m.message.clone());
            for (k, v) in &m.attributes {
                match attribute(v) {
                    Ok(value) => entry = entry.message_attributes(*k, value),
                    Err(e) => return all(n, &SendError::Fatal(e.to_string())),
                }
            }
            match entry.build() {
                Ok(e) => entries.push(e),
                Err(e) => return all(n, &SendError::Fatal(e.to_string())),
            }
        }
        let call = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send();
        Box::pin(async move {
            match call.await {
                Ok(out) => {
                    let mut verdicts: Vec<Result<(), SendError>> = vec![Ok(()); n];
                    for f in out.failed() {
                        let Some(i) = f.id().parse::<usize>().ok().filter(|i| *i < n) else {
                            continue;
                        };
                        let what = format!("{} {}", f.code(), f.message().unwrap_or_default());
                        verdicts[i] = Err(if f.sender_fault() {
                            SendError::Fatal(format!("SNS refused a message: {what}"))
                        } else {
                            SendError::passing_msg(what)
                        });
                    }
                    verdicts
                }
                Err(e) if is_permanent(&e) => {
                    vec![
                        Err(SendError::Fatal(format!(
                            "SNS refused the batch: {}",
                            describe(&e)
                        )));
                        n
                    ]
                }
                Err(e) => vec![Err(SendError::passing_msg(describe(&e))); n],
            }
        })
    }
}

fn all(n: usize, e: &SendError) -> Pending {
    Box::pin(std::future::ready(vec![Err(e.clone()); n]))
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
