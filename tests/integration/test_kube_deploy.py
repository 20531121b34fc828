"""Plan, apply, prune, rollout and rollback of a Kubernetes app against the real control plane."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_app import app_docs, backend, resources

from gitops import deploy
from gitops.backends.kubernetes.backend import KubernetesBackend
from gitops.errors import LockedError, StalePlanError
from gitops.model import ResourceKey
from gitops.model.plans import Action
from gitops.model.releases import Outcome

pytestmark = pytest.mark.kube

HERE = Path(__file__).resolve().parent


def key(kind: str, namespace: str, name: str, group: str = "") -> ResourceKey:
    return ResourceKey(group, kind, namespace, name)


@pytest.fixture
def kube(kube_cluster: Any, namespace: str) -> Iterator[tuple[KubernetesBackend, str]]:
    """A backend for app `web-<namespace>` whose objects and state live in the test namespace."""
    app = f"web-{namespace}"[:50]
    kb = backend(str(kube_cluster.kubeconfig), app, namespace, state_namespace=namespace)
    yield kb, namespace
    kb.client.close()


def options(**overrides: Any) -> deploy.Options:
    return deploy.Options(**{"timeout": 60, "poll": 0.3, **overrides})


def live(kb: KubernetesBackend, k: ResourceKey) -> dict[str, Any] | None:
    return kb.observe([k])[k]


def test_first_apply_then_no_op_plan_and_apply_make_no_writes(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    result = deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options())
    assert result.outcome == "applied", result.error
    assert {c.action for c in result.plan.changes} == {Action.CREATE}
    deployment = live(kb, key("Deployment", ns, "web", "apps"))
    assert deployment is not None and deployment["status"].get("availableReplicas") == 2
    state = kb.load_state()
    assert [(r.revision, r.outcome) for r in state.releases] == [("rev1", Outcome.SUCCEEDED)]
    assert len(state.current.inventory) == 6  # type: ignore[union-attr]

    again, _ = deploy.plan_app(kb, resources(app_docs(ns)), "rev1")
    assert not again.has_changes, [c.to_json() for c in again.changes if c.action is not Action.NOOP]
    writes = kb.client.writes
    second = deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options())
    assert second.outcome == "no-op"
    assert kb.client.writes == writes, "a no-op apply made write requests"


def test_image_change_secret_masking_prune_and_foreign_objects(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns, extra=True)), "rev1", options()).outcome == "applied"
    # Someone else's ConfigMap in the same namespace, and one of ours that someone took over.
    cm_type = kb.client.resource_type("v1", "ConfigMap")
    assert cm_type is not None
    kb.client.create(cm_type, {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "foreign", "namespace": ns}, "data": {"x": "y"}})

    docs = app_docs(ns, image="gitops-test/app:2", password="correct horse")  # extra removed
    app_plan, _ = deploy.plan_app(kb, resources(docs), "rev2")
    changes = {c.key: c for c in app_plan.changes}
    image = changes[key("Deployment", ns, "web", "apps")]
    assert image.action is Action.UPDATE
    assert [(f.path, f.before, f.after) for f in image.fields] == [
        ("/spec/template/spec/containers/[name=app]/image", "gitops-test/app:1", "gitops-test/app:2")]
    secret = changes[key("Secret", ns, "web-secret")]
    assert secret.action is Action.UPDATE and [f.path for f in secret.fields] == ["/data/password"]
    dumped = json.dumps(app_plan.to_json())
    assert "hunter2" not in dumped and "correct horse" not in dumped
    assert changes[key("ConfigMap", ns, "extra")].action is Action.DELETE
    assert key("ConfigMap", ns, "foreign") not in changes

    result = deploy.apply_app(kb, resources(docs), "rev2", options())
    assert result.outcome == "applied", result.error
    assert live(kb, key("ConfigMap", ns, "extra")) is None
    assert live(kb, key("ConfigMap", ns, "foreign")) is not None
    deployment = live(kb, key("Deployment", ns, "web", "apps"))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "gitops-test/app:2"
    assert deployment["status"].get("updatedReplicas") == 2


def test_an_object_whose_ownership_label_was_removed_is_not_pruned(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns, extra=True)), "rev1", options()).outcome == "applied"
    cm_type = kb.client.resource_type("v1", "ConfigMap")
    assert cm_type is not None
    kb.client.request("PATCH", cm_type.path(ns, "extra"), body={"metadata": {"labels": {"gitops.dev/app": None}}},
                      content_type="application/merge-patch+json")
    app_plan, _ = deploy.plan_app(kb, resources(app_docs(ns)), "rev2")
    assert all(c.action is not Action.DELETE for c in app_plan.changes)


def test_drift_shows_in_the_plan_and_an_immutable_change_is_replaced(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options()).outcome == "applied"
    dep_type = kb.client.resource_type("apps/v1", "Deployment")
    assert dep_type is not None
    kb.client.request("PATCH", dep_type.path(ns, "web"), body={"spec": {"replicas": 5}},
                      content_type="application/merge-patch+json")
    drift, _ = deploy.plan_app(kb, resources(app_docs(ns)), "rev1")
    change = next(c for c in drift.changes if c.key.kind == "Deployment")
    assert [(f.path, f.before, f.after) for f in change.fields] == [("/spec/replicas", 5, 2)]

    docs = app_docs(ns)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["selector"]["matchLabels"]["tier"] = "front"
    deployment["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    before_uid = live(kb, key("Deployment", ns, "web", "apps"))["metadata"]["uid"]  # type: ignore[index]
    replace_plan, _ = deploy.plan_app(kb, resources(docs), "rev2")
    change = next(c for c in replace_plan.changes if c.key.kind == "Deployment")
    assert change.action is Action.REPLACE and "/spec/selector" in change.reason
    result = deploy.apply_app(kb, resources(docs), "rev2", options())
    assert result.outcome == "applied", result.error
    after = live(kb, key("Deployment", ns, "web", "apps"))
    assert after is not None and after["metadata"]["uid"] != before_uid
    assert after["spec"]["selector"]["matchLabels"] == {"app": "web", "tier": "front"}


def test_a_stale_plan_is_refused(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options()).outcome == "applied"
    saved, _ = deploy.plan_app(kb, resources(app_docs(ns, config="b")), "rev2")
    cm_type = kb.client.resource_type("v1", "ConfigMap")
    assert cm_type is not None
    kb.client.request("PATCH", cm_type.path(ns, "web-config"), body={"data": {"mode": "edited"}},
                      content_type="application/merge-patch+json")
    with pytest.raises(StalePlanError, match="stale"):
        deploy.apply_app(kb, resources(app_docs(ns, config="b")), "rev2", options(), saved=saved)
    with pytest.raises(StalePlanError, match="manifests"):
        deploy.apply_app(kb, resources(app_docs(ns, config="c")), "rev3", options(), saved=saved)
    # Planned again, it applies; the field edited by hand belongs to another manager now, so the
    # apply reports the conflict and, with force_conflicts, takes the field back.
    fresh, _ = deploy.plan_app(kb, resources(app_docs(ns, config="b")), "rev2")
    result = deploy.apply_app(kb, resources(app_docs(ns, config="b")), "rev2", options(auto_rollback=False),
                              saved=fresh)
    assert result.outcome == "failed"
    assert "ConfigMap/" in result.error and "conflict" in result.error.lower()
    assert "--force-conflicts" in result.error
    fresh, _ = deploy.plan_app(kb, resources(app_docs(ns, config="b")), "rev2")
    result = deploy.apply_app(kb, resources(app_docs(ns, config="b")), "rev2",
                              options(force_conflicts=True, allow_bad_revision=True), saved=fresh)
    assert result.outcome == "applied", result.error
    assert live(kb, key("ConfigMap", ns, "web-config"))["data"] == {"mode": "b"}  # type: ignore[index]


def test_concurrent_applies_are_serialized_by_the_lease(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    kb.store.ensure_namespace()
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with kb.lock("other-runner", 30, 5):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        with pytest.raises(LockedError, match="other-runner"):
            deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options(lock_wait=1.0))
        timer = threading.Timer(2.0, release.set)
        timer.start()
        started = time.monotonic()
        result = deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options(lock_wait=30))
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert result.outcome == "applied"
    assert waited >= 1.5, "the second apply did not wait for the lock"


def test_failing_rollout_is_detected_fast_and_every_object_rolled_back(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns)), "good", options()).outcome == "applied"
    bad = app_docs(ns, image="gitops-test/crash:1", config="b", password="new", extra=True)
    events: list[dict[str, Any]] = []
    stamps: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        stamps.setdefault(event["event"], time.monotonic())

    result = deploy.apply_app(kb, resources(bad), "bad", options(timeout=120), on_event=on_event)
    assert result.outcome == "rolled-back", result.error
    assert "CrashLoopBackOff" in result.error
    detect = stamps["failed"] - stamps["rollout"]
    print(f"crash detected {detect:.1f}s after the rollout started")
    assert detect < 30
    # Every object is back: image, config, secret; the object only the bad revision had is gone.
    deployment = live(kb, key("Deployment", ns, "web", "apps"))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "gitops-test/app:1"
    assert live(kb, key("ConfigMap", ns, "web-config"))["data"] == {"mode": "a"}  # type: ignore[index]
    assert live(kb, key("ConfigMap", ns, "extra")) is None
    again, _ = deploy.plan_app(kb, resources(app_docs(ns)), "good")
    assert not again.has_changes
    state = kb.load_state()
    assert [(r.revision, r.outcome) for r in state.releases] == [
        ("good", Outcome.SUCCEEDED), ("bad", Outcome.FAILED), ("good", Outcome.ROLLED_BACK)]
    assert state.bad_revisions == ("bad",)
    with pytest.raises(Exception, match="marked bad"):
        deploy.apply_app(kb, resources(bad), "bad", options())


def test_rollback_on_demand_to_an_earlier_revision(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns, config="one")), "r1", options()).outcome == "applied"
    assert deploy.apply_app(kb, resources(app_docs(ns, config="two", extra=True)), "r2",
                            options()).outcome == "applied"
    result = deploy.rollback_app(kb, options())
    assert result.outcome == "rolled-back", result.error
    assert live(kb, key("ConfigMap", ns, "web-config"))["data"] == {"mode": "one"}  # type: ignore[index]
    assert live(kb, key("ConfigMap", ns, "extra")) is None
    result = deploy.rollback_app(kb, options(), to_revision="r2")
    assert result.outcome == "rolled-back"
    assert live(kb, key("ConfigMap", ns, "extra")) is not None


def test_an_apply_killed_midway_is_completed_by_the_next_run(kube_cluster: Any, namespace: str) -> None:
    """SIGKILL an apply of 60 objects half-way; the lock expires and a re-run completes it."""
    app = f"killed-{namespace}"[:50]
    # The child imports gitops from this checkout (not an installed copy), as the test itself does.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1])])}
    args = [sys.executable, str(HERE / "kube_apply_many.py"), str(kube_cluster.kubeconfig), app, namespace, "60"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    applied = 0
    for line in process.stdout:
        if line.startswith("change"):
            applied += 1
            if applied == 20:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(30)
    kb = backend(str(kube_cluster.kubeconfig), app, namespace, state_namespace=namespace)
    state = kb.load_state()
    assert state.current is not None and state.current.outcome is Outcome.IN_PROGRESS
    cm_type = kb.client.resource_type("v1", "ConfigMap")
    assert cm_type is not None
    present = kb.client.list(cm_type, namespace, label_selector=f"gitops.dev/app={app}")
    assert 15 <= len(present) < 60

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    present = kb.client.list(cm_type, namespace, label_selector=f"gitops.dev/app={app}")
    assert len(present) == 60
    state = kb.load_state()
    assert state.current is not None and state.current.outcome is Outcome.SUCCEEDED
    assert len(state.current.inventory) == 60


def test_exact_mode_confirms_changes_with_a_server_dry_run(kube: tuple[KubernetesBackend, str]) -> None:
    kb, ns = kube
    assert deploy.apply_app(kb, resources(app_docs(ns)), "rev1", options()).outcome == "applied"
    writes = kb.client.writes
    exact, _ = deploy.plan_app(kb, resources(app_docs(ns, image="gitops-test/app:2")), "rev2", exact=True)
    changes = {c.key.kind: c for c in exact.changes if c.action is not Action.NOOP}
    assert set(changes) == {"Deployment"}
    paths = [f.path for f in changes["Deployment"].fields]
    assert "/spec/template/spec/containers/[name=app]/image" in paths
    assert changes["Deployment"].reason == "server dry-run"
    assert live(kb, key("Deployment", ns, "web", "apps"))["spec"]["template"]["spec"]["containers"][0][  # type: ignore[index]
        "image"] == "gitops-test/app:1", "a dry run changed the object"
    assert kb.client.writes - writes == 1  # one dry-run request, for the one changed object
