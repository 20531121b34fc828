"""User waves on the real backends, through the CLI: each wave is applied and healthy before the
next one is written, and a wave whose rollout fails stops the later ones, which are never written
(the app is rolled back to its last good release). And a depends_on cycle refused before anything
is read or written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from repos import Repo, kube_example, make_repo, swarm_example


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def order(found: list[dict[str, Any]]) -> list[str]:
    """The wave, change and rollout events, short: ``wave 0``, ``change ConfigMap/ns/x``, ``rollout``."""
    out = []
    for event in found:
        if event.get("event") == "wave":
            out.append(f"wave {event['wave']}")
        elif event.get("event") == "change":
            out.append(f"change {event['object']}")
        elif event.get("event") == "rollout":
            out.append("rollout")
    return out


def _late_configmap(namespace: str, name: str) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
    gitops.dev/wave: "1"
data:
  READY: "the deployment of wave 0 was healthy before this was written"
"""


@pytest.mark.kube
def test_kubernetes_waves_are_applied_in_order_each_healthy_first_and_a_failed_wave_stops_the_next(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    app = f"web-{namespace[-6:]}"
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo = make_repo(tmp_path, kube_example(namespace, app), env)
    (repo.root / "k8s" / "50-late.yaml").write_text(_late_configmap(namespace, "late"))
    repo.commit("a ConfigMap in wave 1")

    plan = repo.gitops("plan", app)
    assert "wave 0:" in plan.stdout and "wave 1:" in plan.stdout, plan.stdout
    assert plan.stdout.index("wave 0:") < plan.stdout.index(f"Deployment/{namespace}/web") \
        < plan.stdout.index("wave 1:") < plan.stdout.index(f"ConfigMap/{namespace}/late"), plan.stdout
    applied = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    steps = order(events(applied.stdout))
    late = f"change ConfigMap/{namespace}/late"
    deployment = f"change Deployment/{namespace}/web"
    assert steps.index("wave 0") < steps.index(deployment) < steps.index("rollout") < steps.index("wave 1") \
        < steps.index(late), steps
    # wave 0's rollout waited for the Deployment: it reported it pending, then nothing pending
    progress = [e for e in events(applied.stdout) if e.get("event") == "progress"]
    wave1_at = next(i for i, e in enumerate(events(applied.stdout)) if e.get("event") == "wave" and e["wave"] == 1)
    before_wave1 = [e for e in events(applied.stdout)[:wave1_at] if e.get("event") == "progress"]
    assert progress and any(f"Deployment/{namespace}/web" in e["pending"] for e in before_wave1), progress

    # A crash-looping image in wave 0 with a new wave-1 object: wave 1 is never written.
    repo.edit("k8s/20-deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/crash:1")
    (repo.root / "k8s" / "51-later.yaml").write_text(_late_configmap(namespace, "later"))
    repo.commit("wave 0 crash-loops")
    failed = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    steps = order(events(failed.stdout))
    assert f"change ConfigMap/{namespace}/later" not in steps and "wave 1" not in steps, steps
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    cm = client.resource_type("v1", "ConfigMap")
    assert cm is not None
    names = {item["metadata"]["name"] for item in client.request("GET", cm.path(namespace))["items"]}
    assert "later" not in names and "late" in names, names
    deploy_type = client.resource_type("apps/v1", "Deployment")
    assert deploy_type is not None
    live = client.request("GET", deploy_type.path(namespace, "web"))
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.7.1"


@pytest.mark.swarm
def test_swarm_waves_are_applied_in_order_each_healthy_first_and_a_failed_wave_stops_the_next(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    app = f"demo-{stack[-6:]}"
    repo = make_repo(tmp_path, swarm_example(0), dict(os.environ))
    (repo.root / "gitops.yaml").write_text(f"""version: 1
apps:
  - name: {app}
    backend: swarm
    paths: [swarm/compose.yaml]
    env_files: [swarm/demo.env]
    target: {{stack: {stack}}}
    rollout: {{timeout: 3m}}
""")
    # The published port is not needed here; web goes in wave 1, after the worker (wave 0).
    repo.edit("swarm/compose.yaml", '    ports:\n      - "0:8080"\n', "")
    repo.edit("swarm/compose.yaml", "  web:\n", "  web:\n    x-gitops-wave: 1\n")
    repo.commit("web after the worker")
    applied = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    steps = order(events(applied.stdout))
    worker, web = f"change Service/{stack}/{stack}_worker", f"change Service/{stack}/{stack}_web"
    assert steps.index("wave 0") < steps.index(worker) < steps.index("rollout") < steps.index("wave 1") \
        < steps.index(web), steps
    assert docker_api.inspect_service(f"{stack}_web")["Spec"]["Labels"]["gitops.dev/wave"] == "1"

    # The worker fails its rollout; a new wave-1 service is never created, web keeps its image.
    repo.edit("swarm/compose.yaml", "  worker:\n    image: gitops-test/app:${APP_TAG:-1}",
              "  worker:\n    image: gitops-test/fail:1")
    repo.edit("swarm/compose.yaml", "networks:\n  front: {}", "  late:\n    image: gitops-test/app:1\n"
              "    x-gitops-wave: 1\n    x-gitops-ignore: healthcheck,single-replica -- a test service\n"
              "    deploy:\n      resources:\n        limits: {cpus: '0.1', memory: 16M}\n"
              "        reservations: {cpus: '0.01', memory: 8M}\nnetworks:\n  front: {}")
    repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")  # web changes too, in wave 1
    repo.commit("the worker fails")
    failed = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    steps = order(events(failed.stdout))
    assert "wave 1" not in steps and f"change Service/{stack}/{stack}_late" not in steps, steps
    names = {s["Spec"]["Name"] for s in docker_api.services(filters={"label": f"com.docker.stack.namespace={stack}"})}
    assert f"{stack}_late" not in names, names
    web_image = docker_api.inspect_service(f"{stack}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert web_image.startswith("gitops-test/app:1"), web_image


def test_a_depends_on_cycle_is_refused_naming_the_apps(tmp_path: Path) -> None:
    repo = Repo(tmp_path, dict(os.environ))
    (tmp_path / "gitops.yaml").write_text("""version: 1
apps:
  - name: a
    backend: swarm
    paths: [a.yaml]
    target: {stack: a}
    depends_on: [b]
  - name: b
    backend: swarm
    paths: [a.yaml]
    target: {stack: b}
    depends_on: [a]
""")
    (tmp_path / "a.yaml").write_text("services:\n  s:\n    image: gitops-test/app:1\n")
    for command in (("validate",), ("plan",), ("apply", "--auto-approve")):
        done = repo.gitops(*command)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "gitops.yaml" in done.stderr + done.stdout and "a cycle: a -> b -> a" in done.stderr + done.stdout, \
            (command, done.stderr)
