#!/usr/bin/env bash
# Install everything the tests need (Debian packages included) and run them.
# Starts PostgreSQL and Redis when they are not running. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages ------------------------------------------------------------------
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
[ -x /usr/bin/chromium ] || need+=(chromium)   # the browser tests drive Debian's Chromium
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)  # scores every kind of message
command -v node >/dev/null 2>&1 || need+=(nodejs)   # npm ci brings axe-core for the accessibility tests
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- services ---------------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
fi
if [ -z "${DIGEST_TEST_PG_URL:-}" ]; then
  if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    export DIGEST_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
  else
    # A fresh Debian cluster wants a password over TCP: give the postgres role one.
    log "setting a password for the postgres role (test machine)"
    as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'digest-tests'"
    export DIGEST_TEST_PG_URL="postgresql+psycopg://postgres:digest-tests@127.0.0.1:5432/postgres"
  fi
fi

# --- Python -----------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
# The pinned, hashed dependencies (requirements.lock, made by scripts/lock.sh), then digest
# itself from this tree without resolving anything more. A failed install stops here.
pip_quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
log "installing the locked dependencies (requirements.lock) and digest"
pip_quiet .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
pip_quiet .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
# A dependency added to pyproject.toml but not to the lock stops here, by name: run scripts/lock.sh.
.venv/bin/pip check --disable-pip-version-check || { echo "requirements.lock is behind pyproject.toml: run bash scripts/lock.sh" >&2; exit 1; }
.venv/bin/python -c 'import digest, aiosmtpd, pytest, build' # fail here, clearly, if the install did not work

# --- npm: test-only tools (package.json, pinned with its hashes in package-lock.json) ------
# axe-core, which the accessibility tests inject into every page. `npm ci` again whenever the
# lock changed since the last install (its hash is kept beside the modules).
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.digest-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  log "installing the npm test tools (npm ci: package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.digest-lock-hash
fi

# --- checks -----------------------------------------------------------------------------
log "validating docker-compose.yml"
docker-compose -f docker-compose.yml config -q

log "checking the layers (import-linter, contract in pyproject.toml)"
.venv/bin/lint-imports --no-cache

log "fuzzing each parser of outside bytes for ${DIGEST_FUZZ_SECONDS:-5} s (scripts/fuzz.sh; a crash fails the run)"
mkdir -p test-artifacts
bash scripts/fuzz.sh all "${DIGEST_FUZZ_SECONDS:-5}" > test-artifacts/fuzz.log 2>&1 || {
  tail -n 40 test-artifacts/fuzz.log; echo "fuzzing found a crash: see test-artifacts/fuzz/" >&2; exit 1; }
grep -E "^== |stat::number_of_executed_units" test-artifacts/fuzz.log | paste - - | awk '{print $2, $NF, "inputs"}'

# Two halves side by side (tests/conftest.py: DIGEST_TEST_SHARD), each with its own Redis
# database and temporary folder; DIGEST_TEST_PARALLEL=0 runs one pytest, as does giving
# test paths or options other than the CI's. Output is streamed with the half's name.
if [ "${DIGEST_TEST_PARALLEL:-1}" = 0 ]; then
  log "running the tests"
  exec .venv/bin/pytest "$@"
fi
log "running the tests: two halves side by side (a: unit, architecture, SQLite stack; b: the rest)"
run_half() {  # NAME REDIS_DB ARGS...
  local name=$1 db=$2; shift 2
  DIGEST_TEST_SHARD=$name DIGEST_TEST_REDIS_URL="redis://127.0.0.1:6379/$db" \
    .venv/bin/pytest -p no:cacheprovider --basetemp="$(mktemp -d "/tmp/digest-tests-$name-XXXXXX")" "$@" \
    2>&1 | tee "test-artifacts/pytest-$name.log" | sed -u "s/^/[$name] /"
}
started=$SECONDS
run_half a 13 "$@" & half_a=$!
run_half b 12 "$@" & half_b=$!
status_a=0; wait $half_a || status_a=$?
status_b=0; wait $half_b || status_b=$?
log "tests done in $((SECONDS - started)) s: half a exit $status_a, half b exit $status_b (logs: test-artifacts/pytest-a.log, -b.log)"
[ "$status_a" = 0 ] && [ "$status_b" = 0 ]
