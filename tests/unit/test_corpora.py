"""The shared test corpora as oracles (../shared/corpora/README.md has the tables).

Where this project's rules differ from a tool's, ours win (issue 3): identity uses the API group
(not the full apiVersion), removed API versions are errors, kinds without a schema are warnings
unless --strict, and duplicate mapping keys are always errors.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gitops import engine
from gitops.model.reports import ValidationReport

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
KUBECONFORM = CORPORA / "kubeconform-fixtures" / "fixtures"
KUBEVAL = CORPORA / "kubeval-fixtures" / "fixtures"
AWESOME = CORPORA / "awesome-compose"
PODINFO = CORPORA / "podinfo"


def require(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test corpus {path} is missing (CI=true: it must be present)")
        pytest.skip(f"test corpus {path} is absent")
    return path


def run(base: Path, name: str, strict: bool = False, policy: bool = False) -> ValidationReport:
    """Validate a corpus file (without the policy rules unless asked: the tables here are about schemas)."""
    require(base / name)
    return engine.validate([name], cwd=base, strict=strict, env={}, policy=policy)


def codes(report: ValidationReport, severity: str = "error") -> set[str]:
    return {d.code for d in report.diagnostics if str(d.severity) == severity}


# name -> (objects, default outcome, strict outcome or None, error codes expected by default)
KUBECONFORM_TABLE: dict[str, tuple[int, bool, bool | None, set[str]]] = {
    "blank.yaml": (0, True, True, set()),
    "comment.yaml": (0, True, True, set()),
    "valid.yaml": (1, True, True, set()),
    "valid.json": (1, True, True, set()),
    "folder": (7, True, None, set()),
    "multi_valid.yaml": (6, True, None, set()),
    "multi_valid_source.yaml": (6, True, None, set()),
    "multi_invalid.yaml": (6, False, None, {"schema"}),
    "invalid.yaml": (1, False, False, {"schema"}),
    "list_valid.yaml": (6, True, None, set()),
    "list_invalid.yaml": (2, False, None, {"schema"}),
    "list_empty_valid.yaml": (0, True, None, set()),
    "multi_with_list.yaml": (2, True, None, set()),
    "missing_kind.yaml": (1, False, False, {"missing-kind"}),
    "missing_kind_value.yaml": (1, False, False, {"missing-kind"}),
    "missing_apiversion.yaml": (1, False, False, {"missing-apiversion"}),
    "multi_invalid_resources.yaml": (5, False, None, {"missing-kind"}),
    "extra_property.yaml": (1, True, False, set()),
    "duplicate_property.yaml": (1, False, False, {"duplicate-key"}),
    "generate_name.yaml": (1, True, None, set()),
    "int_or_string.yaml": (1, True, None, set()),
    "null_string.yaml": (1, True, None, set()),
    "null_array.yaml": (1, True, None, set()),
    "quantity.yaml": (1, True, None, set()),
    "full_domain_group.yaml": (1, True, None, set()),
    "valid_version.yaml": (1, True, True, set()),
    "unconventional_keys.yaml": (1, True, None, set()),
    # kubeconform has no duplicate check; ours (group/kind/namespace/name) finds these:
    "duplicates.yaml": (2, False, None, {"duplicate-object"}),
    "duplicates-with-namespace.yaml": (2, False, None, {"duplicate-object"}),
    "duplicates-non-namespaced.yaml": (2, False, None, {"duplicate-object"}),
    "duplicates-with-namespace-default.yaml": (2, True, None, set()),
    "same-object-different-namespace.yaml": (2, True, None, set()),
    "same-object-different-namespace-default.yaml": (2, True, None, set()),
    "duplicates-skipped-kinds.yaml": (2, False, False, {"duplicate-object"}),
    # apps/v1beta1 is removed, and apps/v1 + apps/v1beta1 share the group: also a duplicate
    "same-kind-different-api.yaml": (2, False, None, {"removed-api", "duplicate-object"}),
    # kinds without a schema: warnings by default, errors under --strict
    "test_crd.yaml": (1, True, False, set()),
    "httpproxy.yaml": (1, True, False, set()),
    "grafana-alert-rule-group-sample.yaml": (1, True, False, set()),
    "crd_schema.yaml": (1, False, False, {"removed-api"}),
}


@pytest.mark.parametrize("name", sorted(KUBECONFORM_TABLE))
def test_kubeconform_fixtures(name: str) -> None:
    objects, valid, strict_valid, expected_codes = KUBECONFORM_TABLE[name]
    report = run(KUBECONFORM, name)
    assert report.objects == objects, [str(d) for d in report.diagnostics]
    assert report.ok is valid, [str(d) for d in report.diagnostics]
    assert codes(report) == expected_codes
    if strict_valid is not None:
        assert run(KUBECONFORM, name, strict=True).ok is strict_valid


def test_kubeconform_precise_messages() -> None:
    report = run(KUBECONFORM, "invalid.yaml")
    [error] = report.errors
    assert (error.file, error.document, error.line, error.pointer) == ("invalid.yaml", 1, 6, "/spec/replicas")
    assert error.message == 'expected integer (or null), got string "asd\\""'
    [port] = run(KUBECONFORM, "multi_invalid.yaml").errors
    assert port.pointer == "/spec/ports/0/port" and port.resource == "Service/default/redis-master"
    [item] = run(KUBECONFORM, "list_invalid.yaml").errors
    assert item.pointer == "/items/1/spec/replicas" and item.resource == "ReplicationController/default/bob"
    assert len(run(KUBECONFORM, "multi_invalid_resources.yaml").errors) == 5
    strict = run(KUBECONFORM, "invalid.yaml", strict=True)
    assert {"/spec/replicas", "/spec/templates"} <= {d.pointer for d in strict.errors}
    extra = run(KUBECONFORM, "extra_property.yaml", strict=True)
    assert [d.pointer for d in extra.errors] == ["/spec/replicas"]
    assert "unknown field 'replicas'" in extra.errors[0].message
    [unknown] = run(KUBECONFORM, "test_crd.yaml").warnings
    assert unknown.code == "unknown-kind" and "TrainingJob" in unknown.message


def test_kubeconform_generate_name_and_keys() -> None:
    report = run(KUBECONFORM, "generate_name.yaml")
    assert report.ok and report.objects == 1
    report = run(KUBECONFORM, "unconventional_keys.yaml")
    assert report.ok


def test_removed_api_names_replacement() -> None:
    report = run(KUBECONFORM, "same-kind-different-api.yaml")
    [removed] = [d for d in report.errors if d.code == "removed-api"]
    assert "apps/v1beta1 Deployment was removed in Kubernetes 1.16; use apps/v1" in removed.message
    assert removed.pointer == "/apiVersion" and removed.document == 2


KUBEVAL_TABLE: dict[str, tuple[bool, set[str]]] = {
    "blank.yaml": (True, set()),
    "comment.yaml": (True, set()),
    "valid.yaml": (True, set()),
    "valid.json": (False, {"removed-api"}),  # apps/v1beta1 Deployment
    "multi_valid.yaml": (True, set()),
    "multi_valid_source.yaml": (True, set()),
    "multi_invalid.yaml": (False, {"schema"}),
    "multi_invalid_resources.yaml": (False, {"missing-kind"}),
    "invalid.yaml": (False, {"schema"}),
    "list_valid.yaml": (True, set()),
    "list_invalid.yaml": (False, {"schema"}),
    "list_empty_valid.yaml": (True, set()),
    "missing_kind.yaml": (False, {"missing-kind"}),
    "missing_kind_value.yaml": (False, {"missing-kind"}),
    "extra_property.yaml": (False, {"removed-api"}),  # extensions/v1beta1 DaemonSet
    "generate_name.yaml": (True, set()),
    "int_or_string.yaml": (True, set()),
    "null_array.yaml": (False, {"removed-api"}),  # extensions/v1beta1 Deployment
    "null_string.yaml": (True, set()),
    "quantity.yaml": (True, set()),
    "full_domain_group.yaml": (True, set()),
    "unconventional_keys.yaml": (True, set()),
    "valid_version.yaml": (True, set()),
    "duplicates.yaml": (False, {"duplicate-object"}),
    "duplicates-with-namespace.yaml": (False, {"duplicate-object"}),
    "duplicates-non-namespaced.yaml": (False, {"duplicate-object"}),
    "duplicates-with-namespace-default.yaml": (True, set()),  # default namespace is "default"
    "duplicates-skipped-kinds.yaml": (False, {"duplicate-object"}),  # we skip no kind
    "same-object-different-namespace.yaml": (True, set()),
    "same-object-different-namespace-default.yaml": (True, set()),
    "same-kind-different-api.yaml": (False, {"removed-api", "duplicate-object"}),
    "test_crd.yaml": (True, set()),  # two SealedSecrets: no schema, so warnings
}


@pytest.mark.parametrize("name", sorted(KUBEVAL_TABLE))
def test_kubeval_fixtures(name: str) -> None:
    valid, expected_codes = KUBEVAL_TABLE[name]
    report = run(KUBEVAL, name)
    assert report.ok is valid, [str(d) for d in report.diagnostics]
    assert codes(report) == expected_codes


def test_kubeval_removed_apis_fail_in_strict_too() -> None:
    for name in ("valid.json", "extra_property.yaml", "null_array.yaml"):
        report = run(KUBEVAL, name, strict=True)
        assert "removed-api" in codes(report)
    assert run(KUBEVAL, "test_crd.yaml", strict=True).ok is False


def test_kubeval_counts() -> None:
    assert run(KUBEVAL, "multi_valid.yaml").objects == 7
    assert run(KUBEVAL, "list_valid.yaml").objects == 6
    assert run(KUBEVAL, "list_invalid.yaml").objects == 2


# docker stack config outcomes (README table); None = passes docker stack config
AWESOME_FAILURES: dict[str, tuple[str, ...]] = {
    "nginx-aspnet-mysql/compose.yaml": ("services.backend.depends_on must be a list",),
    "nginx-flask-mysql/compose.yaml": ("services.backend.depends_on must be a list",),
    "nginx-golang-mysql/compose.yaml": ("services.backend.depends_on must be a list",),
    "nginx-golang-postgres/compose.yaml": ("services.backend.depends_on must be a list",),
    "react-java-mysql/compose.yaml": ("services.backend.depends_on must be a list",),
    "plex/compose.yaml": ("error decoding 'Volumes[0]': invalid spec: :/media/: empty section between colons",),
    "react-rust-postgres/compose.yaml": ("(root) Additional property name is not allowed",),
    "wasmedge-kafka-mysql/compose.yml": (
        "services.etl Additional property platform is not allowed",
        "services.etl Additional property runtime is not allowed",
    ),
    "wasmedge-mysql-nginx/compose.yml": (
        "services.backend Additional property platform is not allowed",
        "services.backend Additional property runtime is not allowed",
    ),
}
IMAGE_ONLY = {
    "elasticsearch-logstash-kibana", "gitea-postgres", "minecraft", "nextcloud-postgres", "nextcloud-redis-mariadb",
    "pihole-cloudflared-DoH", "plex", "portainer", "postgresql-pgadmin", "prometheus-grafana", "wireguard",
    "wordpress-mysql",
}  # fmt: skip


def awesome_files() -> list[str]:
    if not AWESOME.is_dir():
        return ["<absent>"]
    return sorted(p.relative_to(AWESOME).as_posix() for p in AWESOME.glob("*/compose.y*ml"))


# Refusals of a deploy that `docker stack config` does not make: gitops deploys without a project
# directory, so a relative (or ~) bind source names a path on the deploying machine (the compose
# rule table refuses it, validate and the translator alike).
BIND_REFUSED: dict[str, set[str]] = {
    "angular/compose.yaml": {"/services/web/volumes/0"},
    "apache-php/compose.yaml": {"/services/web/volumes/0"},
    "elasticsearch-logstash-kibana/compose.yaml": {"/services/logstash/volumes/0", "/services/logstash/volumes/1"},
    "flask-redis/compose.yaml": {"/services/web/volumes/0"},
    "minecraft/compose.yaml": {"/services/minecraft/volumes/0"},
    "nginx-flask-mongo/compose.yaml": {"/services/web/volumes/0", "/services/backend/volumes/0"},
    "nginx-golang/compose.yaml": {"/services/proxy/volumes/0/source"},
    "nginx-golang-mysql/compose.yaml": {"/services/proxy/volumes/0/source"},
    "nginx-golang-postgres/compose.yaml": {"/services/proxy/volumes/0/source"},
    "nginx-wsgi-flask/compose.yaml": {"/services/nginx-proxy/volumes/0"},
    "prometheus-grafana/compose.yaml": {"/services/prometheus/volumes/0", "/services/grafana/volumes/0"},
    "react-express-mongodb/compose.yaml": {"/services/frontend/volumes/0", "/services/backend/volumes/0"},
    "react-express-mysql/compose.yaml": {"/services/backend/volumes/0", "/services/backend/volumes/1",
                                         "/services/backend/volumes/2", "/services/frontend/volumes/0"},
    "react-java-mysql/compose.yaml": {"/services/frontend/volumes/0"},
    "react-rust-postgres/compose.yaml": {"/services/frontend/volumes/0", "/services/backend/volumes/0"},
    "vuejs/compose.yaml": {"/services/web/volumes/0"},
    "wasmedge-kafka-mysql/compose.yml": {"/services/redpanda/volumes/0"},
    "wasmedge-mysql-nginx/compose.yml": {"/services/frontend/volumes/0"},
}
DEPLOY_ONLY = {"swarm-no-image", "swarm-bind-source"}


def like_docker(message: str, expected: tuple[str, ...]) -> bool:
    """Docker's message, or Docker's message followed by the compose rule table's reason."""
    return any(message == e or message.startswith(e + ": ") for e in expected)


@pytest.mark.parametrize("name", awesome_files())
def test_awesome_compose_like_docker_stack_config(name: str) -> None:
    require(AWESOME)
    report = run(AWESOME, name)
    assert report.services >= 1
    schema_errors = [d for d in report.errors if d.code not in DEPLOY_ONLY]
    expected = AWESOME_FAILURES.get(name)
    if expected is None:
        assert schema_errors == [], [str(d) for d in schema_errors]
    else:
        messages = {d.message for d in schema_errors}
        assert messages, name
        assert all(like_docker(m, expected) for m in messages), messages
    assert {d.pointer for d in report.errors if d.code == "swarm-bind-source"} == BIND_REFUSED.get(name, set())
    build_only = [d for d in report.errors if d.code == "swarm-no-image"]
    if name.split("/")[0] in IMAGE_ONLY:
        assert build_only == []
    for error in build_only:  # a service with build: and no image: cannot run on Swarm
        assert "has build: but no image:" in error.message


def test_awesome_compose_build_only_is_an_error() -> None:
    report = run(AWESOME, "flask/compose.yaml")
    [error] = report.errors
    assert error.code == "swarm-no-image" and error.pointer == "/services/web" and error.line == 2
    assert run(AWESOME, "wasmedge-mysql-nginx/compose.yml").services == 3


def test_awesome_compose_count() -> None:
    require(AWESOME)
    assert len(awesome_files()) == 39
    passing = [n for n in awesome_files() if n not in AWESOME_FAILURES]
    assert len(passing) == 30


def test_awesome_compose_unset_variables_warn() -> None:
    report = run(AWESOME, "postgresql-pgadmin/compose.yaml")
    assert report.ok
    assert "interpolation-unset" in codes(report, "warning")


def test_plex_passes_once_variable_is_set() -> None:
    require(AWESOME)
    report = engine.validate(["plex/compose.yaml"], cwd=AWESOME, env={"PLEX_MEDIA_PATH": "/srv/media"})
    assert report.ok, [str(d) for d in report.errors]


def test_compose_error_lines() -> None:
    report = run(AWESOME, "nginx-golang-mysql/compose.yaml")
    [error] = [d for d in report.errors if d.code == "compose-schema"]
    assert error.pointer == "/services/backend/depends_on"
    assert error.line == 8


@pytest.mark.parametrize("folder", ["deploy/webapp", "deploy/secure"])
def test_podinfo_plain_manifests_valid(folder: str) -> None:
    report = run(PODINFO, folder)
    assert report.ok, [str(d) for d in report.errors]
    assert report.objects == {"deploy/webapp": 11, "deploy/secure": 13}[folder]


def test_podinfo_secure_custom_resources_are_warnings() -> None:
    report = run(PODINFO, "deploy/secure")
    assert {d.code for d in report.warnings} == {"unknown-kind"}
    assert not run(PODINFO, "deploy/secure", strict=True).ok


def _kustomize_available() -> bool:
    return bool(shutil.which("kustomize") or shutil.which("kubectl"))


def test_podinfo_kustomize_renders_three_valid_objects() -> None:
    require(PODINFO)
    if not _kustomize_available():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: kustomize or kubectl must be installed")
        pytest.skip("no kustomize engine installed")
    report = run(PODINFO, "kustomize")
    assert report.ok, [str(d) for d in report.errors]
    assert report.objects == 3


def test_podinfo_overlay_kustomize_failure_is_reported() -> None:
    require(PODINFO)
    if not _kustomize_available():
        pytest.skip("no kustomize engine installed")
    report = run(PODINFO, "deploy/overlays/dev")
    [error] = report.errors
    assert error.code == "kustomize" and error.file == "deploy/overlays/dev/kustomization.yaml"
    assert "kustomize build failed" in error.message
