//! The dashboard (`serve --ui-listen`, `ghreplay ui`), in a real browser:
//! Debian's Chromium, headless, driven over the `DevTools` protocol. Each test
//! writes a screenshot of the pages it visits to `target/ui-screenshots/`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::browser::{screenshot_dir, Browser};
use crate::common::{self, http, post_delivery, Server};

/// GitHub's example `release` payload with our tag and name.
fn release(tag: &str, name: &str) -> Vec<u8> {
    let path = common::shared_payloads().join("release/published.payload.json");
    let mut p: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    p["release"]["tag_name"] = json!(tag);
    p["release"]["name"] = json!(name);
    serde_json::to_vec(&p).unwrap()
}

fn post_release(server: &Server, tag: &str, name: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let r = post_delivery(server.port, "release", &id, &release(tag, name));
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

/// GitHub's example `issues` payload with our title.
fn issue(title: &str) -> Vec<u8> {
    let path = common::shared_payloads().join("issues/labeled.with-organization.payload.json");
    let mut p: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    p["issue"]["title"] = json!(title);
    serde_json::to_vec(&p).unwrap()
}

fn post_issue(server: &Server, title: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let r = post_delivery(server.port, "issues", &id, &issue(title));
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

/// The HTML of one delivery's page.
fn delivery_page(ui: u16, key: &str) -> String {
    http(ui, "GET", &format!("/delivery?key={key}"), &[], b"").body
}

/// Polls `f` until it is true, or fails after `within`.
fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops `serve` as an operator does (SIGTERM) and asserts that it exits
/// with success within 30 s.
fn stop_cleanly(server: &mut Server) {
    common::signal(&server.child, "TERM");
    assert!(wait_exit(&mut server.child, Duration::from_secs(30)).success());
}

const HOSTILE: &str = r#"<img src=x onerror="window.__pwned=1">"#;

#[test]
fn releases_appear_live_are_escaped_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let spool = dir.path().join("spool");
    let args = [
        "--ui-listen",
        "127.0.0.1:0",
        "--spool",
        spool.to_str().unwrap(),
    ];
    // Archived before the dashboard existed: its new database catches up.
    {
        let plain = Server::start(&archive, &[]);
        post_release(&plain, "v0.9.0-before", "Before");
    }
    let mut server = Server::start(&archive, &args);
    assert_eq!(
        http(server.port, "GET", "/", &[], b"").status,
        404,
        "the webhook listener serves no page"
    );

    post_release(&server, "v1.0.0-first", "First");
    post_release(&server, "v1.1.0-second", "Second <b>bold</b>");
    let ui = server.ui_port();
    wait_until(
        "the releases to be indexed",
        Duration::from_secs(20),
        || {
            let page = http(ui, "GET", "/", &[], b"").body;
            page.contains("v1.1.0-second") && page.contains("v0.9.0-before")
        },
    );

    let mut b = Browser::start(&[]);
    b.open(&format!("http://127.0.0.1:{ui}/"));
    let text = b.text();
    assert!(
        text.contains("v1.0.0-first") && text.contains("v1.1.0-second"),
        "{text}"
    );
    assert!(
        text.contains("Second <b>bold</b>"),
        "markup in a name is text: {text}"
    );

    // One posted while the page is open arrives without a reload.
    b.wait_for(
        "document.querySelector('tbody[data-state=open]')",
        Duration::from_secs(20),
    );
    b.eval("window.__same_page = 42");
    let live = post_release(&server, "v2.0.0-live", HOSTILE);
    b.wait_for(
        "document.querySelector('#releases').innerText.includes('v2.0.0-live')",
        Duration::from_secs(20),
    );
    assert_eq!(
        b.eval("window.__same_page"),
        json!(42),
        "the page was not reloaded"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#releases tr')[0].innerText.includes('v2.0.0-live')"),
        json!(true),
        "newest first"
    );
    assert!(b.text().contains(HOSTILE), "the hostile name shows as text");
    assert_eq!(b.eval("document.querySelectorAll('img').length"), json!(0));
    assert_eq!(
        b.eval("window.__pwned === undefined"),
        json!(true),
        "no script ran"
    );
    let shots = screenshot_dir();
    b.screenshot(&shots.join("releases.png"));

    look_up(&mut b, ui, &live);
    activity(&mut b, ui);

    // After a restart the history is still there, from the UI database.
    stop_cleanly(&mut server);
    let server = Server::start(&archive, &args);
    b.open(&format!("http://127.0.0.1:{}/", server.ui_port()));
    let text = b.text();
    for tag in [
        "v0.9.0-before",
        "v1.0.0-first",
        "v1.1.0-second",
        "v2.0.0-live",
    ] {
        assert!(
            text.contains(tag),
            "{tag} not shown after a restart:\n{text}"
        );
    }
}

/// Rows of `deliveries` in `db` (key, delivery id, object, record, payload
/// digest, headers, time, verdict), in key order, through `ghreplay query`.
fn rows(db: &Path) -> Vec<Value> {
    let out = common::run(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
        "SELECT row_key, delivery_id, object_key, record_index, md5(payload) AS payload, \
         headers, received_at, public FROM deliveries ORDER BY row_key",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::ndjson(&out)
}

/// Under a burst the writer commits deliveries in groups while the
/// dashboard's follower reads each object on from where its last pass
/// stopped (records numbered on from the count before): every delivery is
/// indexed once, as `load` reads it from the archive.
#[test]
fn a_burst_of_deliveries_is_indexed_once_each_as_load_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let db = dir.path().join("ui.duckdb");
    let mut server = Server::start(
        &archive,
        &[
            "--ui-listen",
            "127.0.0.1:0",
            "--ui-db",
            db.to_str().unwrap(),
        ],
    );
    let mut posted: Vec<String> = std::thread::scope(|s| {
        let posters: Vec<_> = (0..8)
            .map(|t| {
                let server = &server;
                s.spawn(move || {
                    (0..25)
                        .map(|i| post_release(server, &format!("v{t}.{i}"), "burst"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        posters
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    // At shutdown the indexer takes what is archived, then stops.
    stop_cleanly(&mut server);

    let indexed = rows(&db);
    let mut ids: Vec<String> = indexed
        .iter()
        .map(|r| r["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    posted.sort();
    assert_eq!(ids, posted, "each delivery once");

    let loaded = dir.path().join("loaded.duckdb");
    let out = common::run(&[
        "--archive",
        archive.to_str().unwrap(),
        "load",
        "--db",
        loaded.to_str().unwrap(),
        "-q",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        indexed,
        rows(&loaded),
        "the same rows as read from the archive"
    );
}

/// A delivery looked up by its id: headers as received, verdict, payload.
fn look_up(b: &mut Browser, ui: u16, live: &str) {
    let shots = screenshot_dir();
    b.open(&format!("http://127.0.0.1:{ui}/deliveries?id={live}"));
    assert!(b.text().contains(live), "{}", b.text());
    b.screenshot(&shots.join("deliveries.png"));
    b.eval("document.querySelector('td.mono a').click()");
    // The payload element exists as soon as its tag is parsed: wait for the
    // whole page, or its text may be read half-loaded.
    b.wait_for(
        "document.readyState === 'complete' && document.querySelector('#payload')",
        Duration::from_secs(20),
    );
    let text = b.text();
    for want in [
        "x-hub-signature-256",
        "GitHub-Hookshot/test",
        "verified",
        r#""tag_name": "v2.0.0-live""#,
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    b.screenshot(&shots.join("delivery.png"));
}

fn activity(b: &mut Browser, ui: u16) {
    let shots = screenshot_dir();
    b.open(&format!("http://127.0.0.1:{ui}/activity"));
    let text = b.text();
    for want in ["Last delivery", "4 deliveries in the database", "Archived"] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    assert_eq!(
        b.eval("document.querySelectorAll('svg.chart rect').length > 0"),
        json!(true),
        "the chart has a bar"
    );
    b.screenshot(&shots.join("activity.png"));
}

/// One request; the whole answer (head and body) as text.
fn raw(port: u16, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn off_loopback_the_dashboard_needs_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();

    let refused = common::bin()
        .env("GHREPLAY_WEBHOOK_SECRET", common::SECRET)
        .arg("--archive")
        .arg(&archive)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ui-listen",
            "0.0.0.0:0",
            "--spool",
            spool,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = common::stderr(&refused);
    assert!(err.contains("--ui-token-file"), "{err}");

    let token = "0123456789abcdef0123456789abcdef";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let server = Server::start(
        &archive,
        &[
            "--ui-listen",
            "0.0.0.0:0",
            "--ui-token-file",
            token_file.to_str().unwrap(),
            "--spool",
            spool,
        ],
    );
    let ui = server.ui_port();
    let get = |extra: &str| {
        raw(
            ui,
            &format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
        )
    };
    let anonymous = get("");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(
        anonymous.contains("Sign in") && !anonymous.contains("Releases</h1>"),
        "{anonymous}"
    );
    assert!(get("Authorization: Bearer wrong-token-wrong-token\r\n").starts_with("HTTP/1.1 401"));
    assert!(get(&format!("Authorization: Bearer {token}\r\n")).starts_with("HTTP/1.1 200"));

    // The login form sets a session cookie that lets a browser in.
    let form = format!("token={token}");
    let login = raw(
        ui,
        &format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie in {login}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie is not the token: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    assert!(get(&format!("Cookie: {pair}\r\n")).starts_with("HTTP/1.1 200"));
    assert!(get(&format!("Cookie: {pair}x\r\n")).starts_with("HTTP/1.1 401"));
}

#[test]
fn the_dashboard_serves_https_with_a_secure_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::certificates(dir.path());
    let token = "0123456789abcdef0123456789abcdef";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let server = Server::start(
        &dir.path().join("archive"),
        &[
            "--ui-listen",
            "127.0.0.1:0",
            "--ui-token-file",
            token_file.to_str().unwrap(),
            "--ui-tls-cert",
            &cert,
            "--ui-tls-key",
            &key,
            "--spool",
            dir.path().join("spool").to_str().unwrap(),
        ],
    );
    assert!(
        server.banner.contains("dashboard on https://"),
        "{}",
        server.banner
    );
    let url = format!("https://127.0.0.1:{}/", server.ui_port());
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-i", "--cacert", &ca])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = curl(&["-H", &format!("Authorization: Bearer {token}"), &url]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let login = curl(&["-d", &format!("token={token}"), &format!("{url}login")]);
    assert!(login.contains("; Secure"), "{login}");
}

/// `ghreplay ui` on `db` (killed on drop, as a `Server` is), and its port.
fn start_ui(db: &str, extra: &[&str]) -> (Server, u16) {
    start_ui_with(db, extra, &[])
}

fn start_ui_with(db: &str, extra: &[&str], env: &[(&str, String)]) -> (Server, u16) {
    use std::io::BufRead as _;
    let mut child = common::bin()
        .args(["ui", "--db", db, "--listen", "127.0.0.1:0"])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let server = Server {
        child,
        port,
        banner: line,
    };
    (server, port)
}

#[test]
fn ui_shows_a_loaded_database_without_live_parts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loaded.duckdb");
    let db = db.to_str().unwrap();
    let load = common::run(&[
        "--archive",
        &common::fixture_archive(),
        "load",
        "--db",
        db,
        "-q",
    ]);
    assert!(load.status.success(), "{}", common::stderr(&load));

    let (child, port) = start_ui(db, &[]);
    let mut b = Browser::start(&[]);
    b.open(&format!("http://127.0.0.1:{port}/"));
    let text = b.text();
    assert!(text.contains("v1.0.0") && text.contains("v2.0.0"), "{text}");
    assert_eq!(
        b.eval("document.querySelector('tbody[data-live]')"),
        Value::Null,
        "no live feed from a file"
    );
    b.open(&format!("http://127.0.0.1:{port}/activity"));
    let text = b.text();
    assert!(text.contains("Live counters are absent"), "{text}");
    assert!(text.contains("of the file"), "{text}");
    b.screenshot(&screenshot_dir().join("ui-activity.png"));
    // A delivery of a shape that keeps no headers says so.
    b.open(&format!("http://127.0.0.1:{port}/deliveries?event=release"));
    b.eval("document.querySelector('td.mono a').click()");
    // The payload element exists as soon as its tag is parsed: wait for the
    // whole page, or its text may be read half-loaded.
    b.wait_for(
        "document.readyState === 'complete' && document.querySelector('#payload')",
        Duration::from_secs(20),
    );
    let text = b.text();
    assert!(
        text.contains("not kept") || text.contains("not checked"),
        "{text}"
    );
    assert_eq!(http(port, "GET", "/live/releases", &[], b"").status, 404);
    drop(child);

    // --ui-public-only: a private repository's deliveries are not listed.
    let private = |extra: &[&str]| {
        let (_ui, port) = start_ui(db, extra);
        let page = http(port, "GET", "/deliveries", &[], b"").body;
        page.matches("badge private").count()
    };
    assert!(
        private(&[]) > 0,
        "the fixtures hold a private repository's events"
    );
    assert_eq!(private(&["--ui-public-only"]), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_archive_fills_the_dashboard_and_its_spool_waits_for_it() {
    let moto = common::Moto::start();
    let bucket = moto.new_bucket("ghreplay-ui").await;
    let archive = format!("s3://{bucket}/hooks/");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();

    // Archived to S3 before the dashboard existed.
    let mut plain = Server::start_with(
        archive.as_ref(),
        &["--spool", spool, "--roll-age", "1s"],
        &moto.env(),
    );
    post_release(&plain, "v1.0.0-in-s3", "In S3");
    common::signal(&plain.child, "TERM");
    assert!(wait_exit(&mut plain.child, Duration::from_secs(30)).success());
    wait_until(
        "the first object to reach S3",
        Duration::from_secs(30),
        || ghreplay::server::upload::leftovers(Path::new(spool)).is_empty(),
    );

    let ui_db = dir.path().join("ui.duckdb");
    let mut server = Server::start_with(
        archive.as_ref(),
        &[
            "--spool",
            spool,
            "--roll-age",
            "1s",
            "--ui-listen",
            "127.0.0.1:0",
            "--ui-db",
            ui_db.to_str().unwrap(),
        ],
        &moto.env(),
    );
    let ui = server.ui_port();
    let releases = || http(ui, "GET", "/", &[], b"").body;
    wait_until("the catch-up from S3", Duration::from_secs(30), || {
        releases().contains("v1.0.0-in-s3")
    });
    post_release(&server, "v2.0.0-spooled", "Spooled");
    wait_until("the spooled release", Duration::from_secs(30), || {
        releases().contains("v2.0.0-spooled")
    });
    // Once its object is complete and uploaded (roll-age 1 s), it stays in
    // the spool until the dashboard is past it, as for a forward target: a
    // delivery in a later object moves it on.
    let s3 = moto.s3();
    let objects_in_s3 = || {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
                listed.contents().len()
            })
        })
        .join()
        .unwrap()
    };
    wait_until("the second object in S3", Duration::from_secs(30), || {
        objects_in_s3() == 2
    });
    let held = ghreplay::server::upload::leftovers(Path::new(spool));
    assert_eq!(held.len(), 1, "uploaded but not yet passed: {held:?}");
    assert_eq!(
        common::metric(server.port, "ghreplay_upload_failures_total"),
        0
    );
    post_release(&server, "v3.0.0-later", "Later");
    wait_until(
        "the held object to leave the spool",
        Duration::from_secs(30),
        || !held[0].exists(),
    );
    wait_until(
        "the upload backlog gauge to say 0",
        Duration::from_secs(10),
        || common::metric(server.port, "ghreplay_upload_backlog") == 0,
    );

    // The file keeps no payload but releases': an issue's page reads it
    // from the spool while its object is there...
    let issue = post_issue(&server, "issue-marker-spooled");
    wait_until("the issue's page", Duration::from_secs(30), || {
        delivery_page(ui, &issue).contains("issue-marker-spooled")
    });
    assert!(delivery_page(ui, &issue).contains("verified"));
    stop_cleanly(&mut server);
    // ...and from S3 under the uploader's key when only S3 has it.
    let ui_db = ui_db.to_str().unwrap();
    let (_ui, port) = start_ui_with(ui_db, &["--archive", &archive], &moto.env());
    let page = delivery_page(port, &issue);
    assert!(page.contains("issue-marker-spooled"), "{page}");
}

/// The dashboard's own file keeps the payloads of releases only (they are
/// few, and the Releases page reads them): any other delivery's page reads
/// its payload, and checks its signature, from the archive, under `serve`
/// and under `ghreplay ui --archive`.
#[test]
fn other_deliveries_payloads_are_read_from_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let db = dir.path().join("ui.duckdb");
    let db = db.to_str().unwrap();
    let mut server = Server::start(&archive, &["--ui-listen", "127.0.0.1:0", "--ui-db", db]);
    let issue = post_issue(&server, "issue-marker-archived");
    let release = post_release(&server, "v9.9.9-kept", "Kept");
    let ui = server.ui_port();
    wait_until("both to be indexed", Duration::from_secs(20), || {
        delivery_page(ui, &release).contains("v9.9.9-kept")
            && delivery_page(ui, &issue).contains("issue-marker-archived")
    });
    assert!(delivery_page(ui, &issue).contains("verified"));
    stop_cleanly(&mut server);

    let out = common::run(&[
        "query",
        "--db",
        db,
        "--format",
        "json",
        "SELECT event, payload IS NULL AS left_out, headers IS NULL AS no_headers \
         FROM deliveries ORDER BY event",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        common::ndjson(&out),
        [
            json!({"event": "issues", "left_out": true, "no_headers": false}),
            json!({"event": "release", "left_out": false, "no_headers": false}),
        ]
    );

    let elsewhere = dir.path().join("elsewhere");
    let (_ui, port) = start_ui(db, &["--archive", elsewhere.to_str().unwrap()]);
    let page = delivery_page(port, &issue);
    assert!(!page.contains("issue-marker-archived"), "{page}");
    assert!(page.contains("is not in the archive"), "{page}");
    let (_ui, port) = start_ui(db, &["--archive", archive.to_str().unwrap()]);
    let page = delivery_page(port, &issue);
    assert!(page.contains("issue-marker-archived"), "{page}");
}

#[test]
fn a_quiet_receiver_says_so_on_the_page_and_on_metrics() {
    // The bundled archive's deliveries are from January 2026: long quiet.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    for file in common::walk(Path::new(&common::fixture_archive())) {
        let rel = file
            .strip_prefix(common::fixture_archive())
            .unwrap()
            .to_owned();
        std::fs::create_dir_all(archive.join(&rel).parent().unwrap()).unwrap();
        std::fs::copy(&file, archive.join(&rel)).unwrap();
    }
    let server = Server::start(
        &archive,
        &[
            "--ui-listen",
            "127.0.0.1:0",
            "--ui-history",
            "1000d",
            "--spool",
            dir.path().join("spool").to_str().unwrap(),
        ],
    );
    let ui = server.ui_port();
    wait_until(
        "the catch-up of the bundled archive",
        Duration::from_secs(30),
        || {
            http(ui, "GET", "/activity", &[], b"")
                .body
                .contains("13 deliveries in the database")
        },
    );
    let page = http(ui, "GET", "/activity", &[], b"").body;
    assert!(page.contains(r#"class="freshness warn""#), "{page}");
    let quiet = common::metric_f64(server.port, "ghreplay_seconds_since_last_delivery");
    assert!(quiet > 300.0 * 86_400.0, "{quiet}");
}
