"""DaemonSet health, judged the way ``kubectl rollout status`` does.

- ``updateStrategy.type: OnDelete``                → Healthy (no rollout to wait for)
- spec change not yet observed                     → Progressing
- ``updatedNumberScheduled < desiredNumberScheduled`` → Progressing
- ``numberAvailable < desiredNumberScheduled``     → Progressing
- otherwise                                        → Healthy (also with 0 nodes to run on)
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, generation_observed, integer, text
from gitops.model.health import Health, HealthStatus


def health(obj: Obj) -> Health:
    desired = integer(obj, "status", "desiredNumberScheduled")
    updated = integer(obj, "status", "updatedNumberScheduled")
    available = integer(obj, "status", "numberAvailable")
    if text(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"OnDelete update strategy: {updated} of {desired} pods updated")
    if not generation_observed(obj):
        return Health(HealthStatus.PROGRESSING, "waiting for the spec update to be observed")
    if updated < desired:
        return Health(HealthStatus.PROGRESSING, f"waiting for rollout to finish: {updated} of {desired} pods updated")
    if available < desired:
        return Health(HealthStatus.PROGRESSING,
                      f"waiting for rollout to finish: {available} of {desired} updated pods available")
    return Health(HealthStatus.HEALTHY, f"{available} of {desired} pods available")
