"""`gitops diff` over real git histories (no cluster): each test copies examples/repo into a fresh
git repository, commits a change and diffs the two commits as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from repos import Repo, make_repo

SECRET = "s3cr3t-Value-42"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    env = {**os.environ, "GITOPS_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}
    return make_repo(tmp_path, [], env)


def diff(repo: Repo, *args: str) -> tuple[int, str, str]:
    done = repo.gitops("diff", "--base", "HEAD~1", "--head", "HEAD", *args)
    return done.returncode, done.stdout, done.stderr


def test_a_changed_image_is_a_field_change_and_unchanged_apps_are_listed(repo: Repo) -> None:
    repo.edit("k8s/20-deployment.yaml", "podinfo:6.7.1", "podinfo:6.8.0")
    repo.commit("new image")
    code, out, err = diff(repo, "--detailed-exitcode")
    assert code == 2, out + err
    assert re.search(r"~ Deployment/web/web  update  \[k8s/20-deployment.yaml\[doc 1\]:1\]", out), out
    assert ('~ /spec/template/spec/containers/[name=web]/image: "ghcr.io/stefanprodan/podinfo:6.7.1" → '
            '"ghcr.io/stefanprodan/podinfo:6.8.0"') in out
    assert "web: 0 to create, 1 to update, 0 to delete, 6 unchanged" not in out  # text says "app web (...)"
    assert "app web (kubernetes): 0 to create, 1 to update, 0 to delete, 6 unchanged" in out
    assert "Unchanged: demo (7 object(s))" in out
    code, out, _ = repo.gitops("diff", "--base", "HEAD", "--head", "HEAD", "--detailed-exitcode").returncode, "", ""
    assert code == 0


def test_added_and_removed_objects(repo: Repo) -> None:
    (repo.root / "k8s/40-cronjob.yaml").unlink()
    (repo.root / "k8s/50-extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: web\ndata:\n  A: b\n")
    repo.commit("swap objects")
    code, out, err = diff(repo, "--output", "json")
    assert code == 0, err
    [web] = [a for a in json.loads(out)["apps"] if a["app"] == "web"]
    assert (web["status"], web["create"], web["update"], web["delete"]) == ("changed", 1, 0, 1)
    actions = {(c["kind"], c["name"]): (c["action"], c["origin"]) for c in web["changes"]}
    assert actions[("ConfigMap", "extra")] == ("create", "k8s/50-extra.yaml[doc 1]:1")
    assert actions[("CronJob", "web-report")][0] == "delete"


def test_a_renamed_app_and_an_added_app(repo: Repo) -> None:
    repo.edit("gitops.yaml", "  - name: web\n", "  - name: site\n")
    repo.commit("rename")
    code, out, err = diff(repo, "--detailed-exitcode")
    assert code == 2, out + err
    assert "app site (kubernetes): renamed from web (7 object(s), unchanged)" in out and "app web" not in out
    text = (repo.root / "gitops.yaml").read_text()
    (repo.root / "gitops.yaml").write_text(text.replace("apps:\n", "apps:\n  - name: extra\n    backend: kubernetes\n"
                                                       "    paths: [k8s/30-service.yaml]\n"
                                                       "    target: {namespace: web}\n", 1))
    repo.commit("add an app")
    code, out, _ = diff(repo)
    assert "app extra (kubernetes): 2 to create, 0 to update, 0 to delete, 0 unchanged (app added to gitops.yaml)" \
        in out, out
    assert "+ Service/web/web  create" in out and "+ Ingress/web/web  create" in out
    (repo.root / "gitops.yaml").write_text(text)
    repo.commit("remove it again")
    code, out, _ = diff(repo)
    assert "app extra (kubernetes): 0 to create, 0 to update, 2 to delete, 0 unchanged (app removed from gitops.yaml)" \
        in out, out


KUSTOMIZE_BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api
          image: example/api:1
"""


def test_a_kustomize_overlay_change(repo: Repo) -> None:
    root = repo.root
    (root / "kz/base").mkdir(parents=True)
    (root / "kz/overlays/prod").mkdir(parents=True)
    (root / "kz/base/deployment.yaml").write_text(KUSTOMIZE_BASE)
    (root / "kz/base/kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    (root / "kz/overlays/prod/kustomization.yaml").write_text(
        "resources: [../../base]\nnamespace: prod\nnamePrefix: prod-\nreplicas:\n  - name: api\n    count: 2\n")
    text = (root / "gitops.yaml").read_text()
    (root / "gitops.yaml").write_text(text + "  - name: api\n    backend: kubernetes\n    paths: [kz/overlays/prod]\n"
                                      "    target: {namespace: prod}\n")
    repo.commit("kustomize app")
    repo.edit("kz/overlays/prod/kustomization.yaml", "count: 2", "count: 5")
    repo.commit("scale prod")
    code, out, err = diff(repo, "api", "--detailed-exitcode")
    assert code == 2, out + err
    assert "~ Deployment/prod/prod-api  update" in out and "~ /spec/replicas: 2 → 5" in out
    assert "demo" not in out  # only the named app


def test_a_compose_variable_change(repo: Repo) -> None:
    repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
    repo.commit("bump tag")
    code, out, err = diff(repo, "demo", "--detailed-exitcode")
    assert code == 2, out + err
    for service in ("demo_web", "demo_worker"):
        assert f"~ Service/demo/{service}  update  [swarm/compose.yaml:" in out
    assert '"gitops-test/app:1" → "gitops-test/app:2"' in out


def test_a_secret_change_is_shown_without_its_value(repo: Repo, tmp_path: Path) -> None:
    repo.edit("k8s/10-config.yaml", "API_TOKEN: change-me", f"API_TOKEN: {SECRET}")
    repo.edit("swarm/api-token.txt", (repo.root / "swarm/api-token.txt").read_text(), SECRET + "\n")
    repo.commit("rotate the token")
    report = tmp_path / "report.html"
    outputs = []
    for args in (["-v"], ["-v", "--output", "json"], ["--output", "markdown", "--html", str(report)]):
        code, out, err = diff(repo, *args)
        assert code == 0, out + err
        outputs.append(out + err)
    text, as_json, markdown = outputs
    page = report.read_text()
    for shown in (*outputs, page):
        assert SECRET not in shown and "change-me" not in shown
    assert "~ Secret/web/web-secret  update" in text and "~ /data/API_TOKEN: (sensitive value) changed" in text
    assert "+  API_TOKEN: (sensitive value, changed)" in text  # the -v YAML diff keeps the fact of the change
    [web] = [a for a in json.loads(as_json)["apps"] if a["app"] == "web"]
    [secret] = [c for c in web["changes"] if c["kind"] == "Secret"]
    assert secret["fields"] == [{"path": "/data/API_TOKEN", "sensitive": True, "before": "(sensitive value)",
                                 "after": "(sensitive value)"}]
    # a Swarm secret is content-named: the new one is created, the old one goes, the service follows
    assert re.search(r"\+ Secret/demo/demo_api_token-\w+  create", text), text
    assert "<details><summary>web</summary>" in markdown and "web: 0 to create, 1 to update" in markdown
    assert "<script" not in page and not re.search(r"(src|href)=", page) and "web-secret" in page


def test_a_commit_that_breaks_validation_is_reported_with_exit_1(repo: Repo) -> None:
    repo.edit("k8s/20-deployment.yaml", "replicas: 2", "replicas: two")
    repo.commit("typo")
    code, out, err = diff(repo, "--detailed-exitcode")
    assert code == 1, out + err
    assert "app web (kubernetes): invalid" in out
    assert re.search(r"head: error: k8s/20-deployment.yaml:\d+.*replicas", out), out


def test_a_repository_whose_gitops_yaml_is_in_a_subdirectory(tmp_path: Path) -> None:
    env = {**os.environ, "GITOPS_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}
    mono = make_repo(tmp_path, [], env)
    (mono.root / "deploy").mkdir()
    for name in ("k8s", "swarm", "gitops.yaml"):
        (mono.root / name).rename(mono.root / "deploy" / name)
    mono.commit("move into deploy/")
    mono.edit("deploy/k8s/20-deployment.yaml", "podinfo:6.7.1", "podinfo:6.8.0")
    done = mono.gitops("diff", "-C", "deploy", "--base", "HEAD", "--detailed-exitcode")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "~ Deployment/web/web  update  [k8s/20-deployment.yaml[doc 1]:1]" in done.stdout
