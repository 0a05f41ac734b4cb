//! Conformance: archives of both wild shapes built by `make_archive.py` from
//! GitHub's example payloads; every record comes out, with the privacy
//! verdicts of formats.md section 4 computed here independently.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{make_archive, ndjson, run, stderr};
use serde_json::Value;

/// formats.md section 4, restated here rather than imported, so that the
/// test checks the filter instead of agreeing with it.
fn oracle_public(event: &str, payload: &Value) -> bool {
    const ALLOWED: [&str; 17] = [
        "commit_comment",
        "create",
        "delete",
        "deployment",
        "deployment_status",
        "fork",
        "gollum",
        "issue_comment",
        "issues",
        "page_build",
        "pull_request_review_comment",
        "pull_request_review",
        "pull_request",
        "push",
        "release",
        "status",
        "watch",
    ];
    let repo = &payload["repository"];
    ALLOWED.contains(&event)
        && repo.is_object()
        && matches!(repo.get("private"), None | Some(Value::Bool(false)))
}

fn cat_all(archive: &Path) -> (Vec<Value>, std::process::Output) {
    let out = run(&[
        "--archive",
        archive.to_str().unwrap(),
        "cat",
        "--keep-duplicates",
    ]);
    (ndjson(&out), out)
}

const ARGS: [&str; 8] = [
    "--events",
    "600",
    "--hours",
    "4",
    "--seed",
    "7",
    "--records-per-object",
    "25",
];

#[test]
fn both_wild_shapes_come_out_whole_with_the_right_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let moz = dir.path().join("moz");
    let raw = dir.path().join("raw");
    let plain = dir.path().join("plain");
    make_archive(&moz, &ARGS);
    make_archive(&raw, &[&ARGS[..], &["--envelope", "raw"]].concat());
    make_archive(
        &plain,
        &[&ARGS[..], &["--compress", "none", "--delimiter", "newline"]].concat(),
    );

    let (m, out) = cat_all(&moz);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(m.len(), 600);
    for l in &m {
        let event = l["event"].as_str().unwrap();
        assert_eq!(
            l["public"],
            oracle_public(event, &l["payload"]),
            "{event} {}",
            l["delivery_id"]
        );
    }
    let public = m.iter().filter(|l| l["public"] == true).count();
    assert!(
        public > 100 && public < 550,
        "{public} public: the oracle must see both verdicts"
    );

    // Same seed, same deliveries in the same order: the raw archive differs
    // only in the envelope, so its inferred names must match Mozilla's.
    let (r, out) = cat_all(&raw);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(r.len(), 600);
    for (a, b) in m.iter().zip(&r) {
        assert_eq!(a["payload"], b["payload"]);
        assert_eq!(a["event"], b["event"], "inferred event of {}", b["object"]);
        assert_eq!(a["public"], b["public"]);
    }

    let (p, _) = cat_all(&plain);
    assert_eq!(p.len(), 600);
    assert!(m
        .iter()
        .zip(&p)
        .all(|(a, b)| a["payload"] == b["payload"] && a["delivery_id"] == b["delivery_id"]));
}

#[test]
fn corrupted_archive_loses_only_what_the_corruption_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let arch = dir.path().join("a");
    let manifest = dir.path().join("manifest.json");
    make_archive(
        &arch,
        &[
            &ARGS[..],
            &["--corrupt", "3", "--manifest", manifest.to_str().unwrap()],
        ]
        .concat(),
    );
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();

    let (lines, out) = cat_all(&arch);
    assert_eq!(
        out.status.code(),
        Some(3),
        "corruption must show in the exit status"
    );
    let mut per_object: HashMap<&str, u64> = HashMap::new();
    for l in &lines {
        *per_object.entry(l["object"].as_str().unwrap()).or_default() += 1;
    }
    let err = stderr(&out);
    for o in manifest["objects"].as_array().unwrap() {
        let key = o["key"].as_str().unwrap();
        let records = o["records"].as_u64().unwrap();
        let got = per_object.get(key).copied().unwrap_or(0);
        match o["corruption"].as_str() {
            None | Some("junk_line") => assert_eq!(got, records, "{key}"),
            // Every record before the cut, not merely fewer than all.
            Some("truncated") => assert_eq!(
                got,
                complete_records(&std::fs::read(arch.join(key)).unwrap()),
                "{key}"
            ),
            Some(other) => panic!("unknown corruption {other}"),
        }
        if o["corruption"].is_string() {
            assert!(err.contains(key), "{key} not reported:\n{err}");
        }
    }
    assert!(err.contains("3 corrupt objects"), "{err}");
}

/// The complete records in a cut object: what a streaming inflater gives
/// before the cut, read as back-to-back JSON documents up to the first that
/// does not parse.
fn complete_records(bytes: &[u8]) -> u64 {
    use std::io::Read as _;
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // Ends in an error at the cut; what came before it stays in `out`.
        let _ = flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out);
    } else {
        out = bytes.to_vec();
    }
    serde_json::Deserializer::from_slice(&out)
        .into_iter::<serde::de::IgnoredAny>()
        .take_while(Result::is_ok)
        .count() as u64
}
