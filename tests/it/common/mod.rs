//! Helpers shared by the integration tests: the shared fixtures, archives
//! built with `make_archive.py`, and running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `../shared`, which CI places beside the clone. Tests that need it fail
/// loudly when it is missing rather than passing without checking anything.
pub mod browser;
pub mod github;

pub fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        dir.join("fixtures/payloads").is_dir(),
        "../shared/fixtures/payloads is missing: CI places shared/ beside the clone"
    );
    dir
}

pub fn shared_payloads() -> PathBuf {
    shared().join("fixtures/payloads")
}

/// `(event, path)` for every `<event>/<file>.json`, sorted.
pub fn payload_files(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let event = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                out.push((event.clone(), f));
            }
        }
    }
    out.sort();
    out
}

/// Runs `make_archive.py` into `out` with extra arguments.
pub fn make_archive(out: &Path, args: &[&str]) {
    let status = Command::new("python3")
        .arg(shared().join("tools/make_archive.py"))
        .arg("--payloads")
        .arg(shared_payloads())
        .arg("--out")
        .arg(out)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs make_archive.py");
    assert!(status.success(), "make_archive.py {args:?} failed");
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ghreplay"));
    c.env_remove("GHREPLAY_ARCHIVE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG");
    c
}

/// Runs ghreplay with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("ghreplay runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir`.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// Parses NDJSON stdout.
pub fn ndjson(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(o.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect()
}

/// The repository's bundled fixture archive.
pub fn fixture_archive() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/archive")
        .to_string_lossy()
        .into_owned()
}

/// A free TCP port on 127.0.0.1 (bound, then released for a child server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`, or panics.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A moto server (real S3/SNS wire protocol) on 127.0.0.1, stopped on drop.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let exe = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {exe} ({e}): run the tests with scripts/test.sh")
            });
        wait_for_port(port, "moto_server");
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Dummy credentials and the endpoint, for the binary and the SDK.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// ghreplay, set up to talk to this server.
    pub fn command(&self) -> Command {
        let mut c = bin();
        c.env_remove("AWS_PROFILE");
        for (k, v) in self.env() {
            c.env(k, v);
        }
        c
    }

    /// Runs ghreplay against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("ghreplay runs")
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A new, empty bucket named after `stem`.
    pub async fn new_bucket(&self, stem: &str) -> String {
        let bucket = unique_name(stem);
        self.s3()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        bucket
    }

    /// Creates `bucket` and uploads every file under `dir` with `prefix` before its relative path.
    pub async fn upload_dir(&self, bucket: &str, dir: &Path, prefix: &str) {
        let s3 = self.s3();
        let _ = s3.create_bucket().bucket(bucket).send().await;
        for p in walk_files(dir) {
            let rel = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            s3.put_object()
                .bucket(bucket)
                .key(format!("{prefix}{rel}"))
                .body(std::fs::read(&p).unwrap().into())
                .send()
                .await
                .unwrap();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bucket name no other test uses.
pub fn unique_name(stem: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{stem}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------
// `RabbitMQ` (real, on 127.0.0.1:5672; scripts/test.sh starts or installs it)
// ---------------------------------------------------------------------------

pub const RABBIT_PORT: u16 = 5672;

pub fn amqp_url(port: u16) -> String {
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
}

/// A queue bound with `#` to a fresh topic exchange of its own.
pub struct Bound {
    pub exchange: String,
    pub queue: String,
    conn: lapin::Connection,
    channel: lapin::Channel,
}

impl Bound {
    pub async fn new(stem: &str) -> Bound {
        Self::with_queue_args(stem, lapin::types::FieldTable::default()).await
    }

    /// A queue that holds at most `n` messages and has the broker nack
    /// publishes past that (`x-overflow: reject-publish`).
    pub async fn rejecting_past(stem: &str, n: i64) -> Bound {
        use lapin::types::{AMQPValue, FieldTable};
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(n));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        Self::with_queue_args(stem, args).await
    }

    async fn with_queue_args(stem: &str, args: lapin::types::FieldTable) -> Bound {
        use lapin::options::QueueDeclareOptions;
        let conn = lapin::Connection::connect(
            &amqp_url(RABBIT_PORT),
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (scripts/test.sh starts it)");
        let channel = conn.create_channel().await.unwrap();
        let exchange = unique_name(&format!("exchange/ghreplay-test/{stem}"));
        let queue = unique_name(&format!("queue/ghreplay-test/{stem}"));
        // Not exclusive: it must outlive connections that a test closes.
        channel
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
            .await
            .unwrap();
        let bound = Bound {
            exchange,
            queue,
            conn,
            channel,
        };
        bound.restore_exchange().await;
        bound
    }

    /// Every message in the queue, waiting until none has come for a second
    /// (and at most 60 s).
    pub async fn drain(&self) -> Vec<lapin::message::BasicGetMessage> {
        use lapin::options::{BasicAckOptions, BasicGetOptions};
        let conn = lapin::Connection::connect(
            &amqp_url(RABBIT_PORT),
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut quiet_since = std::time::Instant::now();
        while std::time::Instant::now() < deadline {
            match ch
                .basic_get(self.queue.as_str().into(), BasicGetOptions::default())
                .await
                .unwrap()
            {
                Some(m) => {
                    m.delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .unwrap();
                    out.push(m);
                    quiet_since = std::time::Instant::now();
                }
                None if quiet_since.elapsed() > std::time::Duration::from_secs(1) => break,
                None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        out
    }

    /// Waits until the queue holds at least `n` messages (at most 60 s): how
    /// a test knows a run is under way before it breaks something.
    pub async fn wait_for(&self, n: u32) {
        use lapin::options::QueueDeclareOptions;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let q = self
                .channel
                .queue_declare(
                    self.queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await
                .unwrap();
            if q.message_count() >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} held {} messages after 60 s, not {n}",
                self.queue,
                q.message_count()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Deletes the exchange (the queue stays, unbound), as an operator's
    /// mistake or a broker migration would.
    pub async fn delete_exchange(&self) {
        self.channel
            .exchange_delete(
                self.exchange.as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await
            .unwrap();
    }

    /// Declares the exchange (topic, durable) and binds the queue to it with
    /// `#`: at creation, and again after [`Bound::delete_exchange`].
    pub async fn restore_exchange(&self) {
        use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
        use lapin::types::FieldTable;
        self.channel
            .exchange_declare(
                self.exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.channel
            .queue_bind(
                self.queue.as_str().into(),
                self.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    pub async fn delete(self) {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let _ = self
            .channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.conn.close(200, "done".into()).await;
    }
}

/// A TCP proxy to `RabbitMQ`, so a test can cut ghreplay's connection
/// ([`Proxy::cut`]) or refuse new ones for a while ([`Proxy::refuse`]),
/// without touching anyone else's.
pub struct Proxy {
    pub port: u16,
    state: std::sync::Arc<ProxyState>,
}

/// The listener lives behind a lock that `refuse` and `accept` change
/// synchronously: when either returns, the port already refuses or already
/// listens, so a process started right after never races the proxy thread.
#[derive(Default)]
struct ProxyState {
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
    closed: std::sync::atomic::AtomicBool,
    conns: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

fn listen(port: u16) -> std::net::TcpListener {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        let first = listen(0);
        let port = first.local_addr().unwrap().port();
        let state = std::sync::Arc::new(ProxyState {
            listener: std::sync::Mutex::new(Some(first)),
            ..ProxyState::default()
        });
        let s = state.clone();
        std::thread::spawn(move || {
            while !s.closed.load(Ordering::Relaxed) {
                let accepted = match &*s.listener.lock().unwrap() {
                    Some(l) => l.accept().ok(),
                    None => None,
                };
                let Some((client, _)) = accepted else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut conns = s.conns.lock().unwrap();
                conns.push(client.try_clone().unwrap());
                conns.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, state }
    }

    /// Drops every connection through the proxy, as a network fault would.
    pub fn cut(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Cuts every connection and refuses new ones until `accept` is called.
    pub fn refuse(&self) {
        *self.state.listener.lock().unwrap() = None;
        self.cut();
    }

    /// Listens again; connections made after this returns are accepted.
    pub fn accept(&self) {
        let mut listener = self.state.listener.lock().unwrap();
        if listener.is_none() {
            *listener = Some(listen(self.port));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.cut();
    }
}

/// The parsed JSON body of an AMQP message.
pub fn body(m: &lapin::message::BasicGetMessage) -> serde_json::Value {
    serde_json::from_slice(&m.delivery.data).unwrap()
}

// ---------------------------------------------------------------------------
// ghreplay serve, and a minimal HTTP/1.1 client for it
// ---------------------------------------------------------------------------

/// A running `ghreplay serve`, killed on drop.
pub struct Server {
    pub child: std::process::Child,
    pub port: u16,
    /// The "listening on" line.
    pub banner: String,
}

pub const SECRET: &str = "test-secret";

impl Server {
    /// Starts a server on 127.0.0.1:0 archiving to `archive`; `extra` flags
    /// after `serve`. Waits for its "listening on" line.
    pub fn start(archive: &Path, extra: &[&str]) -> Server {
        Self::start_with(archive.as_os_str(), extra, &[])
    }

    /// As [`Server::start`], for any `--archive` value and extra environment.
    pub fn start_with(archive: &std::ffi::OsStr, extra: &[&str], env: &[(&str, String)]) -> Server {
        let mut cmd = bin();
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg("--archive")
            .arg(archive)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra);
        Self::spawn(cmd)
    }

    /// Starts `cmd`, a `ghreplay serve` command line (or one that wraps it,
    /// such as `prlimit`), and waits for its "listening on" line.
    pub fn spawn(mut cmd: Command) -> Server {
        use std::io::BufRead as _;
        let mut child = cmd
            .env("GHREPLAY_WEBHOOK_SECRET", SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut said = String::new();
        let port = loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "serve exited before listening:\n{said}"
            );
            said.push_str(&line);
            if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        let banner = line.clone();
        // Keep draining stderr so the server never blocks on it; the test
        // harness shows it when the test fails.
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                eprintln!("[serve :{port}] {l}");
            }
        });
        Server {
            child,
            port,
            banner,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The dashboard's port (`--ui-listen`), from the banner.
    pub fn ui_port(&self) -> u16 {
        let rest = self
            .banner
            .split("dashboard on ")
            .nth(1)
            .unwrap_or_else(|| panic!("no dashboard in {:?}", self.banner));
        rest.split("://")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no dashboard port in {:?}", self.banner))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body of an HTTP response.
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.1 request on a fresh connection.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    use std::fmt::Write as _;
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Response { status, body }
}

/// Posts a delivery signed with [`SECRET`].
pub fn post_delivery(port: u16, event: &str, id: &str, body: &[u8]) -> Response {
    let sig = ghreplay::signature::sign_sha256(SECRET.as_bytes(), body);
    http(
        port,
        "POST",
        "/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", id),
            ("X-Hub-Signature-256", &sig),
            ("User-Agent", "GitHub-Hookshot/test"),
        ],
        body,
    )
}

/// Every expected id arrived; nothing else did; duplicates within the bound.
pub fn assert_complete(
    got: &[lapin::message::BasicGetMessage],
    expected: &std::collections::HashSet<String>,
    bound: usize,
) {
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for m in got {
        *counts
            .entry(body(m)["request_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        counts.keys().all(|k| expected.contains(k)),
        "unexpected messages"
    );
    let duplicates = got.len() - counts.len();
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates, bound {bound}"
    );
    eprintln!(
        "{} messages, {} events, {duplicates} duplicates (bound {bound})",
        got.len(),
        counts.len()
    );
}

/// Waits until the run's checkpoint records confirmed events (at most 60 s).
pub async fn wait_for_progress(cp: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let confirmed = std::fs::read(cp)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["confirmed"].as_u64())
            .unwrap_or(0);
        if confirmed > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress saved to {} in 60 s",
            cp.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A counter from a running server's `/metrics`.
/// A gauge's value from `/metrics`.
pub fn metric_f64(port: u16, name: &str) -> f64 {
    http(port, "GET", "/metrics", &[], b"")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {name} on /metrics"))
        .parse()
        .unwrap()
}

/// A counter's value from `/metrics`.
pub fn metric(port: u16, name: &str) -> u64 {
    let v = metric_f64(port, name);
    assert!(v >= 0.0 && v.fract() == 0.0, "{name} is not a count: {v}");
    v.to_string().parse().unwrap()
}

/// Every file below `dir`, in path order.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

pub struct Topic {
    pub arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

/// A topic with a queue subscribed, to read what it was sent.
pub async fn topic_with_queue(moto: &Moto) -> Topic {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let arn = sns
        .create_topic()
        .name(unique_name("github-webhooks-all"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("subscriber"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    Topic {
        arn,
        queue_url,
        sqs,
    }
}

impl Topic {
    /// Every SNS envelope in the queue (until it stays empty).
    /// Every message the queue got, waiting until none came for 2 s.
    pub async fn drain(&self) -> Vec<serde_json::Value> {
        self.receive(usize::MAX).await
    }

    /// Messages until `n` have come or 60 s passed (for `usize::MAX`: until
    /// none came for 2 s).
    pub async fn receive(&self, n: usize) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut empty = 0;
        while (n != usize::MAX || empty < 2)
            && out.len() < n
            && std::time::Instant::now() < deadline
        {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                empty += 1;
            }
            for m in msgs {
                out.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// A fault-injecting HTTP proxy in front of moto
// ---------------------------------------------------------------------------

/// An HTTP proxy in front of a real S3 server (moto) that injects faults on
/// request: `503 SlowDown` answers, object bodies that break off half
/// way (headers and `Content-Length` as S3 sent them, then a reset) or
/// stall half way (then nothing, until the client gives up), listings of
/// a prefix denied, and ranged answers from another version of the object
/// (another `ETag`). It counts the ranged GETs it passes.
pub struct S3Faults {
    pub endpoint: String,
    faults: std::sync::Arc<Faults>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Faults still to inject, and how many were.
#[derive(Default)]
struct Faults {
    slow_downs: std::sync::atomic::AtomicU32,
    cut_bodies: std::sync::atomic::AtomicU32,
    stall_bodies: std::sync::atomic::AtomicU32,
    other_versions: std::sync::atomic::AtomicU32,
    served: std::sync::atomic::AtomicU32,
    ranged_gets: std::sync::atomic::AtomicU32,
    /// Listings whose `prefix` ends with this are denied (403).
    denied_prefix: std::sync::Mutex<Option<String>>,
}

impl Faults {
    /// Takes one from `counter` if it is above zero, and counts it served.
    fn take(&self, counter: &std::sync::atomic::AtomicU32) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let taken = counter
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.served.fetch_add(1, SeqCst);
        }
        taken
    }
}

impl S3Faults {
    pub fn start(upstream: &str) -> S3Faults {
        let upstream = upstream.to_owned();
        let faults = std::sync::Arc::new(Faults::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = faults.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http::<http_body_util::Full<bytes::Bytes>>();
                let mut stopped = stopped;
                loop {
                    let tcp = tokio::select! {
                        _ = &mut stopped => break,
                        a = listener.accept() => a.unwrap().0,
                    };
                    let (client, upstream, faults) =
                        (client.clone(), upstream.clone(), shared.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            proxy_one(client.clone(), upstream.clone(), faults.clone(), req)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                            .await;
                    });
                }
            });
        });
        S3Faults {
            endpoint: format!("http://127.0.0.1:{port}"),
            faults,
            stop: Some(stop),
        }
    }

    /// The next `n` requests are answered `503 SlowDown`.
    pub fn slow_down(&self, n: u32) {
        self.faults
            .slow_downs
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next `n` object downloads break off half way.
    pub fn cut_bodies(&self, n: u32) {
        self.faults
            .cut_bodies
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next `n` object downloads stall half way.
    pub fn stall_bodies(&self, n: u32) {
        self.faults
            .stall_bodies
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next `n` ranged GETs answer with another `ETag`, as if the
    /// object had been replaced between its parts.
    pub fn other_versions(&self, n: u32) {
        self.faults
            .other_versions
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every listing of a prefix ending with `suffix` is answered `403
    /// AccessDenied` (a permanent failure).
    pub fn deny_listing(&self, suffix: &str) {
        *self.faults.denied_prefix.lock().unwrap() = Some(suffix.to_owned());
    }

    /// GETs with a `Range` header passed so far.
    pub fn ranged_gets(&self) -> u32 {
        self.faults
            .ranged_gets
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub fn served(&self) -> u32 {
        self.faults.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for S3Faults {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type ProxyBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// An `AccessDenied` body, if `req` lists a prefix the test denies.
fn deny(faults: &Faults, req: &hyper::Request<hyper::body::Incoming>) -> Option<bytes::Bytes> {
    let suffix = faults.denied_prefix.lock().unwrap().clone()?;
    let query = req.uri().query()?;
    let prefix = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "prefix")
        .map(|(_, v)| v.into_owned());
    if !query.contains("list-type") || !prefix.is_some_and(|p| p.ends_with(&suffix)) {
        return None;
    }
    faults
        .served
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Some(bytes::Bytes::from_static(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
    ))
}

fn denied_headers() -> hyper::HeaderMap {
    let mut headers = hyper::HeaderMap::new();
    headers.insert("content-type", "application/xml".parse().unwrap());
    headers
}

async fn proxy_one(
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    upstream: String,
    faults: std::sync::Arc<Faults>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<ProxyBody>, std::convert::Infallible> {
    use http_body_util::BodyExt as _;
    let full = |status: u16, body: bytes::Bytes, headers: &hyper::HeaderMap| {
        let mut r = hyper::Response::new(
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed(),
        );
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        *r.headers_mut() = headers.clone();
        r
    };
    if faults.take(&faults.slow_downs) {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let mut headers = hyper::HeaderMap::new();
        headers.insert("content-type", "application/xml".parse().unwrap());
        return Ok(full(503, bytes::Bytes::from(body), &headers));
    }
    let is_object_get = req.method() == hyper::Method::GET
        && req.uri().query().is_none_or(|q| !q.contains("list-type"))
        && req.uri().path().matches('/').count() > 1;
    if let Some(denied) = deny(&faults, &req) {
        return Ok(full(403, denied, &denied_headers()));
    }
    let ranged = is_object_get && req.headers().contains_key(hyper::header::RANGE);
    if ranged {
        faults
            .ranged_gets
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let uri: hyper::Uri = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    )
    .parse()
    .unwrap();
    let mut up = hyper::Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        up = up.header(k, v);
    }
    let resp = client
        .request(up.body(http_body_util::Full::new(body)).unwrap())
        .await
        .unwrap();
    let (mut parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    if ranged && parts.status.is_success() && faults.take(&faults.other_versions) {
        parts
            .headers
            .insert(hyper::header::ETAG, "\"another-version\"".parse().unwrap());
    }
    let fault = if !is_object_get || !parts.status.is_success() || body.len() < 2 {
        None
    } else if faults.take(&faults.cut_bodies) {
        Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut by the test",
        )))
    } else if faults.take(&faults.stall_bodies) {
        Some(Ok(()))
    } else {
        None
    };
    if let Some(end) = fault {
        let half = body.slice(..body.len() / 2);
        // The head and half the body go out (the pause lets hyper flush
        // them), then the connection breaks (`end` an error) or stalls.
        let frames = futures::stream::unfold((0u8, Some(end)), move |(step, end)| {
            let half = half.clone();
            async move {
                match (step, end) {
                    (0, end) => Some((Ok(hyper::body::Frame::data(half)), (1, end))),
                    (1, Some(Err(e))) => {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        Some((Err(e), (2, None)))
                    }
                    (1, Some(Ok(()))) => {
                        std::future::pending::<()>().await;
                        None
                    }
                    _ => None,
                }
            }
        });
        let mut r = hyper::Response::new(http_body_util::StreamBody::new(frames).boxed());
        *r.status_mut() = parts.status;
        *r.headers_mut() = parts.headers;
        return Ok(r);
    }
    Ok(full(parts.status.as_u16(), body, &parts.headers))
}

/// A CA, and a certificate for 127.0.0.1 signed by it, made with openssl.
pub fn certificates(dir: &Path) -> (String, String, String) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=ghreplay test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("leaf.key"),
        "-out",
        &p("leaf.csr"),
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("leaf.ext"),
        "-out",
        &p("leaf.pem"),
    ]);
    (p("ca.pem"), p("leaf.pem"), p("leaf.key"))
}

/// Sends `signal` (`TERM`, `INT`) to a child process, as `kill -SIGNAL`.
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// `sqlfluff parse --dialect DIALECT` over `sql`: every statement is
/// parsed as what it is (none left unparsable), as many as the SQL has.
pub fn assert_parses(dialect: &str, what: &str, sql: &str) {
    let exe = std::env::var("SQLFLUFF")
        .expect("SQLFLUFF names sqlfluff (scripts/test.sh installs it in its venv)");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("statements.sql");
    std::fs::write(&file, sql).unwrap();
    let out = std::process::Command::new(exe)
        .args(["parse", "--dialect", dialect])
        .arg(&file)
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !tree.contains("unparsable"),
        "{what}: sqlfluff ({dialect}) could not parse it all:\n{tree}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = tree
        .lines()
        .filter(|l| l.ends_with("|    statement:"))
        .count();
    let written = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--") && l.trim_end().ends_with(';'))
        .count();
    assert_eq!(
        parsed, written,
        "{what}: statements parsed vs written\n{tree}"
    );
}
