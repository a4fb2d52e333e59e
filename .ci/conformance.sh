#!/usr/bin/env bash
# Conformance run: the service against its own OpenAPI document, with schemathesis.
#
#   .ci/conformance.sh [BINARY]        (default target/debug/mspbots-mfa; build it first)
#
# Starts BINARY on 127.0.0.1 (a free port) against a fresh database, creates a service key,
# prepares real credentials (tests/conformance/mfa.py), then runs schemathesis with every
# check on every operation; the hooks (tests/conformance/hooks.py) give each case a live
# credential of the kind its operation declares. Exits non-zero on any failure. Stops the
# service and drops the database whatever happens.
#
# Needs: python3 (with venv), a Postgres on 127.0.0.1:5432 that trusts user postgres, psql.
# Installs schemathesis and pyotp (pinned, tests/conformance/requirements.txt) into
# .venv-conformance; nothing globally. Knobs: CONFORMANCE_MAX_EXAMPLES (default 100),
# CONFORMANCE_SEED (default: random; printed so a failure can be replayed),
# CONFORMANCE_TIMEOUT (seconds, default 2400).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
bin=$(realpath "${1:-target/debug/mspbots-mfa}")
max_examples=${CONFORMANCE_MAX_EXAMPLES:-100}
seed=${CONFORMANCE_SEED:-$RANDOM$RANDOM}
time_limit=${CONFORMANCE_TIMEOUT:-2400}
[[ -x $bin ]] || { echo "conformance: no binary at $bin (cargo build first)" >&2; exit 2; }

venv=$root/.venv-conformance
if ! "$venv/bin/python" -c 'import schemathesis, pyotp' 2>/dev/null ||
   ! cmp -s tests/conformance/requirements.txt "$venv/requirements.txt"; then
  echo "conformance: installing tests/conformance/requirements.txt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt
  cp tests/conformance/requirements.txt "$venv/requirements.txt"
fi

db=mfa_conformance_$$
tmp=$(mktemp -d)
report=$root/target/conformance  # JUnit XML and NDJSON events of the last run, for CI artifacts
rm -rf "$report"
pid=    # the service
runner= # timeout(1) running schemathesis; it passes a TERM on
cleanup() {
  local rc=$?
  if [[ -n $runner ]] && kill -0 "$runner" 2>/dev/null; then
    kill -TERM "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
  fi
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
    echo "conformance: could not drop database $db" >&2
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" MFA_BIND=127.0.0.1:0 MFA_DATA_DIR=$tmp/data
# No webhook delivery: the run creates webhooks to whatever URLs it generates.
export MFA_WEBHOOK_DELIVERY=false
export MFA_RATE_LIMIT_PER_MINUTE=100000 RUST_LOG=${RUST_LOG:-warn,mspbots_mfa::startup=info} NO_COLOR=1
"$bin" serve 2>"$tmp/service.log" &
pid=$!
port=
for _ in $(seq 600); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$tmp/service.log" | grep -oE '[0-9]+$' || true)
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $port ]]; then
  echo "conformance: the service did not start:" >&2
  cat "$tmp/service.log" >&2
  exit 1
fi
base=http://127.0.0.1:$port
echo "conformance: $bin listening on $base, database $db"

export MFA_BASE_URL=$base
MFA_SERVICE_KEY=$("$bin" service-keys create --name conformance)
export MFA_SERVICE_KEY
export PYTHONPATH=$root/tests/conformance SCHEMATHESIS_HOOKS=hooks PYTHONDONTWRITEBYTECODE=1
export HYPOTHESIS_STORAGE_DIRECTORY=$report/hypothesis
"$venv/bin/python" tests/conformance/mfa.py >"$tmp/fixtures.json"
echo "conformance: fixtures $(cat "$tmp/fixtures.json")"

echo "conformance: schemathesis, all checks, $max_examples examples per operation, seed $seed"
started=$SECONDS
status=0
# In the background: a trap runs during `wait`, so Ctrl-C or a TERM stops the run at once.
timeout --signal=TERM --kill-after=30 "$time_limit" \
  "$venv/bin/schemathesis" --config-file tests/conformance/schemathesis.toml \
  run "$base/openapi.json" --url "$base" \
  --checks all --max-examples "$max_examples" --seed "$seed" \
  --generation-database none --no-color \
  --report junit,ndjson --report-dir "$report" &
runner=$!
wait "$runner" || status=$?
runner=
echo "conformance: schemathesis exited $status after $((SECONDS - started)) s"
((status != 124)) || echo "conformance: stopped by the ${time_limit} s time limit" >&2

"$venv/bin/python" tests/conformance/summary.py "$report" || true
# An error the service logged while answering 4xx is a finding too (actix-http's own lines
# about unparseable requests, answered 400, are not).
if grep -qE 'ERROR.*mspbots_mfa|panicked' "$tmp/service.log"; then
  echo "conformance: the service logged errors:" >&2
  grep -E 'ERROR.*mspbots_mfa|panicked' "$tmp/service.log" | head -20 >&2
  ((status)) || status=1
fi
exit "$status"
