//! `republish --to https://…` into a receiver nobody on this team wrote:
//! `@octokit/webhooks`' Node middleware (tests/octokit, installed by
//! scripts/test.sh), over TLS with a certificate made here and trusted
//! through `SSL_CERT_FILE`. It verifies the re-signed signature, and must
//! see every JSON delivery of the three shapes with its event name and
//! delivery id; it answers 415 to the form-encoded one, which is listed and
//! goes to a `ghreplay serve` instead.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{fixture_archive, ndjson, run, stderr, Server};

const SECRET: &str = "octokit-secret";

/// The octokit receiver over HTTPS; its port, and its stdout's lines.
struct Octokit {
    child: std::process::Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Octokit {
    fn start(cert: &str, key: &str) -> Octokit {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/octokit/receiver.mjs");
        assert!(
            script.with_file_name("node_modules").is_dir(),
            "tests/octokit/node_modules is missing: run the tests with scripts/test.sh"
        );
        let mut child = Command::new("node")
            .arg(&script)
            .env("WEBHOOK_SECRET", SECRET)
            .env("TLS_CERT", cert)
            .env("TLS_KEY", key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "the receiver exited");
            if let Some(p) = line.trim().strip_prefix("listening on ") {
                break p.parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in err.lines() {});
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Octokit { child, port, lines }
    }
}

impl Drop for Octokit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn octokits_own_receiver_takes_every_json_delivery_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::common::certificates(dir.path());
    let octokit = Octokit::start(&cert, &key);
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let refused = dir.path().join("refused.ndjson");
    let fixture = fixture_archive();

    let out = crate::common::bin()
        .env("SSL_CERT_FILE", &ca)
        .args([
            "--archive",
            &fixture,
            "republish",
            "--include-private",
            "--to",
        ])
        .arg(format!(
            "https://127.0.0.1:{}/api/github/webhooks",
            octokit.port
        ))
        .arg("--sign-secret-file")
        .arg(&secret_file)
        .arg("--refused-list")
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "the form-encoded one is refused: {}",
        stderr(&out)
    );

    // What the archive holds, by delivery id (the cztack ones have none).
    let lines = ndjson(&run(&["--archive", &fixture, "cat", "-q"]));
    let form = lines
        .iter()
        .find(|l| l["event"] == "pull_request" && l["shape"] == "ghreplay")
        .unwrap();
    let form_id = form["delivery_id"].as_str().unwrap().to_owned();
    let want: BTreeMap<String, String> = lines
        .iter()
        .filter_map(|l| {
            let id = l["delivery_id"].as_str()?;
            (id != form_id).then(|| (id.to_owned(), l["event"].as_str().unwrap().to_owned()))
        })
        .collect();

    let mut got: BTreeMap<String, String> = BTreeMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while got.len() < 12 && std::time::Instant::now() < deadline {
        if let Ok(l) = octokit
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            got.insert(
                v["id"].as_str().unwrap().to_owned(),
                v["name"].as_str().unwrap().to_owned(),
            );
        }
    }
    assert_eq!(got.len(), 12, "every JSON delivery: {got:?}");
    for (id, event) in &want {
        assert_eq!(got.get(id), Some(event), "{id} arrives as {event}");
    }
    let made_up: HashSet<&String> = got.keys().filter(|id| !want.contains_key(*id)).collect();
    assert_eq!(
        made_up.len(),
        4,
        "the four cztack records, under made-up ids"
    );

    let listed = std::fs::read_to_string(&refused).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let r: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(r["delivery_id"], form_id.as_str());
    assert!(r["detail"].as_str().unwrap().starts_with("HTTP 415"), "{r}");

    form_encoded_goes_to_ghreplay(dir.path(), &fixture, &form_id);
}

/// The form-encoded delivery goes to a receiver that takes it, signed as
/// GitHub signed it.
fn form_encoded_goes_to_ghreplay(dir: &Path, fixture: &str, form_id: &str) {
    let received = dir.join("received");
    let fixture_secret = dir.join("fixture-secret");
    std::fs::write(&fixture_secret, "fixture-secret").unwrap();
    let serve = Server::start(
        &received,
        &["--secret-file", fixture_secret.to_str().unwrap()],
    );
    let out = run(&[
        "--archive",
        fixture,
        "republish",
        "--event",
        "pull_request",
        "--action",
        "closed",
        "--to",
        &serve.url("/webhook"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let there = ndjson(&run(&[
        "--archive",
        received.to_str().unwrap(),
        "cat",
        "-q",
    ]));
    assert_eq!(there.len(), 1);
    assert_eq!(there[0]["delivery_id"], form_id);
}
