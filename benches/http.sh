#!/usr/bin/env bash
# HTTP re-send benchmark (issue 9), in one run on this machine:
#   receiver:  benches/bare_receiver.rs --ok, answering 200 to every POST
#   baseline:  benches/http_bare.rs, a pooled hyper client posting the same
#              payloads from memory, the same number of requests in flight
#   ghreplay:  ghreplay republish --include-private --to http://… from the
#              gzip archive, --confirm-window = requests in flight
# Prints a Markdown table for BENCHMARKS.md.
#   bash benches/http.sh [EVENTS]    (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
. benches/common.sh

cargo build --release --quiet $lean
# The bench tools' own binaries (common.sh's bench_bin), not `cargo bench`
# around them, so that killing the receiver really stops it.
receiver_bin=$(bench_bin bare_receiver)
client_bin=$(bench_bin http_bare)
[ -x "$receiver_bin" ] && [ -x "$client_bin" ] || { echo "http.sh: cannot find the bench binaries" >&2; exit 2; }
data=$(bench_data "$events")
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$receiver_bin" --ok > "$work/addr" &
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
url="http://$(head -1 "$work/addr")/webhook"
"$bin" --archive "$data" cat -q > "$work/events.ndjson"
count=$(wc -l < "$work/events.ndjson")

echo "| requests in flight | bare hyper client (req/s) | ghreplay republish (req/s) | ghreplay / bare |"
echo "|---|---|---|---|"
for window in 32 128; do
  read -r n secs <<< "$("$client_bin" "$url" "$window" "$work/events.ndjson")"
  base=$(awk "BEGIN{printf \"%.0f\", $n / $secs}")
  start=$(date +%s.%N)
  "$bin" --archive "$data" republish -q --include-private --to "$url" --confirm-window "$window"
  end=$(date +%s.%N)
  ours=$(awk "BEGIN{printf \"%.0f\", $count / ($end - $start)}")
  echo "| $window | $base | $ours | $(awk "BEGIN{printf \"%.2f\", $ours / $base}") |"
done
echo
echo "$count deliveries of $(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$work/events.ndjson") / $count / 1024}") KiB on average (as cat prints them), $(nproc) cores, receiver on the same machine."
