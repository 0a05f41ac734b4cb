#!/usr/bin/env bash
# HTTP re-send benchmark (issue #9), in one run on this machine:
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

cargo build --release --quiet
cargo bench --quiet --bench http_bare --no-run 2>/dev/null
cargo bench --quiet --bench bare_receiver --no-run 2>/dev/null
data=$(bench_data "$events")
events_file=$(mktemp); addr_file=$(mktemp)
cargo bench --quiet --bench bare_receiver -- --ok > "$addr_file" 2>/dev/null &
receiver=$!
trap 'kill $receiver 2>/dev/null; pkill -f "bare_receiver.*--ok" 2>/dev/null; rm -f "$events_file" "$addr_file"' EXIT
for _ in $(seq 100); do [ -s "$addr_file" ] && break; sleep 0.1; done
url="http://$(head -1 "$addr_file")/webhook"
"$bin" --archive "$data" cat -q > "$events_file"
count=$(wc -l < "$events_file")

echo "| requests in flight | bare hyper client (req/s) | ghreplay republish (req/s) | ghreplay / bare |"
echo "|---|---|---|---|"
for window in 32 128; do
  read -r n secs <<< "$(cargo bench --quiet --bench http_bare -- "$url" "$window" "$events_file" 2>/dev/null)"
  base=$(awk "BEGIN{printf \"%.0f\", $n / $secs}")
  start=$(date +%s.%N)
  "$bin" --archive "$data" republish -q --include-private --to "$url" --confirm-window "$window"
  end=$(date +%s.%N)
  ours=$(awk "BEGIN{printf \"%.0f\", $count / ($end - $start)}")
  echo "| $window | $base | $ours | $(awk "BEGIN{printf \"%.2f\", $ours / $base}") |"
done
echo
echo "$count deliveries of $(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$events_file") / $count / 1024}") KiB on average, $(nproc) cores, receiver on the same machine."
