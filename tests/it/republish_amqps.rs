//! `republish --to amqps://` (Pulse's real scheme): TLS terminated by
//! stunnel, with a certificate authority made in the test, in front of the
//! shared `RabbitMQ` (whose own configuration no test changes).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{
    certificates, fixture_archive, free_port, ndjson, run, stderr, wait_for_port, Bound,
    RABBIT_PORT,
};

/// stunnel accepting TLS on its own port, forwarding to `RabbitMQ`.
struct Stunnel {
    child: std::process::Child,
    port: u16,
}

impl Stunnel {
    fn start(dir: &Path, cert: &str, key: &str) -> Stunnel {
        let port = free_port();
        let conf = dir.join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n[amqps]\naccept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:{RABBIT_PORT}\ncert = {cert}\nkey = {key}\n"
            ),
        )
        .unwrap();
        let child = Command::new("stunnel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stunnel runs (scripts/test.sh installs it)");
        wait_for_port(port, "stunnel");
        Stunnel { child, port }
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn amqps_delivers_through_tls_and_an_untrusted_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let tunnel = Stunnel::start(dir.path(), &cert, &key);
    let q = Bound::new("amqps").await;
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", tunnel.port);
    let archive = fixture_archive();
    let republish = |extra: &[&str]| {
        let mut args = vec!["--archive", &archive, "republish", "--to", &url];
        args.extend_from_slice(&["--exchange", &q.exchange]);
        args.extend_from_slice(extra);
        run(&args)
    };

    let out = republish(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "says why: {}",
        stderr(&out)
    );
    assert!(q.drain().await.is_empty());

    let out = republish(&["--ca-file", &ca]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let public = ndjson(&run(&["--archive", &archive, "cat", "--public-only"]));
    assert_eq!(q.drain().await.len(), public.len());
    q.delete().await;
}
