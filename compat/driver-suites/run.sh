#!/usr/bin/env bash
# Runs PostgreSQL drivers' own test suites twice against one throwaway
# PostgreSQL: directly, then through airlock under a policy that allows
# everything (complete: false included), so only protocol behaviour is
# measured. Prints pass/fail counts per suite and way, and the tests that
# pass directly but fail through airlock. See README.md beside this file.
#
#   compat/driver-suites/run.sh [psycopg] [node-postgres] [tokio-postgres]
#
# Nothing third-party is kept in the repository: the suites are obtained
# into $DRIVER_SUITES_WORK (default compat/driver-suites/.work, git-ignored).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${DRIVER_SUITES_WORK:-$here/.work}
timeout_s=${SUITE_TIMEOUT:-1200}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(psycopg node-postgres tokio-postgres)

PSYCOPG_VERSION=3.3.4
NODE_PG_TAG=pg@8.23.0
TOKIO_POSTGRES_VERSION=0.7.18

mkdir -p "$work/src" "$work/results"
log() { echo "== $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A git checkout of $1 at tag $2 into $3, from $4 (a git directory, e.g. a
# local mirror) when given, else cloned from $5.
obtain_git() {
  local name=$1 tag=$2 dest=$3 gitdir=$4 url=$5 paths=("${@:6}")
  [ -d "$dest" ] && return 0
  mkdir -p "$dest.tmp"
  if [ -n "$gitdir" ]; then
    git --git-dir="$gitdir" archive "$tag" "${paths[@]}" | tar -x -C "$dest.tmp" || die "git archive of $name $tag from $gitdir"
  else
    local clone="$work/src/$name.clone"
    rm -rf "$clone"
    git clone --quiet --depth 1 --branch "$tag" "$url" "$clone" || die "clone $url"
    (cd "$clone" && tar -cf - "${paths[@]}") | tar -x -C "$dest.tmp"
    rm -rf "$clone"
  fi
  mv "$dest.tmp" "$dest"
}

# --- obtaining the suites -------------------------------------------------

obtain_psycopg() {
  obtain_git psycopg "$PSYCOPG_VERSION" "$work/src/psycopg" "${PSYCOPG_GIT:-}" \
    https://github.com/psycopg/psycopg.git tests pyproject.toml
  if [ ! -x "$work/venv/bin/pytest" ]; then
    python3 -m venv "$work/venv" || die "python3 -m venv"
    "$work/venv/bin/pip" install -q "psycopg[binary,pool]==$PSYCOPG_VERSION" \
      "anyio>=4" pytest pytest-randomly pytest-timeout pproxy Faker || die "pip install"
  fi
}

obtain_node_postgres() {
  local dir="$work/src/node-postgres"
  obtain_git node-postgres "$NODE_PG_TAG" "$dir" "${NODE_POSTGRES_GIT:-}" \
    https://github.com/brianc/node-postgres.git packages/pg
  if [ ! -d "$dir/packages/pg/node_modules/pg-protocol" ]; then
    # The package's runtime dependencies and the development ones its
    # integration tests use (not the Cloudflare worker tooling).
    (cd "$dir/packages/pg" &&
      jq '.devDependencies |= {async, bluebird, co, "pg-copy-streams"} | del(.peerDependencies) | del(.scripts)' \
        package.json >package.json.new && mv package.json.new package.json &&
      npm install --no-audit --no-fund --loglevel=error) || die "npm install for node-postgres"
  fi
}

obtain_tokio_postgres() {
  local dest="$work/src/tokio-postgres"
  [ -d "$dest.pristine" ] && return 0
  # The crate as published (it ships its tests), through cargo.
  local probe="$work/src/tokio-postgres-fetch"
  mkdir -p "$probe/src"
  printf '[package]\nname = "fetch-tokio-postgres"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ntokio-postgres = "=%s"\n' \
    "$TOKIO_POSTGRES_VERSION" >"$probe/Cargo.toml"
  : >"$probe/src/lib.rs"
  (cd "$probe" && cargo fetch --quiet) || die "cargo fetch tokio-postgres"
  local src
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"tokio-postgres-$TOKIO_POSTGRES_VERSION" | head -1)
  [ -d "$src" ] || die "tokio-postgres $TOKIO_POSTGRES_VERSION source not found after cargo fetch"
  cp -a "$src" "$dest.pristine"
  rm -rf "$probe"
}

# --- PostgreSQL and the gateway --------------------------------------------

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin=${AIRLOCK_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
run="$work/run"
pg_pid_file=""
gateway_pid=""

stop_all() {
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null; wait "$gateway_pid" 2>/dev/null; fi
  if [ -d "$run/pg/data" ]; then as_postgres "$pg_bin/pg_ctl" -D "$run/pg/data" -m immediate -w stop >/dev/null 2>&1; fi
}
trap stop_all EXIT

start_postgres() {
  rm -rf "$run"
  mkdir -p "$run/pg"
  superpw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$superpw" >"$run/pg/pwfile"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$run/pg" && chmod 755 "$run" "$run/pg"
  as_postgres "$pg_bin/initdb" -D "$run/pg/data" -U postgres --auth=scram-sha-256 \
    --pwfile="$run/pg/pwfile" -E UTF8 --locale=C --no-sync >"$run/pg/initdb.log" 2>&1 || die "initdb failed: $(cat "$run/pg/initdb.log")"
  pg_port=$(free_port)
  cat >>"$run/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$run/pg'
fsync = off
synchronous_commit = off
max_connections = 300
max_prepared_transactions = 10
EOF
  # tokio-postgres' suite has roles for each password method.
  cat >"$run/pg/data/pg_hba.conf" <<EOF
local all all scram-sha-256
host all pass_user 127.0.0.1/32 password
host all md5_user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
EOF
  as_postgres "$pg_bin/pg_ctl" -D "$run/pg/data" -l "$run/pg/postgres.log" -w -t 60 start >/dev/null || die "pg_ctl start: $(tail "$run/pg/postgres.log")"
  export PGPASSWORD=$superpw
  psql_super() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" "$@"; }
  psql_super -c "CREATE DATABASE psycopg_test" \
    -c "SET password_encryption = 'md5'" -c "CREATE ROLE md5_user LOGIN PASSWORD 'password'" \
    -c "RESET password_encryption" -c "CREATE ROLE pass_user LOGIN PASSWORD 'password'" \
    -c "CREATE ROLE scram_user LOGIN PASSWORD 'password'" >/dev/null || die "create roles"
  unset PGPASSWORD
  log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
}

start_gateway() {
  local bin=${AIRLOCK_BIN:-}
  if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --release -p airlock --quiet) || die "cargo build --release -p airlock"
    bin="$repo/target/release/airlock"
  fi
  airlock_bin=$bin
  mkdir -p "$run/gw"
  gw_port=$(free_port)
  admin_port=$(free_port)
  local connections=""
  for name in postgres psycopg_test template1; do
    connections+="  - name: $name
    protocol: postgres
    address: 127.0.0.1:$pg_port
    database: $name
    credential: superuser
"
  done
  cat >"$run/gw/policy.yaml" <<'EOF'
version: 1
default: deny
rules:
  - name: allow-everything
    match: {}
    action: allow
  - name: allow-unclassified
    match: {complete: false}
    action: allow
EOF
  # Suites open many connections, some failing on purpose: limits out of
  # the way, so only protocol behaviour is measured.
  cat >"$run/gw/airlock.yaml" <<EOF
listen:
  admin: 127.0.0.1:$admin_port
  postgres: 127.0.0.1:$gw_port
policy: policy.yaml
tokens:
  max_ttl: 24h
limits:
  max_sessions_per_identity: 250
  max_sessions_per_connection: 250
auth:
  lockout_threshold: 100000
  lockout_source_threshold: 100000
connections:
$connections
EOF
  export AIRLOCK_URL="http://127.0.0.1:$admin_port"
  AIRLOCK_ADMIN_TOKEN="drivers-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export AIRLOCK_ADMIN_TOKEN
  AIRLOCK_LOG=info "$airlock_bin" serve --config "$run/gw/airlock.yaml" --data-dir "$run/gw/data" \
    >"$run/gw/gateway.log" 2>&1 &
  gateway_pid=$!
  for _ in $(seq 1 200); do
    curl -fsS "$AIRLOCK_URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$AIRLOCK_URL/healthz" >/dev/null 2>&1 || die "gateway did not start: $(tail "$run/gw/gateway.log")"
  printf '%s' "$superpw" | "$airlock_bin" credential set superuser --username postgres --password-stdin >/dev/null ||
    die "credential set"
  token=$("$airlock_bin" token issue --identity postgres --kind service --connection postgres \
    --connection psycopg_test --connection template1 --ttl 24h --output json | jq -r .token) || die "token issue"
  log "airlock $("$airlock_bin" --version | awk '{print $2}') on 127.0.0.1:$gw_port (identity postgres)"
}

# way -> host port password: "direct" is PostgreSQL, "airlock" the gateway
# (user = identity, database = connection name, password = token).
target() {
  case $1 in
    direct) t_port=$pg_port t_password=$superpw ;;
    airlock) t_port=$gw_port t_password=$token ;;
  esac
}

# --- the suites: each writes "<test id> <passed|failed|skipped>" lines -----

run_psycopg() {
  local way=$1 out=$2
  target "$way"
  local xml="$work/results/psycopg-$way.xml"
  # The suite keeps a "segfault" mark in pytest's cache while it runs: a
  # run cut short would stop the next one.
  rm -rf "$work/src/psycopg/.pytest_cache" "$xml"
  # Not run: tests marked slow (they wait on purpose: timeouts, sleeps,
  # repeated garbage collection), the leak tests (garbage collection, no
  # protocol), the mypy typing tests (they type-check examples, no
  # database), tests/pool (another package) and tests/crdb (CockroachDB).
  # A test that hangs fails after 60 s.
  (cd "$work/src/psycopg" &&
    PSYCOPG_TEST_DSN="host=127.0.0.1 port=$t_port user=postgres password=$t_password dbname=psycopg_test connect_timeout=10" \
      timeout "$timeout_s" "$work/venv/bin/pytest" tests -p no:randomly -q --timeout=60 \
      -m "not slow and not mypy" -k "not leak" --ignore=tests/pool --ignore=tests/crdb --junitxml="$xml" \
      >"$work/results/psycopg-$way.log" 2>&1)
  python3 - "$xml" >"$out" <<'EOF'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = f'{case.get("classname")}::{case.get("name")}'.replace(" ", "_")
    kinds = {child.tag for child in case}
    status = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    print(name, status)
EOF
}

run_node_postgres() {
  local way=$1 out=$2
  target "$way"
  local dir="$work/src/node-postgres/packages/pg"
  : >"$out"
  local deadline=$((SECONDS + timeout_s))
  (cd "$dir" && find test/integration -name '*-tests.js' | sort) | while read -r file; do
    local status=failed
    if [ $SECONDS -lt $deadline ] &&
      (cd "$dir" && PGHOST=127.0.0.1 PGPORT=$t_port PGUSER=postgres PGPASSWORD=$t_password PGDATABASE=postgres \
        timeout 120 node "$file" >>"$work/results/node-postgres-$way.log" 2>&1); then
      status=passed
    fi
    echo "$file $status" >>"$out"
  done
}

run_tokio_postgres() {
  local way=$1 out=$2
  target "$way"
  local dir="$work/src/tokio-postgres"
  # The suite connects to 127.0.0.1:5433 as postgres without a password
  # (its docker setup trusts it): point it at this run's target, with the
  # password (the token through airlock).
  [ -d "$dir" ] || cp -a "$dir.pristine" "$dir"
  rm -rf "$dir/tests" && cp -a "$dir.pristine/tests" "$dir/tests"
  find "$dir/tests" -name '*.rs' -print0 | xargs -0 sed -i \
    -e "s/5433/$t_port/g" \
    -e "s/user=postgres\"/user=postgres password=$t_password\"/g" \
    -e "s/user=postgres /user=postgres password=$t_password /g"
  (cd "$dir" && CARGO_TARGET_DIR="$work/src/tokio-postgres-target" timeout "$timeout_s" \
    cargo test --quiet --test test -- --test-threads=4 >"$work/results/tokio-postgres-$way.log" 2>&1)
  sed -n -E 's/^test ([^ ]+) \.\.\. (ok|FAILED|ignored)$/\1 \2/p' "$work/results/tokio-postgres-$way.log" |
    sed -e 's/ ok$/ passed/' -e 's/ FAILED$/ failed/' -e 's/ ignored$/ skipped/' | sort >"$out"
  # --quiet prints dots; the failures are listed by name at the end.
  if [ ! -s "$out" ]; then
    (cd "$dir" && CARGO_TARGET_DIR="$work/src/tokio-postgres-target" timeout "$timeout_s" \
      cargo test --test test -- --test-threads=4 >"$work/results/tokio-postgres-$way.log" 2>&1)
    sed -n -E 's/^test ([^ ]+) \.\.\. (ok|FAILED|ignored)$/\1 \2/p' "$work/results/tokio-postgres-$way.log" |
      sed -e 's/ ok$/ passed/' -e 's/ FAILED$/ failed/' -e 's/ ignored$/ skipped/' | sort >"$out"
  fi
}

# --- main -------------------------------------------------------------------

for suite in "${suites[@]}"; do
  case $suite in
    psycopg) obtain_psycopg ;;
    node-postgres) obtain_node_postgres ;;
    tokio-postgres) obtain_tokio_postgres ;;
    *) die "unknown suite $suite (psycopg, node-postgres, tokio-postgres)" ;;
  esac
done
start_postgres
start_gateway

summary=()
for suite in "${suites[@]}"; do
  for way in direct airlock; do
    log "$suite $way"
    start=$SECONDS
    "run_${suite//-/_}" "$way" "$work/results/$suite-$way.txt"
    log "$suite $way: $((SECONDS - start)) s"
  done
  d="$work/results/$suite-direct.txt" a="$work/results/$suite-airlock.txt"
  count() { grep -c " $2\$" "$1" || true; }
  regressions=$(join <(grep ' passed$' "$d" | awk '{print $1}' | sort) \
    <(grep -v ' passed$' "$a" | awk '{print $1}' | sort) 2>/dev/null)
  {
    echo "$suite: pass-directly-fail-through-airlock:"
    if [ -n "$regressions" ]; then echo "$regressions" | sed 's/^/  /'; else echo "  (none)"; fi
  } | tee "$work/results/$suite-regressions.txt"
  summary+=("$(printf '%-15s direct: %5s passed, %4s failed, %4s skipped | airlock: %5s passed, %4s failed, %4s skipped | regressions: %s' \
    "$suite" "$(count "$d" passed)" "$(count "$d" failed)" "$(count "$d" skipped)" \
    "$(count "$a" passed)" "$(count "$a" failed)" "$(count "$a" skipped)" \
    "$(if [ -n "$regressions" ]; then echo "$regressions" | wc -l; else echo 0; fi)")")
done
echo
printf '%s\n' "${summary[@]}"
echo "details: $work/results (logs, per-test results, gateway log in $run/gw/gateway.log)"
