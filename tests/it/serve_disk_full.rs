//! `serve` on a full disk: a small tmpfs of its own (the tests run as root).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Server};

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the CI machine runs as root)"
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `path` until a write fails.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![b'x'; 4096];
    while f.write_all(&chunk).and_then(|()| f.sync_data()).is_ok() {}
}

fn body(id: &str) -> Vec<u8> {
    format!(
        r#"{{"zen":"{}","hook_id":1,"id":"{id}"}}"#,
        "z".repeat(1000)
    )
    .into_bytes()
}

#[test]
fn a_full_disk_answers_503_loses_nothing_acknowledged_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("mnt"), "1m");
    let archive = fs.0.join("archive");
    let filler = fs.0.join("filler");
    let server = Server::start(&archive, &[]);
    let mut acknowledged = Vec::new();
    let mut post = |id: String| {
        let r = common::post_delivery(server.port, "ping", &id, &body(&id));
        assert!(
            matches!(r.status, 200 | 503),
            "{id}: {} {}",
            r.status,
            r.body
        );
        if r.status == 200 {
            acknowledged.push(id);
        }
        r.status
    };

    assert_eq!(post("before".into()), 200);
    fill(&filler);
    let statuses: Vec<u16> = (0..30).map(|i| post(format!("full-{i}"))).collect();
    assert!(
        statuses.contains(&503),
        "a full disk must answer 503: {statuses:?}"
    );
    let objects = common::walk(&archive)
        .into_iter()
        .filter(|p| p.is_file())
        .count();
    assert!(
        objects <= 2,
        "{objects} objects after 30 failed writes: a full disk must not make an object per attempt"
    );

    // Space returns: the next delivery is archived, with no restart.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(post("after".into()), 200);

    drop(server);
    let out = common::run(&["--archive", archive.to_str().unwrap(), "cat"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no torn record may be left to read: {}",
        common::stderr(&out)
    );
    let archived: Vec<String> = common::ndjson(&out)
        .iter()
        .map(|e| e["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &acknowledged {
        assert!(
            archived.contains(id),
            "{id} was acknowledged but is not archived"
        );
    }
    assert!(archived.iter().all(|id| acknowledged.contains(id)));
}
