//! `ghreplay serve`: the live webhook receiver. A delivery is answered 2xx
//! only once it is durable in the archive, and only if the read path reads
//! it back as a good record. The order of checks is the order of trust:
//! size and time ([`conn`]), signature (over the raw bytes, before any
//! parsing), headers, content type, body, then the delivery id.

pub mod conn;
pub mod forward;
mod index;
pub mod metrics;
pub mod reconcile;
pub mod upload;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest as _, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use crate::archive::{Record, KEPT_HEADERS};
use crate::signature::{self as verify, Secret};
use index::Claim;
pub use index::DeliveryIndex;
use metrics::Metrics;
use writer::{ArchiveWriter, WriteError};

/// GitHub caps payloads at 25 MB; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The receiver's HTTP contract, kept in the repository and served as is.
pub const OPENAPI: &str = include_str!("openapi.json");

/// How deliveries are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    Secrets {
        secrets: Vec<Secret>,
        allow_sha1: bool,
    },
    /// `--insecure-no-verify`: every delivery is accepted unverified.
    Insecure,
}

pub struct AppState {
    pub auth: Auth,
    pub writer: ArchiveWriter,
    pub index: DeliveryIndex,
    pub metrics: Arc<Metrics>,
    /// `--forward`: archived deliveries are offered to each.
    pub forward: Vec<forward::Forwarder>,
    /// Everything else that follows the archive (the dashboard's database):
    /// woken after each write, as the forwarders are.
    pub followers: Vec<Arc<Wake>>,
    /// How long a request body may take to arrive (`--body-timeout`).
    pub body_timeout: Duration,
}

/// The longest event name taken; GitHub's longest is under 40.
const MAX_EVENT_NAME: usize = 64;

/// GitHub's event names: a lower-case ASCII letter, then lower-case
/// letters, digits (`projects_v2_item`) and underscores. Anything else (a
/// path, a routing-key wildcard) would reach the archive's readers, Pulse
/// routing keys and file names.
fn is_event_name(name: &str) -> bool {
    name.len() <= MAX_EVENT_NAME
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The routes: the webhook at `path`, `/healthz`, `/metrics`, `/openapi.json`.
pub fn router(state: Arc<AppState>, path: &str) -> Router {
    Router::new()
        .route(path, post(webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn reject(s: &AppState, status: StatusCode, reason: &str, message: &str) -> Response {
    s.metrics.reject(reason);
    tracing::info!(reason, status = status.as_u16(), "delivery rejected");
    reply(status, json!({ "error": message }))
}

/// A header as a string, if present and visible ASCII.
fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

async fn webhook(State(s): State<Arc<AppState>>, req: Request) -> Response {
    Metrics::inc(&s.metrics.received);
    let headers = req.headers().clone();
    let body = match tokio::time::timeout(s.body_timeout, Bytes::from_request(req, &())).await {
        Err(_) => {
            let mut r = reject(
                &s,
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                &format!(
                    "the body did not arrive within {} s",
                    s.body_timeout.as_secs_f64()
                ),
            );
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return r;
        }
        Ok(Ok(b)) => b,
        Ok(Err(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return reject(
                &s,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "body over 25 MB",
            );
        }
        Ok(Err(e)) => return reject(&s, StatusCode::BAD_REQUEST, "bad_body", &e.body_text()),
    };
    match admit(&s.auth, &headers, &body, Utc::now()) {
        Ok((record, line)) => archive(s, record, line).await,
        Err(r) => reject(&s, r.status, r.reason, &r.message),
    }
}

/// Why a request is not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    /// The `ghreplay_rejected_total` reason.
    pub reason: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Everything `serve` checks about a request whose body has arrived, with
/// no I/O: the signature, the headers, the content type, and that the read
/// path reads the record back. Gives the record and its archive line.
pub fn admit(
    auth: &Auth,
    headers: &HeaderMap,
    body: &[u8],
    received_at: chrono::DateTime<Utc>,
) -> Result<(Record, Vec<u8>), Rejection> {
    if let Auth::Secrets {
        secrets,
        allow_sha1,
    } = auth
    {
        let sig256 = headers
            .get("x-hub-signature-256")
            .map(axum::http::HeaderValue::as_bytes);
        let sig1 = headers
            .get("x-hub-signature")
            .map(axum::http::HeaderValue::as_bytes);
        if let Err(r) = verify::verify(secrets, body, sig256, sig1, *allow_sha1) {
            return Err(Rejection::new(
                StatusCode::UNAUTHORIZED,
                r.label(),
                r.to_string(),
            ));
        }
    }
    let (Some(event), Some(delivery)) = (
        header_str(headers, "x-github-event"),
        header_str(headers, "x-github-delivery"),
    ) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "missing_headers",
            "X-GitHub-Event and X-GitHub-Delivery are required",
        ));
    };
    if !is_event_name(event) {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "bad_event",
            "X-GitHub-Event must be a GitHub event name: lower-case letters, digits and underscores",
        ));
    }
    let content_type = header_str(headers, "content-type")
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if !matches!(
        content_type.as_deref(),
        Some("application/json" | "application/x-www-form-urlencoded")
    ) {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "Content-Type must be application/json or application/x-www-form-urlencoded",
        ));
    }
    let record = Record {
        delivery_id: delivery.to_owned(),
        event: event.to_owned(),
        received_at,
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|h| header_str(headers, h).map(|v| ((*h).to_owned(), v.to_owned())))
            .collect::<BTreeMap<_, _>>(),
        body: body.to_vec(),
    };
    // Acknowledge only what the read path reads back: an acknowledged
    // delivery that cannot be replayed is lost all the same.
    let line = record.to_json_line();
    if let Err(why) = crate::decode::check_record(&line) {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the payload cannot be archived as a readable record: {why}"),
        ));
    }
    Ok((record, line))
}

/// Archives a delivery once, however many times it arrives.
async fn archive(s: Arc<AppState>, record: Record, line: Vec<u8>) -> Response {
    let ok = |status: &str| {
        reply(
            StatusCode::OK,
            json!({ "status": status, "delivery_id": record.delivery_id, "event": record.event }),
        )
    };
    loop {
        match s.index.claim(&record.delivery_id) {
            Claim::Durable => {
                Metrics::inc(&s.metrics.duplicates);
                return ok("duplicate");
            }
            Claim::Pending(mut rx) => {
                // Answer only once the first copy's fate is known.
                let archived = rx.wait_for(Option::is_some).await.map(|v| *v == Some(true));
                if matches!(archived, Ok(true)) {
                    Metrics::inc(&s.metrics.duplicates);
                    return ok("duplicate");
                }
            }
            Claim::New(writing) => {
                // On a task of its own: a client that hangs up mid-request
                // drops this handler, and the write and the claim must
                // still be settled, or every redelivery of the id would
                // wait for an outcome that never comes.
                let task = {
                    let (s, at) = (s.clone(), record.received_at);
                    tokio::spawn(async move {
                        let result = s.writer.write(line).await;
                        s.index.finish(writing, result.is_ok());
                        if result.is_ok() {
                            Metrics::inc(&s.metrics.archived);
                            s.metrics.delivered_at(at);
                            for f in &s.forward {
                                f.notify();
                            }
                            for w in &s.followers {
                                w.notify();
                            }
                        }
                        result
                    })
                };
                let result = task.await.unwrap_or(Err(WriteError::Stopped));
                return match result {
                    Ok(()) => ok("archived"),
                    Err(e) => {
                        Metrics::inc(&s.metrics.archive_failures);
                        reply(
                            StatusCode::SERVICE_UNAVAILABLE,
                            json!({ "error": e.to_string() }),
                        )
                    }
                };
            }
        }
    }
}

/// Wakes a follower of the archive (a forward target, the dashboard's
/// database) when something was archived; it also looks on its own now
/// and then.
#[derive(Default)]
pub struct Wake {
    pending: std::sync::Mutex<bool>,
    cond: std::sync::Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.cond.notify_one();
    }

    /// Waits for a notification, at most `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let guard = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut pending, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |p| !*p)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *pending = false;
    }
}

/// Joins a worker thread kept in `slot`, off the async runtime; a second
/// call finds it already joined.
pub(crate) async fn join(slot: &std::sync::Mutex<Option<std::thread::JoinHandle<()>>>) {
    let thread = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(t) = thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in
/// flight finish within the grace period (cutting what is left), and returns.
/// The caller then flushes the archive.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    path: &str,
    dedupe_window: Duration,
    limits: conn::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> conn::Stopped {
    let pruner = state.clone();
    let prune = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            pruner.index.prune(dedupe_window);
        }
    });
    let app = router(state.clone(), path);
    let stopped = conn::serve(listener, app, limits, state.metrics.clone(), shutdown).await;
    prune.abort();
    stopped
}
