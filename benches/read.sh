#!/usr/bin/env bash
# Read-path benchmark (issue: `cat` speed), all in one run on this machine:
#   floor:     zcat of every object to /dev/null (one core, decompression only)
#   baseline:  DuckDB's CLI counting the public events of the same objects
#   ghreplay:  ghreplay cat --public-only > /dev/null (release build)
# Wall time is the best of RUNS; peak RSS from /usr/bin/time. Prints a
# Markdown table for BENCHMARKS.md.
#   bash benches/read.sh [EVENTS]     (default 100000: ~1.1 GB uncompressed)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
runs="${RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghreplay/target}"
venv="${GHREPLAY_VENV:-$HOME/.cache/ghreplay/venv}"
data="${BENCH_DATA:-$HOME/.cache/ghreplay/bench}/read-$events"

[ -x "$venv/bin/duckdb" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet duckdb-cli; }
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/ghreplay"

if [ ! -d "$data" ]; then
  echo "building a $events-event archive in $data" >&2
  python3 ../shared/tools/make_archive.py --payloads ../shared/fixtures/payloads --out "$data" \
    --events "$events" --hours 24 --records-per-object 100 --seed 1 --manifest "$data.manifest.json" >&2
fi
uncompressed=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['totals']['uncompressed_bytes'])" "$data.manifest.json")
compressed=$(du -sb "$data" | cut -f1)

# Best wall time and peak RSS (KB) over $runs runs of a shell command.
measure() {
  local best="" rss=0 out
  for _ in $(seq "$runs"); do
    out=$( { /usr/bin/time -f '%e %M' bash -c "$1" > /dev/null; } 2>&1 | tail -1)
    read -r t m <<< "$out"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

public='commit_comment create delete deployment deployment_status fork gollum issue_comment issues page_build pull_request_review_comment pull_request_review pull_request push release status watch'
in_list=$(printf "'%s'," $public); in_list=${in_list%,}
sql="SELECT count(*) FROM read_json('$data/*/*/*/*/*', format='unstructured', compression='gzip',
  columns={event: 'VARCHAR', body: 'STRUCT(repository STRUCT(private BOOLEAN))'},
  maximum_object_size=67108864)
  WHERE event IN ($in_list) AND body.repository IS NOT NULL AND body.repository.private IS NOT TRUE"

# The counts must agree before the times mean anything.
duck_count=$("$venv/bin/duckdb" -noheader -list -c "$sql")
ours_count=$("$bin" --archive "$data" cat --public-only -q | wc -l)
echo "public events: duckdb $duck_count, ghreplay $ours_count" >&2
[ "$duck_count" = "$ours_count" ] || { echo "counts differ" >&2; exit 1; }

read -r zt zm <<< "$(measure "find '$data' -type f -print0 | sort -z | xargs -0 zcat")"
read -r dt dm <<< "$(measure "'$venv/bin/duckdb' -c \"$sql\"")"
read -r gt gm <<< "$(measure "'$bin' --archive '$data' cat --public-only -q")"

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
cat <<MD
Archive: $events events, $((uncompressed / 1000000)) MB uncompressed, $((compressed / 1000000)) MB gzip, $(nproc) cores.

| run | wall (best of $runs) | peak RSS | vs zcat floor | vs DuckDB |
|---|---|---|---|---|
| zcat floor | ${zt} s | $((zm / 1024)) MB | 1.00 | |
| DuckDB CLI count (baseline) | ${dt} s | $((dm / 1024)) MB | $(ratio "$dt" "$zt") | 1.00 |
| ghreplay cat --public-only | ${gt} s | $((gm / 1024)) MB | $(ratio "$gt" "$zt") | $(ratio "$gt" "$dt") |
MD
