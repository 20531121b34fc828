"""Pure value types shared by every stage. No I/O, no SDK imports."""

from gitops.model.diagnostics import Diagnostic, Diagnostics, Severity
from gitops.model.health import Failure, Health, HealthStatus
from gitops.model.resources import Origin, Resource, ResourceKey

__all__ = [
    "Diagnostic", "Diagnostics", "Failure", "Health", "HealthStatus", "Origin", "Resource", "ResourceKey", "Severity",
]
