"""Deployment health, judged the way ``kubectl rollout status`` does.

- ``spec.paused``                                   → Suspended
- spec change not yet observed by the controller    → Progressing
- condition Progressing with ProgressDeadlineExceeded → Degraded
- condition ReplicaFailure=True (pods cannot be created: quota, admission) → Degraded, with a Failure
- fewer updated replicas than wanted, old replicas still around, or updated ones not available
                                                    → Progressing
- otherwise                                         → Healthy
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import (
    Obj,
    condition,
    generation_observed,
    get,
    integer,
    key_of,
    text,
)
from gitops.backends.kubernetes.health.replicaset import replica_failure
from gitops.model.health import Failure, Health, HealthStatus

DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


def health(obj: Obj) -> Health:
    if get(obj, "spec", "paused") is True:
        return Health(HealthStatus.SUSPENDED, "Deployment is paused")
    if not generation_observed(obj):
        return Health(HealthStatus.PROGRESSING, "waiting for the spec update to be observed")

    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == DEADLINE_EXCEEDED:
        message = str(progressing.get("message") or "exceeded its progress deadline")
        failure = Failure(key_of(obj), reason=DEADLINE_EXCEEDED, message=message)
        return Health(HealthStatus.DEGRADED, f"{DEADLINE_EXCEEDED}: {message}", (failure,))
    failed = replica_failure(obj)
    if failed is not None:
        return failed

    wanted = integer(obj, "spec", "replicas", default=1)
    replicas = integer(obj, "status", "replicas")
    updated = integer(obj, "status", "updatedReplicas")
    available = integer(obj, "status", "availableReplicas")
    if updated < wanted:
        return Health(HealthStatus.PROGRESSING,
                      f"waiting for rollout to finish: {updated} of {wanted} new replicas updated")
    if replicas > updated:
        return Health(HealthStatus.PROGRESSING,
                      f"waiting for rollout to finish: {replicas - updated} old replicas pending termination")
    if available < updated:
        return Health(HealthStatus.PROGRESSING,
                      f"waiting for rollout to finish: {available} of {updated} updated replicas available")
    name = text(obj, "metadata", "name")
    return Health(HealthStatus.HEALTHY, f"deployment {name!r} rolled out: {available} of {wanted} replicas available")
