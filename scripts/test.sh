#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs and starts what the
# tests talk to (moto's S3/SNS server in a virtualenv, RabbitMQ), then runs
# every test.
#   bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghreplay/target}"
venv="${GHREPLAY_VENV:-$HOME/.cache/ghreplay/venv}"

# moto: a real S3/SNS wire-protocol server for the integration tests.
# schemathesis: fuzzes the receiver against its OpenAPI document.
# duckdb-cli: DuckDB's own shell, which must read what `ghreplay load` writes.
# sqlfluff: parses every statement `ghreplay snowflake` and `export --ddl` print, in each dialect.
# pyspark: a real Spark (local mode, on the JRE below) reads what `ghreplay export` writes.
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/duckdb" ] || [ ! -x "$venv/bin/sqlfluff" ] || [ ! -x "$venv/bin/pyspark" ]; then
  echo "test.sh: installing moto[server], schemathesis, duckdb-cli, sqlfluff and pyspark into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'schemathesis>=4,<5' 'duckdb-cli>=1.5,<2' 'sqlfluff>=4,<5' 'pyspark>=3.5,<3.6'
fi
export MOTO_SERVER="$venv/bin/moto_server"
export SCHEMATHESIS="$venv/bin/schemathesis"
export DUCKDB_CLI="$venv/bin/duckdb"
export SQLFLUFF="$venv/bin/sqlfluff"
export SPARK_PYTHON="$venv/bin/python"

# @octokit/webhooks' middleware: a webhook receiver nobody on this team
# wrote, for `republish --to https://`; openssl makes its test certificate.
if [ ! -d tests/octokit/node_modules/@octokit/webhooks ]; then
  echo "test.sh: installing @octokit/webhooks (npm)" >&2
  npm ci --prefix tests/octokit --silent --no-audit --no-fund
fi
# stunnel terminates TLS in front of RabbitMQ for the amqps:// test;
# Debian's Chromium (headless) is the browser of the dashboard's tests; curl
# is their HTTPS client; Spark runs on a JRE (17 is what pyspark 3.5 supports best).
need=()
command -v java >/dev/null || need+=(default-jre-headless)
command -v openssl >/dev/null || need+=(openssl)
command -v stunnel >/dev/null || need+=(stunnel4)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# RabbitMQ on 127.0.0.1:5672 (guest/guest) for the republish tests.
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_up; then
  if ! command -v rabbitmq-server >/dev/null; then
    echo "test.sh: installing rabbitmq-server" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  echo "test.sh: starting rabbitmq-server" >&2
  rabbitmq-server -detached || true
  for _ in $(seq 60); do rabbit_up && break; sleep 1; done
  rabbit_up || { echo "test.sh: RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 2; }
fi

# The tests read ../shared (GitHub's example payloads, make_archive.py).
if [ ! -d ../shared/fixtures/payloads ]; then
  echo "test.sh: ../shared is missing; CI places it beside the clone" >&2
  exit 2
fi

# Every test target; not the benches (harness = false tools that need
# arguments; clippy still checks them).
cargo test --lib --bins --tests --no-fail-fast "$@"
