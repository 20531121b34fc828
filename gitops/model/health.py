"""Health: how a live object is doing, and the concrete failures that prove it is not.

A backend judges each object into one ``HealthStatus``. When it also sees a *failure* — a fact
that will not fix itself by waiting (a crash loop, an image that cannot be pulled, a pod no node
can take) — it attaches ``Failure`` values naming the object, the pod, the container and the
reason, so the rollout can stop at once and say exactly what broke.

Rule for combining (``Health.with_failures``): any failure makes the health ``Degraded``, whatever
the object's own status said (Progressing, Healthy, even Suspended); the message of an object that
was already Degraded is kept, otherwise the first failure becomes the message. No failures leaves
the health unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from gitops.model.resources import ResourceKey


class HealthStatus(enum.StrEnum):
    HEALTHY = "Healthy"  # converged: what was asked for runs and is ready
    PROGRESSING = "Progressing"  # not there yet, but nothing says it will not get there
    DEGRADED = "Degraded"  # failed, or will not converge without a change
    SUSPENDED = "Suspended"  # paused on purpose (paused Deployment, suspended Job/CronJob)
    MISSING = "Missing"  # does not exist
    UNKNOWN = "Unknown"  # cannot be judged (unexpected status shape)


@dataclass(frozen=True)
class Failure:
    """One fail-fast finding: which object, which pod and container, why (reason) and the detail."""

    object: ResourceKey
    pod: str = ""
    container: str = ""
    reason: str = ""
    message: str = ""

    def __str__(self) -> str:
        where = [str(self.object)]
        if self.pod:
            where.append(f"pod {self.pod}")
        if self.container:
            where.append(f"container {self.container}")
        text = f"{self.reason}: {self.message}" if self.message else self.reason
        return f"{' '.join(where)}: {text}"


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str = ""
    failures: tuple[Failure, ...] = ()

    def with_failures(self, failures: Iterable[Failure]) -> Health:
        """This health with ``failures`` attached: Degraded as soon as there is one (module doc)."""
        found = tuple(failures)
        if not found:
            return self
        message = self.message if self.status is HealthStatus.DEGRADED and self.message else _first(found[0])
        return Health(HealthStatus.DEGRADED, message, self.failures + found)

    @property
    def done(self) -> bool:
        """Nothing more to wait for: healthy, or suspended on purpose."""
        return self.status in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else str(self.status)


def _first(failure: Failure) -> str:
    who = f"pod {failure.pod}: " if failure.pod else ""
    return f"{who}{failure.reason}: {failure.message}" if failure.message else f"{who}{failure.reason}"
