"""CronJob health.

- ``spec.suspend``                                 → Suspended
- the last scheduled run is over and did not succeed (``lastScheduleTime`` newer than
  ``lastSuccessfulTime``, no active job)           → Degraded
- otherwise                                        → Healthy (a CronJob is healthy while it is not
  failing; its Jobs are judged as Jobs)

Caveat for the rollout watch: a run that failed *before* an apply also reads as Degraded, although
the apply cannot have caused it (no run has been scheduled since). The Failure's reason,
``LastScheduledRunFailed``, lets the caller tell this apart from a fail-fast reason.
"""

from __future__ import annotations

from datetime import datetime

from gitops.backends.kubernetes.health._fields import Obj, get, items, key_of, text
from gitops.model.health import Failure, Health, HealthStatus


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def health(obj: Obj) -> Health:
    if get(obj, "spec", "suspend") is True:
        return Health(HealthStatus.SUSPENDED, "CronJob is suspended")
    scheduled = _time(text(obj, "status", "lastScheduleTime"))
    succeeded = _time(text(obj, "status", "lastSuccessfulTime"))
    active = items(obj, "status", "active")
    if scheduled is not None and not active and (succeeded is None or succeeded < scheduled):
        message = f"the job scheduled at {text(obj, 'status', 'lastScheduleTime')} did not succeed"
        failure = Failure(key_of(obj), reason="LastScheduledRunFailed", message=message)
        return Health(HealthStatus.DEGRADED, message, (failure,))
    if active:
        return Health(HealthStatus.HEALTHY, f"{len(active)} job(s) running")
    if scheduled is None:
        return Health(HealthStatus.HEALTHY, "not scheduled yet")
    return Health(HealthStatus.HEALTHY, f"last run at {text(obj, 'status', 'lastScheduleTime')} succeeded")
