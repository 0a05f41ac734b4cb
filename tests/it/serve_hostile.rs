//! `serve` against hostile clients: slow clients by the thousand under a
//! 1,024 open-file limit, bodies it must not acknowledge, and a shutdown
//! that such clients cannot hang.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{self, Server};

/// Half a request head: what a slow client sends before it starts dribbling.
const HALF_A_HEAD: &[u8] = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: pu";

/// Opens `n` connections that each send half a request head.
fn slow_clients(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = s.write_all(HALF_A_HEAD);
            s
        })
        .collect()
}

/// One byte every two seconds on each slow connection, until `stop`.
fn dribble(
    clients: Vec<TcpStream>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<TcpStream>> {
    std::thread::spawn(move || {
        let mut clients = clients;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for c in &mut clients {
                let _ = c.write_all(b"s");
            }
            for _ in 0..20 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        clients
    })
}

/// Whether the server has closed `c`: a read sees the end or a reset
/// before `deadline`.
fn closed_by(c: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        c.set_read_timeout(Some(left)).unwrap();
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // a 408 before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true, // reset
        }
    }
}

/// A signed delivery that must be answered as GitHub needs: within 10 s.
fn deliver(port: u16, id: &str) -> u16 {
    let body = format!(r#"{{"zen":"Design for failure.","hook_id":7,"id":"{id}"}}"#);
    let sig = ghreplay::signature::sign_sha256(common::SECRET.as_bytes(), body.as_bytes());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // GitHub's own limit: no answer within 10 s is a failed delivery.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: {id}\r\n\
         X-Hub-Signature-256: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_thousand_slow_clients_under_1024_files_cannot_keep_deliveries_out_or_hang_shutdown() {
    // This process holds the slow clients' ends: it needs more than 1,024.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg("--nofile=1024:1024")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ghreplay"))
        .env_remove("GHREPLAY_ARCHIVE")
        .env_remove("RUST_LOG")
        .arg("--archive")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        // Longer than GitHub's 10 s: only shedding can let deliveries in.
        .args(["--header-timeout", "60s", "--shutdown-grace", "2s"]);
    let mut server = Server::spawn(cmd);
    let port = server.port;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attack = dribble(slow_clients(port, 1000), stop.clone());

    // Deliveries sent while the slow clients are attached are all answered.
    let ids: Vec<String> = (0..20).map(|i| format!("hostile-{i}")).collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| scope.spawn(move || deliver(port, id)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "statuses {statuses:?}");
    let shed = common::metric(port, "ghreplay_connections_shed_total");
    assert!(shed >= 20, "{shed} slow clients shed to make room");

    // SIGTERM with the slow clients still attached: stopped within the
    // grace period, not when they give up.
    crate::common::signal(&server.child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(2 + 20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited {status}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(attack.join().unwrap());

    // Every acknowledged delivery is in the archive.
    let out = common::run(&["--archive", dir.path().to_str().unwrap(), "cat"]);
    let archived: std::collections::HashSet<String> = common::ndjson(&out)
        .iter()
        .filter_map(|e| e["delivery_id"].as_str().map(str::to_owned))
        .collect();
    for id in &ids {
        assert!(
            archived.contains(id),
            "{id} was acknowledged but is not archived"
        );
    }
}

#[test]
fn slow_and_idle_clients_are_disconnected_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--header-timeout", "2s"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attack = dribble(slow_clients(server.port, 50), stop.clone());
    // An idle keep-alive connection: one request answered, then nothing.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(2 + 20);
    assert!(
        closed_by(&mut idle, deadline),
        "an idle connection stays open"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut clients = attack.join().unwrap();
    let still_open = clients
        .iter_mut()
        .map(|c| closed_by(c, deadline))
        .filter(|closed| !closed)
        .count();
    assert_eq!(
        still_open, 0,
        "slow clients still connected past --header-timeout"
    );
    assert!(common::metric(server.port, "ghreplay_header_timeouts_total") >= 51);
}

#[test]
fn a_slow_body_gets_408_and_its_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--body-timeout", "1s"]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(
        b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          X-GitHub-Event: ping\r\nX-GitHub-Delivery: slow\r\nContent-Length: 100\r\n\r\n{\"zen\":",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(
        common::metric(
            server.port,
            "ghreplay_rejected_total{reason=\"body_timeout\"}"
        ),
        1
    );
}

#[test]
fn what_the_reader_would_throw_away_is_refused_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let not_an_object = "[1,2,3]".to_owned();
    let cases: [(&str, &str, String); 4] = [
        ("push/../../etc", "path-event", r#"{"zen":"z"}"#.to_owned()),
        ("push.#", "wildcard-event", r#"{"zen":"z"}"#.to_owned()),
        ("push", "deep", deep),
        ("push", "array", not_an_object),
    ];
    for (event, id, body) in &cases {
        let r = common::post_delivery(server.port, event, id, body.as_bytes());
        assert_eq!(r.status, 400, "{id}: {}", r.body);
    }
    // A good one still passes, and only it is archived.
    let r = common::post_delivery(server.port, "ping", "good", br#"{"zen":"z"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let out = common::run(&["--archive", dir.path().to_str().unwrap(), "cat"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let ids: Vec<_> = common::ndjson(&out)
        .iter()
        .map(|e| e["delivery_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["good"]);
}
