//! The receiver's connections: the accept loop, and the bounds that keep
//! any one client from holding the server.
//!
//! GitHub sends a delivery in one burst and gives up on the answer after
//! 10 s, so a client that dribbles its request is never GitHub. Each client
//! gets `--header-timeout` for a request head (counted from the moment the
//! server waits for one, so it also ends an idle keep-alive connection) and
//! `--body-timeout` for the body (in the handler, answered 408). At
//! `--max-connections` (kept below the open-file limit, which is raised to
//! its hard limit at start) a new client is still accepted: the connection
//! that has sent the fewest bytes per second of its life is cut instead, so
//! a thousand slow clients cannot keep a signed delivery out. Shutdown waits
//! `--shutdown-grace` for requests in flight, then cuts what is left; an
//! archive write already started finishes on its own task either way.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower_service::Service as _;

use super::metrics::Metrics;

/// What bounds each client (the `serve` flags of the same names).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a whole request head, from when the server is ready for one.
    pub header_timeout: Duration,
    /// For a request body, once its head is read.
    pub body_timeout: Duration,
    /// Connections open at once; past it the slowest sender is cut.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// Open files kept for everything but client connections: archive objects,
/// S3 and forward connections, the runtime's own.
const RESERVED_FILES: u64 = 128;

/// Raises the soft open-file limit to the hard one (a service manager's
/// default soft limit of 1,024 is far below what a receiver needs) and
/// returns the soft limit now in force.
pub fn raise_open_files() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The default `--max-connections` under `open_files`: what is left after
/// [`RESERVED_FILES`], at most 10,000 (GitHub opens a handful at a time).
#[must_use]
pub fn default_max_connections(open_files: u64) -> usize {
    open_files.saturating_sub(RESERVED_FILES).clamp(16, 10_000) as usize
}

/// One client: how much it has sent, and how to cut it.
struct Tracked {
    opened: Instant,
    read: Arc<AtomicU64>,
    cut: Option<oneshot::Sender<()>>,
}

/// The open connections, for shedding.
#[derive(Default)]
struct Table {
    conns: Mutex<HashMap<u64, Tracked>>,
    next: AtomicU64,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Tracked>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, read: Arc<AtomicU64>) -> (u64, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            id,
            Tracked {
                opened: Instant::now(),
                read,
                cut: Some(tx),
            },
        );
        (id, rx)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Cuts the connection that has sent the fewest bytes per second of its
    /// life (an idle keep-alive connection, or a client dribbling a
    /// request), among those older than [`SHED_GRACE`] (a client that has
    /// just connected has not had time to send: GitHub sends its delivery
    /// in milliseconds); if all are younger, the oldest. False if there was
    /// none to cut.
    fn shed_slowest(&self) -> bool {
        let now = Instant::now();
        let mut conns = self.lock();
        let live = || conns.iter().filter(|(_, t)| t.cut.is_some());
        let slowest = live()
            .filter(|(_, t)| now.duration_since(t.opened) >= SHED_GRACE)
            .min_by(|(_, a), (_, b)| rate(a, now).total_cmp(&rate(b, now)))
            .or_else(|| live().min_by_key(|(_, t)| t.opened))
            .map(|(id, _)| *id);
        slowest
            .and_then(|id| conns.get_mut(&id))
            .and_then(|t| t.cut.take())
            .is_some_and(|cut| {
                let _ = cut.send(());
                true
            })
    }
}

/// How long a new connection is spared from shedding.
const SHED_GRACE: Duration = Duration::from_secs(1);

/// Bytes a client has sent per second since it connected.
fn rate(t: &Tracked, now: Instant) -> f64 {
    let age = now.duration_since(t.opened).as_secs_f64().max(0.001);
    t.read.load(Ordering::Relaxed) as f64 / age
}

/// A client's socket, counting the bytes read from it.
struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got = buf.filled().len() - before;
        self.read.fetch_add(got as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How serving ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stopped {
    /// Connections still open when the grace period ran out, cut.
    pub cut: usize,
}

/// Accepts clients for `app` until `shutdown` resolves, then waits up to
/// the grace period for requests in flight and cuts the rest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Stopped {
    let table = Arc::new(Table::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let (tcp, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, or a client that left before it
                // was accepted. Make room and go on; say so once a second.
                if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!(error = %e, open = table.len(), "accepting a connection failed");
                    last_accept_error = Some(Instant::now());
                }
                if table.shed_slowest() {
                    Metrics::inc(&metrics.connections_shed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        if table.len() >= limits.max_connections && table.shed_slowest() {
            Metrics::inc(&metrics.connections_shed);
        }
        let read = Arc::new(AtomicU64::new(0));
        let (id, cut) = table.insert(read.clone());
        let io = TokioIo::new(Counted { inner: tcp, read });
        let service = {
            let app = app.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut app = app.clone();
                async move { app.call(req.map(axum::body::Body::new)).await }
            })
        };
        let conn = graceful.watch(builder.serve_connection(io, service));
        let (table, metrics) = (table.clone(), metrics.clone());
        Metrics::inc(&metrics.connections_opened);
        tasks.spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    if e.is_timeout() {
                        Metrics::inc(&metrics.connection_timeouts);
                    }
                    tracing::debug!(error = %e, "connection ended");
                },
                _ = cut => tracing::debug!("connection cut to make room"),
            }
            table.remove(id);
            Metrics::inc(&metrics.connections_closed);
        });
    }
    drop(listener);
    let open = table.len();
    let stopped = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_ok();
    let mut result = Stopped::default();
    if !stopped {
        result.cut = table.len();
        tracing::warn!(
            open_at_start = open,
            cut = result.cut,
            grace_s = limits.shutdown_grace.as_secs_f64(),
            "shutdown grace ran out; cutting the connections left"
        );
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table entry as if it had connected `age` ago.
    fn aged(table: &Table, read: u64, age: Duration) -> oneshot::Receiver<()> {
        let (id, cut) = table.insert(Arc::new(AtomicU64::new(read)));
        table.lock().get_mut(&id).unwrap().opened = Instant::now().checked_sub(age).unwrap();
        cut
    }

    #[test]
    fn the_slowest_sender_is_shed_first_and_a_newcomer_last() {
        let table = Table::default();
        let mut newcomer = aged(&table, 0, Duration::ZERO);
        let mut fast = aged(&table, 1_000_000, Duration::from_secs(2));
        let mut slow = aged(&table, 3, Duration::from_secs(2));
        assert!(table.shed_slowest());
        assert!(slow.try_recv().is_ok(), "the slow client is cut");
        assert!(fast.try_recv().is_err() && newcomer.try_recv().is_err());
        // The cut one stays listed until its task ends, but is not cut twice.
        assert!(table.shed_slowest());
        assert!(fast.try_recv().is_ok(), "then the fast one, past its grace");
        assert!(table.shed_slowest());
        assert!(newcomer.try_recv().is_ok(), "the newcomer only when alone");
        assert!(!table.shed_slowest(), "nothing left to cut");
    }

    #[test]
    fn connections_leave_room_for_the_servers_own_files() {
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(1_048_576), 10_000);
        assert_eq!(default_max_connections(100), 16);
    }
}
