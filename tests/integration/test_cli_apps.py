"""The CLI end to end on both real backends, with a git repository made from examples/repo.

Each test copies examples/repo into a fresh git repository, renames the app, its namespace or
stack and its published port so tests never collide, and drives `gitops` as a user would:
plan with --detailed-exitcode, apply, a saved plan refused as stale, a failing revision rolled
back with exit code 3, status and history.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repos import Repo, both_apps, free_port, kube_example, make_repo, swarm_example


def _head(repo: Repo) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo.root, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.kube
def test_kubernetes_app_through_the_cli(kube_cluster: Any, namespace: str, tmp_path: Path) -> None:
    app = f"web-{namespace[-6:]}"
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo = make_repo(tmp_path, kube_example(namespace, app), env)

    first = repo.gitops("plan", app, "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert f"+ Deployment/{namespace}/web" in first.stdout
    assert "Plan: 6 to create, 1 to update" in first.stdout  # the test namespace exists: taken over

    applied = repo.gitops("apply", app, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applied (release 1)" in applied.stdout
    assert repo.gitops("plan", app, "--detailed-exitcode").returncode == 0

    # A secret change is shown without its value; a saved plan goes stale when the cluster moves.
    repo.edit("k8s/10-config.yaml", "API_TOKEN: change-me", "API_TOKEN: s3cr3t-value")
    repo.commit("rotate token")
    saved = repo.gitops("plan", app, "--out", "plan.json", "--detailed-exitcode")
    assert saved.returncode == 2
    assert f"~ Secret/{namespace}/web-secret" in saved.stdout and "/data/API_TOKEN" in saved.stdout
    plan_text = (repo.root / "plan.json").read_text()
    assert "s3cr3t-value" not in saved.stdout + plan_text and "change-me" not in plan_text
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    cm = client.resource_type("v1", "ConfigMap")
    assert cm is not None
    client.request("PATCH", cm.path(namespace, "web-config"), body={"data": {"LOG_LEVEL": "debug"}},
                   content_type="application/merge-patch+json")
    stale = repo.gitops("apply", "plan.json")
    assert stale.returncode == 1 and "stale" in stale.stderr
    fresh = repo.gitops("plan", app, "--out", "p.plan")  # any name: a saved plan is known by its content
    assert "~ ConfigMap" in fresh.stdout and '"debug" → "info"' in fresh.stdout  # drift back to git
    hint = shlex.split(fresh.stdout.split("apply it with: ")[1].strip())
    assert hint == ["gitops", "apply", "p.plan"]
    done = repo.gitops(*hint[1:], "--force-conflicts")
    assert done.returncode == 0, done.stdout + done.stderr

    # A crashing image: exit code 3, everything back, the revision marked bad.
    repo.edit("k8s/20-deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/crash:1")
    repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn")
    repo.commit("bad release")
    failed = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    if failed.returncode != 3:  # show the workload's state to whoever reads the failure
        rs_type, pod_type = client.resource_type("apps/v1", "ReplicaSet"), client.resource_type("v1", "Pod")
        dep_type = client.resource_type("apps/v1", "Deployment")
        assert rs_type and pod_type and dep_type
        dump = {"deployment": client.get(dep_type, namespace, "web"),
                "replicasets": [(r["metadata"]["name"], r["spec"], r.get("status"))
                                for r in client.list(rs_type, namespace)],
                "pods": [(p["metadata"]["name"], p["metadata"].get("deletionTimestamp"),
                          p.get("status", {}).get("phase")) for p in client.list(pod_type, namespace)]}
        pytest.fail(f"exit {failed.returncode}\n{failed.stdout[-3000:]}\n{json.dumps(dump, indent=1)[:12000]}")
    events = [json.loads(line) for line in failed.stdout.splitlines()]
    assert {"apply", "failed", "rollback", "result"} <= {e["event"] for e in events}
    result = events[-1]
    assert result["outcome"] == "rolled-back" and "CrashLoopBackOff" in result["error"]
    assert client.get(cm, namespace, "web-config")["data"]["LOG_LEVEL"] == "info"  # type: ignore[index]

    status = repo.gitops("status", app, "--output", "json")
    assert status.returncode == 0
    [state] = json.loads(status.stdout)
    assert state["sync"] == "OutOfSync" and state["health"] == "Healthy"
    assert state["last"]["outcome"] == "rolled-back"
    history = repo.gitops("history", app)
    assert history.returncode == 0
    assert "failed" in history.stdout and "rolled-back" in history.stdout and "bad revisions" in history.stdout
    again = repo.gitops("apply", app, "--auto-approve")
    assert again.returncode == 1 and "marked bad" in again.stderr


@pytest.mark.kube
def test_fields_git_declares_are_taken_over_from_another_manager_or_refused_without_marking_bad(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """`kubectl patch` changes a value git sets. By default the plan says it takes the field over and
    apply does; with `sync.take_over: false` the apply is refused with the conflict, and the revision
    is not marked bad (it is fine; the field's owner is the problem)."""
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env)
    assert repo.gitops("apply", app, "--auto-approve").returncode == 0
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    cm = client.resource_type("v1", "ConfigMap")
    assert cm is not None

    def kubectl_patch(value: str) -> None:
        client.request("PATCH", cm.path(namespace, "web-config") + "?fieldManager=kubectl-patch",
                       body={"data": {"LOG_LEVEL": value}}, content_type="application/merge-patch+json")

    def log_level() -> str:
        return str(client.get(cm, namespace, "web-config")["data"]["LOG_LEVEL"])  # type: ignore[index]

    kubectl_patch("debug")
    plan = repo.gitops("plan", app)
    assert "takes over /data/LOG_LEVEL from kubectl-patch" in plan.stdout, plan.stdout
    applied = repo.gitops("apply", app, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert log_level() == "info"

    repo.edit("gitops.yaml", "    paths: [k8s]\n", "    paths: [k8s]\n    sync: {prune: true, take_over: false}\n")
    repo.commit("refuse conflicts")
    kubectl_patch("debug")
    plan = repo.gitops("plan", app)
    assert "conflict: refused on apply" in plan.stdout and "kubectl-patch" in plan.stdout, plan.stdout
    for _ in range(2):  # refused the same way each time; never marked bad, never "failed before"
        refused = repo.gitops("apply", app, "--auto-approve")
        assert refused.returncode != 0 and "conflict" in (refused.stdout + refused.stderr).lower()
        assert "marked bad" not in refused.stderr
    assert log_level() == "debug"
    history = json.loads(repo.gitops("history", app, "--output", "json").stdout)
    assert history["bad_revisions"] == []
    forced = repo.gitops("apply", app, "--auto-approve", "--force-conflicts")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert log_level() == "info"
    client.close()


def kube_repo(tmp_path: Path, namespace: str, env: dict[str, str]) -> tuple[Repo, str]:
    app = f"web-{namespace[-6:]}"
    repo = make_repo(tmp_path, kube_example(namespace, app), env)
    return repo, app


def kill_during_rollout(repo: Repo, *args: str) -> list[dict[str, Any]]:
    """Run `gitops apply ... --output json` and SIGKILL it once it is watching the rollout, i.e.
    after every write of the apply (the events it printed are returned)."""
    process = subprocess.Popen([sys.executable, "-m", "gitops", "apply", *args, "--output", "json"],
                               cwd=repo.root, env=repo.env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    events: list[dict[str, Any]] = []
    for line in process.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "rollout":
            process.send_signal(signal.SIGKILL)
            break
    process.wait(30)
    assert process.returncode == -signal.SIGKILL, events
    return events


@pytest.mark.kube
def test_a_cli_apply_killed_during_a_crashing_rollout_is_rolled_back_by_the_rerun(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """Killed mid-rollout, the crash-looping revision must not become the 'last good' release."""
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env)
    assert repo.gitops("apply", app, "--auto-approve").returncode == 0
    repo.edit("k8s/20-deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/crash:1")
    repo.commit("crashing image")
    events = kill_during_rollout(repo, app, "--auto-approve")
    assert any(e["event"] == "change" and "Deployment" in e["object"] for e in events)

    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    deployment = client.resource_type("apps/v1", "Deployment")
    assert deployment is not None

    def image() -> str:
        live = client.get(deployment, namespace, "web")
        assert live is not None
        return str(live["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image() == "gitops-test/crash:1"  # the dead runner's write is live
    rerun = repo.gitops("apply", app, "--auto-approve", "--output", "json")  # waits for the dead lease
    assert rerun.returncode == 3, rerun.stdout[-3000:] + rerun.stderr
    result = json.loads(rerun.stdout.splitlines()[-1])
    assert result["outcome"] == "rolled-back" and "CrashLoopBackOff" in result["error"]
    assert image() == "ghcr.io/stefanprodan/podinfo:6.7.1"
    history = repo.gitops("history", app)
    assert "bad revisions" in history.stdout
    again = repo.gitops("apply", app, "--auto-approve")
    assert again.returncode == 1 and "marked bad" in again.stderr
    status = repo.gitops("status", app, "--output", "json")
    [state] = json.loads(status.stdout)
    assert state["last"]["outcome"] == "rolled-back" and state["health"] == "Healthy"


@pytest.mark.swarm
def test_swarm_stack_through_the_cli(swarm_cluster: Any, stack: str, tmp_path: Path) -> None:
    app = f"demo-{stack[-6:]}"
    port = free_port()
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"^  - name: demo$", f"  - name: {app}"),
        ("gitops.yaml", r"stack: demo$", f"stack: {stack}"),
        *swarm_example(port),
    ], dict(os.environ))
    assert repo.gitops("plan", app, "--detailed-exitcode").returncode == 2
    applied = repo.gitops("apply", app, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    noop = repo.gitops("plan", app, "--detailed-exitcode")
    assert noop.returncode == 0, noop.stdout

    repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
    repo.commit("v2")
    plan = repo.gitops("plan", app)
    assert f"~ Service/{stack}/{stack}_web" in plan.stdout and "gitops-test/app:2" in plan.stdout
    assert f"~ Service/{stack}/{stack}_web  update  [swarm/compose.yaml:4]" in plan.stdout  # its own line
    [web] = [c for c in json.loads(repo.gitops("plan", app, "--output", "json").stdout)["apps"][0]["changes"]
             if c["name"] == f"{stack}_web"]
    assert web["origin"] == "swarm/compose.yaml:4"
    assert repo.gitops("apply", app, "--auto-approve").returncode == 0
    good = _head(repo)

    repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}\n    ports",
              "image: gitops-test/fail:1\n    ports")
    repo.commit("bad")
    failed = repo.gitops("apply", app, "--auto-approve")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "rolled back to revision" in failed.stdout
    bad = _head(repo)
    # the last line names both releases, as history lists them
    assert failed.stdout.strip().splitlines()[-1] == (
        f"{app}: rolled back: release 3 (revision {bad[:12]}) failed; release 4 restored revision {good[:12]}")
    rows = [line.split()[:3] for line in repo.gitops("history", app).stdout.splitlines()[1:3]]
    assert rows == [["4", good[:20], "rolled-back"], ["3", bad[:20], "failed"]]
    status = json.loads(repo.gitops("status", app, "--output", "json").stdout)[0]
    assert status["health"] == "Healthy", status["problems"]
    assert status["last"]["outcome"] == "rolled-back"


@pytest.mark.swarm
def test_an_app_that_cannot_be_applied_does_not_stop_the_next_one(swarm_cluster: Any, stack: str,
                                                                  tmp_path: Path) -> None:
    """`gitops apply` of two apps, the first on an engine nobody listens on: its error is reported
    (exit 1), and the second app is applied all the same, its result printed."""
    app = f"demo-{stack[-6:]}"
    port, closed = free_port(), free_port()
    repo = make_repo(tmp_path, [
        *swarm_example(port),
    ], dict(os.environ))
    (repo.root / "gitops.yaml").write_text(f"""version: 1
apps:
  - name: down
    backend: swarm
    paths: [swarm/compose.yaml]
    env_files: [swarm/demo.env]
    target: {{stack: down{stack[-6:]}, host: "tcp://127.0.0.1:{closed}"}}
  - name: {app}
    backend: swarm
    paths: [swarm/compose.yaml]
    env_files: [swarm/demo.env]
    target: {{stack: {stack}}}
    rollout: {{timeout: 2m}}
""")
    repo.commit("two apps, the first unreachable")
    done = repo.gitops("apply", "--auto-approve")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: app down:" in done.stderr and "cannot reach" in done.stderr and str(closed) in done.stderr, \
        done.stderr
    assert f"{app}: applied (release 1)" in done.stdout, done.stdout
    status = json.loads(repo.gitops("status", app, "--output", "json").stdout)[0]
    assert status["sync"] == "Synced" and status["last"]["outcome"] == "succeeded"
    # As JSON, both results are there: the failed one with its error.
    again = repo.gitops("apply", "--auto-approve", "--output", "json")
    results = [json.loads(line) for line in again.stdout.splitlines() if '"event": "result"' in line]
    assert [(r["app"], r["outcome"]) for r in results] == [("down", "failed"), (app, "no-op")]
    assert str(closed) in results[0]["error"] and again.returncode == 1


@pytest.mark.kube
@pytest.mark.swarm
def test_a_kubernetes_app_waits_for_the_swarm_app_it_depends_on(kube_cluster: Any, swarm_cluster: Any,
                                                                namespace: str, stack: str, tmp_path: Path) -> None:
    """depends_on across orchestrators: `web` (Kubernetes) is applied only once `demo` (Swarm) is
    healthy at the revision; a demo that fails its rollout stops web, which keeps what it had."""
    web, demo = f"web-{namespace[-6:]}", f"demo-{stack[-6:]}"
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo = make_repo(tmp_path, both_apps(namespace, stack, web, demo, f"    depends_on: [{demo}]"), env)
    repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}\n    ports",
              "image: gitops-test/fail:1\n    ports")
    repo.commit("demo broken")
    plan = repo.gitops("plan")
    assert f"app {web}: waiting for `{demo}`" in plan.stderr, plan.stdout + plan.stderr
    first = repo.gitops("apply", "--auto-approve")
    assert first.returncode == 1, first.stdout + first.stderr  # web refused (1) outranks demo's rollback (3)
    assert f"error: app {web}: waiting for `{demo}` (rolled-back" in first.stderr, first.stderr
    status = {s["app"]: s for s in json.loads(repo.gitops("status", "--output", "json").stdout)}
    assert status[web]["last"] is None  # nothing of web was applied

    repo.edit("swarm/compose.yaml", "image: gitops-test/fail:1\n    ports",
              "image: gitops-test/app:${APP_TAG:-1}\n    ports")
    repo.commit("demo fixed")
    second = repo.gitops("apply", "--auto-approve")
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.index(f"{demo}: applied") < second.stdout.index(f"{web}: applied"), second.stdout
    # Applying web alone checks demo at this revision on its target: healthy, so it goes on.
    alone = repo.gitops("apply", web, "--auto-approve")
    assert alone.returncode == 0 and "waiting" not in alone.stderr, alone.stdout + alone.stderr

    # demo fails again in a commit that changes web too: web keeps its last good release, and
    # status (text and JSON) says what it waits for.
    kept = json.loads(repo.gitops("status", "--output", "json").stdout)
    kept_release = {s["app"]: s for s in kept}[web]["last"]
    repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}\n    ports",
              "image: gitops-test/fail:1\n    ports")
    repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
    repo.commit("demo broken again, web changed")
    third = repo.gitops("apply", "--auto-approve")
    assert third.returncode == 1, third.stdout + third.stderr
    assert f"error: app {web}: waiting for `{demo}` (rolled-back" in third.stderr, third.stderr
    status = {s["app"]: s for s in json.loads(repo.gitops("status", "--output", "json").stdout)}
    assert status[web]["last"] == kept_release, status[web]  # the same release: nothing of web was written
    assert status[web]["waiting"].startswith(f"waiting for `{demo}` ("), status[web]
    assert f"{web}: waiting for `{demo}`" in repo.gitops("status").stdout
