"""Health of live Kubernetes objects: one small checker per kind, chosen from a table.

Every checker is a pure function from the raw object (JSON as the API returns it) to a
``Health``. Kinds without a checker are Healthy once they exist. ``pods.workload_failures`` adds
the fail-fast findings from a workload's current pods; ``assess_workload`` combines the two.

=============================  ===================================================================
kind                           rule (details in each module)
=============================  ===================================================================
apps Deployment                paused → Suspended; ProgressDeadlineExceeded / ReplicaFailure →
                               Degraded; as ``kubectl rollout status``: observedGeneration, then
                               updated, old and available replicas → Progressing; else Healthy
apps StatefulSet               OnDelete → Healthy; observedGeneration; ready < replicas;
                               updated < replicas - partition → Progressing; else Healthy
apps DaemonSet                 OnDelete → Healthy; observedGeneration; updated or available <
                               desired → Progressing; else Healthy
apps ReplicaSet, core RC       ReplicaFailure → Degraded; available < replicas → Progressing
batch Job                      Failed/FailureTarget → Degraded; Complete → Healthy;
                               suspended → Suspended; else Progressing
batch CronJob                  suspend → Suspended; last scheduled run failed → Degraded; Healthy
core Pod                       Succeeded → Healthy; fail-fast finding or Failed → Degraded;
                               Running+Ready → Healthy; else Progressing
core PersistentVolumeClaim     Bound → Healthy; Pending → Progressing; Lost → Degraded
core Service                   LoadBalancer without ingress → Progressing; else Healthy
networking.k8s.io Ingress      Healthy (message names LB addresses if any)
(anything being deleted)       Progressing
=============================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gitops.backends.kubernetes.health import (
    cronjob,
    daemonset,
    deployment,
    ingress,
    job,
    pod,
    pvc,
    replicaset,
    service,
    statefulset,
)
from gitops.backends.kubernetes.health._fields import Obj, get, group_of, text
from gitops.backends.kubernetes.health.pods import pod_failures, workload_failures
from gitops.model.health import Failure, Health, HealthStatus

Checker = Callable[[Obj], Health]

CHECKERS: dict[tuple[str, str], Checker] = {
    ("apps", "Deployment"): deployment.health,
    ("apps", "StatefulSet"): statefulset.health,
    ("apps", "DaemonSet"): daemonset.health,
    ("apps", "ReplicaSet"): replicaset.health,
    ("", "ReplicationController"): replicaset.health,
    ("batch", "Job"): job.health,
    ("batch", "CronJob"): cronjob.health,
    ("", "Pod"): pod.health,
    ("", "PersistentVolumeClaim"): pvc.health,
    ("", "Service"): service.health,
    ("networking.k8s.io", "Ingress"): ingress.health,
}


def checker_for(group: str, kind: str) -> Checker | None:
    return CHECKERS.get((group, kind))


def assess(obj: Obj | None) -> Health:
    """The health of one live object; None (not found) is Missing."""
    if obj is None:
        return Health(HealthStatus.MISSING, "not found")
    if get(obj, "metadata", "deletionTimestamp"):
        return Health(HealthStatus.PROGRESSING, "being deleted")
    check = checker_for(group_of(obj), text(obj, "kind"))
    if check is None:
        return Health(HealthStatus.HEALTHY, "exists")
    try:
        return check(obj)
    except (TypeError, ValueError, AttributeError) as err:  # a status shape no checker expected
        return Health(HealthStatus.UNKNOWN, f"cannot judge health: {err}")


def assess_workload(obj: Obj | None, pods: Sequence[Obj], history: Sequence[Obj] = ()) -> Health:
    """``assess(obj)`` with the fail-fast findings of its current pods (``Health.with_failures``)."""
    health = assess(obj)
    if obj is None or health.status is HealthStatus.MISSING:
        return health
    found = workload_failures(obj, pods, history)
    known = set(health.failures)
    return health.with_failures(f for f in found if f not in known)


__all__ = ["CHECKERS", "Checker", "Failure", "Health", "HealthStatus", "assess", "assess_workload",
           "checker_for", "pod_failures", "workload_failures"]
