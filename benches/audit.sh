#!/usr/bin/env bash
# `ghreplay audit` of 3 days of an organization hook with 300,000 deliveries
# against an archive of the same (Mozilla shape, gzip, 500 records an
# object), its GitHub log served by the test suite's stand-in
# (benches/github_standin.rs). Reports the audit's wall time and peak
# memory, its API requests against the least possible (one list request per
# 100 deliveries), and, as the baseline of its archive half, `cat` over the
# same archive in the same run.
#   bash benches/audit.sh [EVENTS]    (default 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

events="${1:-300000}"
data="${BENCH_DATA:-$HOME/.cache/ghreplay/bench}/audit-$events"
if [ ! -d "$data" ]; then
  echo "building a $events-event archive in $data (3 days from 2026-11-01)" >&2
  python3 ../shared/tools/make_archive.py --payloads ../shared/fixtures/payloads --out "$data" \
    --events "$events" --hours 72 --start 2026-11-01T00 --records-per-object 500 \
    --envelope mozilla --compress gzip --seed 3 --manifest "$data.manifest.json" >&2
fi
cargo build --release --quiet $lean
standin=$(bench_bin github_standin)
work=$(mktemp -d)
trap 'kill "${standin_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" --archive "$data" --quiet cat | "$standin" > "$work/standin.log" &
standin_pid=$!
deadline=$((SECONDS + 600))
until grep -q "listening on" "$work/standin.log" 2>/dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "the stand-in did not load" >&2; exit 1; }
  sleep 0.2
done
read -r _ _ port hook _ < "$work/standin.log"
echo "ghp_standin0123456789" > "$work/token"

audit="'$bin' --archive '$data' --quiet audit --hook $hook --github-api-url http://127.0.0.1:$port \
  --github-token-file '$work/token' --since 2026-11-01T00 --until 2026-11-04T00 --settle 0s --json"
bash -c "$audit" > "$work/audit.json"
read -r ok requests <<< "$(python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(d['counts']['ok'], d['github_requests'])" "$work/audit.json")"
least=$(( (events + 99) / 100 ))

read -r t_audit m_audit <<< "$(measure "$audit")"
read -r t_cat m_cat <<< "$(measure "'$bin' --archive '$data' --quiet cat")"

echo
echo "| what ($events deliveries, 3 days) | wall (best of ${RUNS:-3}) | peak RSS |"
echo "|---|---|---|"
echo "| \`audit\` (GitHub's log + the archive) | ${t_audit} s | $((m_audit / 1024)) MiB |"
echo "| \`cat\` of the same archive (the read half alone) | ${t_cat} s | $((m_cat / 1024)) MiB |"
echo
echo "verdicts: $ok ok of $events; API requests: $requests, least possible $least ($(awk "BEGIN{printf \"%.3f\", $requests/$least}")x)"
