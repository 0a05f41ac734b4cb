//! GitHub's delivery log for benches/audit.sh: the test suite's stand-in
//! (`tests/it/common/github.rs`, built from GitHub's documentation), with
//! one organization hook whose log holds every delivery of an archive as an
//! acknowledged attempt, made in the hour of the object that holds it, in
//! the archive's order.
//!
//! Usage: `ghreplay --archive A cat | github_standin`
//! Prints `listening on PORT HOOK` once loaded, then serves until killed.
#![allow(clippy::unwrap_used)] // a bench tool: a panic is its error report

#[path = "../tests/it/common/github.rs"]
#[allow(dead_code)] // the tests' sending half is not used here
mod github;

use std::io::BufRead as _;
use std::time::{Duration, SystemTime};

#[derive(serde::Deserialize)]
struct Line {
    /// None for cztack's raw shape, which keeps no id: not in the log.
    delivery_id: Option<String>,
    event: String,
    action: Option<String>,
    object: String,
}

/// The hour in a Firehose key (`…YYYY/MM/DD/HH/…`).
fn hour(key: &str) -> SystemTime {
    let parts: Vec<&str> = key.split('/').collect();
    for w in parts.windows(4) {
        if let (4, Ok(y), Ok(m), Ok(d), Ok(h)) = (
            w[0].len(),
            w[0].parse::<i32>(),
            w[1].parse::<u32>(),
            w[2].parse::<u32>(),
            w[3].parse::<u32>(),
        ) {
            if let Some(t) =
                chrono::NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(h, 0, 0))
            {
                return t.and_utc().into();
            }
        }
    }
    panic!("no hour in {key}");
}

fn main() {
    let gh = github::GitHub::start(Vec::new());
    let hook = gh.add_hook("org:bench", "http://127.0.0.1:9/webhook", "secret");
    // One audit of 300,000 deliveries takes ~3,000 of GitHub's 5,000
    // requests an hour; the benchmark runs it several times in a row, and
    // waiting out the hour is not what it measures.
    gh.set_quota(1_000_000);
    let mut n: u64 = 0;
    let mut last = SystemTime::UNIX_EPOCH;
    for line in std::io::stdin().lock().lines() {
        let l: Line = serde_json::from_str(&line.unwrap()).unwrap();
        let Some(guid) = l.delivery_id else { continue };
        // GitHub's log is in time order as in id order: a millisecond past
        // the previous attempt, and no earlier than the object's hour.
        let at = hour(&l.object).max(last + Duration::from_millis(1));
        last = at;
        gh.log_attempt(&hook, &guid, &l.event, l.action.as_deref(), at, 200);
        n += 1;
    }
    println!("listening on {} {hook} ({n} deliveries)", gh.port);
    loop {
        std::thread::park();
    }
}
