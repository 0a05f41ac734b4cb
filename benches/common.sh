# Sourced by the benchmark scripts: the shared archive and the timing helper.
# Expects to run from the repository root with ../shared beside it.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghreplay/target}"
venv="${GHREPLAY_VENV:-$HOME/.cache/ghreplay/venv}"
# GHREPLAY_BIN: another build to measure (an older commit's, side by side).
bin="${GHREPLAY_BIN:-$CARGO_TARGET_DIR/release/ghreplay}"
# The benchmarks that do not run `load` or `query` build without DuckDB
# (`--no-default-features`): minutes instead of most of an hour from cold.
lean="--no-default-features"

# The benchmark archive of $1 events (Mozilla shape, gzip, 24 hours, $2
# records per object (default 100), seed $3 (default 1), from hour $4
# (default make_archive's): ~1.1 GB uncompressed for 100,000), built once
# and kept under $BENCH_DATA as $5 (default read-$1, -k$2 past 100 records);
# prints its directory.
bench_data() {
  local per="${2:-100}" seed="${3:-1}" start="${4:-}" name="${5:-read-$1}"
  [ -n "${5:-}" ] || [ "$per" = 100 ] || name="$name-k$per"
  local data="${BENCH_DATA:-$HOME/.cache/ghreplay/bench}/$name"
  if [ ! -d "$data" ]; then
    echo "building a $1-event archive in $data" >&2
    python3 ../shared/tools/make_archive.py --payloads ../shared/fixtures/payloads --out "$data" \
      --events "$1" --hours 24 ${start:+--start "$start"} --records-per-object "$per" --envelope mozilla \
      --compress gzip --seed "$seed" --manifest "$data.manifest.json" >&2
  fi
  echo "$data"
}

# A bench tool's own binary (benches/$1.rs), built without DuckDB; prints its path.
bench_bin() {
  cargo bench $lean --bench "$1" --no-run 2>&1 \
    | sed -n "s/.*Executable .*(\(.*$1-[^)]*\)).*/\1/p" | tail -1
}

# The uncompressed bytes of the benchmark archive in directory $1.
uncompressed_bytes() {
  python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['totals']['uncompressed_bytes'])" "$1.manifest.json"
}

# DuckDB's shell from PyPI, the baseline of the read and load benchmarks.
duckdb_cli() {
  [ -x "$venv/bin/duckdb" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet 'duckdb-cli>=1.5,<2'; }
  echo "$venv/bin/duckdb"
}

# Best wall time (s) and peak RSS (KB) over $RUNS (default 3) runs of a shell
# command; $2, if given, runs before each (untimed), to reset state.
measure() {
  local best="" rss=0 out
  for _ in $(seq "${RUNS:-3}"); do
    [ -n "${2:-}" ] && bash -c "$2"
    out=$( { /usr/bin/time -f '%e %M' bash -c "$1" > /dev/null; } 2>&1 | tail -1)
    read -r t m <<< "$out"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

# Starts `serve` on the archive in directory $1 with the flags after it,
# the secret in $work/secret, its log in $work/serve.log; returns once it
# listens, or stops the script if it exits first or takes a minute. Sets
# serve_pid and addr (its webhook listener).
start_serve() {
  "$bin" --archive "$1" serve --listen 127.0.0.1:0 --secret-file "$work/secret" "${@:2}" 2> "$work/serve.log" &
  serve_pid=$!
  local deadline=$((SECONDS + 60))
  until grep -q "listening on" "$work/serve.log" 2>/dev/null; do
    if ! kill -0 "$serve_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1
    fi
    sleep 0.005
  done
  addr=$(grep -o '127.0.0.1:[0-9]*' "$work/serve.log" | head -1)
}
stop_serve() { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; }

# Median wall time (s) and peak RSS (KB) over $RUNS (default 5) runs.
measure_median() {
  local times="" rss=0 out
  for _ in $(seq "${RUNS:-5}"); do
    out=$( { /usr/bin/time -f '%e %M' bash -c "$1" > /dev/null; } 2>&1 | tail -1)
    read -r t m <<< "$out"
    times="$times $t"
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$(printf '%s\n' $times | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') $rss"
}

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }

# A wrk script posting the JSON payload in file $1, compacted and signed with
# secret $2, as `issues` deliveries, each with its own delivery id.
wrk_post_script() {
  python3 - "$1" "$2" "${3:-issues}" <<'PY'
import hashlib, hmac, json, sys
body = json.dumps(json.load(open(sys.argv[1])), separators=(",", ":"))
sig = "sha256=" + hmac.new(sys.argv[2].encode(), body.encode(), hashlib.sha256).hexdigest()
print(f"""
  local counter, thread_id = 0, 0
  local threads = {{}}
  function setup(thread) thread:set("id", #threads); table.insert(threads, thread) end
  function init(args) thread_id = id end
  wrk.method = "POST"
  wrk.body = {json.dumps(body)}
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "{sys.argv[3]}"
  wrk.headers["X-Hub-Signature-256"] = "{sig}"
  function request()
    counter = counter + 1
    wrk.headers["X-GitHub-Delivery"] = string.format("%08x-0000-4000-8000-%012d", thread_id, counter)
    return wrk.format()
  end
  """)
print(f"-- body bytes: {len(body)}", file=sys.stderr)
PY
}
