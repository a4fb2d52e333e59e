#!/usr/bin/env bash
# The README's integration walkthrough, run as written: every ```sh block from "## Integration
# guide" to the next "## " heading, in order, in one bash session with `set -euo pipefail`,
# against BINARY on a fresh database. Only three things are changed, so a fresh clone's
# integrator and CI run the same text: the `cargo build` line is dropped (BINARY is built),
# `target/release/mspbots-mfa` is BINARY, and port 8080 is a free port (MFA_BIND and the URLs).
#
#   .ci/walkthrough.sh [BINARY]        (default target/debug/mspbots-mfa)
#
# Needs: curl, jq, oathtool (apt-get install jq oathtool), python3, psql, Postgres on
# 127.0.0.1:5432 trusting user postgres.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
bin=$(realpath "${1:-target/debug/mspbots-mfa}")
[[ -x $bin ]] || { echo "walkthrough: no binary at $bin (cargo build first)" >&2; exit 2; }
for tool in curl jq oathtool python3 psql; do
  command -v "$tool" >/dev/null || { echo "walkthrough: needs $tool" >&2; exit 2; }
done

tmp=$(mktemp -d)
db=mfa_walkthrough_$$
cleanup() {
  local rc=$?
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
awk '
  /^## / { inside = ($0 ~ /^## Integration guide/) }
  inside && /^```sh$/ { block = 1; next }
  block && /^```$/ { block = 0; next }
  block { print }
' README.md >"$tmp/blocks.sh"
[[ -s $tmp/blocks.sh ]] || { echo "walkthrough: no sh blocks under '## Integration guide' in README.md" >&2; exit 1; }
{
  echo 'set -euo pipefail'
  # The service the walkthrough starts in the background stops with it, whatever happens.
  echo 'trap '"'"'kill $(jobs -p) 2>/dev/null || true'"'"' EXIT'
  sed -e '/^cargo build/d' -e "s#target/release/mspbots-mfa#$bin#g" -e "s#127\.0\.0\.1:8080#127.0.0.1:$port#g" "$tmp/blocks.sh"
} >"$tmp/walkthrough.sh"
echo "walkthrough: $(grep -c '' "$tmp/blocks.sh") lines of README.md against $bin on 127.0.0.1:$port, database $db"

# A fresh home for the development keys and a fresh database; nothing else from the caller.
status=0
(cd "$tmp" && env -u MFA_DATA_DIR -u XDG_DATA_HOME -u MFA_CONFIG HOME="$tmp" MFA_BIND="127.0.0.1:$port" \
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" RUST_LOG=info \
  timeout 180 bash -x walkthrough.sh) >"$tmp/out.log" 2>&1 || status=$?
if ((status != 0)); then
  echo "walkthrough: failed ($status):" >&2
  tail -n 40 "$tmp/out.log" >&2
  echo "--- service log" >&2
  tail -n 20 "$tmp/mfa.log" >&2 || true
  exit 1
fi
echo "walkthrough: the README's blocks ran as written"
