//! `ghreplay serve --archive s3://...` against moto: records are durable in
//! the spool before 200, completed objects are uploaded gzip and leave the
//! spool, `cat` reads them from S3, and a restart knows the archived ids.

use std::time::{Duration, Instant};

use crate::common::{ndjson, post_delivery, stderr, Moto, Server};

fn spool_files(dir: &std::path::Path) -> usize {
    ghreplay::server::upload::leftovers(dir).len()
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_reach_s3_gzip_and_the_spool_empties() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("ghreplay-serve").await;
    let archive = format!("s3://{bucket}/hooks/");
    let spool = tempfile::tempdir().unwrap();
    let spool_s = spool.path().to_str().unwrap();
    let mut server = Server::start_with(
        archive.as_ref(),
        &["--spool", spool_s, "--roll-age", "1s"],
        &moto.env(),
    );
    let body = br#"{"zen":"z","hook_id":1,"repository":{"full_name":"o/r","private":false}}"#;
    for i in 0..3 {
        let r = post_delivery(server.port, "ping", &format!("s3-{i}"), body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // The object rolls over after a second and is uploaded.
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool_files(spool.path()) > 0 {
        assert!(Instant::now() < deadline, "the spool never emptied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = moto.run(&["--archive", &archive, "cat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = ndjson(&out);
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["object"].as_str().unwrap().starts_with("hooks/"));
    let key = std::path::Path::new(lines[0]["object"].as_str().unwrap());
    assert_eq!(key.extension().and_then(|e| e.to_str()), Some("gz"));

    // A delivery after that, then SIGTERM: its object is uploaded on the way out.
    assert_eq!(post_delivery(server.port, "ping", "s3-3", body).status, 200);
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    assert_eq!(spool_files(spool.path()), 0, "uploaded before exit");
    assert_eq!(ndjson(&moto.run(&["--archive", &archive, "cat"])).len(), 4);

    // Restarted, it knows what S3 holds.
    let server = Server::start_with(archive.as_ref(), &["--spool", spool_s], &moto.env());
    let r = post_delivery(server.port, "ping", "s3-1", body);
    assert!(r.body.contains("\"duplicate\""), "{}", r.body);
}
