//! A real browser for the dashboard's tests: Debian's Chromium, headless,
//! driven over Chrome's DevTools protocol (a WebSocket of JSON messages:
//! `Page.navigate`, `Runtime.evaluate`, `Page.captureScreenshot`). Each
//! browser has its own profile directory and debugging port, and is killed
//! on drop.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// The browser binary: `CHROMIUM`, else Debian's.
fn executable() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

impl Browser {
    /// Starts a headless Chromium on an empty page. `extra` flags are added
    /// (e.g. `--ignore-certificate-errors`).
    pub fn start(extra: &[&str]) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(executable())
            .args([
                "--headless=new",
                // As root, Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not start ({e}); scripts/test.sh installs Debian's chromium",
                    executable().display()
                )
            });
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        let port: u16 = loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "chromium exited before listening:\n{said}"
            );
            said.push_str(&line);
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in err.lines() {});
        let page = page_socket_url(port);
        let (socket, _) = tungstenite::connect(page.as_str()).unwrap();
        if let MaybeTlsStream::Plain(s) = socket.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        let mut b = Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        };
        b.call("Page.enable", &json!({}));
        b.call("Runtime.enable", &json!({}));
        b
    }

    /// Sends a `DevTools` command and returns its result (events that arrive
    /// meanwhile are passed over).
    pub fn call(&mut self, method: &str, params: &Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = self.socket.read().unwrap();
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            &json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Opens `url` and waits for it to load.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", &json!({ "url": url }));
        self.wait_for(
            &format!(
                "location.href.startsWith({}) && document.readyState === 'complete'",
                json!(url.split('#').next().unwrap())
            ),
            Duration::from_secs(20),
        );
    }

    /// Waits until `expr` is true in the page, or fails with what the page
    /// shows.
    pub fn wait_for(&mut self, expr: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.eval(&format!("Boolean({expr})")) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.text();
                panic!("waited {within:?} for `{expr}`; the page shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            &json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The debugging WebSocket of the browser's first page, from `/json/list`.
fn page_socket_url(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(
            format!("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
        )
        .unwrap();
        // Read until the JSON body is whole: the server may keep the
        // connection open.
        let mut raw = Vec::new();
        let mut chunk = [0u8; 8192];
        let body = loop {
            let n = s.read(&mut chunk).unwrap_or(0);
            raw.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            let body = text
                .split_once("\r\n\r\n")
                .map_or(String::new(), |(_, b)| b.to_owned());
            if n == 0 || serde_json::from_str::<Value>(&body).is_ok() {
                break body;
            }
        };
        let body = body.as_str();
        if let Ok(Value::Array(targets)) = serde_json::from_str::<Value>(body) {
            if let Some(url) = targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                return url.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no page target in {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where screenshots go: `target/ui-screenshots/` (kept after the run as
/// the test's artifact), or `GHREPLAY_SCREENSHOTS`.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("GHREPLAY_SCREENSHOTS").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
                PathBuf::from,
            );
            target.join("ui-screenshots")
        },
        PathBuf::from,
    )
}
