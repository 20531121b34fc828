"""The Kubernetes client held open by a long-running process: it finds kinds that appear after
it read discovery (a CRD someone else installed), on the real API server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from testsupport import wait_for

from gitops.backends.kubernetes import client as client_module
from gitops.backends.kubernetes.client import KubeClient

pytestmark = pytest.mark.kube


def test_a_crd_someone_else_installs_is_found_without_a_restart(kube_cluster: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.example.test"
    ours, theirs = KubeClient(str(kube_cluster.kubeconfig)), KubeClient(str(kube_cluster.kubeconfig))
    assert ours.preferred(group, "Widget") is None  # discovery read now, without the kind
    monkeypatch.setattr(client_module, "DISCOVERY_TTL", 0.5)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    theirs.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd)
    try:
        found = wait_for("the new kind found", lambda: ours.preferred(group, "Widget"), timeout=60, poll=0.5)
        assert found.kind == "Widget" and found.namespaced
        assert ours.resource_type(f"{group}/v1", "Widget") is not None
    finally:
        theirs.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
        ours.close()
        theirs.close()
