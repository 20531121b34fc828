"""The Kubernetes test control plane is real: controllers roll Deployments out, the scheduler
places pods, kwok runs them, and the failure modes used by rollback tests really happen."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from harness import kube
from kubernetes import client
from testsupport import LongLived, wait_for

pytestmark = pytest.mark.kube


def deployment(name: str, image: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if "resources" in spec:
        container["resources"] = spec.pop("resources")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
            **spec,
        },
    }


def rolled_out(apps: client.AppsV1Api, namespace: str, name: str, replicas: int) -> bool:
    """What `kubectl rollout status` checks."""
    status = apps.read_namespaced_deployment_status(name, namespace)
    s = status.status
    return bool(
        (s.observed_generation or 0) >= status.metadata.generation
        and (s.updated_replicas or 0) == replicas
        and (s.available_replicas or 0) == replicas
        and (s.replicas or 0) == replicas
    )


def test_deployment_rolls_out_and_image_change_makes_a_new_replicaset(kube_api: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("web", "gitops-test/app:1"))
    wait_for("3 available replicas", lambda: rolled_out(apps, namespace, "web", 3))

    pods = client.CoreV1Api(kube_api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-") for p in pods)
    assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods)

    new_image = {"containers": [{"name": "app", "image": "gitops-test/app:2"}]}
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": new_image}}})
    wait_for("the new image rolled out", lambda: rolled_out(apps, namespace, "web", 3))
    replicasets = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    by_image = {rs.spec.template.spec.containers[0].image: rs for rs in replicasets}
    assert set(by_image) == {"gitops-test/app:1", "gitops-test/app:2"}
    wait_for("the old ReplicaSet scaled to zero",
             lambda: apps.read_namespaced_replica_set(
                 by_image["gitops-test/app:1"].metadata.name, namespace).status.replicas == 0)
    assert by_image["gitops-test/app:2"].spec.replicas == 3


def test_crashing_image_goes_into_crashloop_and_exceeds_the_progress_deadline(
    kube_api: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("web", "gitops-test/app:1", replicas=2))
    wait_for("2 available replicas", lambda: rolled_out(apps, namespace, "web", 2))
    apps.patch_namespaced_deployment("web", namespace, {"spec": {
        "progressDeadlineSeconds": 3,
        "template": {"spec": {"containers": [{"name": "app", "image": "gitops-test/crash:1"}]}},
    }})

    def crashing() -> list[str]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return [
            p.metadata.name for p in pods
            for cs in (p.status.container_statuses or [])
            if cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff"
        ]

    assert wait_for("a pod in CrashLoopBackOff", crashing, timeout=30)

    def deadline_exceeded() -> bool:
        conditions = apps.read_namespaced_deployment_status("web", namespace).status.conditions or []
        return any(c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded" for c in conditions)

    wait_for("ProgressDeadlineExceeded", deadline_exceeded, timeout=60)
    # The old pods keep serving: maxUnavailable lets only one go.
    status = apps.read_namespaced_deployment_status("web", namespace).status
    assert (status.available_replicas or 0) >= 1


def test_impossible_resource_requests_are_unschedulable(kube_api: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment(
        "huge", "gitops-test/app:1", replicas=1, resources={"requests": {"cpu": "1000"}}))

    def unschedulable() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="app=huge").items
        return any(
            c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            for p in pods for c in (p.status.conditions or [])
        )

    wait_for("an Unschedulable pod", unschedulable, timeout=30)


@pytest.mark.parametrize(
    ("image", "reason"),
    [("gitops-test/missing:1", "ImagePullBackOff"), ("gitops-test/unready:1", None)],
)
def test_other_failure_modes(kube_api: Any, namespace: str, image: str, reason: str | None) -> None:
    core = client.CoreV1Api(kube_api)
    client.AppsV1Api(kube_api).create_namespaced_deployment(namespace, deployment("bad", image, replicas=1))

    def observed() -> bool:
        for pod in core.list_namespaced_pod(namespace, label_selector="app=bad").items:
            for cs in pod.status.container_statuses or []:
                if reason is None and cs.state.running and not cs.ready:
                    return True  # runs, never passes readiness
                if reason and cs.state.waiting and cs.state.waiting.reason == reason:
                    return True
        return False

    wait_for(f"{image} to show its failure", observed, timeout=30)


def test_jobs_complete_and_crashing_jobs_fail(kube_api: Any, namespace: str) -> None:
    batch = client.BatchV1Api(kube_api)

    def job(name: str, image: str) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "job", "image": image}]}}},
        }

    batch.create_namespaced_job(namespace, job("good", "gitops-test/app:1"))
    batch.create_namespaced_job(namespace, job("bad", "gitops-test/crash:1"))

    def condition(name: str, kind: str) -> bool:
        conditions = batch.read_namespaced_job_status(name, namespace).status.conditions or []
        return any(c.type == kind and c.status == "True" for c in conditions)

    wait_for("the good job to complete", lambda: condition("good", "Complete"), timeout=60)
    wait_for("the crashing job to fail", lambda: condition("bad", "Failed"), timeout=60)


def _renew_times(kube_api: Any) -> dict[str, datetime]:
    leases = client.CoordinationV1Api(kube_api).list_namespaced_lease("kube-node-lease").items
    return {lease.metadata.name: lease.spec.renew_time for lease in leases if lease.spec.renew_time}


def test_kwok_renews_the_node_leases(kube_api: Any) -> None:
    """Without renewed Leases the node lifecycle controller marks every node NotReady about once a
    minute (and every pod on them Ready=False)."""
    first = _renew_times(kube_api)
    assert set(kube.NODES) <= set(first), f"node leases in kube-node-lease: {sorted(first)}"
    wait_for("every node lease renewed again",
             lambda: all(_renew_times(kube_api)[n] > first[n] for n in kube.NODES), timeout=30, poll=1)
    for node in client.CoreV1Api(kube_api).list_node(label_selector="type=kwok").items:
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", node.metadata.name


def test_a_pod_marked_not_ready_by_the_node_controller_becomes_ready_again(
    kube_api: Any, namespace: str
) -> None:
    """What the node lifecycle controller does to the pods of a node that missed its heartbeats
    (MarkPodsNotReady): Ready=False, containers untouched. A kubelet would report them Ready
    again; so must kwok, or the Deployment never becomes available again."""
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("web", "gitops-test/app:1", replicas=1))
    wait_for("1 available replica", lambda: rolled_out(apps, namespace, "web", 1))
    [pod] = core.list_namespaced_pod(namespace, label_selector="app=web").items
    conditions = [
        {"type": c.type, "status": "False" if c.type == "Ready" else c.status,
         "reason": "NodeNotReady" if c.type == "Ready" else c.reason,
         "lastTransitionTime": c.last_transition_time.isoformat()}
        for c in pod.status.conditions
    ]
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {"conditions": conditions}})
    wait_for("the Deployment to see the pod unavailable",
             lambda: (apps.read_namespaced_deployment_status("web", namespace).status.available_replicas or 0) == 0,
             timeout=15, poll=0.1)

    def ready_again() -> bool:
        current = core.read_namespaced_pod_status(pod.metadata.name, namespace)
        return any(c.type == "Ready" and c.status == "True" for c in current.status.conditions)

    wait_for("the same pod Ready again", ready_again, timeout=15)
    wait_for("the Deployment available again", lambda: rolled_out(apps, namespace, "web", 1), timeout=15)


MINUTES_ALIVE = 3.0  # more than three of the node lifecycle controller's grace periods (50 s)


def test_a_deployment_created_at_start_up_rolls_out_minutes_later(
    kube_api: Any, long_lived: LongLived | None
) -> None:
    """Runs last (tests/integration/conftest.py): the Deployment was created when the session
    started. In a short session the test waits until it is MINUTES_ALIVE old."""
    assert long_lived is not None
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    namespace = long_lived.namespace
    wait_for("3 available replicas", lambda: rolled_out(apps, namespace, "web", 3))
    remaining = long_lived.started + MINUTES_ALIVE * 60 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)

    # No node went NotReady while it lived: no event, no disruption mode, pods still available.
    events = core.list_event_for_all_namespaces(field_selector="involvedObject.kind=Node").items
    not_ready = [
        f"{e.involved_object.name}: {e.reason} at {e.last_timestamp or e.event_time}" for e in events
        if e.reason in ("NodeNotReady", "NodeNotSchedulable")
        and (e.last_timestamp or e.event_time or datetime.min.replace(tzinfo=UTC)) >= long_lived.started_at
    ]
    assert not_ready == []
    with (kube.state_dir() / "kube-controller-manager.log").open("rb") as log:
        log.seek(long_lived.kcm_log_offset)
        flaps = [line for line in log.read().decode(errors="replace").splitlines() if "disruption mode" in line]
    assert flaps == []
    assert rolled_out(apps, namespace, "web", 3), "the pods of a Deployment alive for minutes are no longer Ready"

    started = time.monotonic()
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "gitops-test/app:2"}]}}}})

    def new_image_rolled_out() -> bool:
        dep = apps.read_namespaced_deployment("web", namespace)
        return dep.spec.template.spec.containers[0].image == "gitops-test/app:2" and rolled_out(
            apps, namespace, "web", 3)

    wait_for("the new image rolled out", new_image_rolled_out, timeout=30)
    print(f"rolled out a new image {time.monotonic() - started:.1f}s after the patch, "
          f"{(started - long_lived.started) / 60:.1f} min after the Deployment was created")
