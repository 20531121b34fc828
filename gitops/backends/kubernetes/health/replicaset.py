"""ReplicaSet (and ReplicationController) health.

- spec change not yet observed                     → Progressing
- condition ReplicaFailure=True (pods cannot be created) → Degraded, with a Failure
- fewer available pods than wanted                 → Progressing
- otherwise                                        → Healthy
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, condition_true, generation_observed, integer, key_of
from gitops.model.health import Failure, Health, HealthStatus


def replica_failure(obj: Obj) -> Health | None:
    """Degraded when the controller reports ``ReplicaFailure`` (quota, admission refused pods)."""
    condition = condition_true(obj, "ReplicaFailure")
    if condition is None:
        return None
    reason = str(condition.get("reason") or "ReplicaFailure")
    message = str(condition.get("message") or "")
    failure = Failure(key_of(obj), reason=reason, message=message)
    return Health(HealthStatus.DEGRADED, f"{reason}: {message}" if message else reason, (failure,))


def health(obj: Obj) -> Health:
    if not generation_observed(obj):
        return Health(HealthStatus.PROGRESSING, "waiting for the spec update to be observed")
    failed = replica_failure(obj)
    if failed is not None:
        return failed
    wanted = integer(obj, "spec", "replicas", default=1)
    available = integer(obj, "status", "availableReplicas")
    if available < wanted:
        return Health(HealthStatus.PROGRESSING, f"waiting for {wanted - available} of {wanted} pods to be available")
    return Health(HealthStatus.HEALTHY, f"{available} of {wanted} pods available")
