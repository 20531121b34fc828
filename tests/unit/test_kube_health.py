"""Kubernetes health table and fail-fast detection, one YAML fixture per state.

Fixtures live in data/kube_health/. Most were captured from the real test control plane by
data/kube_health/capture.py (their first line says so); the states kwok cannot produce
(CreateContainerConfigError, init containers, OnDelete strategies, ...) are written by hand from
the API shapes. ``rollout-*.yaml`` fixtures are ``List``s of a workload with its ReplicaSets or
ControllerRevisions and pods at one moment of a rollout.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.backends.kubernetes import health
from gitops.backends.kubernetes.health import pods as pods_mod
from gitops.backends.kubernetes.health.pods import pod_failures, workload_failures
from gitops.model import Failure, Health, HealthStatus, ResourceKey

DATA = Path(__file__).parent / "data" / "kube_health"
H, P, D, S, M, U = (HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED,
                    HealthStatus.SUSPENDED, HealthStatus.MISSING, HealthStatus.UNKNOWN)


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((DATA / name).read_text()))


def rollout(name: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(workload, pods, history) of a rollout-*.yaml List; the workload comes first."""
    items = load(name)["items"]
    pods = [i for i in items if i["kind"] == "Pod"]
    history = [i for i in items if i["kind"] in ("ReplicaSet", "ControllerRevision")]
    return items[0], pods, history


def pod_name(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["name"])


# -- the table: one fixture, one state --------------------------------------------------------

#: fixture → (status, fragment of the message, reasons of the failures attached by assess()).
ASSESS: dict[str, tuple[HealthStatus, str, tuple[str, ...]]] = {
    "deployment-healthy.yaml": (H, "3 of 3 replicas available", ()),
    "deployment-progressing.yaml": (P, "1 of 3 new replicas updated", ()),
    "deployment-degraded-deadline.yaml": (D, "has timed out progressing", ("ProgressDeadlineExceeded",)),
    "deployment-paused.yaml": (S, "paused", ()),
    "deployment-replica-failure.yaml": (D, "exceeded quota", ("FailedCreate",)),
    "deployment-generation-not-observed.yaml": (P, "spec update to be observed", ()),
    "deployment-old-replicas-pending.yaml": (P, "1 old replicas pending termination", ()),
    "deployment-being-deleted.yaml": (P, "being deleted", ()),
    "deployment-scaled-to-zero.yaml": (H, "0 of 0", ()),
    "statefulset-healthy.yaml": (H, "rolling update complete: 3 pods", ()),
    "statefulset-partition.yaml": (H, "partitioned rollout complete: 1 of 3", ()),
    "statefulset-partition-progressing.yaml": (P, "(partition 1): 1 of 2 pods", ()),
    "statefulset-rolling.yaml": (P, "1 of 3 pods to be ready", ()),
    "statefulset-ondelete.yaml": (H, "OnDelete", ()),
    "statefulset-not-observed.yaml": (P, "spec update to be observed", ()),
    "daemonset-healthy.yaml": (H, "2 of 2 pods available", ()),
    "daemonset-rolling.yaml": (P, "1 of 2 pods updated", ()),
    "daemonset-ondelete.yaml": (H, "OnDelete", ()),
    "replicaset-healthy.yaml": (H, "3 of 3 pods available", ()),
    "job-complete.yaml": (H, "1 succeeded", ()),
    "job-failed.yaml": (D, "backoff limit", ("BackoffLimitExceeded",)),
    "job-failure-target.yaml": (D, "backoff limit", ("BackoffLimitExceeded",)),
    "job-running.yaml": (P, "1 active", ()),
    "job-suspended.yaml": (S, "suspended", ()),
    "cronjob-healthy.yaml": (H, "not scheduled yet", ()),
    "cronjob-suspended.yaml": (S, "suspended", ()),
    "cronjob-running.yaml": (H, "1 job(s) running", ()),
    "cronjob-last-run-succeeded.yaml": (H, "succeeded", ()),
    "cronjob-last-run-failed.yaml": (D, "did not succeed", ("LastScheduledRunFailed",)),
    "pod-running-ready.yaml": (H, "running and ready", ()),
    "pod-running-unready.yaml": (P, "not ready", ()),
    "pod-pending.yaml": (P, "app: ContainerCreating", ()),
    "pod-succeeded.yaml": (H, "completed", ()),
    "pod-crashloop.yaml": (D, "CrashLoopBackOff: back-off 40s", ("CrashLoopBackOff",)),
    "pod-imagepullbackoff.yaml": (D, "ImagePullBackOff", ("ImagePullBackOff",)),
    "pod-unschedulable.yaml": (D, "Insufficient cpu", ("Unschedulable",)),
    "pod-createcontainerconfigerror.yaml": (D, "couldn't find key password", ("CreateContainerConfigError",)),
    "pod-init-crashloop.yaml": (D, "CrashLoopBackOff", ("CrashLoopBackOff",)),
    "pod-restarting.yaml": (D, "last exit code 137 (OOMKilled), 4 restarts", ("CrashLoopBackOff",)),
    "pod-restarted-but-ready.yaml": (H, "running and ready", ()),
    "pod-failed-job.yaml": (D, "exited with code 1 (Error)", ("Failed",)),
    "pod-evicted.yaml": (D, "low on resource: memory", ("Evicted",)),
    "pvc-bound.yaml": (H, "bound to kube-health-pv", ()),
    "pvc-pending.yaml": (P, "waiting for the claim", ()),
    "pvc-lost.yaml": (D, "no longer exists", ("ClaimLost",)),
    "service-clusterip.yaml": (H, "ClusterIP", ()),
    "service-loadbalancer-pending.yaml": (P, "waiting for the load balancer", ()),
    "service-loadbalancer-ready.yaml": (H, "203.0.113.10, public.lb.example.com", ()),
    "ingress.yaml": (H, "no address published", ()),
    "ingress-with-address.yaml": (H, "203.0.113.20", ()),
    "configmap.yaml": (H, "exists", ()),
}

#: rollout fixture → (health with the pods' findings, [(reason, blamed pod name prefix)]).
ROLLOUTS: dict[str, tuple[HealthStatus, list[tuple[str, str]]]] = {
    "rollout-deployment-crashloop.yaml": (D, [("CrashLoopBackOff", "crash-79b9ff47-")]),
    "rollout-deployment-imagepull.yaml": (D, [("ImagePullBackOff", "pull-7cdff8f476-")]),
    "rollout-deployment-unschedulable.yaml": (D, [("Unschedulable", "huge-7b46fb79bf-")]),
    "rollout-deployment-old-pod-crashing.yaml": (P, []),
    "rollout-statefulset-crashloop.yaml": (D, [("CrashLoopBackOff", "queue-2")]),
    "rollout-daemonset-crashloop.yaml": (D, [("CrashLoopBackOff", "agent-")]),
    "rollout-job-failed.yaml": (D, [("Failed", "broken-")]),
    "rollout-job-retrying.yaml": (P, []),
}

CAPTURED = {
    "deployment-healthy.yaml", "deployment-progressing.yaml", "deployment-degraded-deadline.yaml",
    "deployment-paused.yaml", "deployment-replica-failure.yaml", "statefulset-healthy.yaml",
    "statefulset-partition.yaml", "statefulset-rolling.yaml", "daemonset-healthy.yaml", "daemonset-rolling.yaml",
    "replicaset-healthy.yaml", "job-complete.yaml", "job-failed.yaml", "job-running.yaml", "job-suspended.yaml",
    "cronjob-healthy.yaml", "cronjob-suspended.yaml", "pod-running-ready.yaml", "pod-running-unready.yaml",
    "pod-succeeded.yaml", "pod-crashloop.yaml", "pod-imagepullbackoff.yaml", "pod-unschedulable.yaml",
    "pod-failed-job.yaml", "pvc-bound.yaml", "pvc-pending.yaml", "service-clusterip.yaml",
    "service-loadbalancer-pending.yaml", "ingress.yaml", "configmap.yaml",
    "rollout-deployment-crashloop.yaml", "rollout-deployment-imagepull.yaml",
    "rollout-deployment-unschedulable.yaml", "rollout-statefulset-crashloop.yaml",
    "rollout-daemonset-crashloop.yaml", "rollout-job-failed.yaml", "rollout-job-retrying.yaml",
}


def test_every_fixture_has_an_expectation_and_every_expectation_a_fixture() -> None:
    on_disk = {p.name for p in DATA.glob("*.yaml")}
    assert on_disk == set(ASSESS) | set(ROLLOUTS)


@pytest.mark.parametrize("fixture", sorted(CAPTURED))
def test_captured_fixtures_say_where_they_come_from(fixture: str) -> None:
    assert (DATA / fixture).read_text().startswith("# Captured from the gitops test cluster")


@pytest.mark.parametrize(("fixture", "status", "fragment", "reasons"),
                         [(name, *expected) for name, expected in ASSESS.items()])
def test_assess(fixture: str, status: HealthStatus, fragment: str, reasons: tuple[str, ...]) -> None:
    obj = load(fixture)
    result = health.assess(obj)
    assert result.status is status, result
    assert fragment in result.message
    assert tuple(f.reason for f in result.failures) == reasons
    for failure in result.failures:
        assert failure.object.name == obj["metadata"]["name"]
        assert failure.object.kind == obj["kind"]


@pytest.mark.parametrize(("fixture", "status", "blamed"), [(name, *expected) for name, expected in ROLLOUTS.items()])
def test_rollout_fixtures(fixture: str, status: HealthStatus, blamed: list[tuple[str, str]]) -> None:
    workload, pods, history = rollout(fixture)
    found = workload_failures(workload, pods, history)
    assert [(f.reason, f.pod[: len(prefix)]) for f, (_, prefix) in zip(found, blamed, strict=False)] == blamed
    assert len(found) == len(blamed)
    key = ResourceKey(workload["apiVersion"].rpartition("/")[0], workload["kind"],
                      workload["metadata"]["namespace"], workload["metadata"]["name"])
    assert all(f.object == key for f in found)
    combined = health.assess_workload(workload, pods, history)
    assert combined.status is status, combined
    assert {f.reason for f in found} <= {f.reason for f in combined.failures}


# -- current revision only ----------------------------------------------------------------------


def test_a_new_crashing_pod_fails_the_rollout_and_the_old_pods_are_not_blamed() -> None:
    deployment, pods, replicasets = rollout("rollout-deployment-crashloop.yaml")
    old = [p for p in pods if p["metadata"]["labels"]["pod-template-hash"] == "6cc4bcd68c"]
    assert len(old) == 3 and all(p["status"]["phase"] == "Running" for p in old)
    # Make the old pods crash too: still only the new pod is this rollout's failure.
    for pod in old:
        pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert len(pod_failures(pods)) == 4
    found = workload_failures(deployment, pods, replicasets)
    assert [f.pod for f in found] == ["crash-79b9ff47-xdnxh"]
    assert found[0].container == "app"
    assert "last exit code 1 (Error), 3 restarts" in found[0].message


def test_an_old_crashing_pod_does_not_fail_a_healthy_rollout() -> None:
    deployment, pods, replicasets = rollout("rollout-deployment-old-pod-crashing.yaml")
    assert any(f.reason == "CrashLoopBackOff" for f in pod_failures(pods))
    assert workload_failures(deployment, pods, replicasets) == []
    done = copy.deepcopy(deployment)
    done["status"]["replicas"] = 3
    assert health.assess_workload(done, pods, replicasets).status is H


def test_nothing_is_blamed_before_the_controller_observes_the_new_spec() -> None:
    deployment, pods, replicasets = rollout("rollout-deployment-crashloop.yaml")
    deployment["metadata"]["generation"] += 1
    assert workload_failures(deployment, pods, replicasets) == []


def test_a_deployment_without_its_replicasets_blames_nobody() -> None:
    deployment, pods, _ = rollout("rollout-deployment-crashloop.yaml")
    assert workload_failures(deployment, pods, []) == []


def test_the_newest_replicaset_is_the_highest_revision() -> None:
    deployment, pods, replicasets = rollout("rollout-deployment-crashloop.yaml")
    newest = pods_mod.newest_replicaset(deployment, replicasets)
    assert newest is not None and newest["metadata"]["name"] == "crash-79b9ff47"
    # A rollback: the controller gives the old ReplicaSet the next revision; its pods are current.
    old = next(rs for rs in replicasets if rs["metadata"]["name"] == "crash-6cc4bcd68c")
    old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    assert pods_mod.newest_replicaset(deployment, replicasets) is old
    assert workload_failures(deployment, pods, replicasets) == []


def test_pods_of_a_namesake_in_another_namespace_are_ignored() -> None:
    deployment, pods, replicasets = rollout("rollout-deployment-crashloop.yaml")
    for obj in pods + replicasets:
        obj["metadata"]["namespace"] = "elsewhere"
    assert workload_failures(deployment, pods, replicasets) == []


def test_pods_and_replicasets_of_other_workloads_are_ignored() -> None:
    crash, crash_pods, crash_rs = rollout("rollout-deployment-crashloop.yaml")
    pull, pull_pods, pull_rs = rollout("rollout-deployment-imagepull.yaml")
    everything, history = crash_pods + pull_pods, crash_rs + pull_rs
    assert {f.reason for f in workload_failures(crash, everything, history)} == {"CrashLoopBackOff"}
    assert {f.reason for f in workload_failures(pull, everything, history)} == {"ImagePullBackOff"}


def test_pods_without_owner_references_are_matched_by_selector_and_hash() -> None:
    deployment, pods, replicasets = rollout("rollout-deployment-crashloop.yaml")
    for obj in pods + replicasets:
        del obj["metadata"]["ownerReferences"]
    assert [f.pod for f in workload_failures(deployment, pods, replicasets)] == ["crash-79b9ff47-xdnxh"]


def test_statefulset_blames_only_pods_at_the_update_revision() -> None:
    sts, pods, _ = rollout("rollout-statefulset-crashloop.yaml")
    revisions = {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"] for p in pods}
    assert revisions["queue-2"] == sts["status"]["updateRevision"] != revisions["queue-0"]
    assert [f.pod for f in workload_failures(sts, pods, [])] == ["queue-2"]
    # The same pods with the crashing one at an old revision: nothing to blame.
    sts["status"]["updateRevision"] = revisions["queue-0"]
    assert workload_failures(sts, pods, []) == []


def test_daemonset_current_pods_by_template_generation_or_by_controller_revision() -> None:
    ds, pods, revisions = rollout("rollout-daemonset-crashloop.yaml")
    crashing = [f.pod for f in pod_failures(pods)]
    assert len(crashing) == 1 and len(pods) == 2
    assert [f.pod for f in workload_failures(ds, pods, [])] == crashing  # pod-template-generation
    for pod in pods:
        del pod["metadata"]["labels"]["pod-template-generation"]
    assert workload_failures(ds, pods, []) == []  # cannot tell without the revisions
    assert [f.pod for f in workload_failures(ds, pods, revisions)] == crashing  # newest ControllerRevision


def test_a_job_with_backoff_limit_zero_fails_on_its_first_failed_pod() -> None:
    job, pods, _ = rollout("rollout-job-failed.yaml")
    job.pop("status")  # before the Job controller counted the failure
    found = workload_failures(job, pods, [])
    assert [(f.reason, f.container, f.message) for f in found] == [("Failed", "job", "exited with code 1 (Error)")]


def test_a_retrying_job_is_not_failed_by_a_failed_pod_until_retries_run_out() -> None:
    job, pods, _ = rollout("rollout-job-retrying.yaml")
    assert job["spec"]["backoffLimit"] == 3 and [p["status"]["phase"] for p in pods] == ["Failed"]
    assert [f.reason for f in pod_failures(pods)] == ["Failed"]
    assert workload_failures(job, pods, []) == []
    job["status"]["failed"] = 4
    assert [f.reason for f in workload_failures(job, pods, [])] == ["Failed"]


def test_a_job_whose_pod_cannot_start_fails_at_once() -> None:
    job, _, _ = rollout("rollout-job-retrying.yaml")
    pod = load("pod-imagepullbackoff.yaml")
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "controller": True,
                                           "name": job["metadata"]["name"]}]
    pod["metadata"]["namespace"] = job["metadata"]["namespace"]
    assert [f.reason for f in workload_failures(job, [pod], [])] == ["ImagePullBackOff"]


def test_a_job_crash_looping_under_restart_policy_on_failure_counts_restarts() -> None:
    job, _, _ = rollout("rollout-job-retrying.yaml")
    job["status"] = {}
    pod = load("pod-restarting.yaml")  # 4 restarts, not ready: CrashLoopBackOff for a Deployment
    pod["spec"]["restartPolicy"] = "OnFailure"
    pod["metadata"]["ownerReferences"] = [{"kind": "Job", "controller": True, "name": job["metadata"]["name"]}]
    pod["metadata"]["namespace"] = job["metadata"]["namespace"]
    job["spec"]["backoffLimit"] = 4  # 4 restarts are within the budget: the Job is still retrying
    assert workload_failures(job, [pod], []) == []
    job["spec"]["backoffLimit"] = 3  # 4 > 3: out of retries
    assert [f.reason for f in workload_failures(job, [pod], [])] == ["CrashLoopBackOff"]


def test_a_bare_pod_is_its_own_workload() -> None:
    pod = load("pod-unschedulable.yaml")
    found = workload_failures(pod, [], [])
    assert [(f.object.kind, f.pod, f.reason) for f in found] == [("Pod", pod["metadata"]["name"], "Unschedulable")]


def test_replicaset_blames_its_own_pods() -> None:
    _, pods, replicasets = rollout("rollout-deployment-crashloop.yaml")
    by_name = {rs["metadata"]["name"]: rs for rs in replicasets}
    assert [f.pod for f in workload_failures(by_name["crash-79b9ff47"], pods, [])] == ["crash-79b9ff47-xdnxh"]
    assert workload_failures(by_name["crash-6cc4bcd68c"], pods, []) == []


# -- pod findings --------------------------------------------------------------------------------


def waiting_pod(reason: str, *, restarts: int = 0, init: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "app", "ready": False, "restartCount": restarts,
                              "state": {"waiting": {"reason": reason, "message": f"{reason} detail"}}}
    field = "initContainerStatuses" if init else "containerStatuses"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"restartPolicy": "Always"}, "status": {"phase": "Pending", field: [status]}}


@pytest.mark.parametrize("reason", sorted(pods_mod.WAITING_REASONS))
@pytest.mark.parametrize("init", [False, True])
def test_every_fail_fast_waiting_reason_is_found(reason: str, init: bool) -> None:
    found = pod_failures([waiting_pod(reason, init=init)])
    assert [(f.reason, f.pod, f.container, f.message) for f in found] == [(reason, "p", "app", f"{reason} detail")]
    assert found[0].object == ResourceKey("", "Pod", "ns", "p")


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing", "", "Completed"])
def test_ordinary_waiting_is_no_failure(reason: str) -> None:
    assert pod_failures([waiting_pod(reason)]) == []


@pytest.mark.parametrize(("restarts", "ready", "expected"), [
    (pods_mod.CRASH_RESTARTS - 1, False, []),
    (pods_mod.CRASH_RESTARTS, False, ["CrashLoopBackOff"]),
    (pods_mod.CRASH_RESTARTS + 5, True, []),
])
def test_restart_threshold(restarts: int, ready: bool, expected: list[str]) -> None:
    pod = load("pod-restarting.yaml")
    status = pod["status"]["containerStatuses"][0]
    status["restartCount"], status["ready"] = restarts, ready
    assert [f.reason for f in pod_failures([pod])] == expected


def test_restarts_without_a_terminated_last_state_are_no_crash_loop() -> None:
    pod = load("pod-restarting.yaml")
    pod["status"]["containerStatuses"][0]["lastState"] = {}
    assert pod_failures([pod]) == []


def test_terminating_and_succeeded_pods_are_never_blamed() -> None:
    crashing = load("pod-crashloop.yaml")
    assert pod_failures([crashing])
    crashing["metadata"]["deletionTimestamp"] = "2026-11-22T04:00:00Z"
    assert pod_failures([crashing]) == []
    assert pod_failures([load("pod-succeeded.yaml")]) == []


def test_unschedulable_reports_the_scheduler_message() -> None:
    (found,) = pod_failures([load("pod-unschedulable.yaml")])
    assert found.reason == "Unschedulable" and found.container == ""
    assert found.message.startswith("0/2 nodes are available: 2 Insufficient cpu")


def test_failed_pods_count_only_when_not_restarted_in_place() -> None:
    assert [f.reason for f in pod_failures([load("pod-failed-job.yaml")])] == ["Failed"]
    evicted = load("pod-evicted.yaml")
    assert pod_failures([evicted]) == []  # its ReplicaSet replaces it
    evicted["spec"]["restartPolicy"] = "Never"
    assert [(f.reason, f.message[:21]) for f in pod_failures([evicted])] == [("Evicted", "The node was low on r")]


def test_init_container_failures_name_the_init_container() -> None:
    (found,) = pod_failures([load("pod-init-crashloop.yaml")])
    assert (found.container, found.reason) == ("migrate", "CrashLoopBackOff")
    assert "last exit code 2 (Error), 4 restarts" in found.message


# -- the table and the combination rule ----------------------------------------------------------


def test_table_covers_the_kinds_of_the_design() -> None:
    assert set(health.CHECKERS) == {
        ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"),
        ("", "ReplicationController"), ("batch", "Job"), ("batch", "CronJob"), ("", "Pod"),
        ("", "PersistentVolumeClaim"), ("", "Service"), ("networking.k8s.io", "Ingress"),
    }


def test_missing_unknown_kinds_and_odd_shapes() -> None:
    assert health.assess(None) == Health(M, "not found")
    assert health.assess_workload(None, [], []).status is M
    custom = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert health.assess(custom).status is H
    # A Deployment from the extensions group is another (group, kind): no checker.
    assert health.checker_for("extensions", "Deployment") is None
    odd = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "status": "garbage",
           "spec": {"replicas": "many"}}
    assert health.assess(odd).status is P
    assert health.assess({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Weird"}}).status is U


def test_assess_raises_nothing_on_a_checker_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(obj: Any) -> Health:
        raise TypeError("unexpected shape")

    monkeypatch.setitem(health.CHECKERS, ("", "Service"), broken)
    result = health.assess(load("service-clusterip.yaml"))
    assert result.status is U and "unexpected shape" in result.message


KEY = ResourceKey("apps", "Deployment", "shop", "web")
CRASH = Failure(KEY, "web-1", "app", "CrashLoopBackOff", "back-off 10s")


@pytest.mark.parametrize("before", [P, H, S, U])
def test_a_failure_makes_any_health_degraded(before: HealthStatus) -> None:
    combined = Health(before, "waiting").with_failures([CRASH])
    assert combined == Health(D, "pod web-1: CrashLoopBackOff: back-off 10s", (CRASH,))


def test_a_degraded_health_keeps_its_message_and_collects_failures() -> None:
    deadline = Failure(KEY, reason="ProgressDeadlineExceeded", message="timed out")
    combined = Health(D, "ProgressDeadlineExceeded: timed out", (deadline,)).with_failures([CRASH])
    assert combined.message == "ProgressDeadlineExceeded: timed out"
    assert combined.failures == (deadline, CRASH)


def test_no_failures_change_nothing() -> None:
    before = Health(P, "waiting")
    assert before.with_failures([]) is before
    assert before.done is False and Health(S).done and Health(H).done


def test_failure_text_names_object_pod_container_and_reason() -> None:
    assert str(CRASH) == "Deployment/shop/web pod web-1 container app: CrashLoopBackOff: back-off 10s"
    assert str(Failure(KEY, reason="ProgressDeadlineExceeded")) == "Deployment/shop/web: ProgressDeadlineExceeded"
