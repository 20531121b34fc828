"""Prune safety against the real control plane: a Namespace or CRD whose delete would cascade is
refused with what it would take, PersistentVolumeClaims are kept, `gitops.dev/prune: disabled` is
honoured, StatefulSet claims are reported as left behind, and each override works and is recorded."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kube_app import app_docs, backend, resources

from gitops import deploy, prune
from gitops.backends.kubernetes.backend import KubernetesBackend
from gitops.backends.kubernetes.client import ResourceType
from gitops.model import ResourceKey
from gitops.model.plans import Action, BlockReason, Guard, KeepReason

pytestmark = pytest.mark.kube


def key(kind: str, namespace: str, name: str, group: str = "") -> ResourceKey:
    return ResourceKey(group, kind, namespace, name)


@pytest.fixture
def kube(kube_cluster: Any, namespace: str) -> Iterator[tuple[KubernetesBackend, str]]:
    app = f"prune-{namespace}"[:50]
    kb = backend(str(kube_cluster.kubeconfig), app, namespace, state_namespace=namespace)
    yield kb, namespace
    kb.client.close()


def options(**policy: Any) -> deploy.Options:
    return deploy.Options(timeout=60, poll=0.3, policy=prune.Policy(**policy))


def rtype(kb: KubernetesBackend, api_version: str, kind: str) -> ResourceType:
    found = kb.client.resource_type(api_version, kind)
    assert found is not None, kind
    return found


def live(kb: KubernetesBackend, k: ResourceKey) -> dict[str, Any] | None:
    return kb.observe([k])[k]


def configmap(name: str, namespace: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace, **metadata},
            "data": {"k": name}}


def remove_later(kb: KubernetesBackend, api_version: str, kind: str, namespace: str, name: str) -> None:
    kb.client.delete(rtype(kb, api_version, kind), namespace, name)


def test_a_namespace_whose_delete_would_cascade_is_refused_and_allow_cascade_lifts_it(
        kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    shop = f"{ns}-shop"[:63].rstrip("-")
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": shop}}, *app_docs(shop)]
    anchor = configmap("anchor", ns)
    try:
        assert deploy.apply_app(kb, resources([*docs, anchor]), "rev1", options()).outcome == "applied"
        kb.client.create(rtype(kb, "v1", "ConfigMap"), configmap("someone-elses", shop))
        ns_key, foreign = key("Namespace", "", shop), key("ConfigMap", shop, "someone-elses")
        in_git = {r.key for r in resources(app_docs(shop))}

        # The case: only the Namespace manifest leaves git.
        plan, _ = deploy.plan_app(kb, resources([*app_docs(shop), anchor]), "rev2")
        assert not plan.ok and all(c.key != ns_key for c in plan.changes if c.action is Action.DELETE)
        (block,) = plan.blocked
        assert block.reason is BlockReason.CASCADE and block.key == ns_key and block.guard is Guard.CASCADE
        # Exactly what the API server would delete: the six objects still in git and the foreign one;
        # not what Kubernetes makes itself (ReplicaSets, Pods, EndpointSlices, kube-root-ca.crt, ...).
        assert set(block.objects) == in_git | {foreign}, sorted(map(str, block.objects))
        assert f"Namespace/{shop}: not pruned" in block.message and "--allow-cascade" in block.message
        assert {k.key: k.reason for k in plan.kept} == {ns_key: KeepReason.BLOCKED}
        writes = kb.client.writes
        with pytest.raises(deploy.PlanBlocked, match="6 still in the repository"):
            deploy.apply_app(kb, resources([*app_docs(shop), anchor]), "rev2", options())
        assert kb.client.writes == writes, "a refused plan made write requests"
        namespace = live(kb, ns_key)
        assert namespace is not None and not namespace["metadata"].get("deletionTimestamp")

        # Everything of the shop leaves git: the foreign ConfigMap still holds the namespace, and
        # 7 of 8 objects going is a mass delete; both are refused, and both flags lift them.
        plan, _ = deploy.plan_app(kb, resources([anchor]), "rev3")
        assert {b.reason for b in plan.blocked} == {BlockReason.CASCADE, BlockReason.MASS_DELETE}
        cascade = next(b for b in plan.blocked if b.reason is BlockReason.CASCADE)
        assert cascade.objects == (foreign,)
        with pytest.raises(deploy.PlanBlocked):
            deploy.apply_app(kb, resources([anchor]), "rev3", options(allow_cascade=True))
        result = deploy.apply_app(kb, resources([anchor]), "rev3", options(allow_cascade=True, allow_mass_delete=True))
        assert result.outcome == "applied", result.error
        ns_change = next(c for c in result.plan.changes if c.key == ns_key)
        assert ns_change.action is Action.DELETE and ns_change.cascade == (foreign,)
        gone = live(kb, ns_key)
        assert gone is None or gone["metadata"].get("deletionTimestamp")
        state = kb.load_state()
        assert state.current is not None and state.current.overrides == ("cascade", "mass-delete")
        assert [r.overrides for r in state.releases] == [(), ("cascade", "mass-delete")]
    finally:
        remove_later(kb, "v1", "Namespace", "", shop)


def test_a_crd_is_not_pruned_while_custom_resources_of_its_kind_exist(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    group = f"t{uuid.uuid4().hex[:10]}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    anchor = configmap("anchor", ns)
    crd_key = key("CustomResourceDefinition", "", f"widgets.{group}", "apiextensions.k8s.io")
    try:
        assert deploy.apply_app(kb, resources([crd, anchor]), "rev1", options()).outcome == "applied"
        widget_type = rtype(kb, f"{group}/v1", "Widget")
        kb.client.create(widget_type, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                       "metadata": {"name": "w1", "namespace": ns}, "spec": {"size": 1}})
        plan, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
        (block,) = plan.blocked
        assert block.key == crd_key and block.objects == (key("Widget", ns, "w1", group),)
        assert "1 object(s)" in block.message
        with pytest.raises(deploy.PlanBlocked):
            deploy.apply_app(kb, resources([anchor]), "rev2", options())
        assert live(kb, crd_key) is not None
        kb.client.delete(widget_type, ns, "w1")
        deadline = time.monotonic() + 30
        while kb.client.list(widget_type, ns) and time.monotonic() < deadline:
            time.sleep(0.2)
        plan, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
        assert plan.ok and [c.key for c in plan.changes if c.action is Action.DELETE] == [crd_key]
        assert deploy.apply_app(kb, resources([anchor]), "rev2", options()).outcome == "applied"
    finally:
        remove_later(kb, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", f"widgets.{group}")


def test_a_pvc_is_kept_after_its_workload_leaves_git_and_pruned_with_prune_data(
        kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    pv_name, storage = f"pv-{ns}"[:63], f"manual-{ns}"[:63]
    kb.client.create(rtype(kb, "v1", "PersistentVolume"), {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": storage,
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{pv_name}"}}})
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "db", "namespace": ns},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage, "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}}}}
    labels = {"app": "db"}
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db", "namespace": ns},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels}, "spec": {
                        "containers": [{"name": "db", "image": "gitops-test/app:1",
                                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "db"}}]}}}}
    anchor = configmap("anchor", ns)
    pvc_key = key("PersistentVolumeClaim", ns, "db")
    try:
        # The claim first (the rollout waits until it is Bound), then the workload that mounts it.
        result = deploy.apply_app(kb, resources([pvc, anchor]), "rev0", options())
        assert result.outcome == "applied", result.error
        result = deploy.apply_app(kb, resources([pvc, workload, anchor]), "rev1", options())
        assert result.outcome == "applied", result.error
        uid = live(kb, pvc_key)["metadata"]["uid"]  # type: ignore[index]

        plan, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
        assert plan.ok
        assert [c.key for c in plan.changes if c.action is Action.DELETE] == [key("Deployment", ns, "db", "apps")]
        assert [(k.key, k.reason) for k in plan.kept] == [(pvc_key, KeepReason.DATA)]
        assert deploy.apply_app(kb, resources([anchor]), "rev2", options()).outcome == "applied"
        claim = live(kb, pvc_key)
        assert claim is not None and claim["metadata"]["uid"] == uid and not claim["metadata"].get("deletionTimestamp")
        state = kb.load_state()
        assert state.current is not None and state.current.kept == (pvc_key,)
        # A later run still knows it (status shows it orphaned) ...
        again, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
        assert [(k.key, k.reason) for k in again.kept] == [(pvc_key, KeepReason.DATA)] and not again.has_changes
        # ... and deletes it when the app says so; the release records that.
        result = deploy.apply_app(kb, resources([anchor]), "rev3", options(prune_data=True))
        assert result.outcome == "applied", result.error
        assert result.changeset is not None and result.changeset.deleted == [pvc_key]
        gone = live(kb, pvc_key)
        assert gone is None or gone["metadata"].get("deletionTimestamp")
        state = kb.load_state()
        assert state.current is not None and state.current.overrides == ("data",) and state.current.kept == ()
    finally:
        remove_later(kb, "v1", "PersistentVolume", "", pv_name)


def test_prune_disabled_annotation_or_label_keeps_the_object(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    annotated = configmap("annotated", ns, annotations={"gitops.dev/prune": "disabled"})
    labelled_by_hand = configmap("labelled", ns)
    anchor = configmap("anchor", ns)
    assert deploy.apply_app(kb, resources([annotated, labelled_by_hand, anchor]), "rev1",
                            options()).outcome == "applied"
    kb.client.request("PATCH", rtype(kb, "v1", "ConfigMap").path(ns, "labelled"),
                      body={"metadata": {"labels": {"gitops.dev/prune": "disabled"}}},
                      content_type="application/merge-patch+json")
    plan, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
    assert plan.ok and not any(c.action is Action.DELETE for c in plan.changes)
    assert {k.key.name: k.reason for k in plan.kept} == {"annotated": KeepReason.DISABLED,
                                                          "labelled": KeepReason.DISABLED}
    assert deploy.apply_app(kb, resources([anchor]), "rev2", options()).outcome == "applied"
    assert live(kb, key("ConfigMap", ns, "annotated")) is not None
    assert live(kb, key("ConfigMap", ns, "labelled")) is not None
    state = kb.load_state()
    assert state.current is not None
    assert {k.name for k in state.current.kept} == {"annotated", "labelled"}
    assert state.current.protected == (key("ConfigMap", ns, "annotated"),)


def test_a_statefulsets_claims_are_reported_as_left_behind_or_as_its_cascade(
        kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    sts_type = rtype(kb, "apps/v1", "StatefulSet")
    labels = {"app": "db"}

    def statefulset(name: str, when_deleted: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns},
                "spec": {"serviceName": name, "replicas": 1, "selector": {"matchLabels": labels},
                         "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "db", "image": "gitops-test/app:1"}]}},
                         "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                             "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}

    kb.client.create(sts_type, statefulset("kept", "Retain"))
    kb.client.create(sts_type, statefulset("gone", "Delete"))
    claims = {key("PersistentVolumeClaim", ns, "data-kept-0"), key("PersistentVolumeClaim", ns, "data-gone-0")}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(live(kb, c) for c in claims):
        time.sleep(0.3)  # the StatefulSet controller makes them
    assert all(live(kb, c) for c in claims)
    keys = [key("StatefulSet", ns, "kept", "apps"), key("StatefulSet", ns, "gone", "apps")]
    facts = kb.prune_facts(keys, kb.observe(keys), desired=[])
    assert facts[keys[0]].leaves == (key("PersistentVolumeClaim", ns, "data-kept-0"),)
    assert facts[keys[0]].cascade == () and not facts[keys[0]].data
    assert facts[keys[1]].cascade == (key("PersistentVolumeClaim", ns, "data-gone-0"),)
    assert facts[key("PersistentVolumeClaim", ns, "data-gone-0")].data


def test_a_pruned_statefulset_leaves_its_claims_and_later_plans_show_them_orphaned(
        kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    pv_name, storage = f"pvs-{ns}"[:63], f"sts-{ns}"[:63]
    kb.client.create(rtype(kb, "v1", "PersistentVolume"), {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": storage,
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{pv_name}"}}})
    labels = {"app": "db"}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
           "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"containers": [{"name": "db", "image": "gitops-test/app:1"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "storageClassName": storage,
                        "resources": {"requests": {"storage": "1Gi"}}}}]}}
    anchor = configmap("anchor", ns)
    claim = key("PersistentVolumeClaim", ns, "data-db-0")
    try:
        result = deploy.apply_app(kb, resources([sts, anchor]), "rev1", options())
        assert result.outcome == "applied", result.error
        assert live(kb, claim) is not None  # made by the controller, not by gitops
        plan, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
        assert [c.key for c in plan.changes if c.action is Action.DELETE] == [key("StatefulSet", ns, "db", "apps")]
        assert [(k.key, k.reason) for k in plan.kept] == [(claim, KeepReason.LEFT_BEHIND)]
        assert deploy.apply_app(kb, resources([anchor]), "rev2", options()).outcome == "applied"
        assert live(kb, claim) is not None
        assert kb.load_state().current.kept == (claim,)  # type: ignore[union-attr]
        later, _ = deploy.plan_app(kb, resources([anchor]), "rev2")
        assert [(k.key, k.reason) for k in later.kept] == [(claim, KeepReason.LEFT_BEHIND)]
        assert not later.has_changes
    finally:
        remove_later(kb, "v1", "PersistentVolume", "", pv_name)
