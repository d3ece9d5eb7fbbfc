#!/usr/bin/env bash
# Fuzz one parser for a while: scripts/fuzz.sh TARGET SECONDS [libFuzzer options…]
# TARGET: feed, jsonfeed, sitemap, json, article, source, bounce, inbound, webhook, csv (see fuzz/targets.py);
# "all" runs each for SECONDS. Needs atheris: pip install -e ".[fuzz]". Inputs that
# crash are written to test-artifacts/fuzz/<target>/crash-…; a corpus grows beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=${PYTHON:-.venv/bin/python}
targets=("$target")
[ "$target" = all ] && targets=(feed jsonfeed sitemap json article source bounce inbound webhook csv)
status=0
for name in "${targets[@]}"; do
  out="test-artifacts/fuzz/$name"
  mkdir -p "$out/corpus"
  echo "== $name: ${seconds}s"
  # -timeout: one input taking longer than 10 s is a finding (a hang), as a crash is.
  # New inputs go to the first folder; fuzz/seeds/<target> holds a few real ones to start from.
  "$python" fuzz/targets.py "$name" "$out/corpus" "fuzz/seeds/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/" -print_final_stats=1 "$@" || status=1
done
exit $status
