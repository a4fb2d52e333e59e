#!/usr/bin/env bash
# Benchmark of the verify path: release binary on a fresh database, loopback only, stops by
# itself. Prints latency percentiles, throughput and server memory. Usage: bench/run.sh [USERS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-600}
conc=${2:-16}
cargo build --release --locked --bin mspbots-mfa --example bench
t=${CARGO_TARGET_DIR:-target}/release
db="mfa_bench_$$"
dir=$(mktemp -d)
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" MFA_DATA_DIR="$dir" MFA_BIND=127.0.0.1:0 \
       MFA_RATE_LIMIT_PER_MINUTE=1000000 RUST_LOG=warn,mspbots_mfa::startup=info
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$t/mspbots-mfa" 2>"$dir/log" &
pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$dir/log" && break; sleep 0.1; done
addr=$(grep -o 'listening on http://[0-9.:]*' "$dir/log" | sed 's/listening on //')
# After the start: the service generates the development keys, the CLI only reads them.
key=$("$t/mspbots-mfa" service-keys create --name bench)
echo "service $addr (pid $pid), $users users, concurrency $conc, $(nproc) cores"
timeout 600 "$t/examples/bench" "$addr" "$key" "$users" "$conc" "$pid"
