#!/usr/bin/env bash
# Export benchmark (issue 13), all in one run on this machine, on the read
# benchmark's archive (EVENTS Mozilla-shape records of real payloads, gzip,
# 24 hours, 500 records per object: 216 objects, 1.1 GB decompressed for
# 100,000):
#   baseline:  DuckDB's CLI doing the same job: COPY (SELECT ... FROM
#              read_json(...)) TO ... (FORMAT parquet, PARTITION_BY (dt, hour),
#              COMPRESSION zstd): the delivery id, event, action, repository,
#              owner, private, sender, object key and the payload as JSON text,
#              partitioned by the object's hour
#   ghreplay:  ghreplay export --to DIR --rebuild (release build, no DuckDB):
#              every column of `deliveries`, deduplicated per hour, one file
#              per partition, published whole; then again without --rebuild
#              (the incremental run: every hour up to date)
# Then the same question (events by name) over each export and over the
# raw archive, in DuckDB's shell. Wall time is the median of RUNS (default 3);
# peak RSS from /usr/bin/time. Prints a Markdown table for BENCHMARKS.md.
#   bash benches/export.sh [EVENTS]     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
. benches/common.sh
RUNS="${RUNS:-3}"
duckdb=$(duckdb_cli)
cargo build --release --quiet $lean
data=$(bench_data "$events" 500)
uncompressed=$(uncompressed_bytes "$data")
compressed=$(du -sb "$data" | cut -f1)
work=$(mktemp -d "${BENCH_WORK:-/tmp}/ghreplay-export.XXXXXX"); trap 'rm -rf "$work"' EXIT

hour_of="regexp_extract(filename, '(\d{4})/(\d{2})/(\d{2})/(\d{2})/', ['y', 'm', 'd', 'h'])"
copy="COPY (
  SELECT request_id AS delivery_id, event,
    body->>'\$.action' AS action,
    body->>'\$.repository.full_name' AS repository,
    split_part(body->>'\$.repository.full_name', '/', 1) AS owner,
    (body->'\$.repository.private')::BOOLEAN AS private,
    body->>'\$.sender.login' AS sender,
    filename AS object_key,
    body::VARCHAR AS payload,
    make_date(h.y::INT, h.m::INT, h.d::INT) AS dt, h.h::INT AS hour
  FROM (SELECT *, $hour_of AS h FROM read_json('$data/*/*/*/*/*', format = 'unstructured',
    compression = 'gzip', filename = true, maximum_object_size = 67108864,
    columns = {request_id: 'VARCHAR', event: 'VARCHAR', body: 'JSON'}))
) TO '$work/duck' (FORMAT parquet, PARTITION_BY (dt, hour), COMPRESSION zstd, OVERWRITE_OR_IGNORE)"

# The row counts must agree before the times mean anything.
"$bin" --archive "$data" export -q --to "$work/ours" --rebuild
"$duckdb" -c "$copy" > /dev/null
ours_rows=$("$duckdb" -noheader -list -c "SELECT count(*) FROM read_parquet('$work/ours/*/*/*.parquet')")
duck_rows=$("$duckdb" -noheader -list -c "SELECT count(*) FROM read_parquet('$work/duck/*/*/*.parquet')")
echo "rows: ghreplay $ours_rows, duckdb $duck_rows" >&2
[ "$ours_rows" = "$duck_rows" ] || { echo "row counts differ" >&2; exit 1; }

read -r dt dm <<< "$(measure "'$duckdb' -c \"$copy\"" "rm -rf '$work/duck'")"
read -r gt gm <<< "$(measure "'$bin' --archive '$data' export -q --rebuild --to '$work/ours'")"
read -r it im <<< "$(measure "'$bin' --archive '$data' export -q --to '$work/ours'")"
ours_size=$(du -sb --exclude=_ghreplay "$work/ours" | cut -f1)
duck_size=$(du -sb "$work/duck" | cut -f1)

q_ours="SELECT event, count(*) FROM read_parquet('$work/ours/*/*/*.parquet') GROUP BY event"
q_raw="SELECT event, count(*) FROM read_json('$data/*/*/*/*/*', format = 'unstructured',
  compression = 'gzip', maximum_object_size = 67108864, columns = {event: 'VARCHAR'}) GROUP BY event"
read -r qo _ <<< "$(measure "'$duckdb' -c \"$q_ours\"")"
read -r qr _ <<< "$(measure "'$duckdb' -c \"$q_raw\"")"

mb() { echo $(( $1 / 1000000 )); }
cat <<MD
Archive: $events events in $(find "$data" -type f | wc -l) objects, $(mb "$uncompressed") MB uncompressed, $(mb "$compressed") MB gzip, $(nproc) cores.

| run | wall (best of $RUNS) | peak RSS | vs DuckDB | output |
|---|---|---|---|---|
| DuckDB CLI, COPY ... TO (FORMAT parquet, PARTITION_BY (dt, hour), zstd) (baseline) | ${dt} s | $((dm / 1024)) MB | 1.00 | $(mb "$duck_size") MB |
| ghreplay export --rebuild | ${gt} s | $((gm / 1024)) MB | $(ratio "$gt" "$dt") | $(mb "$ours_size") MB |
| ghreplay export, again (every hour up to date) | ${it} s | $((im / 1024)) MB | $(ratio "$it" "$dt") | |

| DuckDB shell: events by name | wall (best of $RUNS) |
|---|---|
| over the raw archive (gzip JSON) | ${qr} s |
| over ghreplay's export (Parquet) | ${qo} s ($(ratio "$qo" "$qr") of the raw) |
MD
