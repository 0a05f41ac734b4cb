//! Crash safety of `ghreplay serve`: deliveries posted concurrently, the
//! server killed with SIGKILL mid-run, then restarted. Every delivery that
//! was answered 2xx is in the archive exactly once, and a redelivery of one
//! after the restart is recognised (the id index survives).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common;
use crate::common::{ndjson, post_delivery, run, Server};

#[test]
fn every_acknowledged_delivery_survives_a_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let port = server.port;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let body = std::fs::read(common::shared_payloads().join("push/payload.json")).unwrap();

    let posters: Vec<_> = (0..16)
        .map(|t| {
            let (acked, body) = (acked.clone(), body.clone());
            std::thread::spawn(move || {
                for i in 0..200 {
                    let id = format!("00000000-0000-4000-8000-{t:04}{i:08}");
                    // A refused connection (the server is dead) ends the poster.
                    let Ok(r) =
                        std::panic::catch_unwind(|| post_delivery(port, "push", &id, &body))
                    else {
                        return;
                    };
                    match r.status {
                        200 => acked.lock().unwrap().push(id),
                        0 => return, // connection cut mid-request: not acknowledged
                        other => panic!("unexpected {other}: {}", r.body),
                    }
                }
            })
        })
        .collect();
    // Killed once deliveries are being acknowledged, whatever the load.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing acknowledged in 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL, mid-run
    server.child.wait().unwrap();
    for p in posters {
        let _ = p.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "only {} acknowledged before the kill",
        acked.len()
    );

    let out = run(&[
        "--archive",
        dir.path().to_str().unwrap(),
        "cat",
        "--keep-duplicates",
    ]);
    // A record torn by the kill is reported (exit 3) and skipped, never read as good.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        common::stderr(&out)
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for l in ndjson(&out) {
        *counts
            .entry(l["delivery_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for id in &acked {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged {id} is not in the archive exactly once"
        );
    }
    eprintln!("{} acknowledged, {} archived", acked.len(), counts.len());

    // After a restart: the index knows the archived ids, new ones go on.
    let server = Server::start(dir.path(), &[]);
    let r = post_delivery(server.port, "push", &acked[0], &body);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("\"duplicate\""),
        "redelivery after restart: {}",
        r.body
    );
    let r = post_delivery(
        server.port,
        "push",
        "00000000-0000-4000-8000-999999999999",
        &body,
    );
    assert!(r.body.contains("\"archived\""), "{}", r.body);
}

#[test]
fn sigterm_stops_accepting_finishes_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let body = br#"{"zen":"z","hook_id":1}"#;
    for i in 0..5 {
        let r = post_delivery(server.port, "ping", &format!("term-{i}"), body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    crate::common::signal(&server.child, "TERM");
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "no longer accepting"
    );
    let out = run(&["--archive", dir.path().to_str().unwrap(), "cat"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing torn: {}",
        common::stderr(&out)
    );
    assert_eq!(ndjson(&out).len(), 5);
}
