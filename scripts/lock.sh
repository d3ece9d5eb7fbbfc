#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml (after changing a dependency, or to take
# newer releases): requirements.lock holds digest's dependencies and the test extra, what
# scripts/test.sh and CI install; requirements-runtime.lock the runtime ones alone, at the
# same versions, what the Docker image and scripts/demo.sh install. Both pin every package
# with its hashes (pip-tools); install them with `pip install --require-hashes -r`.
# Pins already in requirements.lock are kept; `bash scripts/lock.sh --upgrade` takes the
# newest releases (or --upgrade-package NAME for one).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install -q --disable-pip-version-check pip-tools
# PyPI only: a machine's own find-links or extra indexes must not leak into the lock.
export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL=
compile=("$tools/bin/pip-compile" -q --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links
         --no-emit-index-url)
"${compile[@]}" "$@" --extra test -o requirements.lock pyproject.toml
"${compile[@]}" --constraint requirements.lock -o requirements-runtime.lock pyproject.toml
