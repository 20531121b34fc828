"""Rollout: wait until every changed object is healthy; fail fast on the first real failure."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gitops.backends.base import Backend
from gitops.clock import SYSTEM, Clock
from gitops.model import Failure, Health, HealthStatus, ResourceKey

#: Failure reasons that describe an earlier run, not the rollout being watched (a CronJob whose last
#: scheduled run failed before this apply): they neither fail nor hold up a rollout.
HISTORICAL_REASONS = frozenset({"LastScheduledRunFailed"})


@dataclass
class RolloutReport:
    ok: bool
    seconds: float
    waited_for: list[ResourceKey] = field(default_factory=list)
    failed: dict[ResourceKey, Health] = field(default_factory=dict)
    timed_out: bool = False
    pending: dict[ResourceKey, Health] = field(default_factory=dict)

    def summary(self) -> str:
        if self.ok:
            return f"{len(self.waited_for)} object(s) healthy after {self.seconds:.1f}s"
        if self.timed_out:
            names = ", ".join(f"{k} ({h.message})" if h.message else str(k) for k, h in self.pending.items())
            return f"timed out after {self.seconds:.0f}s waiting for {names}"
        lines: list[str] = []
        for key, health in self.failed.items():
            if health.failures:
                lines.extend(f"{key}: {describe(f)}" for f in health.failures)
            else:
                lines.append(f"{key}: {health.message or 'degraded'}")
        return "; ".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "seconds": round(self.seconds, 3), "timed_out": self.timed_out,
            "waited_for": [str(k) for k in self.waited_for],
            "failed": [
                {"object": str(k), "message": h.message, "failures": [describe(f) for f in h.failures]}
                for k, h in self.failed.items()
            ],
            "pending": [str(k) for k in self.pending],
        }


def describe(failure: Failure) -> str:
    """A failure without its object (the report names the object): ``pod p container c: why``."""
    parts = [f"pod {failure.pod}"] if failure.pod else []
    if failure.container:
        parts.append(f"container {failure.container}")
    text = f"{failure.reason}: {failure.message}" if failure.message else failure.reason
    where = " ".join(parts)
    return f"{where}: {text}" if where else text


Progress = Callable[[dict[ResourceKey, Health]], None]


def _no_guard() -> None:
    return None


def wait(backend: Backend, keys: Iterable[ResourceKey], *, timeout: float, poll: float = 1.0,
         on_progress: Progress | None = None, guard: Callable[[], None] = _no_guard,
         clock: Clock = SYSTEM) -> RolloutReport:
    """Poll the health of ``keys`` until all are done (healthy or suspended), one fails, or
    ``timeout`` passes (on ``clock``). ``guard()`` runs before each poll and raises to stop the
    wait (``Lease.check``: a rollout whose lock was lost is no longer ours to watch; the
    daemon's stop signal)."""
    watched = list(dict.fromkeys(keys))
    pause = threading.Event()  # never set: the guard, run at least every ``poll``, is what stops
    started = clock.monotonic()
    deadline = started + timeout
    while True:
        guard()
        health = backend.health(watched) if watched else {}
        if on_progress is not None:
            on_progress(health)
        failed = {k: h for k, h in health.items() if h.status is HealthStatus.DEGRADED and not historical(h)}
        if failed:
            return RolloutReport(False, clock.monotonic() - started, watched, failed)
        pending = {k: h for k, h in health.items() if not h.done and not historical(h)}
        if not pending:
            return RolloutReport(True, clock.monotonic() - started, watched)
        if clock.monotonic() >= deadline:
            return RolloutReport(False, clock.monotonic() - started, watched, timed_out=True, pending=pending)
        clock.wait(pause, min(poll, max(0.0, deadline - clock.monotonic())))


def historical(health: Health) -> bool:
    """Degraded only by failures of earlier runs (see HISTORICAL_REASONS)."""
    return (health.status is HealthStatus.DEGRADED and bool(health.failures)
            and all(f.reason in HISTORICAL_REASONS for f in health.failures))
