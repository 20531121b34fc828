"""Kubernetes diff normalization: server defaults, quantities, keyed lists, ownership, secrets."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from gitops import diff
from gitops.backends.kubernetes import normalize

MANAGER = "gitops"


def deployment(image: str = "app:1", cpu: Any = "500m", ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image, "resources": {"requests": {"cpu": cpu}}}
    if ports is not None:
        container["ports"] = ports
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}},
    }


def as_live(desired: dict[str, Any], owned: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the API server returns after applying ``desired``: defaults, bookkeeping, status."""
    live = copy.deepcopy(desired)
    live["metadata"].update({
        "uid": "u1", "resourceVersion": "42", "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "managedFields": [{"manager": MANAGER, "operation": "Apply", "fieldsV1": owned or {}},
                          {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {}}],
    })
    spec = live["spec"]
    spec.update({"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}})
    pod = spec["template"]["spec"]
    pod.update({"restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"})
    for container in pod["containers"]:
        container.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        requests = container["resources"]["requests"]
        requests["cpu"] = normalize_cpu(requests["cpu"])
    live["status"] = {"replicas": 2, "readyReplicas": 2}
    return live


def normalize_cpu(value: Any) -> str:
    return {0.5: "500m", "0.5": "500m", 1: "1", "1000m": "1"}.get(value, str(value))


def field_diff(desired: dict[str, Any], live: dict[str, Any] | None) -> list[diff.FieldChange]:
    want, have = normalize.comparable(desired, live, MANAGER)
    return diff.fields(have, want, normalize.sensitive(desired["kind"], desired, live))


def test_server_defaults_status_and_bookkeeping_are_not_changes() -> None:
    desired = deployment(ports=[{"containerPort": 8080, "name": "http"}])
    assert field_diff(desired, as_live(desired)) == []


@pytest.mark.parametrize(("written", "stored"), [(0.5, "500m"), ("0.5", "500m"), (1, "1"), ("1000m", "1")])
def test_quantities_written_differently_are_equal(written: Any, stored: str) -> None:
    live = as_live(deployment(cpu=written))
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == stored
    assert field_diff(deployment(cpu=written), live) == []


@pytest.mark.parametrize(("a", "b", "equal"), [
    ("1Gi", "1024Mi", True), ("1G", "1000M", True), ("1Gi", "1G", False), ("100m", "0.1", True),
    ("2", 2, True), ("1e3", "1k", True), ("abc", "abc", True),
])
def test_quantity_canonical_form(a: Any, b: Any, equal: bool) -> None:
    assert (normalize.quantity(a) == normalize.quantity(b)) is equal


def test_an_image_change_is_named_by_container_not_index() -> None:
    live = as_live(deployment())
    changes = field_diff(deployment(image="app:2"), live)
    assert [(c.path, c.before, c.after) for c in changes] == [
        ("/spec/template/spec/containers/[name=app]/image", "app:1", "app:2")
    ]


def test_reordered_keyed_list_is_no_change() -> None:
    ports = [{"containerPort": 80, "name": "a"}, {"containerPort": 81, "name": "b"}]
    live = as_live(deployment(ports=ports))
    assert field_diff(deployment(ports=list(reversed(ports))), live) == []


def test_fields_owned_by_other_managers_are_ignored_but_ours_removed_show() -> None:
    desired = deployment()
    live = as_live(desired, owned={"f:spec": {"f:replicas": {}, "f:minReadySeconds": {}}})
    live["spec"]["minReadySeconds"] = 5  # we set it before; the repo no longer does
    live["spec"]["paused"] = False  # someone else's field
    changes = field_diff(desired, live)
    assert [(c.path, c.before, c.absent_after) for c in changes] == [("/spec/minReadySeconds", 5, True)]


def test_removed_owned_list_element_shows_as_removed() -> None:
    owned = {"f:spec": {"f:template": {"f:spec": {"f:containers": {
        'k:{"name":"app"}': {"f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}}}}}}}}
    live = as_live(deployment(ports=[{"containerPort": 80}]), owned=owned)
    changes = field_diff(deployment(), live)
    assert len(changes) == 1
    assert changes[0].path == "/spec/template/spec/containers/[name=app]/ports"
    assert changes[0].absent_after


def test_drift_made_by_hand_is_a_change_back_to_git() -> None:
    desired = deployment()
    live = as_live(desired)
    live["spec"]["replicas"] = 7
    assert [(c.path, c.before, c.after) for c in field_diff(desired, live)] == [("/spec/replicas", 7, 2)]


def test_empty_maps_the_server_drops_are_no_change() -> None:
    desired = deployment()
    desired["metadata"]["annotations"] = {}
    assert field_diff(desired, as_live(deployment())) == []


def secret(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "prod"},
            "type": "Opaque", "stringData": data}


def test_secret_values_are_masked_and_string_data_compares_with_data() -> None:
    live = normalize.fold_string_data(secret(password="hunter2", user="admin"))
    live["metadata"]["resourceVersion"] = "1"
    assert live["data"]["password"] == base64.b64encode(b"hunter2").decode()
    assert field_diff(secret(password="hunter2", user="admin"), live) == []
    changes = field_diff(secret(password="correct horse", user="admin"), live)
    assert [c.path for c in changes] == ["/data/password"]
    rendered = repr(changes) + repr([c.to_json() for c in changes])
    assert "hunter2" not in rendered and "correct horse" not in rendered
    assert "Y29ycmVjdCBob3JzZQ" not in rendered  # nor the base64 of it
    assert changes[0].to_json()["after"] == "(sensitive value)"


def test_a_new_secret_key_is_masked_too() -> None:
    live = normalize.fold_string_data(secret(user="admin"))
    changes = field_diff(secret(user="admin", token="s3cr3t"), live)
    assert [c.path for c in changes] == ["/data/token"]
    assert "s3cr3t" not in repr(changes) + repr(changes[0].to_json())
    assert "czNjcjN0" not in repr(changes)  # base64 of it
