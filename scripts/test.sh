#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, Python environment, lint and type
# checks, both real test clusters (Kubernetes control plane built from Go modules and cached;
# single-node Docker Swarm), then unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
bash scripts/setup-system.sh
step "python environment"
bash scripts/setup-python.sh

step "lint: ruff, mypy, import contracts"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/mypy tests/harness  # standard library only, typed like the package
.venv/bin/lint-imports --no-cache

step "test clusters"
.venv/bin/python tests/clusters up
eval "$(.venv/bin/python tests/clusters env)"

step "unit and integration tests"
.venv/bin/pytest -p no:cacheprovider "$@"
