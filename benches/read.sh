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
. benches/common.sh
duckdb=$(duckdb_cli)
cargo build --release --quiet $lean
data=$(bench_data "$events")
uncompressed=$(uncompressed_bytes "$data")
compressed=$(du -sb "$data" | cut -f1)

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

read -r zt zm <<< "$(measure "find '$data' -type f -print0 | sort -z | xargs -0 zcat")"
read -r dt dm <<< "$(measure "'$duckdb' -c \"$sql\"")"
read -r gt gm <<< "$(measure "'$bin' --archive '$data' cat --public-only -q")"

cat <<MD
Archive: $events events, $((uncompressed / 1000000)) MB uncompressed, $((compressed / 1000000)) MB gzip, $(nproc) cores.

| run | wall (best of ${RUNS:-3}) | peak RSS | vs zcat floor | vs DuckDB |
|---|---|---|---|---|
| zcat floor | ${zt} s | $((zm / 1024)) MB | 1.00 | |
| DuckDB CLI count (baseline) | ${dt} s | $((dm / 1024)) MB | $(ratio "$dt" "$zt") | 1.00 |
| ghreplay cat --public-only | ${gt} s | $((gm / 1024)) MB | $(ratio "$gt" "$zt") | $(ratio "$gt" "$dt") |
MD
