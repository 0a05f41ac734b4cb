#!/usr/bin/env bash
# One fuzzing campaign on the stable toolchain:
#   bash fuzz/run.sh TARGET [SECONDS]     (default 1200: 20 minutes)
# Targets: decode_object own_record receiver time_and_span target_url.
# The working corpus is fuzz/corpus/TARGET (seeds and the bundled fixtures
# are added to it first); a crash lands in fuzz/artifacts/TARGET: copy it to
# fuzz/regressions/TARGET/ (the tests replay that folder) and fix it. After
# a campaign, `cargo fuzz cmin TARGET` keeps the corpus small before it is
# committed. cargo-fuzz is installed from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
seconds="${2:-1200}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# libFuzzer's instrumentation flags are nightly-only; RUSTC_BOOTSTRAP lets
# the stable compiler take them. No sanitizer: ASan needs a nightly std.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/ghreplay/fuzz-target}"
mkdir -p "corpus/$target"
cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
if [ "$target" = decode_object ]; then
  find ../fixtures/archive -type f -exec cp -n {} "corpus/$target/" \;
fi
cargo fuzz run --sanitizer none --release "$target" "corpus/$target" -- \
  -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=4096 -print_final_stats=1
