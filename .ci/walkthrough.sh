#!/usr/bin/env bash
# The integration guide's walkthrough, run as written: every ```sh block of
# docs/integration.md, in order, in one bash session with `set -euo pipefail`, against BINARY,
# in a fresh directory and HOME. Only three things are changed, so a newcomer in a fresh clone
# and CI run the same text: the `cargo build` line is dropped (BINARY is built),
# `target/release/mspbots-mfa` is BINARY, and the guide's ports 8181 (the service) and 8282
# (the webhook receiver) are free ports. The guide picks its own fresh database and its last
# block stops what it started; whatever a failure leaves, the trap below removes.
#
#   .ci/walkthrough.sh [BINARY]        (default target/debug/mspbots-mfa)
#
# Needs: curl, jq, oathtool (apt-get install jq oathtool), python3, psql, Postgres on
# 127.0.0.1:5432 trusting user postgres; zbarimg (zbar-tools) is used when installed.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
bin=$(realpath "${1:-target/debug/mspbots-mfa}")
[[ -x $bin ]] || { echo "walkthrough: no binary at $bin (cargo build first)" >&2; exit 2; }
for tool in curl jq oathtool python3 psql; do
  command -v "$tool" >/dev/null || { echo "walkthrough: needs $tool" >&2; exit 2; }
done

tmp=$(mktemp -d)
cleanup() {
  local rc=$? walk_db
  # The guide's database, should its own trap not have run (bash -x prints the assignment).
  walk_db=$(sed -n 's/^+* *WALK_DB=//p' "$tmp/out.log" 2>/dev/null | head -n1)
  if [[ -n $walk_db ]]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$walk_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
hook_port=$(free_port)
guide=docs/integration.md
awk '
  /^```sh$/ { block = 1; next }
  block && /^```$/ { block = 0; next }
  block { print }
' "$guide" >"$tmp/blocks.sh"
[[ -s $tmp/blocks.sh ]] || { echo "walkthrough: no sh blocks in $guide" >&2; exit 1; }
{
  echo 'set -euo pipefail'
  # What the walkthrough starts in the background stops with it, and its database goes,
  # whatever happens.
  cat <<'EOF'
trap 'kill $(jobs -p) 2>/dev/null || true
[ -z "${WALK_DB:-}" ] || psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$WALK_DB\" WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
EOF
  sed -e '/^cargo build/d' -e "s#target/release/mspbots-mfa#$bin#g" \
    -e "s#127\.0\.0\.1:8181#127.0.0.1:$port#g" -e "s#HOOK_PORT=8282#HOOK_PORT=$hook_port#" "$tmp/blocks.sh"
} >"$tmp/walkthrough.sh"
grep -q "127.0.0.1:$port" "$tmp/walkthrough.sh" && grep -q "HOOK_PORT=$hook_port" "$tmp/walkthrough.sh" \
  || { echo "walkthrough: $guide no longer uses 127.0.0.1:8181 and HOOK_PORT=8282" >&2; exit 1; }
echo "walkthrough: $(grep -c '' "$tmp/blocks.sh") lines of $guide against $bin on 127.0.0.1:$port"

# A fresh home for the development keys; nothing else from the caller.
status=0
(cd "$tmp" && env -u MFA_DATA_DIR -u XDG_DATA_HOME -u MFA_CONFIG -u DATABASE_URL -u MFA_BIND HOME="$tmp" \
  RUST_LOG=info timeout 240 bash -x walkthrough.sh) >"$tmp/out.log" 2>&1 || status=$?
if ((status != 0)); then
  echo "walkthrough: failed ($status):" >&2
  tail -n 40 "$tmp/out.log" >&2
  echo "--- service log (mfa.log)" >&2
  tail -n 40 "$tmp/mfa.log" >&2 || true
  exit 1
fi
echo "walkthrough: the blocks of $guide ran as written"
