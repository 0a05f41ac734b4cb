#!/usr/bin/env bash
# Load benchmark (issue: `load` speed), all in one run on this machine:
#   baseline:  DuckDB's CLI loading the same objects itself, CREATE TABLE AS
#              SELECT ... FROM read_json(...), into a new database file:
#              (a) every column auto-detected, as `SELECT *` does by default;
#              (b) the columns ghreplay's table has, the payload as JSON.
#   ghreplay:  ghreplay load into a new database file (release build), and
#              the same load again into the full file (idempotent: adds 0).
# Wall time is the best of RUNS (default 3); peak RSS from /usr/bin/time.
# Prints a Markdown table for BENCHMARKS.md.
#   bash benches/load.sh [EVENTS]     (default 100000: ~1.1 GB uncompressed)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
. benches/common.sh
duckdb=$(duckdb_cli)
cargo build --release --quiet
data=$(bench_data "$events")
uncompressed=$(uncompressed_bytes "$data")
work=$(mktemp -d "${BENCH_DATA:-$HOME/.cache/ghreplay/bench}/load.XXXX"); trap 'rm -rf "$work"' EXIT

files="read_json('$data/*/*/*/*/*', format='unstructured', compression='gzip', maximum_object_size=67108864"
auto="CREATE TABLE deliveries AS SELECT * FROM $files)"
typed="CREATE TABLE deliveries AS SELECT
  request_id AS delivery_id, event, body->>'\$.action' AS action,
  body->>'\$.repository.full_name' AS repository,
  split_part(body->>'\$.repository.full_name', '/', 1) AS owner,
  (body->>'\$.repository.private')::BOOLEAN AS private,
  body->>'\$.sender.login' AS sender, filename AS object_key, body AS payload
FROM $files, columns={event: 'VARCHAR', request_id: 'VARCHAR', body: 'JSON'}, filename=true)"

# The row counts must agree before the times mean anything (ghreplay drops
# repeated delivery ids; make_archive.py writes none).
"$bin" --archive "$data" load -q --db "$work/g.duckdb"
ours=$("$duckdb" -readonly -noheader -list "$work/g.duckdb" -c "SELECT count(*) FROM deliveries")
"$duckdb" "$work/d.duckdb" -c "$typed"
theirs=$("$duckdb" -readonly -noheader -list "$work/d.duckdb" -c "SELECT count(*) FROM deliveries")
echo "rows: duckdb $theirs, ghreplay $ours" >&2
[ "$ours" = "$theirs" ] || { echo "row counts differ" >&2; exit 1; }

reset="rm -f '$work/x.duckdb' '$work/x.duckdb.wal'"
read -r at am <<< "$(measure "'$duckdb' '$work/x.duckdb' -c \"$auto\"" "$reset")"
read -r tt tm <<< "$(measure "'$duckdb' '$work/x.duckdb' -c \"$typed\"" "$reset")"
read -r gt gm <<< "$(measure "'$bin' --archive '$data' load -q --db '$work/x.duckdb'" "$reset")"
read -r rt rm_ <<< "$(measure "'$bin' --archive '$data' load -q --db '$work/g.duckdb'")"
size=$(du -sb "$work/g.duckdb" | cut -f1)

cat <<MD
Archive: $events events, $((uncompressed / 1000000)) MB uncompressed, $(nproc) cores. ghreplay's database: $((size / 1000000)) MB.

| run | wall (best of ${RUNS:-3}) | peak RSS | vs DuckDB (a) | vs DuckDB (b) |
|---|---|---|---|---|
| DuckDB CLI (a): CREATE TABLE AS SELECT * FROM read_json(...) | ${at} s | $((am / 1024)) MB | 1.00 | |
| DuckDB CLI (b): the same columns as ghreplay's table | ${tt} s | $((tm / 1024)) MB | | 1.00 |
| ghreplay load, new database | ${gt} s | $((gm / 1024)) MB | $(ratio "$gt" "$at") | $(ratio "$gt" "$tt") |
| ghreplay load again (adds 0 rows) | ${rt} s | $((rm_ / 1024)) MB | | |
MD
