#!/usr/bin/env bash
# Install digest into .venv and run the demo in ./demo on embedded defaults
# (SQLite, an outbox folder; Redis is used if one is running, else tasks run in-process).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || {
  [ "$(id -u)" = 0 ] && S= || S=sudo
  $S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $S apt-get install -y -qq python3-venv >/dev/null
}
[ -x .venv/bin/python ] || python3 -m venv .venv
# The pinned, hashed runtime dependencies (scripts/lock.sh makes them), then digest itself.
pip_quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
pip_quiet .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements-runtime.lock
pip_quiet .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
mkdir -p demo
cd demo
exec ../.venv/bin/digest demo "$@"
