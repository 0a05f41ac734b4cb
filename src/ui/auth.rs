//! Who may see the dashboard. On a loopback address, whoever can reach it
//! (the machine's own users); on any other, only with the token of
//! `--ui-token-file`: as a `Bearer` header (scripts), or through the login
//! form, which sets an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over
//! TLS). The cookie holds a value derived from the token, not the token;
//! both are compared in constant time.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{pages, Ui};

/// The session cookie's name.
pub const COOKIE: &str = "ghreplay_ui";

/// How requests are let in.
pub enum Access {
    /// Bound to a loopback address with no token given.
    Open,
    Token {
        /// SHA-256 of the token: what a `Bearer` value is compared with.
        digest: [u8; 32],
        /// The cookie's value: HMAC-SHA256 of a fixed label under the token.
        session: String,
        /// Served over TLS: the cookie is `Secure`.
        secure: bool,
    },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Open => "Access::Open",
            Access::Token { .. } => "Access::Token(***)",
        })
    }
}

impl Access {
    /// The access for a dashboard bound to `addr`: refuses a non-loopback
    /// address without a token, and warns when the token would travel in
    /// clear.
    pub fn new(addr: SocketAddr, token_file: Option<&Path>, tls: bool) -> anyhow::Result<Self> {
        let Some(path) = token_file else {
            if !addr.ip().is_loopback() {
                bail!(
                    "the dashboard on {addr} would be reachable from other machines: give --ui-token-file FILE (every request then needs that token), or listen on 127.0.0.1"
                );
            }
            return Ok(Access::Open);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --ui-token-file {}", path.display()))?;
        let token = text.trim();
        if token.len() < 16 {
            bail!(
                "--ui-token-file {}: the token must be at least 16 characters (e.g. `openssl rand -hex 32`)",
                path.display()
            );
        }
        if !addr.ip().is_loopback() && !tls {
            tracing::warn!(
                %addr,
                "the dashboard's token travels in clear unless a TLS proxy is in front: give --ui-tls-cert and --ui-tls-key to serve HTTPS"
            );
        }
        Ok(Self::with_token(token, tls))
    }

    #[must_use]
    pub fn with_token(token: &str, secure: bool) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"ghreplay dashboard session v1");
        Access::Token {
            digest: Sha256::digest(token.as_bytes()).into(),
            session: hex::encode(mac.finalize().into_bytes()),
            secure,
        }
    }

    /// Whether the request carries the token (or the session cookie).
    #[must_use]
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Access::Token {
            digest, session, ..
        } = self
        else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| bool::from(Sha256::digest(t.trim().as_bytes()).ct_eq(digest)));
        bearer
            || cookie(headers).is_some_and(|c| bool::from(c.as_bytes().ct_eq(session.as_bytes())))
    }

    fn is_open(&self) -> bool {
        matches!(self, Access::Open)
    }
}

/// The session cookie's value, if sent.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// Lets a request through if its access allows it; the login form and the
/// stylesheet it uses are open to all. Otherwise 401, with the form.
pub async fn guard(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if ui.access.is_open()
        || path == "/login"
        || path == "/assets/app.css"
        || ui.access.allows(req.headers())
    {
        return next.run(req).await;
    }
    let mut r = pages::login(&ui, None, StatusCode::UNAUTHORIZED);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"ghreplay dashboard\""),
    );
    r
}

pub async fn login_form(State(ui): State<Arc<Ui>>) -> Response {
    if ui.access.is_open() {
        return Redirect::to("/").into_response();
    }
    pages::login(&ui, None, StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

/// Checks the token typed in and sets the session cookie.
pub async fn login(State(ui): State<Arc<Ui>>, Form(form): Form<Login>) -> Response {
    let Access::Token {
        digest,
        session,
        secure,
    } = &ui.access
    else {
        return Redirect::to("/").into_response();
    };
    if !bool::from(Sha256::digest(form.token.trim().as_bytes()).ct_eq(digest)) {
        return pages::login(
            &ui,
            Some("That is not the token."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let cookie = format!(
        "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict{}",
        if *secure { "; Secure" } else { "" }
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lets_in_by_bearer_or_cookie_and_nothing_else() {
        let access = Access::with_token("0123456789abcdef-token", false);
        let Access::Token { session, .. } = &access else {
            unreachable!()
        };
        let with = |name: header::HeaderName, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_str(value).unwrap());
            h
        };
        assert!(access.allows(&with(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef-token"
        )));
        assert!(access.allows(&with(header::COOKIE, &format!("a=b; {COOKIE}={session}"))));
        assert!(!access.allows(&HeaderMap::new()));
        assert!(!access.allows(&with(header::AUTHORIZATION, "Bearer 0123456789abcdef-toke")));
        assert!(!access.allows(&with(header::AUTHORIZATION, "Basic 0123456789abcdef-token")));
        assert!(
            !access.allows(&with(
                header::COOKIE,
                &format!("{COOKIE}=0123456789abcdef-token")
            )),
            "the cookie holds a derived value, not the token"
        );
        assert!(Access::Open.allows(&HeaderMap::new()));
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(matches!(Access::new(local, None, false), Ok(Access::Open)));
        let err = Access::new(any, None, false).unwrap_err().to_string();
        assert!(err.contains("--ui-token-file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        assert!(Access::new(any, Some(&short), false).is_err());
        let good = dir.path().join("good");
        std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
        assert!(matches!(
            Access::new(any, Some(&good), true),
            Ok(Access::Token { secure: true, .. })
        ));
    }
}
