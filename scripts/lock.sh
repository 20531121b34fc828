#!/usr/bin/env bash
# Refreshes requirements/dev.lock: every package of the development and test environment (the
# package's dependencies, its `dev` extra and the build backend), pinned with hashes, resolved
# with uv for Python 3.11 on any platform. pyproject.toml keeps the compatible ranges users get
# with `pip install gitops`; this file is what scripts/setup-python.sh installs, so the suite
# passes or fails the same way on every machine and every day.
#   bash scripts/lock.sh              # re-resolve within pyproject's ranges, newest allowed
#   bash scripts/lock.sh -P PyYAML    # or move one package only (any `uv pip compile` option)
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.9
tools=${XDG_CACHE_HOME:-$HOME/.cache}/gitops-tools/uv-$uv_version
if [ ! -x "$tools/bin/uv" ]; then
  ${PYTHON:-python3} -m pip install -q --disable-pip-version-check --target "$tools" "uv==$uv_version"
fi
"$tools/bin/uv" pip compile pyproject.toml requirements/build.in --extra dev \
  --universal --python-version 3.11 --generate-hashes --no-header --quiet \
  --output-file requirements/dev.lock "$@"
{ printf '# Made by `bash scripts/lock.sh` (uv %s) from pyproject.toml [dev] and requirements/build.in.\n' "$uv_version"
  printf '# Do not edit by hand; installed by scripts/setup-python.sh with --require-hashes.\n'
  cat requirements/dev.lock; } > requirements/dev.lock.new
mv requirements/dev.lock.new requirements/dev.lock
echo "requirements/dev.lock: $(grep -c '^[A-Za-z0-9]' requirements/dev.lock) packages pinned"
