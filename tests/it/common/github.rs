//! A stand-in for GitHub (which cannot run here): the webhook sender and the
//! REST API of its delivery log, built from GitHub's documentation of these
//! endpoints (the `OpenAPI` description, 2022-11-28) and its example
//! responses:
//!
//! - `GET /repos/{owner}/{repo}/hooks/{id}/deliveries`,
//!   `GET /orgs/{org}/hooks/{id}/deliveries`, `GET /app/hook/deliveries`:
//!   newest first; `per_page` (default 30, at most 100) and an opaque
//!   `cursor`, the next page's URL in `Link: <...>; rel="next"`; items with
//!   the documented fields (`hook-delivery-item`).
//! - `POST .../deliveries/{id}/attempts`: 202 `{}`; then, on its own, the
//!   original body is sent again with the same guid and `X-GitHub-Hook-ID`,
//!   signed with the hook's current secret, and logged as a redelivery.
//! - Tokens as `Authorization: Bearer`; the app's hook only with the app's
//!   JWT (RS256, verified against the app's public key; `iss` the app id,
//!   `exp` at most 10 minutes after `iat`); a `User-Agent` is required.
//! - `x-ratelimit-*` on every answer; when told to, a primary rate limit:
//!   403, `x-ratelimit-remaining: 0`, the reset time, GitHub's message.
//!
//! Sending is GitHub's too: each delivery is posted to the hook's URL with
//! GitHub's headers (`X-GitHub-Event`, `X-GitHub-Delivery`,
//! `X-GitHub-Hook-ID`, the installation target, both signatures), and the
//! outcome logged as GitHub words it: `OK`, `Invalid HTTP Response: N`,
//! `failed to connect` (502, as the documentation's example pairs them),
//! `timed out` (0).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The token the stand-in accepts for repository and organization hooks.
pub const TOKEN: &str = "ghp_standin0123456789";
/// The app id its app hook expects in the JWT's `iss`.
pub const APP_ID: &str = "424242";
/// GitHub's per-hour limit, as its headers say.
const LIMIT: u64 = 5000;

/// How GitHub's sender fares with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// As the receiver answers.
    Normal,
    /// The receiver answered after GitHub's timeout: the request arrives and
    /// is answered, but GitHub logs `timed out` (a slow acknowledgement).
    AnswerTooLate,
}

struct Attempt {
    id: u64,
    guid: String,
    delivered_at: SystemTime,
    redelivery: bool,
    status: String,
    status_code: u16,
    event: String,
    action: Option<String>,
    body: Vec<u8>,
}

struct Hook {
    /// `repo:OWNER/NAME`, `org:ORG` or `app`.
    kind: String,
    id: u64,
    url: String,
    secret: String,
    attempts: Vec<Attempt>,
}

impl Hook {
    fn label(&self) -> String {
        if self.kind == "app" {
            "app".into()
        } else {
            format!("{}:{}", self.kind, self.id)
        }
    }

    fn target_type(&self) -> &'static str {
        match self.kind.split(':').next() {
            Some("repo") => "repository",
            Some("org") => "organization",
            _ => "integration",
        }
    }
}

#[derive(Default)]
struct World {
    port: u16,
    hooks: Vec<Hook>,
    next_id: u64,
    /// The app's public key, PKCS#1 DER.
    app_public_key: Vec<u8>,
    requests: u64,
    /// The hour's quota (GitHub's 5,000 unless the bench raises it).
    limit: u64,
    remaining: u64,
    /// Requests left before the rate limit strikes, and for how long.
    limit_after: Option<(u64, Duration)>,
    reset_at: Option<SystemTime>,
    /// Requests made while limited, before the reset: each one a client
    /// that did not wait.
    ignored_limit: u64,
    redeliveries_held: bool,
    redeliveries_asked: u64,
}

impl World {
    /// Logs `attempt` on `hook` under the next attempt id.
    fn log(&mut self, hook: &str, mut attempt: Attempt) {
        self.next_id += 1;
        attempt.id = self.next_id;
        let h = self.hooks.iter_mut().find(|h| h.label() == hook).unwrap();
        h.attempts.push(attempt);
    }
}

/// The stand-in, serving on 127.0.0.1 until dropped.
pub struct GitHub {
    pub port: u16,
    world: Arc<Mutex<World>>,
    _runtime: tokio::runtime::Runtime,
}

impl GitHub {
    /// Starts it; the app's key pair is `app_key_pem`'s (see [`app_key`]).
    pub fn start(app_public_key_der: Vec<u8>) -> GitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let world = Arc::new(Mutex::new(World {
            port,
            next_id: 1_000_000,
            app_public_key: app_public_key_der,
            limit: LIMIT,
            remaining: LIMIT,
            ..World::default()
        }));
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/hooks/{id}/deliveries",
                get(list_repo),
            )
            .route("/orgs/{org}/hooks/{id}/deliveries", get(list_org))
            .route("/app/hook/deliveries", get(list_app))
            .route(
                "/repos/{owner}/{repo}/hooks/{id}/deliveries/{attempt}/attempts",
                post(redeliver_repo),
            )
            .route(
                "/orgs/{org}/hooks/{id}/deliveries/{attempt}/attempts",
                post(redeliver_org),
            )
            .route(
                "/app/hook/deliveries/{attempt}/attempts",
                post(redeliver_app),
            )
            .with_state(world.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        GitHub {
            port,
            world,
            _runtime: runtime,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a hook (`repo:OWNER/NAME`, `org:ORG` or `app`) sending to `url`;
    /// returns it as `audit --hook` takes it.
    pub fn add_hook(&self, kind: &str, url: &str, secret: &str) -> String {
        let mut w = self.world.lock().unwrap();
        w.next_id += 1;
        let hook = Hook {
            kind: kind.into(),
            id: w.next_id,
            url: url.into(),
            secret: secret.into(),
            attempts: Vec::new(),
        };
        let label = hook.label();
        w.hooks.push(hook);
        label
    }

    /// Sends one delivery as GitHub would; returns its guid and the logged
    /// status code.
    pub fn deliver(&self, hook: &str, event: &str, body: &[u8], how: Send) -> (String, u16) {
        let guid = uuid::Uuid::new_v4().to_string();
        let action = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["action"].as_str().map(str::to_owned));
        let code = send_and_log(
            &self.world,
            hook,
            &guid,
            event,
            action,
            body.to_vec(),
            false,
            how,
        );
        (guid, code)
    }

    /// Redelivers `guid`'s delivery now, as the Redeliver button in
    /// GitHub's settings page does; returns the logged status code.
    pub fn deliver_again(&self, hook: &str, guid: &str) -> (String, u16) {
        let (event, action, body) = {
            let w = self.world.lock().unwrap();
            let a = w
                .hooks
                .iter()
                .flat_map(|h| &h.attempts)
                .find(|a| a.guid == guid)
                .expect("no such delivery");
            (a.event.clone(), a.action.clone(), a.body.clone())
        };
        let code = send_and_log(
            &self.world,
            hook,
            guid,
            &event,
            action,
            body,
            true,
            Send::Normal,
        );
        (guid.to_owned(), code)
    }

    /// Logs an attempt as if it had been sent, sending nothing: for a log
    /// larger than a test sends (the audit benchmark's).
    #[allow(dead_code)] // used by benches/github_standin.rs, which includes this file
    pub fn log_attempt(
        &self,
        hook: &str,
        guid: &str,
        event: &str,
        action: Option<&str>,
        delivered_at: SystemTime,
        status_code: u16,
    ) {
        self.world.lock().unwrap().log(
            hook,
            Attempt {
                id: 0,
                guid: guid.to_owned(),
                delivered_at,
                redelivery: false,
                status: if (200..300).contains(&status_code) {
                    "OK".to_owned()
                } else {
                    format!("Invalid HTTP Response: {status_code}")
                },
                status_code,
                event: event.to_owned(),
                action: action.map(str::to_owned),
                body: Vec::new(),
            },
        );
    }

    /// Moves every attempt logged so far `by` into the past, as if it had
    /// been made that much earlier.
    pub fn backdate(&self, by: Duration) {
        let mut w = self.world.lock().unwrap();
        for a in w.hooks.iter_mut().flat_map(|h| &mut h.attempts) {
            a.delivered_at -= by;
        }
    }

    /// Sets the hour's quota of requests: for the benchmark, which audits
    /// the same 3,000-page log several times in one hour.
    #[allow(dead_code)] // used by benches/github_standin.rs, which includes this file
    pub fn set_quota(&self, n: u64) {
        let mut w = self.world.lock().unwrap();
        w.limit = n;
        w.remaining = n;
    }

    /// Every later request is refused with a primary rate limit after `n`
    /// more, until `reset_in` has passed.
    pub fn rate_limit_after(&self, n: u64, reset_in: Duration) {
        self.world.lock().unwrap().limit_after = Some((n, reset_in));
    }

    /// Redeliveries asked for are accepted (202) but not attempted yet.
    pub fn hold_redeliveries(&self, hold: bool) {
        self.world.lock().unwrap().redeliveries_held = hold;
    }

    /// API requests received.
    pub fn requests(&self) -> u64 {
        self.world.lock().unwrap().requests
    }

    /// Requests received while rate limited, after the first refusal.
    pub fn ignored_limit(&self) -> u64 {
        self.world.lock().unwrap().ignored_limit
    }

    pub fn redeliveries_asked(&self) -> u64 {
        self.world.lock().unwrap().redeliveries_asked
    }

    /// Attempts logged for `guid` (status codes, oldest first).
    pub fn attempts(&self, guid: &str) -> Vec<u16> {
        let w = self.world.lock().unwrap();
        w.hooks
            .iter()
            .flat_map(|h| &h.attempts)
            .filter(|a| a.guid == guid)
            .map(|a| a.status_code)
            .collect()
    }

    /// Waits until `guid` has `n` attempts logged.
    pub fn wait_for_attempts(&self, guid: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.attempts(guid).len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{guid}: {} attempts, expected {n}",
                self.attempts(guid).len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An RSA key pair for the app made by openssl, as GitHub hands one out:
/// the private key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`) written to
/// `dir/app.pem`, and the public key as PKCS#1 DER.
pub fn app_key(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let pem = dir.join("app.pem");
    let ok = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&pem)
        .arg("2048")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "openssl genrsa: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(std::fs::read_to_string(&pem)
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(public.status.success());
    (pem, public.stdout)
}

#[allow(clippy::too_many_arguments)]
fn send_and_log(
    world: &Arc<Mutex<World>>,
    hook: &str,
    guid: &str,
    event: &str,
    action: Option<String>,
    body: Vec<u8>,
    redelivery: bool,
    how: Send,
) -> u16 {
    let (url, secret, hook_id, target_type) = {
        let w = world.lock().unwrap();
        let h = w
            .hooks
            .iter()
            .find(|h| h.label() == hook)
            .expect("no such hook");
        (h.url.clone(), h.secret.clone(), h.id, h.target_type())
    };
    let delivered_at = SystemTime::now();
    let sha256 = ghreplay::signature::sign_sha256(secret.as_bytes(), &body);
    let sha1 = {
        use hmac::Mac as _;
        let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(&body);
        format!("sha1={}", hex::encode(m.finalize().into_bytes()))
    };
    let headers = [
        ("Accept", "*/*".to_owned()),
        ("Content-Type", "application/json".to_owned()),
        ("User-Agent", "GitHub-Hookshot/standin".to_owned()),
        ("X-GitHub-Delivery", guid.to_owned()),
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Hook-ID", hook_id.to_string()),
        ("X-GitHub-Hook-Installation-Target-ID", "123".to_owned()),
        (
            "X-GitHub-Hook-Installation-Target-Type",
            target_type.to_owned(),
        ),
        ("X-Hub-Signature", sha1),
        ("X-Hub-Signature-256", sha256),
    ];
    let (status, status_code) = match send_to(&url, &headers, &body) {
        Ok(_) if how == Send::AnswerTooLate => ("timed out".to_owned(), 0),
        Ok(code) if (200..300).contains(&code) => ("OK".to_owned(), code),
        Ok(code) => (format!("Invalid HTTP Response: {code}"), code),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            ("timed out".to_owned(), 0)
        }
        Err(_) => ("failed to connect".to_owned(), 502),
    };
    world.lock().unwrap().log(
        hook,
        Attempt {
            id: 0,
            guid: guid.to_owned(),
            delivered_at,
            redelivery,
            status,
            status_code,
            event: event.to_owned(),
            action,
            body,
        },
    );
    status_code
}

/// One POST on a fresh connection, with GitHub's 10 s timeout.
fn send_to(url: &str, headers: &[(&str, String)], body: &[u8]) -> std::io::Result<u16> {
    let rest = url.strip_prefix("http://").expect("http:// hook URLs only");
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr: std::net::SocketAddr = authority.parse().expect("an IP:port hook URL");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP answer"))
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

/// Counts the request, applies the rate limit and checks the credentials
/// for `hook`; the headers every answer carries, or the refusal.
fn admit(w: &mut World, headers: &HeaderMap, app: bool) -> Result<HeaderMap, Box<Response>> {
    w.requests += 1;
    let now = SystemTime::now();
    if let Some(reset) = w.reset_at {
        if now < reset {
            w.ignored_limit += 1;
        } else {
            w.reset_at = None;
            w.remaining = w.limit;
        }
    }
    if let Some((n, reset_in)) = w.limit_after {
        if n == 0 {
            w.limit_after = None;
            w.reset_at = Some(now + reset_in);
            w.remaining = 0;
        } else {
            w.limit_after = Some((n - 1, reset_in));
        }
    }
    let reset = w.reset_at.unwrap_or(now + Duration::from_secs(3600));
    let mut out = HeaderMap::new();
    let set = |out: &mut HeaderMap, k: &'static str, v: String| {
        out.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    set(&mut out, "x-ratelimit-limit", w.limit.to_string());
    set(&mut out, "x-ratelimit-remaining", w.remaining.to_string());
    set(
        &mut out,
        "x-ratelimit-used",
        (w.limit - w.remaining).to_string(),
    );
    set(&mut out, "x-ratelimit-reset", epoch(reset).to_string());
    set(&mut out, "x-ratelimit-resource", "core".to_owned());
    let refuse = |status, message: &str| {
        let mut r = error(status, message);
        r.headers_mut().extend(out.clone());
        Err(Box::new(r))
    };
    if w.remaining == 0 {
        return refuse(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1.",
        );
    }
    w.remaining -= 1;
    if !headers.contains_key("user-agent") {
        return refuse(StatusCode::FORBIDDEN, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = if app {
        verify_jwt(bearer, &w.app_public_key)
    } else {
        (bearer == TOKEN).then_some(()).ok_or("Bad credentials")
    };
    if let Err(message) = ok {
        return refuse(StatusCode::UNAUTHORIZED, message);
    }
    Ok(out)
}

/// An app JWT as GitHub checks it: RS256 over the app's public key, `iss`
/// the app, not expired, `exp` at most 10 minutes after `iat`.
fn verify_jwt(token: &str, public_key: &[u8]) -> Result<(), &'static str> {
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("A JSON web token could not be decoded");
    };
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "A JSON web token could not be decoded")
    };
    let h: Value = serde_json::from_slice(&decode(header)?)
        .map_err(|_| "A JSON web token could not be decoded")?;
    if h["alg"] != "RS256" {
        return Err("A JSON web token could not be decoded");
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(format!("{header}.{claims}").as_bytes(), &decode(signature)?)
        .map_err(|_| "A JSON web token could not be decoded")?;
    let c: Value = serde_json::from_slice(&decode(claims)?)
        .map_err(|_| "A JSON web token could not be decoded")?;
    let now = i64::try_from(epoch(SystemTime::now())).unwrap();
    let (iat, exp) = (
        c["iat"].as_i64().unwrap_or(0),
        c["exp"].as_i64().unwrap_or(0),
    );
    if c["iss"] != APP_ID && c["iss"].as_i64().map(|i| i.to_string()).as_deref() != Some(APP_ID) {
        return Err("Integration not found");
    }
    if exp <= now {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
    }
    if exp - iat > 600 || iat > now + 60 {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    Ok(())
}

type Shared = State<Arc<Mutex<World>>>;

async fn list_repo(
    s: Shared,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    q: Query<BTreeMap<String, String>>,
    h: HeaderMap,
) -> Response {
    list(&s, &format!("repo:{owner}/{repo}:{id}"), &q, &h)
}

async fn list_org(
    s: Shared,
    Path((org, id)): Path<(String, u64)>,
    q: Query<BTreeMap<String, String>>,
    h: HeaderMap,
) -> Response {
    list(&s, &format!("org:{org}:{id}"), &q, &h)
}

async fn list_app(s: Shared, q: Query<BTreeMap<String, String>>, h: HeaderMap) -> Response {
    list(&s, "app", &q, &h)
}

fn list(
    world: &Shared,
    hook: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let mut w = world.lock().unwrap();
    let out = match admit(&mut w, headers, hook == "app") {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let port = w.port;
    let Some(logged) = w.hooks.iter().find(|h| h.label() == hook) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    // Newest first; the cursor names the first attempt of the page. Ids
    // grow as attempts are logged, so the log is in id order already.
    let all = &logged.attempts;
    let end = match query.get("cursor") {
        Some(c) => {
            let Some(id) = c.strip_prefix("v1_").and_then(|i| i.parse::<u64>().ok()) else {
                return error(StatusCode::BAD_REQUEST, "Bad Request");
            };
            all.partition_point(|a| a.id <= id)
        }
        None => all.len(),
    };
    let page: Vec<Value> = all[..end]
        .iter()
        .rev()
        .take(per_page)
        .map(|a| {
            json!({
                "id": a.id,
                "guid": a.guid,
                "delivered_at": rfc3339(a.delivered_at),
                "redelivery": a.redelivery,
                "duration": 0.27,
                "status": a.status,
                "status_code": a.status_code,
                "event": a.event,
                "action": a.action,
                "installation_id": Value::Null,
                "repository_id": if hook.starts_with("repo:") { json!(456) } else { Value::Null },
                "throttled_at": Value::Null,
            })
        })
        .collect();
    let mut response = Json(page).into_response();
    response.headers_mut().extend(out);
    if let Some(next) = end.checked_sub(per_page + 1).map(|i| &all[i]) {
        let path = match hook.split(':').collect::<Vec<_>>()[..] {
            ["repo", repo, id] => format!("/repos/{repo}/hooks/{id}/deliveries"),
            ["org", org, id] => format!("/orgs/{org}/hooks/{id}/deliveries"),
            _ => "/app/hook/deliveries".to_owned(),
        };
        let link = format!(
            "<http://127.0.0.1:{port}{path}?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
            next.id
        );
        response
            .headers_mut()
            .insert("link", HeaderValue::from_str(&link).unwrap());
    }
    response
}

async fn redeliver_repo(
    s: Shared,
    Path((owner, repo, id, attempt)): Path<(String, String, u64, u64)>,
    h: HeaderMap,
) -> Response {
    redeliver(&s, &format!("repo:{owner}/{repo}:{id}"), attempt, &h)
}

async fn redeliver_org(
    s: Shared,
    Path((org, id, attempt)): Path<(String, u64, u64)>,
    h: HeaderMap,
) -> Response {
    redeliver(&s, &format!("org:{org}:{id}"), attempt, &h)
}

async fn redeliver_app(s: Shared, Path(attempt): Path<u64>, h: HeaderMap) -> Response {
    redeliver(&s, "app", attempt, &h)
}

fn redeliver(s: &Shared, hook: &str, attempt: u64, headers: &HeaderMap) -> Response {
    let mut w = s.lock().unwrap();
    let out = match admit(&mut w, headers, hook == "app") {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let Some(h) = w.hooks.iter().find(|h| h.label() == hook) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(a) = h.attempts.iter().find(|a| a.id == attempt) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let (guid, event, action, body) = (
        a.guid.clone(),
        a.event.clone(),
        a.action.clone(),
        a.body.clone(),
    );
    w.redeliveries_asked += 1;
    let held = w.redeliveries_held;
    drop(w);
    if !held {
        let world = s.0.clone();
        let hook = hook.to_owned();
        std::thread::spawn(move || {
            send_and_log(
                &world,
                &hook,
                &guid,
                &event,
                action,
                body,
                true,
                Send::Normal,
            );
        });
    }
    let mut response = (StatusCode::ACCEPTED, Json(json!({}))).into_response();
    response.headers_mut().extend(out);
    response
}
