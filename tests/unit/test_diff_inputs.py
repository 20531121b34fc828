"""`gitops diff` renders an app once when its inputs are the same at both commits: the
fingerprint of what the app reads (its paths, and what its kustomizations and compose files name
elsewhere in the repository) changes exactly when one of those changes, and the diff is the same
as when every app is rendered at both revisions, and as when the renders run one after the other."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gitops import engine

GITOPS_YAML = """\
version: 1
apps:
  - name: web
    backend: kubernetes
    paths: [k8s/overlays/prod]
    target: {namespace: web}
  - name: api
    backend: kubernetes
    paths: [api]
    target: {namespace: api}
  - name: stack
    backend: swarm
    paths: [swarm/compose.yaml]
    target: {stack: stack}
"""

FILES = {
    "gitops.yaml": GITOPS_YAML,
    "k8s/base/kustomization.yaml": "resources: [config.yaml]\n",
    "k8s/base/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {A: '1'}\n",
    "k8s/overlays/prod/kustomization.yaml": "namespace: web\nresources: [../../base, extra.yaml]\n",
    "k8s/overlays/prod/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {B: '2'}\n",
    "api/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api, namespace: api}\ndata: {C: '3'}\n",
    "swarm/compose.yaml": 'version: "3.8"\nservices:\n  web:\n    image: nginx:1.27\n    configs: [site]\n'
                          "configs:\n  site: {file: ../files/site.conf}\n",
    "files/site.conf": "server {}\n",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    commit(root, "first")
    return root


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


def fingerprints(root: Path, ref: str = "HEAD") -> dict[str, str | None]:
    ws = engine.open_ref(root, ref)
    return {app.name: engine._inputs(ws, app) for app in ws.settings.apps}


def test_the_fingerprint_changes_with_what_the_app_reads_only(repo: Path) -> None:
    first = fingerprints(repo)
    assert all(first.values())
    (repo / "api/config.yaml").write_text((repo / "api/config.yaml").read_text().replace("'3'", "'4'"))
    commit(repo, "api")
    second = fingerprints(repo)
    assert (second["web"], second["stack"]) == (first["web"], first["stack"]) and second["api"] != first["api"]
    (repo / "k8s/base/config.yaml").write_text((repo / "k8s/base/config.yaml").read_text().replace("'1'", "'9'"))
    commit(repo, "a base outside the overlay")
    third = fingerprints(repo)
    assert third["web"] != second["web"] and (third["api"], third["stack"]) == (second["api"], second["stack"])
    (repo / "files/site.conf").write_text("server { listen 81; }\n")
    commit(repo, "a config file the compose file names")
    fourth = fingerprints(repo)
    assert fourth["stack"] != third["stack"] and (fourth["web"], fourth["api"]) == (third["web"], third["api"])
    (repo / "k8s/base/new.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n")
    commit(repo, "a file in the base no kustomization names yet (the base directory is read whole)")
    assert fingerprints(repo)["web"] != fourth["web"]


def test_no_fingerprint_where_the_commit_cannot_tell(repo: Path) -> None:
    kustomization = repo / "k8s/overlays/prod/kustomization.yaml"
    kustomization.write_text("resources: [../../base, https://github.com/o/r//deploy?ref=main]\n")
    commit(repo, "a remote resource")
    assert fingerprints(repo)["web"] is None
    kustomization.write_text("resources: [../../../../outside]\n")
    commit(repo, "a base outside the repository")
    assert fingerprints(repo)["web"] is None
    kustomization.write_text("resources: [../../base, extra.yaml]\n")
    (repo / "api/link.yaml").symlink_to("../k8s/base/config.yaml")
    commit(repo, "a symlink")
    found = fingerprints(repo)
    assert found["api"] is None and found["web"] is not None
    local = engine.Workspace(repo, None, engine.open_ref(repo, "HEAD").settings, True)
    assert engine._inputs(local, local.settings.apps[0]) is None  # a work tree may hold uncommitted changes


def test_the_diff_is_the_same_with_and_without_the_fingerprint(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "api/config.yaml").write_text((repo / "api/config.yaml").read_text().replace("'3'", "'4'"))
    (repo / "files/site.conf").write_text("server { listen 81; }\n")
    commit(repo, "api and the site config")
    base, head = engine.open_ref(repo, "HEAD~1"), engine.open_ref(repo, "HEAD")
    rendered: list[tuple[str, str | None]] = []
    offline = engine.offline_objects

    def counted(ws: engine.Workspace, app: engine.config.App, env: object = None) -> object:
        rendered.append((app.name, ws.revision))
        return offline(ws, app, env)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "offline_objects", counted)
    once = engine.diff(base, head, env={})
    assert sorted(rendered) == sorted([("web", base.revision), ("api", base.revision), ("api", head.revision),
                                       ("stack", base.revision), ("stack", head.revision)])
    monkeypatch.setattr(engine, "_inputs", lambda ws, app: None)
    rendered.clear()
    twice = engine.diff(base, head, env={})
    assert len(rendered) == 6
    assert once.to_json() == twice.to_json()
    monkeypatch.setattr(engine, "RENDER_THREADS", 1)  # one render after the other: the same again
    assert engine.diff(base, head, env={}).to_json() == once.to_json()
    statuses = {a.app: (a.status.value, a.unchanged) for a in once.apps}
    assert statuses == {"web": ("unchanged", 2), "api": ("changed", 0), "stack": ("changed", statuses["stack"][1])}


def test_an_app_that_does_not_render_is_rendered_at_both_sides(repo: Path) -> None:
    (repo / "k8s/base/config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n"
                                               "data: {A: [not, a, string]}\n")
    commit(repo, "breaks web")
    (repo / "api/config.yaml").write_text((repo / "api/config.yaml").read_text().replace("'3'", "'4'"))
    commit(repo, "api only")
    result = engine.diff(engine.open_ref(repo, "HEAD~1"), engine.open_ref(repo, "HEAD"), env={})
    [web] = [a for a in result.apps if a.app == "web"]
    assert web.status.value == "invalid"
    assert [e.split(":")[0] for e in web.errors] == ["base", "head"]



def test_git_attributes_on_the_way_count(repo: Path) -> None:
    """A .gitattributes above an app's path may change what the checkout writes (eol, filters)."""
    first = fingerprints(repo)
    (repo / "k8s/.gitattributes").write_text("*.yaml text eol=lf\n")
    commit(repo, "attributes")
    second = fingerprints(repo)
    assert second["web"] != first["web"] and (second["api"], second["stack"]) == (first["api"], first["stack"])
