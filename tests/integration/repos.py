"""Git repositories made from examples/repo for the tests that drive `gitops` as a user would."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from testsupport import trim_example

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "repo"
HELM_EXAMPLE = REPO / "examples" / "helm"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


class Repo:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    def edit(self, path: str, old: str, new: str) -> None:
        file = self.root / path
        text = file.read_text()
        assert old in text, f"{old!r} not in {path}"
        file.write_text(text.replace(old, new))

    def commit(self, message: str) -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", message)

    def gitops(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gitops", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


def swarm_example(port: int) -> list[tuple[str, str, str]]:
    """The example's Swarm app published on ``port``, with a quicker rolling update (replacements
    for :func:`make_repo`)."""
    return [
        ("swarm/compose.yaml", r'"8080:8080"', f'"{port}:8080"'),
        ("swarm/compose.yaml", r"delay: 5s", "delay: 1s"),
        ("swarm/compose.yaml", r"monitor: 15s", "monitor: 3s"),
    ]


def kube_example(namespace: str, app: str, settings: str = "") -> list[tuple[str, str, str]]:
    """Replacements for :func:`make_repo`: the example's Kubernetes app as ``app`` in
    ``namespace`` (with ``settings``, lines of its gitops.yaml entry)."""
    return [
        ("gitops.yaml", r"^  - name: web$", f"  - name: {app}" + (f"\n{settings}" if settings else "")),
        ("gitops.yaml", r"namespace: web$", f"namespace: {namespace}"),
        *((f"k8s/{f.name}", r"namespace: web$", f"namespace: {namespace}") for f in (EXAMPLE / "k8s").iterdir()),
        ("k8s/00-namespace.yaml", r"name: web$", f"name: {namespace}"),
    ]


def both_apps(namespace: str, stack: str, web: str, demo: str, web_settings: str) -> list[tuple[str, str, str]]:
    """Replacements for :func:`make_repo`: the example's Kubernetes app as ``web`` in ``namespace``
    (with ``web_settings``, lines of its gitops.yaml entry) and its Swarm app as ``demo`` in
    ``stack``, published on a free port."""
    return [
        *kube_example(namespace, web, web_settings),
        ("gitops.yaml", r"^  - name: demo$", f"  - name: {demo}"),
        ("gitops.yaml", r"stack: demo$", f"stack: {stack}"),
        *swarm_example(free_port()),
    ]


def make_repo(tmp_path: Path, replacements: list[tuple[str, str, str]], env: dict[str, str],
              example: Path = EXAMPLE, *, promotion: bool = False, extras: bool = False) -> Repo:
    """A git repository of ``example`` with the replacements made. The example's promotion apps
    (fixed namespaces shop-staging and shop-production) are left out unless ``promotion``, and
    its Helm app and override stack (catalog, api) unless ``extras``: the tests that apply the
    whole example must not meet on them (and a Helm app needs helm)."""
    root = tmp_path / "repo"
    shutil.copytree(example, root)
    repo = Repo(root, env)
    if example == EXAMPLE:
        trim_example(root, promotion=promotion, extras=extras)
    for path, pattern, new in replacements:
        file = root / path
        file.write_text(re.sub(pattern, new, file.read_text(), flags=re.MULTILINE))
    git(root, "init", "-q", "-b", "main")
    repo.commit("initial")
    return repo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
