#!/usr/bin/env bash
# Read-path benchmark from S3 (issue 14), in one run on this machine: the
# read.sh archive (500 records per object) uploaded to moto, then
# `cat --public-only > /dev/null` read
#   baseline:  from moto directly (moto's own cost on these cores)
#   latency:   through benches/latency_proxy.rs, which holds each request
#              LATENCY_MS (default 50) before passing it to moto
# and, for scale, from the local directory. Medians of RUNS (default 3).
# Each pair is read twice: the whole archive (one recursive listing), and
# the same 24 hours named by --since/--until (the date tree walked level by
# level, the case listing ahead of reading is for). Then `serve`'s start-up
# over the same S3 archive (its index of delivery ids rebuilt from the whole
# archive, --dedupe-window 3650d: time to its "listening on" line), with
# and without the latency. With LOAD=1 (a build with DuckDB, most of an hour
# from cold), also `load --public-only` into a new database each run: the
# read half of `load` from S3.
#   bash benches/read_s3.sh [EVENTS] [LATENCY_MS] [FETCH_JOBS...]
# Each FETCH_JOBS value (default: ghreplay's default) is one pair of rows.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
latency="${2:-50}"
shift $(( $# > 2 ? 2 : $# ))
jobs_list=("$@")
[ ${#jobs_list[@]} -gt 0 ] || jobs_list=(default)
. benches/common.sh
[ -x "$venv/bin/moto_server" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet 'moto[server]'; }
# The proxy first: building a bench target rebuilds the package's binary
# too (lean), which the build below then replaces with the one measured.
proxy_bin=$(bench_bin latency_proxy)
features=$lean; [ "${LOAD:-0}" = 1 ] && features=""
cargo build --release --quiet $features
[ -x "$proxy_bin" ] || { echo "read_s3.sh: cannot find the latency_proxy bench binary" >&2; exit 2; }
data=$(bench_data "$events" 500)
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE
"$venv/bin/python" - "$data" "http://127.0.0.1:$port" <<'PY'
import os, sys, boto3
root, endpoint = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket="bench")
for d, _, files in os.walk(root):
    for f in files:
        path = os.path.join(d, f)
        s3.upload_file(path, "bench", os.path.relpath(path, root))
PY
"$proxy_bin" "127.0.0.1:$port" "$latency" > "$work/proxy.addr" &
for _ in $(seq 100); do [ -s "$work/proxy.addr" ] && break; sleep 0.1; done
proxy=$(head -1 "$work/proxy.addr")

# The counts must agree before the times mean anything.
local_count=$("$bin" --archive "$data" cat --public-only -q | wc -l)
s3_count=$("$bin" --archive s3://bench --endpoint-url "http://$proxy" cat --public-only -q | wc -l)
[ "$local_count" = "$s3_count" ] || { echo "counts differ: local $local_count, s3 $s3_count" >&2; exit 1; }

read -r lt lm <<< "$(RUNS=${RUNS:-3} measure_median "'$bin' --archive '$data' cat --public-only -q")"
echo "Archive: $events events, $(find "$data" -type f | wc -l) objects, $(( $(du -sb "$data" | cut -f1) / 1000000 )) MB gzip; latency added: $latency ms per request; $(nproc) cores."
echo
echo "| run | fetch jobs | wall (median of ${RUNS:-3}) | peak RSS | vs moto, no latency |"
echo "|---|---|---|---|---|"
echo "| local directory (for scale) | | ${lt} s | $((lm / 1024)) MB | |"
range="--since 2026-01-01T00 --until 2026-01-02T00" # the archive's 24 hours
for jobs in "${jobs_list[@]}"; do
  flag=""; [ "$jobs" = default ] || flag="--fetch-jobs $jobs"
  for read in whole range; do
    sel=""; [ "$read" = range ] && sel="$range"
    read -r mt mm <<< "$(RUNS=${RUNS:-3} measure_median "'$bin' --archive s3://bench --endpoint-url 'http://127.0.0.1:$port' cat --public-only -q $flag $sel")"
    read -r pt pm <<< "$(RUNS=${RUNS:-3} measure_median "'$bin' --archive s3://bench --endpoint-url 'http://$proxy' cat --public-only -q $flag $sel")"
    echo "| moto (baseline), $read | $jobs | ${mt} s | $((mm / 1024)) MB | 1.00 |"
    echo "| moto + ${latency} ms per request, $read | $jobs | ${pt} s | $((pm / 1024)) MB | $(ratio "$pt" "$mt") |"
  done
done

echo bench-secret > "$work/secret"
serve_start() {
  local started=$EPOCHREALTIME
  rm -rf "$work/spool"
  start_serve s3://bench --endpoint-url "$1" --spool "$work/spool" --dedupe-window 3650d
  awk "BEGIN{printf \"%.2f\n\", $EPOCHREALTIME - $started}"
  stop_serve
}
median_start() { for _ in $(seq "${RUNS:-3}"); do serve_start "$1"; done | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms=$(median_start "http://127.0.0.1:$port")
ps=$(median_start "http://$proxy")
echo "| serve start-up, moto (baseline) | auto | ${ms} s | | 1.00 |"
echo "| serve start-up, moto + ${latency} ms per request | auto | ${ps} s | | $(ratio "$ps" "$ms") |"

if [ "${LOAD:-0}" = 1 ]; then
  load_cmd() { echo "rm -f '$work/load.duckdb'* && '$bin' --archive s3://bench --endpoint-url '$1' load --db '$work/load.duckdb' --public-only -q"; }
  read -r lmt lmm <<< "$(RUNS=${RUNS:-3} measure_median "$(load_cmd "http://127.0.0.1:$port")")"
  read -r lpt lpm <<< "$(RUNS=${RUNS:-3} measure_median "$(load_cmd "http://$proxy")")"
  echo "| load, moto (baseline) | auto | ${lmt} s | $((lmm / 1024)) MB | 1.00 |"
  echo "| load, moto + ${latency} ms per request | auto | ${lpt} s | $((lpm / 1024)) MB | $(ratio "$lpt" "$lmt") |"
fi
