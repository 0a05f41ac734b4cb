//! Every fuzz target's seeds, corpus and past crashes, replayed through the
//! same harnesses the fuzzer runs (`ghreplay::fuzzing`), on every test run:
//! a fixed crash stays fixed without building the fuzzer.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_and_crash_replays_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, harness) in ghreplay::fuzzing::TARGETS {
        let mut inputs = Vec::new();
        for folder in ["seeds", "corpus", "regressions"] {
            inputs.extend(files(&root.join("fuzz").join(folder).join(name)));
        }
        if name == "decode_object" {
            inputs.extend(crate::common::walk(&root.join("fixtures/archive")));
        }
        assert!(!inputs.is_empty(), "{name}: no seeds");
        for input in &inputs {
            // A running campaign may replace corpus files under our feet.
            let Ok(data) = std::fs::read(input) else {
                assert!(!input.exists(), "cannot read {}", input.display());
                continue;
            };
            let replay = std::panic::catch_unwind(|| harness(&data));
            assert!(replay.is_ok(), "{name} fails on {}", input.display());
        }
        eprintln!("{name}: {} inputs replayed", inputs.len());
    }
}
