//! The dashboard: Releases, Activity and Deliveries pages, server-rendered
//! from a DuckDB `deliveries` table, on a listener of its own (never the
//! webhook's, which faces the internet).
//!
//! Under `serve --ui-listen` the table is the server's own file, kept up to
//! date by [`index`], and releases are pushed to open pages as they are
//! indexed (server-sent events); `ghreplay ui --db FILE` serves the same
//! pages over a file made by `load`, read-only, without the live parts.
//! [`auth`] decides who may look; [`pages`] is all the HTML; [`data`] all
//! the SQL; [`archived`] reads back from the archive the payloads that the
//! server's own file leaves there. Everything the browser loads comes from
//! this binary.

pub mod archived;
pub mod auth;
pub mod data;
pub mod index;
mod pages;
mod pretty;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use duckdb::Connection;
use futures::Stream;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tower_service::Service as _;

use crate::db::DbError;
use crate::server::metrics::Metrics;
use crate::signature::Secret;
use data::{DeliverySearch, Release, ReleaseFilter};

/// How long since the last delivery before the Activity page warns.
pub const QUIET_WARNING: Duration = Duration::from_secs(60 * 60);
/// The Activity chart's span.
pub const ACTIVITY_HOURS: i64 = 48;

/// What only a running receiver has: counters since its start, and
/// releases as they are indexed.
pub struct Live {
    pub metrics: Arc<Metrics>,
    pub releases: broadcast::Sender<Release>,
}

/// Everything the pages need.
pub struct Ui {
    /// The connection readers are cloned from (one database instance per
    /// process: the indexer's, under `serve`).
    db: Mutex<Connection>,
    /// Whether readers reach the file through `ATTACH ... AS ghreplay`.
    attached: bool,
    /// Whether `deliveries` has `headers` and `raw_body`.
    with_headers: bool,
    pub public_only: bool,
    /// Webhook secrets, to re-verify signatures (none: "not checked").
    pub secrets: Vec<Secret>,
    /// Where payloads that the database leaves in the archive are read.
    archived: Option<archived::Archived>,
    pub live: Option<Live>,
    /// What the header says the pages show.
    pub source: String,
    pub access: auth::Access,
}

impl Ui {
    /// Pages over the database `conn` is connected to. `attached` when
    /// `conn` reaches its file through `ATTACH ... AS ghreplay`
    /// (`Database::open_for_load`).
    pub fn new(
        conn: Connection,
        attached: bool,
        public_only: bool,
        secrets: Vec<Secret>,
        live: Option<Live>,
        source: String,
        access: auth::Access,
    ) -> Result<Self, DbError> {
        let with_headers = data::has_headers(&conn)?;
        Ok(Self {
            db: Mutex::new(conn),
            attached,
            with_headers,
            public_only,
            secrets,
            archived: None,
            live,
            source,
            access,
        })
    }

    /// Reads from `archived` the payloads the database does not keep.
    #[must_use]
    pub fn with_archive(self, archived: archived::Archived) -> Self {
        Self {
            archived: Some(archived),
            ..self
        }
    }

    fn reader(&self) -> Result<Connection, DbError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        if self.attached {
            crate::db::clone_attached(&db)
        } else {
            Ok(db.try_clone()?)
        }
    }
}

/// Runs `f` on a reader connection, off the async runtime.
async fn read<T: Send + 'static>(
    ui: &Arc<Ui>,
    f: impl FnOnce(&Connection, &Ui) -> Result<T, DbError> + Send + 'static,
) -> Result<T, Response> {
    let ui = ui.clone();
    let result = tokio::task::spawn_blocking(move || {
        let conn = ui.reader()?;
        f(&conn, &ui)
    })
    .await;
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a dashboard query failed");
            Err(pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.to_string(),
            ))
        }
        Err(e) => Err(pages::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        )),
    }
}

/// The dashboard's routes, behind [`auth::guard`].
pub fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(releases))
        .route("/live/releases", get(live_releases))
        .route("/activity", get(activity))
        .route("/deliveries", get(deliveries))
        .route("/delivery", get(delivery))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/assets/app.css", get(|| asset("text/css", pages::CSS)))
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript", pages::JS)),
        )
        .fallback(|| async { pages::error(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            auth::guard,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(ui)
}

fn asset(
    content_type: &'static str,
    body: &'static str,
) -> impl std::future::Future<Output = Response> {
    std::future::ready(asset_response(content_type, body))
}

fn asset_response(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Scripts and styles only from this server, no framing, no referrer: a
/// payload that slipped past escaping could still run nothing.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn releases(State(ui): State<Arc<Ui>>, Query(filter): Query<ReleaseFilter>) -> Response {
    let f = filter.clone();
    match read(&ui, move |c, ui| data::releases(c, &f, ui.public_only)).await {
        Ok(rows) => pages::releases(&ui, &filter, &rows),
        Err(r) => r,
    }
}

/// Releases as they are indexed, as table rows rendered here (escaped like
/// every page), for the open Releases page to insert.
async fn live_releases(State(ui): State<Arc<Ui>>, Query(filter): Query<ReleaseFilter>) -> Response {
    let Some(live) = &ui.live else {
        return pages::error(
            StatusCode::NOT_FOUND,
            "no live feed: this is a database file, not a running receiver",
        );
    };
    let rx = live.releases.subscribe();
    let public_only = ui.public_only;
    Sse::new(release_events(rx, filter, public_only))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn release_events(
    rx: broadcast::Receiver<Release>,
    filter: ReleaseFilter,
    public_only: bool,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(rx, move |mut rx| {
        let filter = filter.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(r) if filter.admits(&r) && (r.public || !public_only) => {
                        let html = pages::release_row(&r).into_string();
                        return Some((Ok(SseEvent::default().event("release").data(html)), rx));
                    }
                    Ok(_) => {}
                    // The page missed some: it reloads.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Ok(SseEvent::default().event("reload").data("")), rx));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
}

async fn activity(State(ui): State<Arc<Ui>>) -> Response {
    let live = ui.live.is_some();
    let result = read(&ui, move |c, ui| {
        let (last, total) = data::newest(c, ui.public_only)?;
        // A receiver shows the last 48 hours to now; a file, the 48 hours
        // up to its newest delivery (it may be last quarter's).
        let until = if live {
            chrono::Utc::now()
        } else {
            last.unwrap_or_else(chrono::Utc::now)
        };
        let until = chrono::DurationRound::duration_trunc(until, chrono::TimeDelta::hours(1))
            .unwrap_or(until)
            + chrono::TimeDelta::hours(1);
        let hours = data::activity(c, until, ACTIVITY_HOURS, ui.public_only)?;
        Ok(data::Activity {
            hours,
            last_delivery: last,
            total,
        })
        .map(|a| (a, until))
    })
    .await;
    match result {
        Ok((a, until)) => pages::activity(&ui, &a, until),
        Err(r) => r,
    }
}

async fn deliveries(State(ui): State<Arc<Ui>>, Query(search): Query<DeliverySearch>) -> Response {
    let s = search.clone();
    match read(&ui, move |c, ui| data::deliveries(c, &s, ui.public_only)).await {
        Ok(rows) => pages::deliveries(&ui, &search, &rows),
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
struct KeyParam {
    key: String,
}

async fn delivery(State(ui): State<Arc<Ui>>, Query(k): Query<KeyParam>) -> Response {
    let key = k.key.clone();
    match read(&ui, move |c, ui| {
        data::delivery(c, &key, ui.public_only, ui.with_headers)
    })
    .await
    {
        Ok(Some(mut d)) => {
            if let (Err(data::Missing::InArchive), Some(a)) = (&d.body, &ui.archived) {
                d.body = a
                    .body(&d.object_key, d.record_index, &d.row.key)
                    .await
                    .map_err(data::Missing::Unreadable);
            }
            pages::delivery(&ui, &d)
        }
        Ok(None) => pages::error(
            StatusCode::NOT_FOUND,
            &format!("no delivery {:?} here", k.key),
        ),
        Err(r) => r,
    }
}

/// TLS for the dashboard from PEM files: the certificate chain and its key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let certs = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "--ui-tls-cert {}: not a PEM certificate chain",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!("--ui-tls-cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .with_context(|| format!("--ui-tls-key {}: not a PEM private key", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("--ui-tls-cert and --ui-tls-key do not make a usable pair")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// How long a dashboard client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` is given) until
/// `shutdown` turns true; then every connection, live feeds included, is
/// closed.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let service = {
            let app = app.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut app = app.clone();
                async move { app.call(req.map(axum::body::Body::new)).await }
            })
        };
        let (builder, tls) = (builder.clone(), tls.clone());
        tasks.spawn(async move {
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "dashboard TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => builder.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "dashboard connection ended");
            }
        });
    }
    tasks.shutdown().await;
}

/// Binds the dashboard's address and decides its access: open on a
/// loopback address, else only with a token. Says where it is.
pub async fn bind(
    addr: &str,
    token_file: Option<&Path>,
    tls: bool,
) -> anyhow::Result<(TcpListener, SocketAddr, auth::Access)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("dashboard: listening on {addr}"))?;
    let local = listener.local_addr()?;
    let access = auth::Access::new(local, token_file, tls)?;
    Ok((listener, local, access))
}

/// The dashboard's address as a URL.
#[must_use]
pub fn url(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}/", if tls { "https" } else { "http" })
}
