//! GitHub's REST API, as much as `audit` needs: a webhook's delivery log
//! (newest first, up to 100 attempts a page, the next page's cursor in the
//! `Link` header) and asking for one delivery to be redelivered. Every call
//! waits out GitHub's rate limits here (`Retry-After`, or the primary limit's
//! reset time, or a minute and more for a secondary limit without either),
//! so callers see answers or real errors.
//!
//! Repository and organization hooks take a token (a fine-grained one with
//! the Webhooks permission, or a classic one with `admin:repo_hook` /
//! `admin:org_hook`); the app's hook takes the app's own JWT ([`jwt`]).

pub mod jwt;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LINK, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

pub use jwt::AppKey;

use crate::retry::RetryPolicy;

/// GitHub.com's API; GitHub Enterprise Server's is `https://HOST/api/v3`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The most attempts a list page holds.
pub const PER_PAGE: u32 = 100;

/// The REST API version every request asks for.
const API_VERSION: &str = "2022-11-28";

/// One request's time limit: connect, send and the whole answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Tries of a request that failed in passing (a reset, a timeout, a 5xx).
const TRIES: u32 = 5;

/// How long a call waits out rate limits: a primary limit resets within the
/// hour.
const RETRY_FOR: Duration = Duration::from_secs(70 * 60);

/// The least wait for a secondary rate limit that says no time (GitHub:
/// "wait for at least one minute"); the retry policy's backoff grows past
/// it if the limit persists.
const SECONDARY_WAIT: Duration = Duration::from_secs(60);

/// Why one try failed.
#[derive(Debug)]
enum Failure {
    /// A rate limit: try again after `wait`.
    RateLimited { wait: Duration },
    /// No answer, or a 5xx: try again a few times.
    Broken(String),
    /// An answer that will not change.
    Final(GithubError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::RateLimited { wait } => write!(
                f,
                "GitHub's rate limit: waiting {} s (until {})",
                wait.as_secs(),
                (Utc::now() + *wait).format("%H:%M:%S UTC")
            ),
            Failure::Broken(why) => f.write_str(why),
            Failure::Final(e) => e.fmt(f),
        }
    }
}

/// A list page is ~40 KB; a larger answer is not GitHub's.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// A webhook whose deliveries GitHub logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// `repo:OWNER/NAME:ID`.
    Repo { repo: String, id: u64 },
    /// `org:ORG:ID`.
    Org { org: String, id: u64 },
    /// `app`: the GitHub App's own webhook.
    App,
}

impl Hook {
    /// Parses `repo:OWNER/NAME:ID`, `org:ORG:ID` or `app`.
    pub fn parse(s: &str) -> Result<Hook, GithubError> {
        let bad = || GithubError::Hook(s.to_owned());
        if s == "app" {
            return Ok(Hook::App);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (name, id) = rest.rsplit_once(':').ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        let plain = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match kind {
            "repo" => match name.split_once('/') {
                Some((o, n)) if plain(o) && plain(n) => Ok(Hook::Repo {
                    repo: name.to_owned(),
                    id,
                }),
                _ => Err(bad()),
            },
            "org" if plain(name) => Ok(Hook::Org {
                org: name.to_owned(),
                id,
            }),
            _ => Err(bad()),
        }
    }

    /// The path of its delivery log under the API's root.
    #[must_use]
    pub fn deliveries_path(&self) -> String {
        match self {
            Hook::Repo { repo, id } => format!("/repos/{repo}/hooks/{id}/deliveries"),
            Hook::Org { org, id } => format!("/orgs/{org}/hooks/{id}/deliveries"),
            Hook::App => "/app/hook/deliveries".to_owned(),
        }
    }

    #[must_use]
    pub fn is_app(&self) -> bool {
        matches!(self, Hook::App)
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hook::Repo { repo, id } => write!(f, "repo:{repo}:{id}"),
            Hook::Org { org, id } => write!(f, "org:{org}:{id}"),
            Hook::App => f.write_str("app"),
        }
    }
}

/// How requests are authenticated.
pub enum Credentials {
    /// A token for repository and organization hooks.
    Token(String),
    /// A GitHub App (its own hook): the app's id or client id, and its key.
    App { id: String, key: AppKey },
    /// Both: the token for repository and organization hooks, the app's JWT
    /// for the app hook.
    Both {
        token: String,
        id: String,
        key: AppKey,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::Token(_) => "Credentials::Token(***)",
            Credentials::App { .. } => "Credentials::App(***)",
            Credentials::Both { .. } => "Credentials::Both(***)",
        })
    }
}

impl Credentials {
    fn bearer(&self, hook: &Hook, now: DateTime<Utc>) -> Result<String, GithubError> {
        match (self, hook.is_app()) {
            (Credentials::Token(t) | Credentials::Both { token: t, .. }, false) => Ok(t.clone()),
            (Credentials::App { id, key } | Credentials::Both { id, key, .. }, true) => {
                key.token(id, now).map_err(GithubError::Jwt)
            }
            (Credentials::Token(_), true) => Err(GithubError::Credentials(
                "the app hook needs the app's own token: give --github-app-id and --github-private-key",
            )),
            (Credentials::App { .. }, false) => Err(GithubError::Credentials(
                "a repository or organization hook needs a token: give --github-token-file or GITHUB_TOKEN",
            )),
        }
    }
}

/// One attempt to deliver, as GitHub's delivery log lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The attempt's own id (what a redelivery is asked on).
    pub id: u64,
    /// The `X-GitHub-Delivery` id, shared by a delivery's redeliveries.
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// GitHub's account: "OK", "Invalid HTTP Response: 503", "timed out"...
    pub status: String,
    /// The receiver's HTTP status; 0 when there was no answer.
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation_id: Option<u64>,
    #[serde(default)]
    pub repository_id: Option<u64>,
}

impl Attempt {
    /// The receiver acknowledged it: a 2xx, which GitHub calls "OK" (its
    /// own redelivery script goes by that word).
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status_code) || self.status == "OK"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("--hook {0:?}: expected repo:OWNER/NAME:ID, org:ORG:ID or app")]
    Hook(String),
    #[error("--github-api-url {0:?}: expected http:// or https:// and a host")]
    ApiUrl(String),
    #[error("{0}")]
    Credentials(&'static str),
    #[error("the app's token: {0}")]
    Jwt(String),
    #[error("{what}: GitHub answered {status}: {message}{}", hint(*status))]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: {why}")]
    Unreachable { what: String, why: String },
    #[error("{what}: {why} (tried {TRIES} times: check --github-api-url and the network)")]
    NoAnswer { what: String, why: String },
    #[error("{what}: the answer is not GitHub's delivery log: {why}")]
    Garbled { what: String, why: String },
    #[error("{what}: the next page is at {link}, not under --github-api-url; the credentials are not sent there")]
    ForeignLink { what: String, link: String },
}

fn hint(status: u16) -> &'static str {
    match status {
        401 => " (the token or the app's key is not accepted: expired, revoked, or for another app)",
        403 => " (the credentials lack a permission: a repository hook's log needs a token with the Webhooks permission, read to list and write to redeliver, or a classic token with admin:repo_hook; an organization hook's, an owner's token with admin:org_hook)",
        404 => " (no such hook, or the credentials cannot see it)",
        _ => "",
    }
}

/// What the last answer said of the primary rate limit.
#[derive(Debug, Default, Clone, Copy)]
struct Quota {
    remaining: Option<u64>,
    reset: Option<DateTime<Utc>>,
}

/// GitHub's API at one root URL, with one set of credentials.
pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The root, without a trailing slash (`https://api.github.com`,
    /// `https://ghe.example/api/v3`).
    root: String,
    credentials: Credentials,
    quota: Mutex<Quota>,
    requests: AtomicU64,
    waited: AtomicU64,
}

impl Client {
    pub fn new(
        api_url: &str,
        credentials: Credentials,
        ca_pem: Option<&str>,
    ) -> Result<Self, GithubError> {
        let root = api_url.trim_end_matches('/').to_owned();
        let uri: Uri = root
            .parse()
            .map_err(|_| GithubError::ApiUrl(api_url.to_owned()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(GithubError::ApiUrl(api_url.to_owned()));
        }
        let connector =
            crate::net::https_connector(ca_pem).map_err(|why| GithubError::Unreachable {
                what: "GitHub's API".into(),
                why,
            })?;
        Ok(Self {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
            root,
            credentials,
            quota: Mutex::new(Quota::default()),
            requests: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        })
    }

    /// Requests sent so far (retries and rate-limited ones included).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Seconds spent waiting out rate limits.
    #[must_use]
    pub fn rate_limited_secs(&self) -> u64 {
        self.waited.load(Ordering::Relaxed)
    }

    /// Pages through `hook`'s delivery log from the newest attempt back to
    /// `since`, handing each page's attempts at or after `since` to `page`.
    /// Returns the number of pages read.
    pub async fn deliveries(
        &self,
        hook: &Hook,
        since: DateTime<Utc>,
        mut page: impl FnMut(Vec<Attempt>),
    ) -> Result<u64, GithubError> {
        let what = format!("listing {hook}'s deliveries");
        let mut url = format!(
            "{}{}?per_page={PER_PAGE}",
            self.root,
            hook.deliveries_path()
        );
        let mut pages = 0;
        loop {
            let (headers, body) = self.call(Method::GET, &url, hook, &what).await?;
            pages += 1;
            let attempts: Vec<Attempt> =
                serde_json::from_slice(&body).map_err(|e| GithubError::Garbled {
                    what: what.clone(),
                    why: e.to_string(),
                })?;
            let reached_since = attempts.iter().any(|a| a.delivered_at < since);
            let next = next_link(&headers);
            page(
                attempts
                    .into_iter()
                    .filter(|a| a.delivered_at >= since)
                    .collect(),
            );
            match next {
                Some(link) if !reached_since => {
                    if !link.starts_with(&format!("{}/", self.root)) {
                        return Err(GithubError::ForeignLink { what, link });
                    }
                    url = link;
                }
                _ => return Ok(pages),
            }
        }
    }

    /// Asks GitHub to redeliver the delivery of attempt `attempt` (same
    /// guid, signed with the hook's current secret).
    pub async fn redeliver(&self, hook: &Hook, attempt: u64) -> Result<(), GithubError> {
        let what = format!("asking {hook} to redeliver attempt {attempt}");
        let url = format!("{}{}/{attempt}/attempts", self.root, hook.deliveries_path());
        self.call(Method::POST, &url, hook, &what).await.map(|_| ())
    }

    /// One request, retried under the one [`RetryPolicy`] while it fails in
    /// passing: a rate limit (waited out for as long as GitHub says, up to
    /// [`RETRY_FOR`]), or a reset, a timeout, a 5xx ([`TRIES`] times, so a
    /// wrong `--github-api-url` fails in seconds).
    async fn call(
        &self,
        method: Method,
        url: &str,
        hook: &Hook,
        what: &str,
    ) -> Result<(HeaderMap, Bytes), GithubError> {
        let policy = RetryPolicy {
            retry_for: RETRY_FOR,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        };
        let mut broken = 0;
        policy
            .run_asked(
                what,
                || self.once(method.clone(), url, hook, what),
                |f| match f {
                    Failure::RateLimited { .. } => true,
                    Failure::Broken(_) => {
                        broken += 1;
                        broken < TRIES
                    }
                    Failure::Final(_) => false,
                },
                |f| match f {
                    Failure::RateLimited { wait } => *wait,
                    _ => Duration::ZERO,
                },
            )
            .await
            .map_err(|f| match f {
                Failure::Final(e) => e,
                Failure::Broken(why) => GithubError::NoAnswer {
                    what: what.to_owned(),
                    why,
                },
                Failure::RateLimited { wait } => GithubError::Unreachable {
                    what: what.to_owned(),
                    why: format!(
                        "still rate limited after {} min (GitHub asks for {} s more)",
                        RETRY_FOR.as_secs() / 60,
                        wait.as_secs()
                    ),
                },
            })
    }

    /// One try.
    async fn once(
        &self,
        method: Method,
        url: &str,
        hook: &Hook,
        what: &str,
    ) -> Result<(HeaderMap, Bytes), Failure> {
        self.wait_for_quota().await;
        let bearer = self
            .credentials
            .bearer(hook, Utc::now())
            .map_err(Failure::Final)?;
        let authorization = HeaderValue::from_str(&format!("Bearer {bearer}")).map_err(|_| {
            Failure::Final(GithubError::Credentials(
                "the token holds characters a header cannot",
            ))
        })?;
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(USER_AGENT, concat!("ghreplay/", env!("CARGO_PKG_VERSION")))
            .header(AUTHORIZATION, authorization)
            .body(Full::new(Bytes::new()))
            .map_err(|e| {
                Failure::Final(GithubError::Unreachable {
                    what: what.to_owned(),
                    why: e.to_string(),
                })
            })?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| crate::aws::causes(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((parts.status, parts.headers, body))
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())));
        let (status, headers, body) = answer.map_err(Failure::Broken)?;
        self.note_quota(&headers);
        if status.is_success() {
            return Ok((headers, body));
        }
        if let Some(wait) = rate_limited(status, &headers, &body) {
            self.waited.fetch_add(wait.as_secs(), Ordering::Relaxed);
            return Err(Failure::RateLimited { wait });
        }
        if status.is_server_error() {
            return Err(Failure::Broken(format!("GitHub answered {status}")));
        }
        Err(Failure::Final(GithubError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            message: message(&body),
        }))
    }

    fn note_quota(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let mut q = self
            .quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = number("x-ratelimit-remaining") {
            q.remaining = u64::try_from(r).ok();
        }
        if let Some(t) = number("x-ratelimit-reset") {
            q.reset = DateTime::from_timestamp(t, 0);
        }
    }

    /// The primary limit is spent: waits for its reset rather than spend a
    /// request on a refusal.
    async fn wait_for_quota(&self) {
        let q = *self
            .quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(0), Some(reset)) = (q.remaining, q.reset) {
            if let Ok(wait) = (reset - Utc::now() + chrono::Duration::seconds(1)).to_std() {
                tracing::warn!(
                    "GitHub's rate limit is spent; waiting {} s (until {})",
                    wait.as_secs(),
                    reset.format("%H:%M:%S UTC")
                );
                self.waited.fetch_add(wait.as_secs(), Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
            let mut q = self
                .quota
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            q.remaining = None;
        }
    }
}

/// How long to wait when an answer is a rate limit, per GitHub's guidance:
/// `Retry-After` if given; else, with no requests remaining, until the
/// reset; else (a secondary limit) at least a minute.
fn rate_limited(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<Duration> {
    let secondary = SECONDARY_WAIT;
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(secs) = header(RETRY_AFTER).and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if header(hyper::header::HeaderName::from_static(
        "x-ratelimit-remaining",
    ))
    .map(str::trim)
        == Some("0")
    {
        let reset = header(hyper::header::HeaderName::from_static("x-ratelimit-reset"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0));
        let wait = reset.map_or(secondary, |r| {
            (r - Utc::now() + chrono::Duration::seconds(1))
                .to_std()
                .unwrap_or(Duration::from_secs(1))
        });
        return Some(wait);
    }
    let said = message(body).to_ascii_lowercase();
    (status == StatusCode::TOO_MANY_REQUESTS || said.contains("rate limit")).then_some(secondary)
}

/// GitHub's error message (`{"message": ...}`), or the body's start.
fn message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Said {
        message: String,
    }
    serde_json::from_slice::<Said>(body).map_or_else(
        |_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        |s| s.message,
    )
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.trim().split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
            is_next.then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_parse_and_show_as_typed() {
        for s in ["repo:octo-org/hello.world:12345", "org:octo-org:7", "app"] {
            assert_eq!(Hook::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Hook::parse("repo:o/r:1").unwrap().deliveries_path(),
            "/repos/o/r/hooks/1/deliveries"
        );
        assert_eq!(
            Hook::parse("org:o:2").unwrap().deliveries_path(),
            "/orgs/o/hooks/2/deliveries"
        );
        assert_eq!(Hook::App.deliveries_path(), "/app/hook/deliveries");
        for bad in [
            "repo:o:1",
            "repo:o/r:x",
            "org:o",
            "org:a/b:1",
            "hook:1",
            "repo:o/../x:1",
            "",
        ] {
            assert!(Hook::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_2>; rel="prev", <https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; rel="next""#,
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9")
        );
        h.insert(
            LINK,
            HeaderValue::from_static(r#"<https://x/?cursor=1>; rel="prev""#),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn rate_limits_are_told_from_refusals() {
        let mut h = HeaderMap::new();
        let min = SECONDARY_WAIT;
        assert_eq!(
            rate_limited(
                StatusCode::FORBIDDEN,
                &h,
                b"{\"message\":\"Must have admin rights\"}"
            ),
            None
        );
        assert_eq!(
            rate_limited(
                StatusCode::FORBIDDEN,
                &h,
                b"{\"message\":\"You have exceeded a secondary rate limit.\"}"
            ),
            Some(min)
        );
        assert_eq!(
            rate_limited(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            Some(min)
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &h, b""),
            Some(Duration::from_secs(7))
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (Utc::now() + chrono::Duration::seconds(30))
            .timestamp()
            .to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        let wait = rate_limited(
            StatusCode::FORBIDDEN,
            &h,
            b"{\"message\":\"API rate limit exceeded\"}",
        )
        .unwrap();
        assert!((29..=32).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(rate_limited(StatusCode::NOT_FOUND, &h, b""), None);
    }

    #[test]
    fn attempts_read_githubs_example() {
        // The example item of GitHub's documentation for these endpoints.
        let a: Vec<Attempt> = serde_json::from_str(
            r#"[{"id":12345678,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516","delivered_at":"2019-06-03T00:57:16Z","redelivery":false,"duration":0.27,"status":"OK","status_code":200,"event":"issues","action":"opened","installation_id":123,"repository_id":456,"throttled_at":"2019-06-03T00:57:16Z"}]"#,
        )
        .unwrap();
        assert!(a[0].is_success());
        assert_eq!(a[0].action.as_deref(), Some("opened"));
    }
}
