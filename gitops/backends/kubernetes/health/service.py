"""Service health: a LoadBalancer Service is Healthy once the load balancer reports an ingress
address (Progressing until then); every other type is Healthy as soon as it exists."""

from __future__ import annotations

from gitops.backends.kubernetes.health._fields import Obj, items, text
from gitops.model.health import Health, HealthStatus


def addresses(obj: Obj) -> list[str]:
    """The load balancer's ingress addresses (IP or hostname) from ``status.loadBalancer``."""
    return [str(i.get("ip") or i.get("hostname")) for i in items(obj, "status", "loadBalancer", "ingress")
            if i.get("ip") or i.get("hostname")]


def health(obj: Obj) -> Health:
    kind = text(obj, "spec", "type") or "ClusterIP"
    if kind != "LoadBalancer":
        return Health(HealthStatus.HEALTHY, kind)
    found = addresses(obj)
    if not found:
        return Health(HealthStatus.PROGRESSING, "waiting for the load balancer to get an address")
    return Health(HealthStatus.HEALTHY, f"load balancer at {', '.join(found)}")
