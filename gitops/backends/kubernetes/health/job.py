"""Job health.

- condition Failed=True or FailureTarget=True (the controller decided the Job failed and is
  cleaning up)                                     → Degraded, with a Failure (BackoffLimitExceeded, ...)
- condition Complete=True                          → Healthy
- ``spec.suspend`` or condition Suspended=True     → Suspended
- otherwise (pods active or about to be)           → Progressing
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, condition_true, get, integer, key_of
from gitops.model.health import Failure, Health, HealthStatus


def health(obj: Obj) -> Health:
    for kind in ("Failed", "FailureTarget"):
        failed = condition_true(obj, kind)
        if failed is not None:
            reason = str(failed.get("reason") or "JobFailed")
            message = str(failed.get("message") or "job failed")
            return Health(HealthStatus.DEGRADED, f"{reason}: {message}",
                          (Failure(key_of(obj), reason=reason, message=message),))
    succeeded = integer(obj, "status", "succeeded")
    if condition_true(obj, "Complete") is not None:
        return Health(HealthStatus.HEALTHY, f"completed: {succeeded} succeeded")
    if get(obj, "spec", "suspend") is True or condition_true(obj, "Suspended") is not None:
        return Health(HealthStatus.SUSPENDED, "job is suspended")
    active = integer(obj, "status", "active")
    failed_pods = integer(obj, "status", "failed")
    return Health(HealthStatus.PROGRESSING, f"running: {active} active, {succeeded} succeeded, {failed_pods} failed")
