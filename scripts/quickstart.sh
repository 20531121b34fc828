#!/usr/bin/env bash
# Sets up this machine and runs gitops on the local default target: a single-node Docker Swarm on
# the local Docker engine. Installs what is missing (Debian's docker.io, a Python virtualenv),
# starts dockerd and the swarm when needed, then validates the example repository.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh
bash scripts/setup-python.sh
.venv/bin/python tests/clusters up --only swarm
eval "$(.venv/bin/python tests/clusters env --only swarm)"

echo
echo "==> gitops validate examples/repo"
.venv/bin/gitops validate examples/repo
