"""Health of Swarm objects, as pure functions of what the Engine API returns.

A service is judged from ``GET /services/{id}`` (its ``Spec`` and ``UpdateStatus``) and its tasks
(``GET /tasks?filters={"service":[id]}``, old ones included):

* **current tasks** are those created from the service's current task template (the daemon copies
  ``Spec.TaskTemplate`` into every task it creates; only ``Runtime`` is left out of the copy);
* **Healthy** when ``UpdateStatus`` is absent or ``completed``, the running current tasks equal the
  desired count (``Replicas``; for global services one per node that has a task to run), and no
  task of an older template is still running;
* **Degraded** (fail fast) when a current task created since the update started is ``failed`` or
  ``rejected``, when the update is ``paused`` / ``rollback_paused``, or when Swarm rolled back by
  itself (``rollback_started`` / ``rollback_completed``) a spec that *we* wrote (``reverted``): the
  native one-step rollback counts as a failure of our rollout, so the whole-stack rollback runs.
  A native rollback of a spec we did not write in this run (an earlier one, or someone else's) is
  Progressing while it runs and judged like a completed update once done: the service is stable;
  whether its spec is the desired one is the plan's business (sync status), not health's;
* **Progressing** otherwise, with ``n/m tasks running`` as the message.

Jobs (``ReplicatedJob`` / ``GlobalJob``) are Healthy once their completions are done.
Networks, configs, secrets and volumes are Healthy when they exist.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gitops.model.health import Failure, Health, HealthStatus
from gitops.model.resources import ResourceKey

FAILED_TASK_STATES = frozenset({"failed", "rejected"})
FAILED_UPDATE_STATES = frozenset({"paused", "rollback_paused"})
ROLLBACK_STATES = frozenset({"rollback_started", "rollback_completed"})
DONE_UPDATE_STATES = frozenset({"", "completed", "rollback_completed"})

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def stamp(text: str | None) -> tuple[str, int]:
    """An Engine timestamp (RFC 3339 with up to 9 fraction digits) as a sortable value.

    The daemon prints a variable number of fraction digits, so the strings do not sort as text."""
    match = _STAMP.match(text or "")
    if not match:
        return ("", 0)
    fraction = (match.group(2) or "").ljust(9, "0")[:9]
    return (match.group(1), int(fraction))


def template_key(template: Mapping[str, Any]) -> str:
    """A comparable form of a task template: a task is current when its ``Spec`` has the same key
    as the service's ``Spec.TaskTemplate``."""
    spec = copy.deepcopy(dict(template))
    spec.pop("Runtime", None)
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _state(task: Mapping[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State") or "")


def _failure(key: ResourceKey, task: Mapping[str, Any]) -> Failure:
    """A failed task, named the way ``docker ps`` names its container: ``<service>.<slot>.<task id>``."""
    status = task.get("Status") or {}
    container = str((status.get("ContainerStatus") or {}).get("ContainerID") or "")[:12]
    slot = task.get("Slot") or task.get("NodeID", "")[:12]
    task_name = f"{key.name}.{slot}.{str(task.get('ID', ''))[:12]}"
    why = str(status.get("Err") or status.get("Message") or "")
    return Failure(object=key, pod=task_name, container=container, reason=f"task {_state(task)}", message=why)


def desired_tasks(service: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]) -> int | None:
    """How many tasks should run; ``None`` for jobs (judged by completions)."""
    mode = (service.get("Spec") or {}).get("Mode") or {}
    if "Global" in mode:
        return len({t.get("NodeID") for t in tasks if t.get("DesiredState") == "running" and t.get("NodeID")})
    if "ReplicatedJob" in mode or "GlobalJob" in mode:
        return None
    replicated = mode.get("Replicated") or {}
    replicas = replicated.get("Replicas")
    return 1 if replicas is None else int(replicas)


def service_health(key: ResourceKey, service: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                   *, reverted: bool = True) -> Health:
    """The health of one service from its inspect and its task list (see the module doc).

    ``reverted``: whether a native rollback undid a spec this run wrote (the default judges every
    native rollback a failure)."""
    spec = service.get("Spec") or {}
    current_key = template_key(spec.get("TaskTemplate") or {})
    current = [t for t in tasks if template_key(t.get("Spec") or {}) == current_key]
    update = service.get("UpdateStatus") or {}
    update_state = str(update.get("State") or "")
    since = stamp(update.get("StartedAt")) if update.get("StartedAt") else ("", 0)
    failures = tuple(
        _failure(key, t) for t in sorted(current, key=lambda t: stamp(t.get("CreatedAt")))
        if _state(t) in FAILED_TASK_STATES and stamp(t.get("CreatedAt")) >= since
    )
    if update_state in FAILED_UPDATE_STATES or (update_state in ROLLBACK_STATES and reverted):
        message = f"update {update_state}: {update.get('Message') or ''}".rstrip(": ")
        return Health(HealthStatus.DEGRADED, message, failures)
    if failures:
        return Health(HealthStatus.PROGRESSING).with_failures(failures)

    desired = desired_tasks(service, tasks)
    if desired is None:
        mode = spec.get("Mode") or {}
        job = mode.get("ReplicatedJob") or {}
        completions = int(job.get("TotalCompletions") or job.get("MaxConcurrent") or 1) \
            if "ReplicatedJob" in mode else len({t.get("NodeID") for t in current})
        complete = sum(1 for t in current if _state(t) == "complete")
        message = f"{complete}/{completions} completions"
        if complete >= completions and update_state in DONE_UPDATE_STATES:
            return Health(HealthStatus.HEALTHY, message)
        return Health(HealthStatus.PROGRESSING, message)

    running = [t for t in current if _state(t) == "running" and t.get("DesiredState") == "running"]
    # An old task told to shut down is out of the service's load balancing already: it may take
    # its stop grace period to exit (a process that ignores SIGTERM: 10 s by default), and the
    # rollout does not wait for that, as `kubectl rollout status` does not wait for terminating pods.
    old = [t for t in tasks if t not in current and _state(t) == "running"]
    stale = [t for t in old if t.get("DesiredState") == "running"]
    message = f"{len(running)}/{desired} tasks running"
    if update_state and update_state != "completed":
        message += f", update {update_state}"
    if stale:
        message += f", {len(stale)} old task(s) still running"
    elif old:
        message += f", {len(old)} old task(s) stopping"
    if update_state in DONE_UPDATE_STATES and len(running) == desired and not stale:
        return Health(HealthStatus.HEALTHY, message)
    return Health(HealthStatus.PROGRESSING, message)


def exists_health(live: Mapping[str, Any] | None) -> Health:
    """Networks, configs, secrets, volumes: there or not."""
    if live is None:
        return Health(HealthStatus.MISSING, "not found")
    return Health(HealthStatus.HEALTHY, "exists")
