#!/usr/bin/env bash
# The browser suite (tests/browser): the pages under /ui/ in Debian's Chromium, driven by
# Playwright for Python, against BINARY on a fresh database. Installs what it needs when it
# is missing (chromium and zbar-tools with apt-get, the Python packages into a venv, axe-core
# with npm) and fails, never skips, when Chromium is still missing.
#
#   .ci/browser.sh [BINARY [PYTEST ARGS]]        (default target/debug/mspbots-mfa)
#
# Every run takes each screen's screenshots at 390 and 1280 px into a temporary directory;
# MFA_UI_SCREENSHOTS=docs/ui .ci/browser.sh rewrites the ones in docs/ui (and the README's).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$(realpath "${1:-target/debug/mspbots-mfa}")
[[ -x $bin ]] || { echo "browser: no binary at $bin (cargo build first)" >&2; exit 2; }
(($# == 0)) || shift  # the rest goes to pytest (e.g. -k NAME)

if ! command -v chromium >/dev/null || ! command -v zbarimg >/dev/null; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo -n"
  $as_root apt-get update -qq
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium zbar-tools >/dev/null
fi
chromium_bin=${CHROMIUM:-/usr/bin/chromium}
[[ -x $chromium_bin ]] || { echo "browser: no Chromium at $chromium_bin: the suite cannot run" >&2; exit 1; }
command -v zbarimg >/dev/null || { echo "browser: zbarimg is missing" >&2; exit 1; }
"$chromium_bin" --version

venv=$root/.venv-browser
if ! "$venv/bin/python" -c 'import playwright, pytest, pyotp, requests' 2>/dev/null ||
   ! cmp -s tests/browser/requirements.txt "$venv/requirements.txt"; then
  echo "browser: installing tests/browser/requirements.txt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/browser/requirements.txt
  cp tests/browser/requirements.txt "$venv/requirements.txt"
fi
if [[ ! -f tests/browser/node_modules/axe-core/axe.min.js ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi

# Playwright must use Debian's Chromium and never fetch one of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CHROMIUM=$chromium_bin MFA_BINARY=$bin PYTHONDONTWRITEBYTECODE=1
cd tests/browser
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$@" 2>&1
