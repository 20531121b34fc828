"""Ingress health: Healthy as soon as it exists (many controllers never write a status); the
message names the load balancer addresses when the controller published any."""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj
from gitops.backends.kubernetes.health.service import addresses
from gitops.model.health import Health, HealthStatus


def health(obj: Obj) -> Health:
    found = addresses(obj)
    return Health(HealthStatus.HEALTHY, f"load balancer at {', '.join(found)}" if found else "no address published")
