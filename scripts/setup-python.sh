#!/usr/bin/env bash
# Creates .venv with gitops and its development tools.
#
# By default it installs exactly requirements/dev.lock (every package pinned with its hash; made
# by `bash scripts/lock.sh`), then gitops itself in editable mode without resolving again, so a
# fresh machine gets the same packages as every other. With GITOPS_DEPS=latest it installs the
# newest versions pyproject.toml allows instead (what `pip install gitops` gives a user today):
# the CI workflow runs the suite that way too, to see a new release that breaks us the day it
# appears. Reinstalls only when the lock, pyproject.toml or the mode changed (pip caches wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mode=${GITOPS_DEPS:-locked}
case "$mode" in locked|latest) ;; *) echo "setup-python: GITOPS_DEPS is 'locked' or 'latest', not '$mode'" >&2; exit 1;; esac
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
stamp=.venv/.installed-$mode-$(cat pyproject.toml requirements/dev.lock | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  if [ "$mode" = latest ]; then
    "${pip[@]}" --upgrade pip setuptools wheel
    "${pip[@]}" --upgrade --upgrade-strategy eager -e '.[dev]'
  else
    "${pip[@]}" --require-hashes --no-deps -r requirements/dev.lock
    PYTHONWARNINGS=ignore "${pip[@]}" --no-deps --no-build-isolation -e .  # setuptools warns that editable installs are editable
    .venv/bin/python -m pip check --disable-pip-version-check >/dev/null
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
