"""Several compose files of one Swarm app: the merge is `docker stack config -c a -c b`'s (compared
through the Swarm translator, so short and long syntax count the same), and a base + override stack
deploys on the live swarm."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from repos import EXAMPLE, free_port, make_repo, swarm_example

from gitops.backends.swarm.translate import translate
from gitops.render import Renderer
from gitops.validate.compose_merge import merge

pytestmark = pytest.mark.swarm

DATA = Path(__file__).resolve().parents[1] / "unit" / "data" / "compose-merge"
AWESOME = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "awesome-compose"


def docker_config(root: Path, files: list[str]) -> dict[str, Any] | None:
    args = [a for f in files for a in ("-c", f)]
    done = subprocess.run(["docker", "stack", "config", *args], cwd=root, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "DOCKER_HOST": os.environ.get("DOCKER_HOST", "")})
    return yaml.safe_load(done.stdout) if done.returncode == 0 else None


def ours(root: Path, files: list[str]) -> dict[str, Any]:
    renderer = Renderer(root, None, {}, stack="s")
    for name in files:
        renderer.add_path(root / name)
    merged, _ = merge(renderer.result.compose)
    return merged.data


def deployed(doc: dict[str, Any], root: Path) -> tuple[dict[str, Any], list[str]] | None:
    """What the stack deploys (service specs by name, the other objects' names), or None when the
    translator refuses it."""
    def read(path: str) -> bytes:
        return (Path(path) if Path(path).is_absolute() else root / path).read_bytes()

    result = translate(doc, "s", read_file=read, project_dir=str(root), hash_names=False, home_dir="/root")
    if not result.ok:
        return None
    others = sorted([*result.networks, *result.volumes, *result.configs, *result.secrets])
    return {name: obj.spec for name, obj in result.services.items()}, others


def same_as_docker(root: Path, files: list[str]) -> bool | None:
    expected = docker_config(root, files)
    if expected is None:
        return None
    theirs = deployed(expected, root)
    if theirs is None:
        return None
    assert deployed(ours(root, files), root) == theirs, files
    return True


def test_the_merge_deploys_what_docker_stack_config_merges(tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    for f in DATA.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    # docker/cli 20.10 appends healthcheck.test (a bug: the compose spec replaces it, as we do).
    text = (root / "override.yml").read_text()
    (root / "parity.yml").write_text(text.replace('    healthcheck:\n      test: ["CMD", "false"]\n', ""))
    (root / "long.yml").write_text("""version: "3.8"
services:
  web:
    ports:
      - {target: 82, published: 9090, protocol: udp}
    secrets:
      - {source: token, target: /run/t, mode: 0400}
    environment: ["A=9"]
    deploy:
      update_config: {parallelism: 0, delay: 2s}
      placement: {constraints: ["node.role == manager"]}
  worker:
    environment: {EXTRA: "1"}
    deploy: {replicas: 3}
""")
    assert same_as_docker(root, ["base.yml", "parity.yml"])
    assert same_as_docker(root, ["base.yml", "long.yml"])
    assert same_as_docker(root, ["base.yml", "parity.yml", "long.yml"])


def test_every_awesome_compose_stack_with_an_override_merges_as_docker_does(tmp_path: Path) -> None:
    if not AWESOME.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test corpus {AWESOME} is missing (CI=true: it must be present)")
        pytest.skip("the shared corpora are absent")
    compared = 0
    for compose in sorted(AWESOME.glob("*/compose.y*ml")):
        doc = yaml.safe_load(compose.read_text())
        first = sorted(doc.get("services") or {})[0]
        override = {"services": {first: {"image": "gitops-test/app:9", "deploy": {"replicas": 3},
                                         "environment": {"GITOPS_OVERRIDE": "1"}, "ports": ["18080:80"]}}}
        root = tmp_path / compose.parent.name
        subprocess.run(["cp", "-r", str(compose.parent), str(root)], check=True)
        (root / "override.yml").write_text(yaml.safe_dump(override))
        if same_as_docker(root, [compose.name, "override.yml"]):
            compared += 1
    print(f"awesome-compose: {compared} stacks merged and compared with docker stack config")
    assert compared >= 10


def test_a_base_and_override_stack_deploys(swarm_cluster: Any, stack: str, tmp_path: Path) -> None:
    app = f"demo-{stack[-6:]}"
    repo = make_repo(tmp_path, swarm_example(free_port()), dict(os.environ))
    (repo.root / "swarm" / "prod.yml").write_text("""version: "3.8"
services:
  web:
    image: gitops-test/app:2
    environment: {TIER: prod}
    deploy:
      replicas: 1
""")
    (repo.root / "gitops.yaml").write_text(f"""version: 1
apps:
  - name: {app}
    backend: swarm
    paths: [swarm/compose.yaml, swarm/prod.yml]
    env_files: [swarm/demo.env]
    target: {{stack: {stack}}}
    rollout: {{timeout: 2m}}
""")
    repo.commit("base + prod override")
    assert (EXAMPLE / "swarm" / "compose.yaml").exists()
    plan = repo.gitops("plan", app)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    applied = repo.gitops("apply", app, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    inspect = json.loads(subprocess.run(["docker", "service", "inspect", f"{stack}_web"], capture_output=True,
                                        text=True, check=True).stdout)[0]["Spec"]
    assert inspect["TaskTemplate"]["ContainerSpec"]["Image"].startswith("gitops-test/app:2")
    assert "TIER=prod" in inspect["TaskTemplate"]["ContainerSpec"]["Env"]
    assert inspect["Mode"]["Replicated"]["Replicas"] == 1
    assert f"{stack}_worker" in subprocess.run(["docker", "service", "ls", "--format", "{{.Name}}"],
                                                capture_output=True, text=True, check=True).stdout
    again = repo.gitops("plan", app, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout  # no noise on a second plan
