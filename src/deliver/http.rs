//! Re-sending deliveries over HTTP to any webhook receiver, as GitHub sent
//! them.
//!
//! A ghreplay-shape record goes out byte for byte: the archived body, its
//! `Content-Type`, `X-GitHub-Event`, `X-GitHub-Delivery`, the other kept
//! `X-GitHub-*` headers and the original signatures. Mozilla- and
//! cztack-shape records (no original headers) go out as their payload,
//! `application/json`, with the headers rebuilt from what is known; a
//! cztack record has no delivery id, so it gets a deterministic one (a
//! `UUIDv5` of its object key and record index). An event named `unknown` is
//! not sent: it is refused and listed.
//!
//! A 2xx confirms. 408, 429, 503 (with `Retry-After`), other 5xx, resets and
//! timeouts may pass; any other answer, redirects included, is the
//! receiver's final refusal of that one delivery. Redirects are never
//! followed: a POST turned into a GET would "confirm" a body never received.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_service::Service as _;

use super::{BatchLimits, Message, Pending, Refusal, SendError, TargetError, Transport};
use crate::decode::{DecodedObject, Event};
use crate::model::Shape;
use crate::signature::{sign_sha256, Secret};

/// The namespace of the delivery ids made up for records that have none.
const DELIVERY_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("5f1c62f4-3c0e-4b8e-9b53-0d7e8f3a6c21");

/// GitHub's own delivery timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How an HTTP target is reached.
#[derive(Clone)]
pub struct HttpConfig {
    /// `http://` or `https://`, credentials included (they become a Basic
    /// `Authorization` header and are never shown).
    pub url: String,
    /// Re-sign every request with `X-Hub-Signature-256` under this secret.
    pub sign_secret: Option<Secret>,
    /// For the whole exchange: connect, send, and the answer's head.
    pub timeout: Duration,
    /// Certificate authorities (PEM) to trust besides the system's.
    pub ca_pem: Option<String>,
    /// The engine's in-flight window (`--confirm-window`), which sets how
    /// many deliveries one batch posts ([`batch_size`]).
    pub window: usize,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &redact_url(&self.url))
            .field("sign_secret", &self.sign_secret)
            .field("timeout", &self.timeout)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "(PEM)"))
            .field("window", &self.window)
            .finish()
    }
}

/// An HTTP(S) URL as it may be shown: no password, and no query values
/// (tokens often ride there).
#[must_use]
pub fn redact_url(url: &str) -> String {
    let shown = super::pulse::redact_url(url);
    match shown.split_once('?') {
        Some((base, query)) => {
            let keys: Vec<String> = query
                .split('&')
                .map(|kv| format!("{}=***", kv.split('=').next().unwrap_or_default()))
                .collect();
            format!("{base}?{}", keys.join("&"))
        }
        None => shown,
    }
}

/// One delivery as it goes on the wire.
pub struct HttpMessage {
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// The most deliveries one batch posts.
const MAX_BATCH: usize = 8;

/// How many deliveries one batch posts, each its own request, all at once.
///
/// A batch is one task, one hand-off from the read path and one retry
/// wrapper for all its requests, paid once instead of per delivery (the
/// engine's own thread then needs half the CPU; BENCHMARKS.md, Re-send over
/// HTTP). A batch holds its part of the window until its last answer, so it
/// is at most a quarter of the window: the other batches keep the window
/// busy behind a slow answer.
#[must_use]
pub fn batch_size(window: usize) -> usize {
    (window / 4).clamp(1, MAX_BATCH)
}

/// Posts deliveries to one URL.
pub struct Http {
    /// Shared with every batch's task.
    post: Arc<Post>,
    shown: String,
    sign_secret: Option<Secret>,
    batch: usize,
}

impl Http {
    /// Builds the client and opens one connection (TCP, and TLS for
    /// `https://`) to the target, sending no request: the healthcheck.
    pub async fn connect(cfg: HttpConfig) -> Result<Self, TargetError> {
        let shown = redact_url(&cfg.url);
        let unusable = |why: String| TargetError::Unusable(format!("cannot use {shown}: {why}"));
        let (uri, authorization) = split_credentials(&cfg.url).map_err(&unusable)?;
        let mut connector =
            crate::net::https_connector(cfg.ca_pem.as_deref()).map_err(&unusable)?;
        let probe = tokio::time::timeout(cfg.timeout, connector.call(uri.clone())).await;
        match probe {
            Ok(Ok(_connection)) => {}
            Ok(Err(e)) => return Err(unusable(crate::aws::causes(e.as_ref()))),
            Err(_) => {
                return Err(unusable(format!(
                    "no connection within {} s",
                    cfg.timeout.as_secs()
                )))
            }
        }
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            post: Arc::new(Post {
                client,
                uri,
                authorization,
                timeout: cfg.timeout,
            }),
            shown,
            sign_secret: cfg.sign_secret,
            batch: batch_size(cfg.window),
        })
    }
}

/// The URL without its user information, and that as a Basic
/// `Authorization` header.
fn split_credentials(url: &str) -> Result<(Uri, Option<HeaderValue>), String> {
    use base64::Engine as _;
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let Some(authority) = uri.authority() else {
        return Err("the URL has no host".into());
    };
    let Some((userinfo, host)) = authority.as_str().rsplit_once('@') else {
        return Ok((uri, None));
    };
    let (userinfo, host) = (userinfo.to_owned(), host.to_owned());
    let (user, password) = userinfo.split_once(':').unwrap_or((&userinfo, ""));
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| "bad percent-encoding in the URL's credentials".to_owned())
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        decode(user)?,
        decode(password)?
    ));
    let mut value = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|e| e.to_string())?;
    value.set_sensitive(true);
    let mut parts = uri.into_parts();
    parts.authority = Some(host.parse().map_err(|e| format!("bad host: {e}"))?);
    let uri = Uri::from_parts(parts).map_err(|e| e.to_string())?;
    Ok((uri, Some(value)))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The delivery id a record is sent with: its own, or for a record that has
/// none, a `UUIDv5` of where it lies (sending it twice is the same delivery).
#[must_use]
pub fn delivery_id(obj: &DecodedObject, e: &Event) -> String {
    match e.delivery_id.as_deref().filter(|d| !d.is_empty()) {
        Some(id) => id.to_owned(),
        None => uuid::Uuid::new_v5(
            &DELIVERY_ID_NAMESPACE,
            format!("{}#{}", obj.key, e.index).as_bytes(),
        )
        .to_string(),
    }
}

/// Headers a ghreplay-shape record kept that go out again as they were.
fn replayed_header(name: &str) -> bool {
    name.starts_with("x-github-") || name == "x-hub-signature" || name == "x-hub-signature-256"
}

/// Whether a header is a stale signature, dropped when re-signing.
fn is_signature(name: &str) -> bool {
    name == "x-hub-signature" || name == "x-hub-signature-256"
}

const X_GITHUB_EVENT: HeaderName = HeaderName::from_static("x-github-event");
const X_GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const OUR_USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("ghreplay/", env!("CARGO_PKG_VERSION")));

impl Http {
    /// The headers of one delivery. Names and values that are the same for
    /// every delivery are static: this runs once per delivery sent.
    fn request_headers(
        &self,
        obj: &DecodedObject,
        e: &Event,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let value = |name: &HeaderName, value: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| format!("header {name} cannot be sent as it was kept"))
        };
        let kept: Vec<(String, String)> = match (&e.shape, e.headers.as_deref()) {
            (Shape::Ghreplay, Some(h)) => {
                let map: std::collections::BTreeMap<String, String> =
                    serde_json::from_str(h).map_err(|e| format!("kept headers: {e}"))?;
                map.into_iter().collect()
            }
            _ => Vec::new(),
        };
        let kept_value = |name: &HeaderName| {
            kept.iter()
                .find(|(k, _)| k == name.as_str())
                .map(|(_, v)| value(name, v))
                .transpose()
        };
        let mut out = Vec::with_capacity(4 + kept.len());
        out.push((CONTENT_TYPE, kept_value(&CONTENT_TYPE)?.unwrap_or(JSON)));
        out.push((
            USER_AGENT,
            kept_value(&USER_AGENT)?.unwrap_or(OUR_USER_AGENT),
        ));
        out.push((X_GITHUB_EVENT, value(&X_GITHUB_EVENT, &e.event)?));
        out.push((
            X_GITHUB_DELIVERY,
            value(&X_GITHUB_DELIVERY, &delivery_id(obj, e))?,
        ));
        for (name, v) in &kept {
            if replayed_header(name)
                && name != X_GITHUB_EVENT.as_str()
                && name != X_GITHUB_DELIVERY.as_str()
                && !(self.sign_secret.is_some() && is_signature(name))
            {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
                let v = value(&name, v)?;
                out.push((name, v));
            }
        }
        if let Some(secret) = &self.sign_secret {
            let signature = sign_sha256(secret.expose(), body);
            out.push((
                X_HUB_SIGNATURE_256,
                value(&X_HUB_SIGNATURE_256, &signature)?,
            ));
        }
        Ok(out)
    }
}

impl Transport for Http {
    type Message = HttpMessage;

    /// Requests in flight together reach the receiver in any order, as
    /// GitHub's own deliveries do.
    const IN_ORDER: bool = false;

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn encode(&self, obj: &DecodedObject, e: &Event) -> Result<HttpMessage, Refusal> {
        if e.event == "unknown" {
            return Err(Refusal {
                reason: "with no event name (inferred `unknown`)",
                detail: "a receiver routes on X-GitHub-Event".into(),
                bytes: 0,
            });
        }
        let body = match (&e.shape, &e.raw_body) {
            (Shape::Ghreplay, Some(raw)) => raw,
            _ => &e.payload,
        };
        let headers = self
            .request_headers(obj, e, obj.bytes(body))
            .map_err(|detail| Refusal {
                reason: "with headers that cannot be sent",
                detail,
                bytes: obj.bytes(body).len(),
            })?;
        // A slice of the object's buffer, not a copy: the buffer stays
        // alive (outside the read path's recycling) while the message is
        // in flight, so at most `--confirm-window` objects more are held.
        Ok(HttpMessage {
            headers,
            body: obj.shared_bytes(body),
        })
    }

    fn size(&self, m: &HttpMessage) -> usize {
        m.body.len()
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            messages: self.batch,
            bytes: usize::MAX,
        }
    }

    /// Posts every delivery of the batch at once. The requests are built
    /// and sent on the batch's own task, not on the engine's thread.
    async fn start(&self, batch: Vec<Arc<HttpMessage>>) -> Pending {
        let post = self.post.clone();
        Box::pin(async move { futures::future::join_all(batch.iter().map(|m| post.send(m))).await })
    }
}

/// What posting a delivery needs: the client and where it posts.
struct Post {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl Post {
    /// Posts one delivery and judges the answer.
    async fn send(&self, m: &HttpMessage) -> Result<(), SendError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone());
        for (name, value) in &m.headers {
            req = req.header(name, value);
        }
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth);
        }
        let req = req
            .body(Full::new(m.body.clone()))
            .map_err(|e| SendError::Refused(format!("cannot build the request: {e}")))?;
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(SendError::passing_msg(format!(
                "no answer within {} s",
                timeout.as_secs()
            ))),
            Ok(Err(e)) => Err(SendError::passing_msg(crate::aws::causes(&e))),
            Ok(Ok(resp)) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                // The answer's first bytes, to say why it refused.
                let body = tokio::time::timeout(timeout, resp.into_body().collect())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(http_body_util::Collected::to_bytes)
                    .unwrap_or_default();
                judge(status, retry_after, &body)
            }
        }
    }
}

/// What an answer means for the delivery.
fn judge(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let snippet: String = String::from_utf8_lossy(&body[..body.len().min(200)])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let said = if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    };
    let passing = matches!(
        status,
        StatusCode::REQUEST_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
    ) || status.is_server_error();
    if passing {
        Err(SendError::Passing {
            source: Arc::new(Message(said)),
            retry_after,
        })
    } else {
        Err(SendError::Refused(said))
    }
}

/// `Retry-After` as seconds or as an HTTP date, as a wait from `now`.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_a_quarter_of_the_window_at_most_and_never_empty() {
        let sizes: Vec<usize> = [1, 4, 7, 8, 32, 1000].map(batch_size).to_vec();
        assert_eq!(sizes, [1, 1, 1, 2, 8, 8]);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date gone by means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn answers_are_judged_as_github_users_expect() {
        let passing = |s: u16| {
            matches!(
                judge(StatusCode::from_u16(s).unwrap(), None, b""),
                Err(SendError::Passing { .. })
            )
        };
        let refused = |s: u16| {
            matches!(
                judge(StatusCode::from_u16(s).unwrap(), None, b""),
                Err(SendError::Refused(_))
            )
        };
        assert!(judge(StatusCode::OK, None, b"").is_ok());
        assert!(judge(StatusCode::ACCEPTED, None, b"").is_ok());
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(passing(s), "{s} may pass");
        }
        for s in [301, 302, 307, 400, 401, 403, 404, 415, 422] {
            assert!(refused(s), "{s} is final");
        }
        let Err(SendError::Refused(why)) =
            judge(StatusCode::BAD_REQUEST, None, b"  bad\n payload ")
        else {
            panic!("400 is final")
        };
        assert_eq!(why, "HTTP 400 Bad Request: bad payload");
    }

    #[test]
    fn credentials_and_query_values_never_show() {
        assert_eq!(
            redact_url("https://user:s3cret@hooks.example/in?token=abc&x=1"),
            "https://user@hooks.example/in?token=***&x=***"
        );
        let (uri, auth) = split_credentials("http://u%40x:p%3Aw@127.0.0.1:9/hook").unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:9/hook");
        let auth = auth.unwrap();
        assert!(auth.is_sensitive());
        // base64("u@x:p:w")
        assert_eq!(auth.to_str().unwrap(), "Basic dUB4OnA6dw==");
        assert_eq!(split_credentials("http://h/p").unwrap().1, None);
    }
}
