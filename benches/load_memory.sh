#!/usr/bin/env bash
# load's memory against the size of the database (issue 13): what ghreplay
# holds must stay flat however many rows the database already has.
#   baseline:  ghreplay load of archive B (EVENTS events) into a new database
#   measured:  ghreplay load of the same archive B into a database that
#              already holds archive A (EVENTS other events: another seed,
#              the 24 hours before)
# Both with the same --memory-limit (DuckDB's share; default 1GB). Peak RSS
# from /usr/bin/time, best wall time of RUNS (default 1: each run is long).
# The ratio of the two peaks is the figure: 1.00 is flat.
#   bash benches/load_memory.sh [EVENTS]     (default 1000000: ~11 GB of JSON each)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-1000000}"
. benches/common.sh
RUNS="${RUNS:-1}"
limit="${MEMORY_LIMIT:-1GB}"
cargo build --release --quiet
root="${BENCH_DATA:-$HOME/.cache/ghreplay/bench}"
a=$(bench_data "$events" 500 7 2026-02-01T00 "load-memory-$events-a")
b=$(bench_data "$events" 500 8 2026-02-02T00 "load-memory-$events-b")
work=$(mktemp -d "$root/load-memory.XXXX"); trap 'rm -rf "$work"' EXIT

"$bin" --archive "$a" load -q --memory-limit "$limit" --db "$work/full.duckdb"
cp "$work/full.duckdb" "$work/full.base"
held=$("$venv/bin/duckdb" -readonly -noheader -list "$work/full.duckdb" -c "SELECT count(*) FROM deliveries")

reset_empty="rm -f '$work/empty.duckdb' '$work/empty.duckdb.wal'"
reset_full="cp '$work/full.base' '$work/full.duckdb'; rm -f '$work/full.duckdb.wal'"
read -r et em <<< "$(measure "'$bin' --archive '$b' load -q --memory-limit $limit --db '$work/empty.duckdb'" "$reset_empty")"
read -r ft fm <<< "$(measure "'$bin' --archive '$b' load -q --memory-limit $limit --db '$work/full.duckdb'" "$reset_full")"
added=$("$venv/bin/duckdb" -readonly -noheader -list "$work/full.duckdb" -c "SELECT count(*) FROM deliveries")

cat <<MD
Two archives of $events events each (A, then B: other ids), $(nproc) cores, --memory-limit $limit.

| run | wall | peak RSS | peak vs new database |
|---|---|---|---|
| ghreplay load B into a new database (baseline) | ${et} s | $((em / 1024)) MB | 1.00 |
| ghreplay load B into a database holding A ($held rows; $added after) | ${ft} s | $((fm / 1024)) MB | $(ratio "$fm" "$em") |
MD
