"""The health table and fail-fast detection against the real control plane.

Objects are read as raw JSON (what the production code takes), straight from the API paths; list
items come without ``kind``/``apiVersion``, as the API sends them. Each bad rollout must be
reported within ``FAIL_FAST_SECONDS`` of the patch, naming the new pod, while the old pods, which
keep serving, are not blamed. The measured times are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from gitops.backends.kubernetes.health import assess, assess_workload
from gitops.backends.kubernetes.health.pods import newest_replicaset, workload_failures
from gitops.model import Failure, HealthStatus

pytestmark = pytest.mark.kube

FAIL_FAST_SECONDS = 10.0
POLL = 0.2


def raw(api: Any, path: str) -> Any:
    """GET ``path`` and decode the body ourselves: no model classes in between."""
    if hasattr(api, "param_serialize"):  # kubernetes client >= 33 (OpenAPI generator 7)
        method, url, headers, body, post = api.param_serialize("GET", path, auth_settings=["BearerToken"])
        response = api.call_api(method, url, header_params=headers, body=body, post_params=post)
        response.read()
    else:
        response = api.call_api(path, "GET", auth_settings=["BearerToken"], response_type=None,
                                _preload_content=False, _return_http_data_only=True)
    assert response.status == 200, (path, response.status, response.data[:300])
    return json.loads(response.data)


class Live:
    """Raw reads of one namespace."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api, self.ns = api, namespace

    def deployment(self, name: str) -> dict[str, Any]:
        return dict(raw(self.api, f"/apis/apps/v1/namespaces/{self.ns}/deployments/{name}"))

    def job(self, name: str) -> dict[str, Any]:
        return dict(raw(self.api, f"/apis/batch/v1/namespaces/{self.ns}/jobs/{name}"))

    def replicasets(self) -> list[dict[str, Any]]:
        return list(raw(self.api, f"/apis/apps/v1/namespaces/{self.ns}/replicasets")["items"])

    def pods(self) -> list[dict[str, Any]]:
        return list(raw(self.api, f"/api/v1/namespaces/{self.ns}/pods")["items"])


def poll(what: str, check: Callable[[], Any], timeout: float) -> tuple[Any, float]:
    """(first truthy result of ``check``, seconds it took)."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        last = check()
        if last:
            return last, time.monotonic() - started
        time.sleep(POLL)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def deployment(name: str, image: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def roll_out_healthy(kube_api: Any, live: Live, name: str) -> list[HealthStatus]:
    """Create ``name`` at gitops-test/app:1 and follow assess() until Healthy; the statuses seen."""
    client.AppsV1Api(kube_api).create_namespaced_deployment(live.ns, deployment(name, "gitops-test/app:1"))
    seen: list[HealthStatus] = []

    def healthy() -> bool:
        status = assess(live.deployment(name)).status
        if not seen or seen[-1] is not status:
            seen.append(status)
        return status is HealthStatus.HEALTHY

    poll(f"{name} healthy", healthy, timeout=120)  # setup, not measured: a busy control plane is slow
    return seen


BAD_ROLLOUTS = {
    "crashloop": ({"containers": [{"name": "app", "image": "gitops-test/crash:1"}]}, "CrashLoopBackOff"),
    "imagepull": ({"containers": [{"name": "app", "image": "gitops-test/missing:1"}]}, "ImagePullBackOff"),
    "unschedulable": ({"containers": [{"name": "app", "resources": {"requests": {"cpu": "1000"}}}]},
                      "Unschedulable"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROLLOUTS))
def test_a_bad_rollout_fails_fast_and_blames_only_new_pods(kube_api: Any, namespace: str, case: str) -> None:
    template, reason = BAD_ROLLOUTS[case]
    live = Live(kube_api, namespace)
    seen = roll_out_healthy(kube_api, live, "web")
    assert seen[0] is HealthStatus.PROGRESSING and seen[-1] is HealthStatus.HEALTHY, seen
    assert HealthStatus.DEGRADED not in seen
    old_pods = {p["metadata"]["name"] for p in live.pods()}
    assert len(old_pods) == 3
    assert workload_failures(live.deployment("web"), live.pods(), live.replicasets()) == []

    started = time.monotonic()
    client.AppsV1Api(kube_api).patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": template}}})

    def failures() -> list[Failure]:
        # Read in the order the backend does: the Deployment, then its ReplicaSets and pods.
        return workload_failures(live.deployment("web"), live.pods(), live.replicasets())

    found, _ = poll(f"a {reason} failure", failures, timeout=60)
    elapsed = time.monotonic() - started
    print(f"\n[health] {case}: {reason} detected {elapsed:.2f}s after the patch: {found[0]}")
    assert elapsed < FAIL_FAST_SECONDS, f"{reason} took {elapsed:.1f}s to detect"

    dep, pods, replicasets = live.deployment("web"), live.pods(), live.replicasets()
    new_rs = newest_replicaset(dep, replicasets)
    assert new_rs is not None
    new_hash = new_rs["metadata"]["labels"]["pod-template-hash"]
    assert {f.reason for f in found} == {reason}
    blamed = {f.pod for f in found}
    assert blamed.isdisjoint(old_pods)
    pods_by_name = {p["metadata"]["name"]: p for p in pods}
    assert all(pods_by_name[name]["metadata"]["labels"]["pod-template-hash"] == new_hash for name in blamed)
    assert all(f.object.kind == "Deployment" and f.object.name == "web" for f in found)
    # The old pods still serve and are not blamed.
    serving = [p for p in pods if p["metadata"]["name"] in old_pods and not p["metadata"].get("deletionTimestamp")]
    assert serving and all(p["status"]["phase"] == "Running" for p in serving)

    combined = assess_workload(dep, pods, replicasets)
    assert combined.status is HealthStatus.DEGRADED
    assert reason in combined.message
    # Without the pods, the Deployment alone still only looks Progressing: that is why pods are read.
    assert assess(dep).status is HealthStatus.PROGRESSING


def test_a_crashing_job_with_backoff_limit_zero_is_degraded(kube_api: Any, namespace: str) -> None:
    live = Live(kube_api, namespace)
    started = time.monotonic()
    client.BatchV1Api(kube_api).create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "job", "image": "gitops-test/crash:1"}]}}},
    })

    pod_failed, _ = poll("the job's pod to be blamed",
                         lambda: workload_failures(live.job("migrate"), live.pods(), []), timeout=60)
    by_pods = time.monotonic() - started
    health, _ = poll("the Job to be Degraded",
                     lambda: (h := assess(live.job("migrate"))).status is HealthStatus.DEGRADED and h, timeout=60)
    by_job = time.monotonic() - started
    print(f"\n[health] job: failed pod blamed {by_pods:.2f}s after create, Job Degraded after {by_job:.2f}s "
          f"({health.message})")
    assert [(f.reason, f.container) for f in pod_failed] == [("Failed", "job")]
    assert "exited with code 1" in pod_failed[0].message
    assert [f.reason for f in health.failures] == ["BackoffLimitExceeded"]
    assert by_pods < FAIL_FAST_SECONDS


def test_a_healthy_job_completes_and_its_pods_are_never_blamed(kube_api: Any, namespace: str) -> None:
    live = Live(kube_api, namespace)
    client.BatchV1Api(kube_api).create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "ok"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "job", "image": "gitops-test/app:1"}]}}},
    })
    seen: list[HealthStatus] = []

    def complete() -> bool:
        job = live.job("ok")
        assert workload_failures(job, live.pods(), []) == []
        seen.append(assess(job).status)
        return seen[-1] is HealthStatus.HEALTHY

    poll("the Job to complete", complete, timeout=60)
    assert set(seen) <= {HealthStatus.PROGRESSING, HealthStatus.HEALTHY}
