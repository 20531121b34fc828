"""Promotion through the CLI across orchestrators: staging is the example's Swarm app, production
the example's Kubernetes app with ``promote_from`` the Swarm one (one repository, two targets).
`gitops plan`, `apply` and `status` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from repos import Repo, both_apps, make_repo


def head(repo: Repo) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo.root, capture_output=True, text=True,
                          check=True).stdout.strip()


def releases(repo: Repo, app: str) -> list[str]:
    done = repo.gitops("history", app, "--output", "json")
    assert done.returncode == 0, done.stderr
    return [r["revision"] for r in json.loads(done.stdout)["releases"]]


@pytest.mark.kube
@pytest.mark.swarm
def test_kubernetes_production_gets_only_what_succeeded_in_swarm_staging(
    kube_cluster: Any, swarm_cluster: Any, namespace: str, stack: str, tmp_path: Path
) -> None:
    web, demo = f"web-{namespace[-6:]}", f"demo-{stack[-6:]}"
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    promoted = f"    promote_from: {demo}\n    promote_after: 1h"
    repo = make_repo(tmp_path, both_apps(namespace, stack, web, demo, promoted), env)
    first = head(repo)
    plan = repo.gitops("plan")
    assert f"app {web}: waiting for a revision of `{demo}` to succeed (newest: {first[:7]} not applied in " \
           f"{demo})" in plan.stderr, plan.stdout + plan.stderr

    # Staging (Swarm) is applied first; production has nothing that ran an hour there: it waits.
    applied = repo.gitops("apply", "--auto-approve")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert f"{demo}: applied" in applied.stdout
    assert f"error: app {web}: waiting for a revision of `{demo}` to succeed (newest: {first[:7]} succeeded in " \
           f"{demo}" in applied.stderr and "promoted after 1h" in applied.stderr, applied.stderr
    status = {s["app"]: s for s in json.loads(repo.gitops("status", "--output", "json").stdout)}
    assert status[web]["waiting"].startswith(f"waiting for a revision of `{demo}` to succeed"), status[web]
    assert status[web]["last"] is None and status[demo]["waiting"] == ""
    assert f"{web}: waiting for a revision of `{demo}`" in repo.gitops("status").stdout

    # promote_after 0: a gitops.yaml edit that leaves staging's definition alone: the release
    # staging recorded at the first commit vouches for this one.
    repo.edit("gitops.yaml", "promote_after: 1h", "promote_after: 0s")
    repo.commit("promote at once")
    good = head(repo)
    plan = repo.gitops("plan", web)
    assert plan.returncode == 0, plan.stderr
    assert f"promoting {good[:7]} from {demo} (succeeded " in plan.stdout
    assert f"ago as {first[:7]}; only {web}'s files changed since); it is the newest commit" in plan.stdout, \
        plan.stdout
    applied = repo.gitops("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert releases(repo, web) == [good]

    # A commit that crash-loops in staging (and changes production too) is rolled back there and
    # never reaches production, which stays at the revision before it.
    repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}\n    ports",
              "image: gitops-test/fail:1\n    ports")
    repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
    repo.commit("crash-loops in staging")
    bad = head(repo)
    applied = repo.gitops("apply", "--auto-approve")
    assert applied.returncode == 3, applied.stdout + applied.stderr  # staging rolled back
    assert f"{web}: no changes; revision {good[:12]} is applied" in applied.stdout, applied.stdout
    plan = repo.gitops("plan", web)
    assert f"promoting {good[:7]} from {demo}" in plan.stdout
    assert f"git is 1 commit ahead: {bad[:7]} (failed in {demo}" in plan.stdout, plan.stdout
    status = {s["app"]: s for s in json.loads(repo.gitops("status", "--output", "json").stdout)}
    assert status[web]["sync"] == "Synced" and status[web]["last"]["revision"] == good, status[web]
    assert status[web]["promotion"].startswith(f"promoting {good[:7]}")
    assert releases(repo, web) == [good]

    # The fix succeeds in staging, and is promoted in the same run.
    repo.edit("swarm/compose.yaml", "image: gitops-test/fail:1\n    ports",
              "image: gitops-test/app:${APP_TAG:-1}\n    ports")
    repo.commit("fixed")
    fixed = head(repo)
    applied = repo.gitops("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stdout.index(f"{demo}: applied") < applied.stdout.index(f"{web}: applied"), applied.stdout
    assert releases(repo, web) == [good, fixed]
