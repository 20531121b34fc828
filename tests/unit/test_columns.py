"""Diagnostics carry the 1-based column of the offending key (or item) as the YAML loader sees
it, next to the line: Kubernetes schema problems, compose problems (an override file's own file,
line and column), policy findings, loader problems; and the CI views print it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gitops import engine
from gitops.model.diagnostics import Diagnostic
from gitops.render import Renderer
from gitops.render.yaml import load
from gitops.views import ci

DATA = Path(__file__).parent / "data" / "compose-merge"

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: http}]
          resources: {requests: {cpu: 10m, memory: 8Mi}, limits: {cpu: 10m, memory: 8Mi}}
"""


def _at(d: Diagnostic) -> tuple[str | None, int | None, int | None]:
    return d.file, d.line, d.column


def _columns(text: str, needle: str) -> tuple[int, int]:
    """The 1-based line and column where ``needle`` first stands in ``text``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def test_a_bad_field_in_a_manifest_has_the_column_of_its_key(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    report = engine.validate(["m.yaml"], cwd=tmp_path, env={}, policy=False)
    [error] = report.errors
    assert error.pointer == "/spec/template/spec/containers/0/ports/0/containerPort"
    assert _at(error) == ("m.yaml", 16, 32) == ("m.yaml", *_columns(MANIFEST, "containerPort"))
    assert str(error).startswith("error: m.yaml:16:32, document 2, Deployment/shop/web, field /spec/template")


def test_the_loader_and_the_re_read_agree_on_columns(tmp_path: Path) -> None:
    """Lines kept by the loader (a plain file) and a re-read of the stream (a manifest without
    kept lines: aliases) give the same column."""
    with_alias = MANIFEST.replace("metadata: {labels: {app: web}}", "metadata: {labels: &l {app: web}}")
    with_alias = with_alias.replace("selector: {matchLabels: {app: web}}", "selector: {matchLabels: {app: web}}\n"
                                    "  minReadySeconds: x")
    (tmp_path / "m.yaml").write_text(with_alias)
    assert load(with_alias, "m.yaml", track_lines=True).documents[1].lines is not None  # an anchor alone is tracked
    (tmp_path / "n.yaml").write_text(with_alias + "  strategy: {x: *l}\n")
    assert load(with_alias + "  strategy: {x: *l}\n", "n.yaml", track_lines=True).documents[1].lines is None
    found = {}
    for name in ("m.yaml", "n.yaml"):
        report = engine.validate([name], cwd=tmp_path, env={}, policy=False)
        found[name] = {(d.pointer, d.line, d.column) for d in report.errors if d.pointer == "/spec/minReadySeconds"}
    assert found["m.yaml"] == found["n.yaml"] == {("/spec/minReadySeconds", 10, 3)}


def test_a_bad_field_in_a_compose_file(tmp_path: Path) -> None:
    text = 'version: "3.8"\nservices:\n  web:\n    image: nginx:1.27\n    deploy: {replicas: many}\n'
    (tmp_path / "compose.yaml").write_text(text)
    report = engine.validate(["compose.yaml"], cwd=tmp_path, env={}, policy=False)
    [error] = [d for d in report.errors if d.pointer == "/services/web/deploy/replicas"]
    assert _at(error) == ("compose.yaml", 5, 14) == ("compose.yaml", *_columns(text, "replicas"))


def test_a_problem_in_an_override_compose_file_keeps_its_file_line_and_column(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "repo")
    root = tmp_path / "repo"
    (root / "gitops.yaml").write_text("version: 1\napps:\n  - name: s\n    backend: swarm\n"
                                      "    paths: [base.yml, bad-override.yml]\n    target: {stack: s}\n")
    report = engine.validate(cwd=root, env={})
    [problem] = [d for d in report.diagnostics if "mem_limit" in d.message]
    override = (root / "bad-override.yml").read_text()
    assert _at(problem) == ("bad-override.yml", 6, 5) == ("bad-override.yml", *_columns(override, "mem_limit"))


def test_a_policy_finding_has_the_column_of_its_field(tmp_path: Path) -> None:
    text = MANIFEST.replace("containerPort: http", "containerPort: 80").replace("image: nginx:1.27",
                                                                                "image: nginx:latest")
    (tmp_path / "m.yaml").write_text(text)
    report = engine.validate(["m.yaml"], cwd=tmp_path, env={})
    [finding] = [d for d in report.diagnostics if d.code == "image-tag"]
    assert finding.pointer == "/spec/template/spec/containers/0/image"
    assert _at(finding) == ("m.yaml", 15, 11) == ("m.yaml", *_columns(text, "image:"))


def test_loader_problems_have_columns() -> None:
    loaded = load("a: 1\nb:\n  c: 1\n  c: 2\n", "x.yaml")
    [duplicate] = loaded.diagnostics
    assert (duplicate.code, duplicate.line, duplicate.column) == ("duplicate-key", 4, 3)
    [syntax] = load("a: 1\n  b: 2\n", "x.yaml").diagnostics  # libyaml's mark: the ':' after b
    assert (syntax.code, syntax.line, syntax.column) == ("yaml-syntax", 2, 4)


def test_a_document_level_problem_has_the_column_of_the_document(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\n---\n  - not an object\n"
    renderer = Renderer(tmp_path, None, {})
    (tmp_path / "x.yaml").write_text(text)
    renderer.add_path(tmp_path / "x.yaml")
    problems = {d.code: d for d in renderer.result.diagnostics}
    assert _at(problems["not-an-object"]) == ("x.yaml", 4, 3)


def test_ci_views_print_the_column(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    report = engine.validate(["m.yaml"], cwd=tmp_path, env={}, policy=False)
    [annotation] = [line for line in ci.github(report).splitlines() if line.startswith("::error")]
    assert annotation.startswith("::error file=m.yaml,line=16,col=32,title=")
    [result] = json.loads(ci.sarif_text(report))["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 16, "startColumn": 32}
    assert report.to_dict()["diagnostics"][0]["column"] == 32
    assert "| error | 16:32 |" in ci.validation_markdown(report)
