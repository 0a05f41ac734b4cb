//! From a target URL to a connected, healthchecked delivering sink: the one
//! place that knows which transport a URL means (`republish --to` and
//! `serve --forward` both come here).

use std::path::PathBuf;
use std::time::Duration;

use super::engine::{Engine, RetryPolicy};
use super::http::{Http, HttpConfig};
use super::ledger::Ledger;
use super::pulse::{Pulse, PulseConfig};
use super::sns::{Sns, SnsConfig};
use super::Delivering;
use crate::signature::Secret;

/// Where events are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Pulse: `amqp://` or `amqps://` URL.
    Amqp(String),
    /// An SNS topic ARN.
    Sns(String),
    /// Any webhook receiver: `http://` or `https://` URL.
    Http(String),
    /// NDJSON to stdout, or to a file (what would be sent, as `cat` prints it).
    Ndjson(Option<PathBuf>),
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--to {0:?}: expected amqp://user:pass@host:port/vhost, amqps://..., sns:arn:aws:sns:REGION:ACCOUNT:TOPIC, http(s)://host/path, ndjson or ndjson:FILE")]
    Parse(String),
    /// The healthcheck failed: nothing was sent.
    #[error("{0}")]
    Unusable(String),
    #[error("{0} is not a network target")]
    NotNetwork(String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        if s.starts_with("amqp://") || s.starts_with("amqps://") {
            Ok(Self::Amqp(s.to_owned()))
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Ok(Self::Http(s.to_owned()))
        } else if let Some(arn) = s.strip_prefix("sns:") {
            Ok(Self::Sns(arn.to_owned()))
        } else if s == "ndjson" || s == "ndjson:-" {
            Ok(Self::Ndjson(None))
        } else if let Some(path) = s.strip_prefix("ndjson:") {
            Ok(Self::Ndjson(Some(PathBuf::from(path))))
        } else {
            Err(TargetError::Parse(s.to_owned()))
        }
    }

    /// The target as it may be shown and recorded: no password, no token.
    #[must_use]
    pub fn display(&self) -> String {
        match self {
            Self::Amqp(url) => super::pulse::redact_url(url),
            Self::Http(url) => super::http::redact_url(url),
            Self::Sns(arn) => format!("sns:{arn}"),
            Self::Ndjson(None) => "ndjson".into(),
            Self::Ndjson(Some(p)) => format!("ndjson:{}", p.display()),
        }
    }

    /// Messages in flight when `--confirm-window` is not given: a broker
    /// and SNS take many; a webhook receiver is usually a small service.
    #[must_use]
    pub fn default_window(&self) -> usize {
        match self {
            Self::Http(_) => 32,
            _ => 1000,
        }
    }
}

/// Per-transport settings, from flags.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// AMQP: the exchange, whether to declare it, and `mandatory`.
    pub exchange: String,
    pub declare: bool,
    pub mandatory: bool,
    /// SNS: an endpoint other than AWS's.
    pub endpoint_url: Option<String>,
    /// HTTP: re-sign with this secret, and the timeout of one request.
    pub sign_secret: Option<Secret>,
    pub timeout: Duration,
    /// Messages unconfirmed at once.
    pub window: usize,
    pub retry: RetryPolicy,
    /// `amqps://` and `https://`: certificate authorities (PEM) to trust
    /// besides the system's (`--ca-file`).
    pub ca_pem: Option<String>,
}

/// Connects `target` (its healthcheck runs here, before anything is read)
/// and puts the delivery engine around it.
pub async fn connect(
    target: &Target,
    opts: &TargetOptions,
    ledger: Ledger,
) -> Result<Box<dyn Delivering>, TargetError> {
    let (window, retry) = (opts.window, opts.retry);
    Ok(match target {
        Target::Amqp(url) => {
            let pulse = Pulse::connect(PulseConfig {
                url: url.clone(),
                exchange: opts.exchange.clone(),
                declare: opts.declare,
                mandatory: opts.mandatory,
                ca_pem: opts.ca_pem.clone(),
            })
            .await?;
            Box::new(Engine::new(pulse, ledger, window, retry))
        }
        Target::Sns(topic_arn) => {
            let sns = Sns::connect(SnsConfig {
                topic_arn: topic_arn.clone(),
                endpoint_url: opts.endpoint_url.clone(),
            })
            .await?;
            Box::new(Engine::new(sns, ledger, window, retry))
        }
        Target::Http(url) => {
            let http = Http::connect(HttpConfig {
                url: url.clone(),
                sign_secret: opts.sign_secret.clone(),
                timeout: opts.timeout,
                ca_pem: opts.ca_pem.clone(),
                window,
            })
            .await?;
            Box::new(Engine::new(http, ledger, window, retry))
        }
        Target::Ndjson(_) => return Err(TargetError::NotNetwork(target.display())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("amqp://u:p@h:5672/%2f").unwrap().display(),
            "amqp://u@h:5672/%2f"
        );
        assert_eq!(
            Target::parse("sns:arn:aws:sns:us-west-2:1:t").unwrap(),
            Target::Sns("arn:aws:sns:us-west-2:1:t".into())
        );
        assert_eq!(Target::parse("ndjson").unwrap(), Target::Ndjson(None));
        assert_eq!(
            Target::parse("ndjson:out.json").unwrap(),
            Target::Ndjson(Some("out.json".into()))
        );
        // Once refused; now a webhook receiver.
        assert_eq!(
            Target::parse("http://x").unwrap(),
            Target::Http("http://x".into())
        );
        assert_eq!(
            Target::parse("https://u:pw@x/h?token=t").unwrap().display(),
            "https://u@x/h?token=***"
        );
        assert!(Target::parse("ftp://x")
            .unwrap_err()
            .to_string()
            .contains("http(s)://"));
    }
}
