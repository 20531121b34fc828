"""Sensitive environment values: the built-in name patterns and the names the user marks (the
``gitops.dev/sensitive-env`` annotation, compose's ``x-gitops-sensitive``) are masked by the one
mask of gitops.diff, in a plan's field changes and in a whole document as ``gitops diff -v`` shows it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitops import diff
from gitops.backends.kubernetes import normalize as kube
from gitops.backends.swarm import normalize as swarm
from gitops.backends.swarm import translate as tr
from gitops.model import Severity
from gitops.model.plans import MASK, SENSITIVE_KEY
from gitops.views.plans import field_line

CANARY = "c4n4ry-value"


@pytest.mark.parametrize(("name", "secret"), [
    ("DB_PASSWORD", True), ("db_passwd", True), ("API_KEY", True), ("GITHUB_TOKEN", True),
    ("OAUTH_CLIENT_SECRET", True), ("PRIVATEKEY", True), ("DB_PASSWORD_FILE", False),
    ("TOKEN_PATH", False), ("LEVEL", False), ("KEYBOARD", False),
])
def test_the_built_in_name_patterns(name: str, secret: bool) -> None:
    assert diff.is_secret_name(name) is secret
    assert diff.secret_env()(name) is secret


def test_marked_names_are_read_from_an_annotation_a_label_or_a_list() -> None:
    assert diff.marked_names("A, B C,,") == {"A", "B", "C"}
    assert diff.marked_names(["X", " Y "]) == {"X", "Y"}
    assert diff.marked_names(None) == frozenset() and diff.marked_names(3) == frozenset()
    assert diff.marked_in({SENSITIVE_KEY: "A"}, None, {"other": "B"}, {SENSITIVE_KEY: "C"}) == {"A", "C"}


def _deployment(env: list[dict[str, Any]], marked: str | None = "LICENSE") -> dict[str, Any]:
    annotations = {SENSITIVE_KEY: marked} if marked else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1", "env": env}],
                                           "initContainers": [{"name": "init", "image": "app:1", "env": env}]}}}}


def _env(password: str, license_key: str, level: str) -> list[dict[str, Any]]:
    return [{"name": "DB_PASSWORD", "value": password}, {"name": "LICENSE", "value": license_key},
            {"name": "LEVEL", "value": level},
            {"name": "TOKEN_FROM", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]


def _shown(changes: list[Any]) -> str:
    return "\n".join(field_line(c) + json.dumps(c.to_json()) for c in changes)


def test_kubernetes_plan_masks_patterned_and_annotated_env_values_and_shows_the_rest() -> None:
    desired = _deployment(_env(CANARY + "1", CANARY + "2", "debug"))
    live = _deployment(_env("old-" + CANARY, "old2-" + CANARY, "info"))
    want, have = kube.comparable(desired, live, "gitops")
    changes = diff.fields(have, want, kube.sensitive("Deployment", desired, live))
    by_path = {c.path: c for c in changes}
    containers = "/spec/template/spec/containers/[name=app]/env"
    assert (by_path[f"{containers}/[name=DB_PASSWORD]/value"].after, by_path[f"{containers}/[name=LICENSE]/value"]
            .before) == (MASK, MASK)
    assert by_path[f"{containers}/[name=LEVEL]/value"].after == "debug"
    assert "/spec/template/spec/initContainers/[name=init]/env/[name=LICENSE]/value" in by_path
    assert CANARY not in _shown(changes)


def test_a_name_marked_only_on_the_live_object_is_still_masked() -> None:
    """Unmarking a variable in the same commit that changes it must not show the old value."""
    desired = _deployment(_env("p", CANARY + "new", "x"), marked=None)
    live = _deployment(_env("p", CANARY + "old", "x"))
    want, have = kube.comparable(desired, live, "gitops")
    changes = diff.fields(have, want, kube.sensitive("Deployment", desired, live))
    assert [c.sensitive for c in changes] == [True, True] and CANARY not in _shown(changes)  # app and init


def test_a_whole_new_container_holding_a_secret_env_value_is_masked() -> None:
    desired = _deployment(_env(CANARY, "l", "x"), marked=None)
    live = _deployment([], marked=None)
    live["spec"]["template"]["spec"]["containers"] = []
    want, have = kube.comparable(desired, live, "gitops")
    changes = diff.fields(have, want, kube.sensitive("Deployment", desired, live))
    assert changes and CANARY not in _shown(changes)


def test_a_whole_kubernetes_document_shows_masks_where_the_secret_env_values_are() -> None:
    before = _deployment(_env(CANARY + "a", CANARY + "b", "info"))
    after = _deployment(_env(CANARY + "a", CANARY + "c", "debug"))
    check = kube.sensitive("Deployment", before, after)
    shown = json.dumps([diff.masked(before, check), diff.masked(after, check, before)])
    assert CANARY not in shown
    env = diff.masked(after, check, before)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e.get("value") for e in env[:3]] == [MASK, diff.MASK_CHANGED, "debug"]


def _compose(service_marks: list[str] | None = None, top_marks: list[str] | None = None,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    web: dict[str, Any] = {"image": "app:1", "environment": env or {}}
    if service_marks is not None:
        web["x-gitops-sensitive"] = service_marks
    doc: dict[str, Any] = {"services": {"web": web, "worker": {"image": "app:1", "environment": env or {}}}}
    if top_marks is not None:
        doc["x-gitops-sensitive"] = top_marks
    return doc


def test_compose_marks_become_a_service_label_per_service_and_for_the_whole_file() -> None:
    result = tr.translate(_compose(["LICENSE"], ["SHARED"]), "st")
    assert not [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert result.services["st_web"].spec["Labels"][SENSITIVE_KEY] == "LICENSE,SHARED"
    assert result.services["st_worker"].spec["Labels"][SENSITIVE_KEY] == "SHARED"
    assert SENSITIVE_KEY not in tr.translate(_compose(), "st").services["st_web"].spec["Labels"]


@pytest.mark.parametrize("bad", ["LICENSE", [1], [""], {"a": 1}])
def test_compose_marks_that_are_not_a_list_of_names_are_an_error_naming_the_field(bad: Any) -> None:
    result = tr.translate(_compose(bad), "st")
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert [e.pointer for e in errors] == ["/services/web/x-gitops-sensitive"]
    assert "list of environment variable names" in errors[0].message


def test_swarm_plan_and_whole_spec_mask_patterned_and_marked_env_values() -> None:
    env_new = {"DB_PASSWORD": CANARY + "1", "LICENSE": CANARY + "2", "LEVEL": "debug"}
    env_old = {"DB_PASSWORD": CANARY + "old", "LICENSE": CANARY + "old2", "LEVEL": "info"}
    desired = tr.translate(_compose(["LICENSE"], env=env_new), "st").services["st_web"].spec
    live = {"ID": "x", "Spec": tr.translate(_compose(["LICENSE"], env=env_old), "st").services["st_web"].spec}
    changes = swarm.diff_service(desired, live)
    by_path = {c.path: c for c in changes}
    assert by_path["/TaskTemplate/ContainerSpec/Env/LEVEL"].after == "debug"
    assert by_path["/TaskTemplate/ContainerSpec/Env/LICENSE"].sensitive
    assert by_path["/TaskTemplate/ContainerSpec/Env/DB_PASSWORD"].sensitive
    assert CANARY not in _shown(changes)
    check = swarm.sensitive("Service", live["Spec"], desired)
    whole = json.dumps([diff.masked(dict(live["Spec"]), check), diff.masked(dict(desired), check, live["Spec"])])
    assert CANARY not in whole and "LEVEL=debug" in whole and f"LICENSE={diff.MASK_CHANGED}" in whole
