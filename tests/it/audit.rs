//! `ghreplay audit` against a stand-in for GitHub's delivery log
//! (`common/github.rs`) whose hooks send to a real `ghreplay serve`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::github::{self, GitHub, Send};
use crate::common::{bin, free_port, Server, SECRET};

/// A push payload from GitHub's examples.
fn payload(event: &str) -> Vec<u8> {
    let dir = crate::common::shared_payloads().join(event);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    std::fs::read(&files[0]).unwrap()
}

/// `serve` on a port of the test's choosing, so that a restart keeps the
/// hook's URL.
fn serve_on(archive: &Path, port: u16) -> Server {
    let mut cmd = bin();
    cmd.arg("--archive")
        .arg(archive)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    Server::spawn(cmd)
}

struct Audit {
    out: Output,
    json: Value,
}

impl Audit {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap()
    }

    fn count(&self, verdict: &str) -> u64 {
        self.json["counts"][verdict].as_u64().unwrap()
    }

    /// Guids with this verdict.
    fn guids(&self, verdict: &str) -> Vec<String> {
        let mut v: Vec<String> = self.json["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["verdict"] == verdict)
            .map(|d| d["guid"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    }
}

fn token_file(dir: &Path) -> String {
    let f = dir.join("token");
    std::fs::write(&f, format!("{}\n", github::TOKEN)).unwrap();
    f.to_string_lossy().into_owned()
}

/// `audit --json --settle 0s` with the stand-in's token and `extra` flags.
fn audit(gh: &GitHub, archive: &Path, hooks: &[&str], extra: &[&str]) -> Audit {
    let mut cmd = bin();
    cmd.env_remove("GITHUB_TOKEN")
        .arg("--archive")
        .arg(archive)
        .args(["--quiet", "audit", "--json", "--settle", "0s"])
        .args(["--github-api-url", &gh.api_url()])
        .args([
            "--github-token-file",
            &token_file(archive.parent().unwrap()),
        ]);
    for h in hooks {
        cmd.args(["--hook", h]);
    }
    let out = cmd.args(extra).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit printed no JSON ({e}); status {:?}, stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Audit { out, json }
}

/// A test's own directory, archive path and receiver port, and a GitHub
/// stand-in with one hook (`repo:OWNER/NAME`, `org:ORG` or `app`) that
/// sends to `serve` on that port.
struct Scene {
    dir: tempfile::TempDir,
    archive: PathBuf,
    port: u16,
    gh: GitHub,
    hook: String,
}

impl Scene {
    fn new(kind: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        let port = free_port();
        let gh = GitHub::start(Vec::new());
        let hook = gh.add_hook(kind, &format!("http://127.0.0.1:{port}/webhook"), SECRET);
        Scene {
            dir,
            archive,
            port,
            gh,
            hook,
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_receiver_outage_is_found_missing_redelivered_and_then_clean() {
    let Scene {
        dir,
        archive,
        port,
        gh,
        hook,
    } = Scene::new("repo:octo-org/hello-world");
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let body = payload("push");

    let server = serve_on(&archive, port);
    let mut delivered = Vec::new();
    for _ in 0..3 {
        let (guid, code) = gh.deliver(&hook, "push", &body, Send::Normal);
        assert_eq!(code, 200);
        delivered.push(guid);
    }
    drop(server);
    let mut missed = Vec::new();
    for _ in 0..4 {
        let (guid, code) = gh.deliver(&hook, "push", &body, Send::Normal);
        assert_eq!(code, 502, "serve is down: GitHub logs 'failed to connect'");
        missed.push(guid);
    }
    let server = serve_on(&archive, port);
    for _ in 0..2 {
        delivered.push(gh.deliver(&hook, "push", &body, Send::Normal).0);
    }

    let a = audit(&gh, &archive, &[&hook], &[]);
    assert_eq!(
        a.code(),
        5,
        "missing deliveries exit 5: {}",
        String::from_utf8_lossy(&a.out.stderr)
    );
    assert_eq!(a.guids("missing"), sorted(missed.clone()));
    assert_eq!((a.count("ok"), a.count("lost"), a.count("late")), (5, 0, 0));
    assert_eq!(
        a.json["deliveries"][0]["failure"],
        "502 (failed to connect)"
    );

    // Redelivered: GitHub sends each again, serve archives it.
    let a = audit(&gh, &archive, &[&hook], &["--redeliver", "--state", state]);
    assert_eq!(
        a.code(),
        0,
        "every missing one was asked for: {}",
        String::from_utf8_lossy(&a.out.stderr)
    );
    assert_eq!(
        sorted(serde_json::from_value(a.json["redelivery"]["asked"].clone()).unwrap()),
        sorted(missed.clone())
    );
    for guid in &missed {
        gh.wait_for_attempts(guid, 2);
        assert_eq!(gh.attempts(guid), [502, 200]);
    }
    assert_eq!(gh.redeliveries_asked(), 4);

    // Clean now; asking again asks for nothing.
    let a = audit(&gh, &archive, &[&hook], &["--redeliver", "--state", state]);
    assert_eq!(a.code(), 0);
    assert_eq!((a.count("ok"), a.count("missing")), (9, 0));
    assert_eq!(gh.redeliveries_asked(), 4);
    drop(server);
}

#[test]
fn a_redelivery_in_flight_is_not_asked_for_twice_across_runs() {
    // Nothing listens on the scene's port: every attempt fails to connect.
    let Scene {
        dir,
        archive,
        gh,
        hook,
        ..
    } = Scene::new("org:octo-org");
    std::fs::create_dir_all(&archive).unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let (guid, _) = gh.deliver(&hook, "release", &payload("release"), Send::Normal);
    gh.hold_redeliveries(true);

    let first = audit(&gh, &archive, &[&hook], &["--redeliver", "--state", state]);
    assert_eq!(
        first.code(),
        0,
        "{}",
        String::from_utf8_lossy(&first.out.stderr)
    );
    assert_eq!(first.json["redelivery"]["asked"][0], guid.as_str());
    let again = audit(&gh, &archive, &[&hook], &["--redeliver", "--state", state]);
    assert_eq!(again.json["redelivery"]["in_flight"][0], guid.as_str());
    assert_eq!(
        again.json["redelivery"]["asked"].as_array().unwrap().len(),
        0
    );
    assert_eq!(gh.redeliveries_asked(), 1);
}

#[test]
fn acknowledged_then_removed_from_the_archive_is_lost_and_not_redelivered() {
    let Scene {
        dir,
        archive,
        port,
        gh,
        hook,
    } = Scene::new("repo:octo-org/hello-world");
    let state = dir.path().join("state.json");

    let server = serve_on(&archive, port);
    let (lost, code) = gh.deliver(&hook, "push", &payload("push"), Send::Normal);
    assert_eq!(code, 200);
    drop(server);
    // The archive loses what it acknowledged (a bucket lifecycle rule, a
    // bad restore): every object goes.
    for f in crate::common::walk(&archive) {
        if !f.components().any(|c| c.as_os_str() == ".ghreplay") {
            std::fs::remove_file(f).unwrap();
        }
    }
    let _server = serve_on(&archive, port);
    let (kept, _) = gh.deliver(&hook, "push", &payload("push"), Send::Normal);

    let a = audit(
        &gh,
        &archive,
        &[&hook],
        &["--redeliver", "--state", state.to_str().unwrap()],
    );
    assert_eq!(
        a.code(),
        6,
        "lost exits 6: {}",
        String::from_utf8_lossy(&a.out.stderr)
    );
    assert_eq!(a.guids("lost"), [lost]);
    assert_eq!(a.count("ok"), 1);
    assert!(!a.guids("lost").contains(&kept));
    assert_eq!(
        gh.redeliveries_asked(),
        0,
        "a lost delivery is not redelivered"
    );

    // For people, the lost delivery is named loudly.
    let mut cmd = bin();
    let table = cmd
        .env_remove("GITHUB_TOKEN")
        .arg("--archive")
        .arg(&archive)
        .args(["--quiet", "audit", "--settle", "0s", "--hook", &hook])
        .args(["--github-api-url", &gh.api_url()])
        .args(["--github-token-file", &token_file(dir.path())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("LOST: acknowledged by the receiver, but not in the archive"),
        "{text}"
    );
    assert!(text.contains("1 ok, 0 late, 0 missing, 1 lost"), "{text}");
}

#[test]
fn a_slow_acknowledgement_is_late_and_redelivering_it_adds_nothing() {
    let Scene {
        dir: _dir,
        archive,
        port,
        gh,
        hook,
    } = Scene::new("repo:octo-org/hello-world");
    let _server = serve_on(&archive, port);
    let (guid, code) = gh.deliver(&hook, "push", &payload("push"), Send::AnswerTooLate);
    assert_eq!(code, 0, "GitHub logged a timeout");

    let a = audit(&gh, &archive, &[&hook], &[]);
    assert_eq!(
        a.code(),
        0,
        "late is not missing: {}",
        String::from_utf8_lossy(&a.out.stderr)
    );
    assert_eq!(a.guids("late"), std::slice::from_ref(&guid));
    assert_eq!(a.json["deliveries"][0]["failure"], "no answer (timed out)");

    // A redelivery anyway (a person pressing the button): the archive keeps
    // one copy.
    let (_, again) = gh.deliver_again(&hook, &guid);
    assert_eq!(again, 200);
    let out = bin()
        .arg("--archive")
        .arg(&archive)
        .args(["--quiet", "cat", "--keep-duplicates"])
        .output()
        .unwrap();
    let copies = crate::common::ndjson(&out)
        .iter()
        .filter(|l| l["delivery_id"] == guid.as_str())
        .count();
    assert_eq!(copies, 1);
    let a = audit(&gh, &archive, &[&hook], &[]);
    assert_eq!(
        (a.count("ok"), a.count("late")),
        (1, 0),
        "acknowledged at last"
    );
}

#[test]
fn many_pages_a_rate_limit_and_the_three_kinds_of_hook() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let port = free_port();
    let (key, public) = github::app_key(dir.path());
    let gh = GitHub::start(public);
    let url = format!("http://127.0.0.1:{port}/webhook");
    let repo = gh.add_hook("repo:octo-org/hello-world", &url, SECRET);
    let org = gh.add_hook("org:octo-org", &url, SECRET);
    let app = gh.add_hook("app", &url, SECRET);
    let _server = serve_on(&archive, port);
    let body = payload("issues");
    // 1,010 deliveries on the org hook: 11 pages of 100.
    for _ in 0..1010 {
        assert_eq!(gh.deliver(&org, "issues", &body, Send::Normal).1, 200);
    }
    gh.deliver(&repo, "issues", &body, Send::Normal);
    gh.deliver(&app, "issues", &body, Send::Normal);
    // The fourth request is refused until 2 s have passed.
    gh.rate_limit_after(3, Duration::from_secs(2));
    let before = gh.requests();

    let app_flags = [
        "--github-app-id",
        github::APP_ID,
        "--github-private-key",
        key.to_str().unwrap(),
    ];
    let a = audit(&gh, &archive, &[&repo, &org, &app], &app_flags);
    assert_eq!(a.code(), 0, "{}", String::from_utf8_lossy(&a.out.stderr));
    assert_eq!(a.count("ok"), 1012);
    // 11 pages for the org hook, one each for the others, and the one
    // request the rate limit refused; none sent before the reset.
    assert_eq!(gh.requests() - before, 14);
    assert_eq!(a.json["github_requests"], 14);
    assert_eq!(
        gh.ignored_limit(),
        0,
        "no request before the rate limit's reset"
    );
    assert!(a.json["rate_limited_secs"].as_u64().unwrap() >= 1);

    // A key that is not the app's is refused, and the message says so.
    let elsewhere = dir.path().join("other");
    std::fs::create_dir(&elsewhere).unwrap();
    let (other, _) = github::app_key(&elsewhere);
    let mut cmd = bin();
    let out = cmd
        .arg("--archive")
        .arg(&archive)
        .args([
            "--quiet",
            "audit",
            "--hook",
            "app",
            "--github-app-id",
            github::APP_ID,
        ])
        .args(["--github-private-key", other.to_str().unwrap()])
        .args(["--github-api-url", &gh.api_url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GitHub answered 401") && err.contains("app's key"),
        "{err}"
    );
}

#[test]
fn an_archive_without_delivery_ids_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let hour = chrono::Utc::now().format("%Y-%m-%dT%H").to_string();
    crate::common::make_archive(
        &archive,
        &[
            "--events",
            "20",
            "--hours",
            "1",
            "--start",
            &hour,
            "--envelope",
            "raw",
        ],
    );
    let gh = GitHub::start(Vec::new());
    let hook = gh.add_hook("org:octo-org", "http://127.0.0.1:9/webhook", SECRET);
    let out = bin()
        .arg("--archive")
        .arg(&archive)
        .args([
            "--quiet",
            "audit",
            "--hook",
            &hook,
            "--github-api-url",
            &gh.api_url(),
        ])
        .args(["--github-token-file", &token_file(dir.path())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no delivery id (cztack's raw shape keeps none)"),
        "{err}"
    );
}

#[test]
fn serve_reconcile_heals_a_gap_with_no_command_typed() {
    use crate::common::metric;
    let Scene {
        dir,
        archive,
        port,
        gh,
        hook,
    } = Scene::new("repo:octo-org/hello-world");
    let body = payload("push");

    let server = serve_on(&archive, port);
    let (kept, _) = gh.deliver(&hook, "push", &body, Send::Normal);
    // Two pages of older deliveries, all archived: the first pass lists
    // them, later ones only what is new.
    let older: Vec<String> = (0..150)
        .map(|_| gh.deliver(&hook, "push", &body, Send::Normal))
        .map(|(guid, code)| {
            assert_eq!(code, 200);
            guid
        })
        .collect();
    drop(server);
    gh.backdate(Duration::from_secs(3600));
    let missed: Vec<String> = (0..3)
        .map(|_| gh.deliver(&hook, "push", &body, Send::Normal).0)
        .collect();

    let mut cmd = bin();
    cmd.env_remove("GITHUB_TOKEN")
        .arg("--archive")
        .arg(&archive)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--reconcile",
            &hook,
            "--reconcile-every",
            "1s",
            "--reconcile-settle",
            "0s",
        ])
        .args(["--github-api-url", &gh.api_url()])
        .args(["--github-token-file", &token_file(dir.path())]);
    let server = Server::spawn(cmd);
    for guid in &missed {
        gh.wait_for_attempts(guid, 2);
        assert_eq!(
            gh.attempts(guid),
            [502, 200],
            "{guid}: redelivered once, acknowledged"
        );
    }
    // Healed: later passes find nothing missing and ask for nothing more,
    // and each lists one page: only what is new since the last pass (a
    // pass that listed the whole log would read two).
    let passes = |n| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while metric(server.port, "ghreplay_reconcile_passes_total") < n {
            assert!(std::time::Instant::now() < deadline, "no reconcile passes");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let start = metric(server.port, "ghreplay_reconcile_passes_total");
    passes(start + 1);
    let requests = gh.requests();
    passes(start + 4);
    let listed = gh.requests() - requests;
    assert!(
        (2..=4).contains(&listed),
        "{listed} list requests over 3 passes"
    );
    assert_eq!(metric(server.port, "ghreplay_reconcile_missing_total"), 3);
    assert_eq!(
        metric(server.port, "ghreplay_reconcile_redeliveries_total"),
        3
    );
    assert_eq!(metric(server.port, "ghreplay_reconcile_lost_total"), 0);
    assert_eq!(metric(server.port, "ghreplay_reconcile_missing_open"), 0);
    assert_eq!(gh.redeliveries_asked(), 3);
    assert_eq!(gh.attempts(&kept), [200]);
    drop(server);

    let out = bin()
        .arg("--archive")
        .arg(&archive)
        .args(["--quiet", "cat"])
        .output()
        .unwrap();
    let mut ids: Vec<String> = crate::common::ndjson(&out)
        .iter()
        .map(|l| l["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want = [missed, older].concat();
    want.push(kept);
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn an_archive_on_s3_is_audited_the_same() {
    let Scene {
        dir: _dir,
        archive,
        port,
        gh,
        hook,
    } = Scene::new("org:octo-org");
    let body = payload("issues");
    let server = serve_on(&archive, port);
    let ok: Vec<String> = (0..2)
        .map(|_| gh.deliver(&hook, "issues", &body, Send::Normal).0)
        .collect();
    drop(server);
    let (missed, _) = gh.deliver(&hook, "issues", &body, Send::Normal);
    // The local archive, as Firehose would have put it in a bucket (serve's
    // own state, if any, stays behind).
    let _ = std::fs::remove_dir_all(archive.join(".ghreplay"));
    let moto = crate::common::Moto::start();
    let bucket = crate::common::unique_name("audit");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(moto.upload_dir(&bucket, &archive, "hooks/"));

    let token = token_file(archive.parent().unwrap());
    let out = moto
        .command()
        .env_remove("GITHUB_TOKEN")
        .args(["--archive", &format!("s3://{bucket}/hooks/")])
        .args([
            "--quiet", "audit", "--json", "--settle", "0s", "--hook", &hook,
        ])
        .args([
            "--github-api-url",
            &gh.api_url(),
            "--github-token-file",
            &token,
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["counts"]["ok"], 2, "{ok:?}");
    assert_eq!(json["deliveries"][0]["guid"], missed.as_str());
    assert_eq!(json["deliveries"][0]["verdict"], "missing");
}
