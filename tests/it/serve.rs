//! `ghreplay serve` over real HTTP on 127.0.0.1: what it archives, what it
//! refuses, and that `cat` reads back exactly what was posted.

use std::collections::HashMap;

use crate::common;
use crate::common::{http, ndjson, post_delivery, run, shared_payloads, walk, Server, SECRET};
use ghreplay::decode::{decode_object, DecodeOptions};
use ghreplay::signature::{self, Secret};

/// Every record in the server's archive, decoded by the library.
fn archived(archive: &std::path::Path) -> Vec<(String, Vec<u8>, String)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = walk(archive);
    files.sort();
    for f in files {
        let obj = decode_object(
            f.display().to_string(),
            None,
            std::fs::read(&f).unwrap(),
            &DecodeOptions::default(),
        );
        assert!(obj.problems.is_empty(), "{:?}", obj.problems);
        for e in &obj.events {
            let body = obj.bytes(e.raw_body.as_ref().unwrap()).to_vec();
            out.push((
                e.delivery_id.clone().unwrap(),
                body,
                e.headers.clone().unwrap(),
            ));
        }
    }
    out
}

#[test]
fn signed_payloads_are_archived_byte_for_byte_and_read_back_by_cat() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut posted = HashMap::new();
    for (i, (event, path)) in common::payload_files(&shared_payloads())
        .into_iter()
        .enumerate()
    {
        let body = std::fs::read(&path).unwrap();
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let r = post_delivery(server.port, &event, &id, &body);
        assert_eq!(r.status, 200, "{}: {}", path.display(), r.body);
        assert!(r.body.contains("\"archived\""), "{}", r.body);
        posted.insert(id, (event, body));
    }

    // The archive holds the posted bytes, and the signatures re-verify from it.
    let records = archived(dir.path());
    assert_eq!(records.len(), posted.len());
    for (id, body, headers) in &records {
        assert_eq!(body, &posted[id].1, "{id}: bytes differ");
        let headers: HashMap<String, String> = serde_json::from_str(headers).unwrap();
        let sig = headers["x-hub-signature-256"].as_bytes();
        assert_eq!(
            signature::verify(&[Secret::new(SECRET)], body, Some(sig), None, false),
            Ok(())
        );
        assert_eq!(headers["user-agent"], "GitHub-Hookshot/test");
    }

    // cat returns every one with its event and delivery id.
    let out = run(&["--archive", dir.path().to_str().unwrap(), "cat"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let lines = ndjson(&out);
    assert_eq!(lines.len(), posted.len());
    for l in &lines {
        let (event, body) = &posted[l["delivery_id"].as_str().unwrap()];
        assert_eq!(l["event"], event.as_str());
        assert_eq!(l["shape"], "ghreplay");
        let payload: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(l["payload"], payload);
        assert!(l["received_at"].is_string());
    }
}

#[test]
fn every_bad_request_gets_its_status_and_nothing_wrong_is_archived() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1,"hook":{}}"#;
    let sig = signature::sign_sha256(SECRET.as_bytes(), body);
    let send = |headers: &[(&str, &str)], body: &[u8]| {
        http(server.port, "POST", "/webhook", headers, body).status
    };
    let json = ("Content-Type", "application/json");
    let ev = ("X-GitHub-Event", "ping");
    let id = ("X-GitHub-Delivery", "d-1");

    assert_eq!(send(&[json, ev, id], body), 401, "missing signature");
    assert_eq!(
        send(&[json, ev, id, ("X-Hub-Signature-256", "sha256=00")], body),
        401,
        "malformed"
    );
    let wrong = signature::sign_sha256(b"another-secret", body);
    assert_eq!(
        send(&[json, ev, id, ("X-Hub-Signature-256", &wrong)], body),
        401,
        "wrong secret"
    );
    let tampered = signature::sign_sha256(SECRET.as_bytes(), b"{}");
    assert_eq!(
        send(&[json, ev, id, ("X-Hub-Signature-256", &tampered)], body),
        401,
        "another body"
    );
    let sha1 = sha1_signature(body);
    assert_eq!(
        send(&[json, ev, id, ("X-Hub-Signature", &sha1)], body),
        401,
        "sha1 only, not allowed"
    );
    let signed = ("X-Hub-Signature-256", sig.as_str());
    assert_eq!(send(&[json, id, signed], body), 400, "no event header");
    assert_eq!(send(&[json, ev, signed], body), 400, "no delivery header");
    assert_eq!(
        send(&[("Content-Type", "text/plain"), ev, id, signed], body),
        415
    );
    let not_json = b"not json";
    let sig2 = signature::sign_sha256(SECRET.as_bytes(), not_json);
    assert_eq!(
        send(&[json, ev, id, ("X-Hub-Signature-256", &sig2)], not_json),
        400,
        "body not JSON"
    );
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    assert_eq!(send(&[json, ev, id, signed], &huge), 413);

    let records = archived(dir.path());
    assert!(records.is_empty(), "nothing refused was archived");
    let metrics = http(server.port, "GET", "/metrics", &[], b"").body;
    for want in [
        "ghreplay_archived_total 0",
        "ghreplay_rejected_total{reason=\"signature_missing\"} 1",
        "ghreplay_rejected_total{reason=\"signature_malformed\"} 1",
        "ghreplay_rejected_total{reason=\"signature_mismatch\"} 2",
        "ghreplay_rejected_total{reason=\"signature_sha1_only\"} 1",
        "ghreplay_rejected_total{reason=\"missing_headers\"} 2",
        "ghreplay_rejected_total{reason=\"content_type\"} 1",
        "ghreplay_rejected_total{reason=\"too_large\"} 1",
    ] {
        assert!(metrics.contains(want), "metrics lack {want}:\n{metrics}");
    }
}

#[test]
fn good_deliveries_are_archived_once_form_encoded_too_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1,"hook":{}}"#;
    let sig = signature::sign_sha256(SECRET.as_bytes(), body);
    let send = |headers: &[(&str, &str)], body: &[u8]| {
        http(server.port, "POST", "/webhook", headers, body).status
    };
    let json = ("Content-Type", "application/json");
    let ev = ("X-GitHub-Event", "ping");
    let id = ("X-GitHub-Delivery", "d-1");
    let signed = ("X-Hub-Signature-256", sig.as_str());

    assert_eq!(send(&[json, ev, id, signed], body), 200);
    let r = http(
        server.port,
        "POST",
        "/webhook",
        &[json, ev, id, signed],
        body,
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"duplicate\""), "{}", r.body);
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(body).collect::<String>()
    );
    let fsig = signature::sign_sha256(SECRET.as_bytes(), form.as_bytes());
    let fid = ("X-GitHub-Delivery", "d-2");
    assert_eq!(
        send(
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ev,
                fid,
                ("X-Hub-Signature-256", &fsig)
            ],
            form.as_bytes()
        ),
        200
    );

    let records = archived(dir.path());
    let ids: Vec<_> = records.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["d-1", "d-2"], "only the good deliveries, once each");
    assert_eq!(records[1].1, form.as_bytes(), "the form body as sent");
    let lines = ndjson(&run(&[
        "--archive",
        dir.path().to_str().unwrap(),
        "cat",
        "--event",
        "ping",
    ]));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["payload"]["zen"], "Keep it logically awesome.");

    let metrics = http(server.port, "GET", "/metrics", &[], b"").body;
    for want in [
        "ghreplay_archived_total 2",
        "ghreplay_duplicates_total 1",
        "ghreplay_archive_flush_seconds_count 2",
    ] {
        assert!(metrics.contains(want), "metrics lack {want}:\n{metrics}");
    }
    assert_eq!(http(server.port, "GET", "/healthz", &[], b"").status, 200);
    let spec: serde_json::Value =
        serde_json::from_str(&http(server.port, "GET", "/openapi.json", &[], b"").body).unwrap();
    assert_eq!(spec["openapi"], "3.0.3");
}

fn sha1_signature(body: &[u8]) -> String {
    use hmac::Mac as _;
    let mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    format!(
        "sha1={}",
        hex::encode(mac.chain_update(body).finalize().into_bytes())
    )
}

#[test]
fn githubs_test_vector_authenticates_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let json = ("Content-Type", "application/json");
    let ev = ("X-GitHub-Event", "ping");
    let id = ("X-GitHub-Delivery", "d-1");
    // GitHub's test vector authenticates (then fails only for not being JSON).
    let r = http(
        server.port,
        "POST",
        "/webhook",
        &[
            json,
            ev,
            id,
            (
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
        ],
        b"Hello, World!",
    );
    assert_eq!(r.status, 401, "the vector's secret is not this server's");
    let elsewhere = tempfile::tempdir().unwrap();
    let secret_file = write_secret(elsewhere.path(), "It's a Secret to Everybody");
    let vector = Server::start(
        &elsewhere.path().join("archive"),
        &["--secret-file", secret_file.to_str().unwrap()],
    );
    let r = http(
        vector.port,
        "POST",
        "/webhook",
        &[
            json,
            ev,
            id,
            (
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
        ],
        b"Hello, World!",
    );
    assert_eq!(
        (r.status, r.body.contains("neither JSON")),
        (400, true),
        "{}",
        r.body
    );
}

fn write_secret(dir: &std::path::Path, secret: &str) -> std::path::PathBuf {
    let p = dir.join("secret.txt");
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    p
}

#[test]
fn sha1_is_accepted_only_when_allowed_and_no_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--allow-sha1"]);
    let body = br#"{"zen":"z","hook_id":1}"#;
    let sha1 = sha1_signature(body);
    let r = http(
        server.port,
        "POST",
        "/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "ping"),
            ("X-GitHub-Delivery", "s1"),
            ("X-Hub-Signature", &sha1),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let out = common::bin()
        .args([
            "--archive",
            dir.path().to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("GHREPLAY_WEBHOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("no webhook secret"),
        "{}",
        common::stderr(&out)
    );
}

/// `schemathesis` (`PyPI`) fuzzes the receiver from its own `OpenAPI` document:
/// no request may get a 5xx or crash it. Unverified, so that fuzzed bodies
/// reach every check past the signature; and signed, for the 401 paths.
#[test]
fn schemathesis_finds_no_server_error() {
    let exe = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    for flags in [&["--insecure-no-verify"][..], &[][..]] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), flags);
        let out = std::process::Command::new(&exe)
            .args([
                "run",
                &server.url("/openapi.json"),
                "--checks",
                "not_a_server_error",
                "-n",
                "60",
                "--no-color",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {exe} ({e}): run the tests with scripts/test.sh")
            });
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "schemathesis {flags:?}:\n{text}");
        // Signed, every fuzzed POST is a 401: schemathesis warns, and that is right.
        assert!(
            !text.contains("❌") && !text.contains("Server error"),
            "{text}"
        );
        assert_eq!(
            http(server.port, "GET", "/healthz", &[], b"").status,
            200,
            "still serving"
        );
        let metrics = http(server.port, "GET", "/metrics", &[], b"").body;
        let received: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("ghreplay_received_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(received > 20, "the webhook was fuzzed: {received} requests");
    }
}
