#!/usr/bin/env bash
# The sign-in benchmark (issue 8): the release binary against a private, throw-away Postgres 15
# cluster, loopback only. Enrolls USERS users of one tenant through the API, then measures
# starts/s and verifies/s at CONNECTIONS connections on the database without ANALYZE (phase A)
# and after it (phase B), with pg_stat_statements per phase, server peak RSS, and pgbench of a
# minimal verification transaction on the same cluster; then a passkey phase (USERS more users
# register a passkey and sign in with it: webauthn-challenge + webauthn per sign-in, its p99 and
# CPU). Prints figures, asserts nothing about time, stops by itself and cleans up (also on
# Ctrl-C and errors).
#
# usage: bench/run.sh [USERS] [CONNECTIONS]          (defaults 20000 and 32)
# env:   BENCH_BIN=/path/to/mspbots-mfa   benchmark that build of the service instead of this tree's
#        BENCH_PHASE_SECS=15              upper bound of each starts / verifies sub-phase
#        BENCH_PGBENCH_SECS=15            pgbench duration
#        BENCH_TIMEOUT=2400               upper bound of the load generator (seconds)
#        PG_BINDIR=/usr/lib/postgresql/15/bin
set -euo pipefail
cd "$(dirname "$0")/.."

users=${1:-20000}
conns=${2:-32}
pg_bin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
bench_timeout=${BENCH_TIMEOUT:-2400}
case "$users$conns" in *[!0-9]*) echo "usage: bench/run.sh [USERS] [CONNECTIONS]" >&2; exit 2 ;; esac
[ "$users" -ge 1 ] && [ "$conns" -ge 1 ] || { echo "USERS and CONNECTIONS must be >= 1" >&2; exit 2; }

cargo build --release --locked --bin mspbots-mfa --example bench
t=${CARGO_TARGET_DIR:-target}/release
bin=${BENCH_BIN:-$t/mspbots-mfa}
[ -x "$bin" ] || { echo "no service binary at $bin" >&2; exit 1; }

# initdb refuses root: as root, the cluster runs as the postgres user; otherwise as the caller.
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)

pg_tmp="" svc_tmp="" svc_pid="" pg_started="" gen_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$gen_pid" ]; then
    kill -TERM "$gen_pid" 2>/dev/null || true
    wait "$gen_pid" 2>/dev/null || true
  fi
  if [ -n "$svc_pid" ] && kill -0 "$svc_pid" 2>/dev/null; then
    kill -TERM "$svc_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$svc_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$svc_pid" 2>/dev/null || true
    wait "$svc_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_started" ]; then
    timeout 60 "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_tmp/data" -m fast -w stop >/dev/null 2>&1 ||
      timeout 30 "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  # Last resort: the postmaster's pid from its lock file (only our own cluster's).
  if [ -n "$pg_tmp" ] && [ -f "$pg_tmp/data/postmaster.pid" ]; then
    kill -KILL "$(head -1 "$pg_tmp/data/postmaster.pid")" 2>/dev/null || true
  fi
  [ -n "$pg_tmp" ] && rm -rf "$pg_tmp"
  [ -n "$svc_tmp" ] && rm -rf "$svc_tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- a private Postgres 15 cluster ---------------------------------------------------------
pg_tmp=$(mktemp -d /tmp/mfa-bench-pg.XXXXXX)
svc_tmp=$(mktemp -d /tmp/mfa-bench-svc.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$pg_tmp"
chmod 700 "$pg_tmp"
timeout 180 "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_tmp/data" -U postgres --auth=trust \
  --encoding=UTF8 --locale=C.UTF-8 >"$pg_tmp/initdb.log" 2>&1 ||
  { cat "$pg_tmp/initdb.log" >&2; echo "initdb failed" >&2; exit 1; }
cat >>"$pg_tmp/data/postgresql.conf" <<EOF

# --- mspbots-mfa bench/run.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_tmp'
max_connections = 100
autovacuum = off
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_planning = on
EOF

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pg_port=""
for _ in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 30000))
  port_free "$p" || continue
  if timeout 90 "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_tmp/data" -l "$pg_tmp/postgres.log" \
      -o "-p $p" -w -t 60 start >/dev/null 2>&1; then
    pg_port=$p pg_started=1
    break
  fi
done
[ -n "$pg_port" ] || { tail -20 "$pg_tmp/postgres.log" >&2 || true; echo "could not start the private Postgres" >&2; exit 1; }
psql_db() { timeout 120 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
echo "private Postgres $(psql_db -d postgres -At -c 'SHOW server_version') on 127.0.0.1:$pg_port ($pg_tmp)"

# --- the service -----------------------------------------------------------------------------
db=mfa_bench
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/$db" MFA_BIND=127.0.0.1:0 \
       MFA_DATA_DIR="$svc_tmp/data" MFA_RATE_LIMIT_PER_MINUTE=100000000 \
       RUST_LOG=warn,mspbots_mfa::startup=info
"$bin" serve >"$svc_tmp/service.log" 2>&1 &
svc_pid=$!
addr=""
for _ in $(seq 1 600); do
  addr=$(grep -ao 'listening on http://[0-9.:]*' "$svc_tmp/service.log" | head -1 | sed 's/listening on //') || true
  [ -n "$addr" ] && break
  kill -0 "$svc_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$svc_tmp/service.log" >&2; echo "the service did not start" >&2; exit 1; }
psql_db -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'

key=$(timeout 120 "$bin" service-keys create --name bench 2>"$svc_tmp/key.log") ||
  { cat "$svc_tmp/key.log" >&2; echo "service-keys create failed" >&2; exit 1; }
# A working key reads a tenant's policy (404: the bench tenant does not exist yet); a bad one is 401.
probe=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -H "Authorization: Bearer $key" "$addr/v1/tenants/bench/policy") || true
case "$probe" in 200 | 404) ;; *) echo "the service key does not work (GET policy: HTTP $probe)" >&2; exit 1 ;; esac

echo "service $bin at $addr (pid $svc_pid); $users users, $conns connections, $(nproc) cores; $(date -u +%FT%TZ)"
# In the background and waited for, so a signal to this script alone (Ctrl-C, an outer timeout)
# runs the cleanup at once; the cleanup stops the load generator first.
BENCH_PGPORT=$pg_port BENCH_PGBIN=$pg_bin BENCH_DB=$db BENCH_TMP=$svc_tmp BENCH_PID=$svc_pid \
  timeout -k 10 "$bench_timeout" "$t/examples/bench" "$addr" "$key" "$users" "$conns" </dev/null &
gen_pid=$!
wait "$gen_pid"
gen_pid=""
if grep -aqiE 'panicked|ERROR' "$svc_tmp/service.log"; then
  echo "--- service log (errors) ---"
  grep -aiE 'panicked|ERROR' "$svc_tmp/service.log" | tail -20
fi
