"""Pod health.

- phase Succeeded                                   → Healthy
- any fail-fast finding (``pods.pod_failures``)     → Degraded, with the failures
- phase Failed                                      → Degraded (also restartPolicy Always: a bare
  pod that failed is not coming back)
- phase Running and condition Ready=True            → Healthy
- phase Running otherwise, or Pending               → Progressing (the waiting reason, such as
  ContainerCreating, or the pod's message, is the message)
- anything else                                     → Unknown
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, condition_true, items, text
from gitops.backends.kubernetes.health.pods import failed_pod, pod_failures
from gitops.model.health import Health, HealthStatus


def health(obj: Obj) -> Health:
    phase = text(obj, "status", "phase")
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, "completed")
    failures = pod_failures([obj])
    if phase == "Failed":
        failure = failures[0] if failures else failed_pod(obj)
        return Health(HealthStatus.DEGRADED, f"{failure.reason}: {failure.message}", (failure,))
    if failures:
        return Health(HealthStatus.PROGRESSING).with_failures(failures)
    if phase == "Running":
        if condition_true(obj, "Ready") is not None:
            return Health(HealthStatus.HEALTHY, "running and ready")
        if text(obj, "spec", "restartPolicy") in ("Never", "OnFailure"):
            return Health(HealthStatus.PROGRESSING, "running")
        return Health(HealthStatus.PROGRESSING, _waiting(obj) or "running, not ready")
    if phase == "Pending" or not phase:
        return Health(HealthStatus.PROGRESSING, _waiting(obj) or text(obj, "status", "message") or "pending")
    return Health(HealthStatus.UNKNOWN, f"phase {phase!r}: {text(obj, 'status', 'message')}".rstrip(": "))


def _waiting(obj: Obj) -> str:
    """The first waiting container's reason, e.g. ``app: ContainerCreating``."""
    for status in items(obj, "status", "initContainerStatuses") + items(obj, "status", "containerStatuses"):
        reason = text(status, "state", "waiting", "reason")
        if reason:
            return f"{status.get('name')}: {reason}"
    return ""
