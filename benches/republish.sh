#!/usr/bin/env bash
# Republish benchmark (issue: republish speed), in one run on this machine:
#   baseline:  benches/amqp_bare.rs, a minimal lapin publisher with confirms,
#              publishing the same events from memory (the broker's limit)
#   ghreplay:  ghreplay republish --include-private from the gzip archive
# into a durable queue bound with '#', same confirm window, RabbitMQ on
# 127.0.0.1 sharing the cores. Prints a Markdown table for BENCHMARKS.md.
#   bash benches/republish.sh [EVENTS]    (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
. benches/common.sh
url="amqp://guest:guest@127.0.0.1:5672/%2f"
exchange="exchange/ghreplay-bench/v1"
queue="queue/ghreplay-bench/all"

cargo build --release --quiet $lean
cargo bench --quiet $lean --bench amqp_bare --no-run 2>/dev/null
bare() { cargo bench --quiet $lean --bench amqp_bare -- "$@" 2>/dev/null; }
data=$(bench_data "$events")
events_file=$(mktemp); trap 'rm -f "$events_file"' EXIT
"$bin" --archive "$data" cat -q > "$events_file"
count=$(wc -l < "$events_file")
bare setup "$url" "$exchange" "$queue"

echo "| confirm window | bare lapin (msg/s) | ghreplay republish (msg/s) | ghreplay / bare |"
echo "|---|---|---|---|"
for window in 1000 100; do
  bare purge "$url" "$queue"
  read -r n secs <<< "$(bare publish "$url" "$exchange" "$window" "$events_file")"
  base=$(awk "BEGIN{printf \"%.0f\", $n / $secs}")
  bare purge "$url" "$queue"
  start=$(date +%s.%N)
  "$bin" --archive "$data" republish -q --include-private --to "$url" --exchange "$exchange" \
    --confirm-window "$window"
  end=$(date +%s.%N)
  ours=$(awk "BEGIN{printf \"%.0f\", $count / ($end - $start)}")
  echo "| $window | $base | $ours | $(awk "BEGIN{printf \"%.2f\", $ours / $base}") |"
done
bare purge "$url" "$queue"
echo
echo "$count events of $(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$events_file") / $count / 1024}") KiB on average (payload as archived), $(nproc) cores."
