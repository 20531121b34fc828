"""Validation of Kubernetes manifests and compose files, on small inline inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops import engine
from gitops.errors import GitopsError
from gitops.model.reports import ValidationReport
from gitops.validate.schemas import SchemaStore, available_versions, schema_file_name


def check(tmp_path: Path, text: str, strict: bool = False, name: str = "m.yaml", **kw: object) -> ValidationReport:
    (tmp_path / name).write_text(text)
    kw.setdefault("policy", False)  # these tests are about schemas and semantics; test_policy has the rules
    return engine.validate([name], cwd=tmp_path, strict=strict, env={}, **kw)  # type: ignore[arg-type]


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{{containerPort: 80}}]
"""


def test_schema_versions_are_available_offline() -> None:
    versions = available_versions()
    assert "1.35" in versions
    assert SchemaStore().version == "1.35"
    assert SchemaStore("1.99").version == versions[-1]
    assert schema_file_name("rbac.authorization.k8s.io/v1", "Role") == "role-rbac-v1.json"


def test_unknown_kubernetes_version_is_an_error() -> None:
    with pytest.raises(GitopsError, match=r"no schemas for Kubernetes 1\.10"):
        engine.validate(["x.yaml"], kubernetes_version="1.10")
    with pytest.raises(GitopsError, match="not a Kubernetes version"):
        engine.validate(["x.yaml"], kubernetes_version="latest")


def test_valid_deployment(tmp_path: Path) -> None:
    report = check(tmp_path, DEPLOYMENT.format(replicas=2))
    assert report.ok and report.objects == 1 and report.diagnostics == []


def test_wrong_type_names_file_line_document_pointer(tmp_path: Path) -> None:
    report = check(
        tmp_path, "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n---\n" + DEPLOYMENT.format(replicas='"two"')
    )
    [error] = report.errors
    assert (error.file, error.document, error.line, error.column, error.pointer) == (
        "m.yaml", 2, 9, 3, "/spec/replicas")
    assert error.message == 'expected integer (or null), got string "two"'
    assert error.resource == "Deployment/shop/web"
    assert str(error).startswith("error: m.yaml:9:3, document 2, Deployment/shop/web, field /spec/replicas:")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = DEPLOYMENT.format(replicas='"x"').replace("containerPort: 80", "containerPort: http")
    report = check(tmp_path, text)
    assert {e.pointer for e in report.errors} == {
        "/spec/replicas",
        "/spec/template/spec/containers/0/ports/0/containerPort",
    }


def test_strict_refuses_unknown_fields_and_kinds(tmp_path: Path) -> None:
    text = DEPLOYMENT.format(replicas=1).replace("  replicas: 1\n", "  replicas: 1\n  replica: 1\n")
    text += "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    default = check(tmp_path, text)
    assert default.ok and [w.code for w in default.warnings] == ["unknown-kind"]
    strict = check(tmp_path, text, strict=True)
    assert {(e.code, e.pointer) for e in strict.errors} == {("schema", "/spec/replica"), ("unknown-kind", "/kind")}


def test_removed_api_depends_on_target_version(tmp_path: Path) -> None:
    text = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec: {}\n"
    [error] = check(tmp_path, text).errors
    assert error.code == "removed-api"
    assert error.message == "batch/v1beta1 CronJob was removed in Kubernetes 1.25; use batch/v1 instead"
    text = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\n"
    [error] = check(tmp_path, text).errors
    assert "use networking.k8s.io/v1" in error.message


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
                port: {x-kubernetes-int-or-string: true}
                note: {type: string, nullable: true}
"""


def test_custom_resources_are_validated_against_crds_in_the_repo(tmp_path: Path) -> None:
    good = (
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec: {size: 2, port: http, note: null}\n"
    )
    assert check(tmp_path, CRD + good).diagnostics == []
    bad = "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: b}\nspec: {size: 0, port: 1.5, extra: 1}\n"
    report = check(tmp_path, CRD + bad)
    assert {e.pointer for e in report.errors} == {"/spec/size", "/spec/port"}
    strict = check(tmp_path, CRD + bad, strict=True)
    assert "/spec/extra" in {e.pointer for e in strict.errors}


def test_duplicates_use_group_kind_namespace_name(tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a%s}\n"
    report = check(tmp_path, cm % "" + "---\n" + cm % ", namespace: default")
    [dup] = report.errors
    assert dup.code == "duplicate-object" and dup.document == 2 and "ConfigMap/default/a" in dup.message
    assert check(tmp_path, cm % "" + "---\n" + cm % ", namespace: other").ok
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a%s}\n"
    assert not check(tmp_path, ns % "" + "---\n" + ns % ", namespace: x").ok  # cluster-scoped


def test_missing_keys_and_non_objects(tmp_path: Path) -> None:
    report = check(
        tmp_path, "kind: ConfigMap\nmetadata: {name: a}\n---\n- 1\n---\nhello\n---\napiVersion: v1\nkind: ConfigMap\n"
    )
    assert [(e.code, e.document) for e in report.errors] == [
        ("missing-apiversion", 1),
        ("not-an-object", 2),
        ("not-an-object", 3),
        ("missing-name", 4),
    ]


def test_generate_name_only_object_is_valid(tmp_path: Path) -> None:
    text = (
        "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: pi-}\nspec:\n  template:\n    spec:\n"
        "      containers: [{name: pi, image: perl}]\n      restartPolicy: Never\n"
    )
    assert check(tmp_path, text).ok


def test_kind_list_items_are_expanded(tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n"
        "    metadata: {name: a}\n    data: {k: 1}\n"
    )
    [error] = check(tmp_path, text).errors
    assert error.pointer == "/items/0/data/k" and error.line == 7


def test_file_size_limit(tmp_path: Path) -> None:
    from gitops.render.yaml import Limits

    report = check(tmp_path, "a: " + "x" * 2000 + "\n", limits=Limits(max_file_bytes=1000))
    assert [e.code for e in report.errors] == ["file-too-large"]


def test_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "secret.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n")
    (repo / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    report = engine.validate(["."], cwd=repo, env={})
    assert [e.code for e in report.errors] == ["symlink-escape"]


COMPOSE = """\
services:
  web:
    image: gitops-test/app:${TAG:-1}
    ports: ["8080:8080"]
    restart: always
    deploy:
      update_config: {parallelism: 1, order: start-first}
  builder:
    build: .
"""


def test_compose_for_swarm(tmp_path: Path) -> None:
    report = check(tmp_path, COMPOSE, name="compose.yaml")
    assert report.services == 2
    [error] = report.errors
    assert error.code == "swarm-no-image" and error.pointer == "/services/builder" and error.line == 8
    assert [w.code for w in report.warnings] == ["swarm-ignored"]


def test_compose_schema_messages_like_docker(tmp_path: Path) -> None:
    text = COMPOSE.replace("order: start-first", "order: sideways").replace(
        "    build: .\n", "    image: x\n    platform: linux\n"
    )
    report = check(tmp_path, text, name="compose.yaml")
    messages = sorted(e.message for e in report.errors)
    assert len(messages) == 2, messages
    assert messages[0].startswith("services.builder Additional property platform is not allowed: use deploy.")
    assert messages[1] == (
        'services.web.deploy.update_config.order must be one of the following: "start-first", "stop-first"')


def test_compose_interpolation(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: app:${TAG:?set TAG}\n    environment: {A: $$HOME}\n"
    report = check(tmp_path, text, name="compose.yaml")
    [error] = report.errors
    assert error.message == "required variable TAG is missing a value: set TAG" and error.line == 3
    (tmp_path / "compose.yaml").write_text(text)
    assert engine.validate(["compose.yaml"], cwd=tmp_path, env={"TAG": "1"}).ok
    bad = check(tmp_path, "services:\n  web:\n    image: app:${TAG\n", name="compose.yaml")
    assert "invalid interpolation format for services.web.image" in bad.errors[0].message


def test_compose_x_gitops_prune_is_accepted_on_every_object_and_must_be_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "site.html").write_text("hi")
    text = """\
services:
  web:
    image: app:1
    x-gitops-prune: false
    networks: [back]
    volumes: [data:/data]
    configs: [site]
    secrets: [token]
networks: {back: {x-gitops-prune: false}}
volumes: {data: {x-gitops-prune: false}}
configs: {site: {file: ./site.html, x-gitops-prune: false}}
secrets: {token: {file: ./site.html, x-gitops-prune: true}}
"""
    report = check(tmp_path, text, name="compose.yaml")
    assert report.ok and not report.diagnostics, [str(d) for d in report.diagnostics]
    bad = check(tmp_path, text.replace("volumes: {data: {x-gitops-prune: false}}",
                                       "volumes: {data: {x-gitops-prune: keep}}"), name="compose.yaml")
    assert [(d.pointer, d.message) for d in bad.diagnostics] == [
        ("/volumes/data/x-gitops-prune", "volumes.data.x-gitops-prune must be true or false")]
