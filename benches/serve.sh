#!/usr/bin/env bash
# Receiver benchmark (issue: serve speed), in one run on this machine:
#   baseline:  benches/bare_receiver.rs, axum + HMAC verification only
#   ghreplay:  ghreplay serve, archiving every delivery durably (fsync,
#              group commit) before answering
# wrk on loopback, 32 connections, signed ~10 KB JSON deliveries, each with
# its own delivery id (so none is a duplicate). Prints a Markdown table.
#   bash benches/serve.sh [SECONDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
. benches/common.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet $lean
# Run the baseline's own binary, not `cargo bench` around it, so that
# killing it really stops the server.
bare_bin=$(bench_bin bare_receiver)
[ -x "$bare_bin" ] || { echo "serve.sh: cannot find the bare_receiver bench binary" >&2; exit 2; }
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
secret="bench-secret"

# A 10 KB payload (a GitHub issues example, compact) and its signature.
body_file=../shared/fixtures/payloads/issues/unlabeled.with-organization.payload.json
wrk_post_script "$body_file" "$secret" > "$work/post.lua"

run_wrk() { wrk -t2 -c32 -d"${secs}s" --latency -s "$work/post.lua" "http://$1/webhook"; }
rate() { awk '/Requests\/sec/ {printf "%.0f", $2}'; }
p99() { awk '/ 99%/ {print $2}'; }
non2xx() { awk '/Non-2xx/ {print $4}'; }

"$bare_bin" "$secret" > "$work/bare.addr" &
bare_pid=$!
for _ in $(seq 50); do [ -s "$work/bare.addr" ] && break; sleep 0.1; done
bare_out=$(run_wrk "$(cat "$work/bare.addr")")
kill "$bare_pid"

echo "$secret" > "$work/secret"
start_serve "$work/archive"
ours_out=$(run_wrk "$addr")
archived=$(curl -s "http://$addr/metrics" | awk '/^ghreplay_archived_total/ {print $2}')
flushes=$(curl -s "http://$addr/metrics" | awk '/^ghreplay_archive_flush_seconds_count/ {print $2}')
stop_serve

echo "| server | requests/s | p99 latency | non-2xx |"
echo "|---|---|---|---|"
echo "| bare axum + HMAC (baseline) | $(echo "$bare_out" | rate) | $(echo "$bare_out" | p99) | $(echo "$bare_out" | non2xx) |"
echo "| ghreplay serve, durable | $(echo "$ours_out" | rate) | $(echo "$ours_out" | p99) | $(echo "$ours_out" | non2xx) |"
echo
echo "ghreplay archived $archived deliveries in $flushes fsync'd groups ($(awk "BEGIN{printf \"%.1f\", $archived / $flushes}") per group); 32 connections, ${secs} s each, $(nproc) cores, wrk sharing them."
