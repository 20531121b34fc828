"""StatefulSet health, judged the way ``kubectl rollout status`` does.

- ``updateStrategy.type: OnDelete``                → Healthy (pods change only when someone deletes
  them; there is no rollout to wait for)
- spec change not yet observed                     → Progressing
- fewer ready pods than wanted (available pods when ``minReadySeconds`` is set) → Progressing
- more pods than wanted (scale down pending)       → Progressing
- RollingUpdate with ``partition: P``: only ordinals ≥ P are updated; healthy once
  ``updatedReplicas ≥ replicas - P``                → otherwise Progressing
- otherwise                                        → Healthy
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, generation_observed, get, integer, text
from gitops.model.health import Health, HealthStatus


def health(obj: Obj) -> Health:
    ready = integer(obj, "status", "readyReplicas")
    if text(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"OnDelete update strategy: {ready} pods ready")
    if integer(obj, "status", "observedGeneration") == 0 or not generation_observed(obj):
        return Health(HealthStatus.PROGRESSING, "waiting for the spec update to be observed")

    wanted = integer(obj, "spec", "replicas", default=1)
    if integer(obj, "spec", "minReadySeconds") > 0 and get(obj, "status", "availableReplicas") is not None:
        ready = integer(obj, "status", "availableReplicas")
    if ready < wanted:
        return Health(HealthStatus.PROGRESSING, f"waiting for {wanted - ready} of {wanted} pods to be ready")
    replicas = integer(obj, "status", "replicas")
    if replicas > wanted:
        return Health(HealthStatus.PROGRESSING, f"waiting for {replicas - wanted} pods to terminate")

    partition = max(0, min(integer(obj, "spec", "updateStrategy", "rollingUpdate", "partition"), wanted))
    updated = integer(obj, "status", "updatedReplicas")
    revision = text(obj, "status", "updateRevision")
    to_update = wanted - partition
    if updated < to_update:
        scope = f" (partition {partition})" if partition else ""
        return Health(HealthStatus.PROGRESSING,
                      f"waiting for rolling update{scope}: {updated} of {to_update} pods at revision {revision}")
    if partition:
        return Health(HealthStatus.HEALTHY,
                      f"partitioned rollout complete: {updated} of {wanted} pods at revision {revision}; "
                      f"ordinals below {partition} stay at the current revision")
    return Health(HealthStatus.HEALTHY, f"rolling update complete: {updated} pods at revision {revision}")
