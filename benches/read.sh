#!/usr/bin/env bash
# Read-path benchmark (issues 2 and 14), all in one run on this machine, on
# the issue's archive: EVENTS Mozilla-shape records of real payloads, gzip,
# 24 hours, 500 records per object (100,000: 216 objects, 61 MB, 1.1 GB
# decompressed).
#   floors:    benches/gunzip_floor.rs: read every object whole and gunzip it
#              into one buffer, on all cores, nothing else; with libdeflate
#              (what ghreplay's fast path uses) and with zlib-rs (its
#              streaming fallback)
#   baseline:  DuckDB's CLI counting the public events of the same objects
#   ghreplay:  ghreplay cat --public-only > /dev/null (release build), which
#              also checks every record as JSON and writes each kept payload
# Wall time is the median of RUNS (default 5); peak RSS from /usr/bin/time.
# Prints a Markdown table for BENCHMARKS.md.
#   bash benches/read.sh [EVENTS]     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
. benches/common.sh
duckdb=$(duckdb_cli)
cargo build --release --quiet $lean
floor=$(bench_bin gunzip_floor)
[ -x "$floor" ] || { echo "read.sh: cannot find the gunzip_floor bench binary" >&2; exit 2; }
data=$(bench_data "$events" 500)
uncompressed=$(uncompressed_bytes "$data")
compressed=$(du -sb "$data" | cut -f1)
objects=$(find "$data" -type f | wc -l)

public='commit_comment create delete deployment deployment_status fork gollum issue_comment issues page_build pull_request_review_comment pull_request_review pull_request push release status watch'
in_list=$(printf "'%s'," $public); in_list=${in_list%,}
sql="SELECT count(*) FROM read_json('$data/*/*/*/*/*', format='unstructured', compression='gzip',
  columns={event: 'VARCHAR', body: 'STRUCT(repository STRUCT(private BOOLEAN))'},
  maximum_object_size=67108864)
  WHERE event IN ($in_list) AND body.repository IS NOT NULL AND body.repository.private IS NOT TRUE"

# The counts must agree before the times mean anything.
duck_count=$("$duckdb" -noheader -list -c "$sql")
ours_count=$("$bin" --archive "$data" cat --public-only -q | wc -l)
echo "public events: duckdb $duck_count, ghreplay $ours_count" >&2
[ "$duck_count" = "$ours_count" ] || { echo "counts differ" >&2; exit 1; }

read -r lt lm <<< "$(measure_median "'$floor' ld '$data'")"
read -r zt zm <<< "$(measure_median "'$floor' zrs '$data'")"
read -r dt dm <<< "$(measure_median "'$duckdb' -c \"$sql\"")"
read -r gt gm <<< "$(measure_median "'$bin' --archive '$data' cat --public-only -q")"

# serve's start-up reads the archive's last dedupe window to rebuild its index
# of delivery ids: here the whole archive (a window of ten years), in a copy,
# since serve writes beside what it reads. Time to its "listening on" line.
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$data" "$work/archive"
echo bench-secret > "$work/secret"
serve_start() {
  local started=$EPOCHREALTIME
  start_serve "$work/archive" --dedupe-window 3650d
  awk "BEGIN{printf \"%.2f\n\", $EPOCHREALTIME - $started}"
  stop_serve
}
st=$(for _ in $(seq "${RUNS:-5}"); do serve_start; done | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

cat <<MD
Archive: $events events in $objects objects, $((uncompressed / 1000000)) MB uncompressed, $((compressed / 1000000)) MB gzip, $(nproc) cores.

| run | wall (median of ${RUNS:-5}) | peak RSS | vs libdeflate floor | vs DuckDB |
|---|---|---|---|---|
| gunzip floor, libdeflate, all cores | ${lt} s | $((lm / 1024)) MB | 1.00 | |
| gunzip floor, zlib-rs, all cores | ${zt} s | $((zm / 1024)) MB | $(ratio "$zt" "$lt") | |
| DuckDB CLI count (baseline) | ${dt} s | $((dm / 1024)) MB | $(ratio "$dt" "$lt") | 1.00 |
| ghreplay cat --public-only | ${gt} s | $((gm / 1024)) MB | $(ratio "$gt" "$lt") | $(ratio "$gt" "$dt") |
| ghreplay serve, start-up over the whole archive | ${st} s | | $(ratio "$st" "$lt") | |
MD
