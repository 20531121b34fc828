"""The prune guards through the CLI on the real control plane, as a user meets them: an object that
opts out is kept and shown as orphaned by `status`, an emptied folder is refused by `plan` and
`apply` (exit 1, nothing deleted), and `--allow-mass-delete` lifts it and is recorded in history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kube


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def configmap(name: str, namespace: str, annotations: dict[str, str] | None = None) -> str:
    meta = {"name": name, "namespace": namespace, **({"annotations": annotations} if annotations else {})}
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": name}})


def test_an_emptied_folder_is_refused_and_opted_out_objects_are_kept_and_shown(
        kube_cluster: Any, namespace: str, tmp_path: Path) -> None:
    app = f"p-{namespace[-6:]}"
    root = tmp_path / "repo"
    (root / "k8s").mkdir(parents=True)
    (root / "gitops.yaml").write_text(
        f"version: 1\napps:\n  - name: {app}\n    backend: kubernetes\n    paths: [k8s]\n"
        f"    target: {{namespace: {namespace}}}\n    sync: {{prune: true}}\n    rollout: {{timeout: 60s}}\n")
    for name in ("a", "c"):
        (root / "k8s" / f"{name}.yaml").write_text(configmap(name, namespace))
    (root / "k8s" / "b.yaml").write_text(configmap("b", namespace, {"gitops.dev/prune": "disabled"}))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "three configmaps")
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}

    def gitops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gitops", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=300)

    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    cm = client.resource_type("v1", "ConfigMap")
    assert cm is not None

    def present() -> set[str]:
        return {o["metadata"]["name"] for o in client.list(cm, namespace, label_selector=f"gitops.dev/app={app}")}

    try:
        first = gitops("apply", "--auto-approve")
        assert first.returncode == 0, first.stdout + first.stderr
        assert present() == {"a", "b", "c"}

        (root / "k8s" / "b.yaml").unlink()
        git(root, "commit", "-qam", "b leaves git")
        plan = gitops("plan")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert f"= ConfigMap/{namespace}/b  kept (prune disabled)" in plan.stdout
        assert "0 to delete" in plan.stdout and "1 kept." in plan.stdout
        assert gitops("apply", "--auto-approve").returncode == 0
        assert present() == {"a", "b", "c"}
        status = gitops("status")
        assert f"{app}: orphaned: ConfigMap/{namespace}/b (prune disabled" in status.stdout, status.stdout

        # The folder still exists but is empty: not "delete everything".
        for name in ("a", "c"):
            (root / "k8s" / f"{name}.yaml").unlink()
        git(root, "commit", "-qam", "emptied")
        assert (root / "k8s").is_dir()
        refused = gitops("plan", "--out", "plan.json")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "REFUSED" in refused.stdout and "renders no objects" in refused.stdout
        assert "--allow-mass-delete" in refused.stdout and "refused (empty)" in refused.stderr
        assert not (root / "plan.json").exists()
        as_json = gitops("plan", "--output", "json")
        assert as_json.returncode == 1
        assert [b["reason"] for b in json.loads(as_json.stdout)["apps"][0]["blocked"]] == ["empty"]
        applied = gitops("apply", "--auto-approve")
        assert applied.returncode == 1 and "renders no objects" in applied.stderr, applied.stdout + applied.stderr
        assert present() == {"a", "b", "c"}

        allowed = gitops("apply", "--auto-approve", "--allow-mass-delete")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert present() == {"b"}  # the one that opts out stays
        history = json.loads(gitops("history", app, "--output", "json").stdout)
        assert [r.get("overrides", []) for r in history["releases"]] == [[], [], ["mass-delete"]]
        assert "mass-delete" in gitops("history", app).stdout
    finally:
        secret = client.resource_type("v1", "Secret")
        lease = client.resource_type("coordination.k8s.io/v1", "Lease")
        if secret is not None:
            client.delete(secret, "gitops-system", f"gitops-state-{app}")
        if lease is not None:
            client.delete(lease, "gitops-system", f"gitops-lock-{app}")
        client.close()
