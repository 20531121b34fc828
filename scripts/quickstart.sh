#!/usr/bin/env bash
# Sets up this machine and runs gitops on the local default target: a single-node Docker Swarm on
# the local Docker engine. Installs what is missing (Debian's docker.io and busybox-static, a
# Python virtualenv), starts dockerd and the swarm when needed, builds the local test images, then
# validates the example repository, plans and applies its Swarm stack `demo`, and shows its status.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh
bash scripts/setup-python.sh
.venv/bin/python tests/clusters up --only swarm
eval "$(.venv/bin/python tests/clusters env --only swarm)"
gitops=$PWD/.venv/bin/gitops
cd examples/repo

echo; echo "==> gitops validate   (every app of examples/repo/gitops.yaml)"
"$gitops" validate
echo; echo "==> gitops plan demo"
"$gitops" plan demo
echo; echo "==> gitops apply demo --auto-approve"
"$gitops" apply demo --auto-approve
echo; echo "==> gitops status demo"
"$gitops" status demo
