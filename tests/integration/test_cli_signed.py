"""Signed commits through the CLI, on the real Swarm and Kubernetes: `plan` and `apply` with allowed signers
(an SSH allowed-signers file, GPG public keys) refuse an unsigned commit and a commit signed by
another key with exit code 4, naming the commit and the key, and write nothing to the target;
a commit signed by an allowed key (SSH or GPG) is applied. The keys are real (ssh-keygen, gpg in
a GNUPGHOME of the test's own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from repos import Repo, free_port, kube_example, make_repo, swarm_example
from signing import Keys


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[Keys]:
    made = Keys(tmp_path / "keys")
    yield made
    made.close()


def _swarm_repo(tmp_path: Path, stack: str) -> tuple[Repo, str]:
    app = f"demo-{stack[-6:]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_VERIFY_")}
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"^  - name: demo$", f"  - name: {app}"),
        ("gitops.yaml", r"stack: demo$", f"stack: {stack}"),
        *swarm_example(free_port()),
    ], env)
    return repo, app


def _target(docker_api: Any, stack: str, app: str) -> tuple[str, int, list[str]]:
    """What is written on the swarm: the service's image and version, and the app's state and lock
    configs."""
    [service] = docker_api.services(filters={"name": f"{stack}_web"})
    image = str(service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]).split("@")[0]
    configs = sorted(c["Spec"]["Name"] for c in docker_api.configs() if app in c["Spec"]["Name"])
    return image, int(service["Version"]["Index"]), configs


@pytest.mark.swarm
def test_plan_and_apply_refuse_unsigned_and_foreign_commits_and_apply_signed_ones(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path, keys: Keys
) -> None:
    repo, app = _swarm_repo(tmp_path, stack)
    ssh = ["--verify-ssh", str(keys.allowed_signers)]
    by_alice = keys.commit(repo.root, "signed by alice (SSH)", "alice")
    applied = repo.gitops("apply", app, "--auto-approve", *ssh)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"verified: commit {by_alice[:12]}: good SSH signature by alice@example.com " \
        f"({keys.ssh_fingerprint['alice']})" in applied.stderr
    before = _target(docker_api, stack, app)
    assert before[0] == "gitops-test/app:1"

    repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
    for signer, why in ((None, "is not signed; only commits signed by an allowed signer"),
                        ("mallory", f"is signed by SSH key {keys.ssh_fingerprint['mallory']}, which is not an "
                                    "allowed signer"),
                        ("eve", f"is signed by GPG key {keys.gpg_fingerprint['eve'][-16:]}, which is not an "
                                "allowed signer")):
        commit = keys.commit(repo.root, f"v2 signed by {signer}", signer)
        for command in (["plan", app, "--detailed-exitcode"], ["apply", app, "--auto-approve"],
                        ["apply", app, "--auto-approve", "--output", "json"]):
            refused = repo.gitops(*command, *ssh, "--verify-gpg", str(keys.key_file("bob")))
            assert refused.returncode == 4, refused.stdout + refused.stderr
            assert f"error: commit {commit[:12]} {why}" in refused.stderr, refused.stderr
            assert refused.stderr.rstrip().endswith("nothing was changed") and refused.stdout == ""
        assert _target(docker_api, stack, app) == before, "a refused revision wrote to the swarm"
    history = json.loads(repo.gitops("history", app, "--output", "json").stdout)
    assert len(history["releases"]) == 1

    # GPG: the key from the environment, the repository fetched by URL.
    by_bob = keys.commit(repo.root, "v2 signed by bob (GPG)", "bob")
    remote = subprocess.run([sys.executable, "-m", "gitops", "apply", app, "--auto-approve", "--repo",
                             f"file://{repo.root}", "--ref", "main"], cwd=repo.root, capture_output=True, text=True,
                            env={**repo.env, "GITOPS_VERIFY_GPG": str(keys.key_file("bob"))}, timeout=300)
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert f"verified: commit {by_bob[:12]}: good GPG signature by Bob <bob@example.com> " \
        f"({keys.gpg_fingerprint['bob']})" in remote.stderr
    assert _target(docker_api, stack, app)[0] == "gitops-test/app:2"
    after = _target(docker_api, stack, app)

    # An uncommitted change is not what was signed: refused; the signed HEAD alone is never mixed with it.
    repo.edit("swarm/demo.env", "APP_TAG=2", "APP_TAG=3")
    dirty = repo.gitops("apply", app, "--auto-approve", *ssh, "--verify-gpg", str(keys.key_file("bob")))
    assert dirty.returncode == 4 and f"has uncommitted changes (swarm/demo.env): with signed commits only the " \
        f"signed commit {by_bob[:12]} is applied" in dirty.stderr, dirty.stderr
    assert _target(docker_api, stack, app) == after
    # Without signers nothing is verified (the working tree, as before) ...
    assert repo.gitops("plan", app, "--detailed-exitcode").returncode == 2
    # ... unless gitops.yaml requires them: then it fails closed.
    repo.edit("swarm/demo.env", "APP_TAG=3", "APP_TAG=2")
    (repo.root / "gitops.yaml").write_text((repo.root / "gitops.yaml").read_text() + "verify: {required: true}\n")
    required = keys.commit(repo.root, "verify.required", "alice")
    closed = repo.gitops("plan", app)
    assert closed.returncode == 4 and f"revision {required[:12]}: gitops.yaml requires signed commits" \
        in closed.stderr, closed.stderr
    assert repo.gitops("plan", app, "--detailed-exitcode", *ssh).returncode == 0


@pytest.mark.kube
def test_kubernetes_applies_a_gpg_signed_commit_and_refuses_a_foreign_one(
    kube_cluster: Any, namespace: str, tmp_path: Path, keys: Keys
) -> None:
    from gitops.backends.kubernetes.client import KubeClient

    app = f"web-{namespace[-6:]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_VERIFY_")}
    repo = make_repo(tmp_path, kube_example(namespace, app), {**env, "KUBECONFIG": str(kube_cluster.kubeconfig)})
    gpg = ["--verify-gpg", str(keys.key_file("bob"))]
    by_bob = keys.commit(repo.root, "signed by bob", "bob")
    applied = repo.gitops("apply", app, "--auto-approve", *gpg)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"verified: commit {by_bob[:12]}: good GPG signature by Bob" in applied.stderr

    client = KubeClient(str(kube_cluster.kubeconfig))
    cm, secret = client.resource_type("v1", "ConfigMap"), client.resource_type("v1", "Secret")
    assert cm is not None and secret is not None

    def written() -> tuple[str, str, str]:
        config_map = client.request("GET", cm.path(namespace, "web-config"))
        state = client.request("GET", secret.path("gitops-system", f"gitops-state-{app}"))
        return (config_map["data"]["LOG_LEVEL"], config_map["metadata"]["resourceVersion"],
                state["metadata"]["resourceVersion"])

    before = written()
    assert before[0] == "info"
    repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
    for signer in ("eve", "mallory"):
        commit = keys.commit(repo.root, f"debug, signed by {signer}", signer)
        key = f"GPG key {keys.gpg_fingerprint['eve'][-16:]}" if signer == "eve" else \
            f"SSH key {keys.ssh_fingerprint['mallory']}"
        for command in (["plan", app], ["apply", app, "--auto-approve"]):
            refused = repo.gitops(*command, *gpg)
            assert refused.returncode == 4, refused.stdout + refused.stderr
            assert f"error: commit {commit[:12]} is signed by {key}, which is not an allowed signer" in refused.stderr
        assert written() == before, "a refused revision wrote to the cluster"
