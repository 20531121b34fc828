"""PersistentVolumeClaim health: Bound → Healthy, Pending → Progressing, Lost → Degraded.

A claim of a ``WaitForFirstConsumer`` storage class stays Pending until a pod uses it; that is
Progressing, not a failure (the pod that uses it is what the rollout waits for).
"""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, key_of, text
from gitops.model.health import Failure, Health, HealthStatus


def health(obj: Obj) -> Health:
    phase = text(obj, "status", "phase")
    if phase == "Bound":
        return Health(HealthStatus.HEALTHY, f"bound to {text(obj, 'spec', 'volumeName') or 'a volume'}")
    if phase == "Lost":
        message = "the bound PersistentVolume no longer exists"
        return Health(HealthStatus.DEGRADED, message, (Failure(key_of(obj), reason="ClaimLost", message=message),))
    if phase in ("Pending", ""):
        return Health(HealthStatus.PROGRESSING, "waiting for the claim to be bound")
    return Health(HealthStatus.UNKNOWN, f"unexpected phase {phase!r}")
