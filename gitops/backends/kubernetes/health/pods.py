"""Fail-fast detection: the pod states that will not fix themselves by waiting.

``pod_failures`` reads pods; ``workload_failures`` reads only the pods of a workload's *current*
revision, so that an old pod that was already crashing does not fail a healthy rollout, and a new
pod that crashes fails it at once — seconds after the kubelet reports it, not when the
Deployment's ``progressDeadlineSeconds`` runs out.

What counts as a failure (one ``Failure`` per container, or per pod for pod-level reasons):

- a container or init container *waiting* with one of ``WAITING_REASONS``: CrashLoopBackOff,
  ImagePullBackOff, ErrImagePull, ErrImageNeverPull, InvalidImageName, CreateContainerConfigError
  (missing ConfigMap/Secret key), CreateContainerError, RunContainerError;
- a container caught between two crashes (running again, or waiting with another reason) that
  has restarted at least ``CRASH_RESTARTS`` times, has a terminated last state and is not ready:
  reported as CrashLoopBackOff, since that is where it is going;
- a pod the scheduler cannot place (``PodScheduled=False``, reason ``Unschedulable``), with the
  scheduler's message (``0/2 nodes are available: 2 Insufficient cpu``);
- a pod in phase ``Failed`` that is not restarted in place (restartPolicy Never or OnFailure — Job
  pods and one-shot pods). Failed pods of ``restartPolicy: Always`` (evicted, preempted pods of a
  ReplicaSet) are replaced by their controller and are not a rollout failure.

Pods being deleted and pods that succeeded are never blamed.

How failures combine with health: ``gitops.model.health.Health.with_failures`` — any failure
makes the workload Degraded; ``assess_workload`` in this package does both steps.

Jobs retry by design. For a Job, "could not start" failures (image, config, scheduling) are blamed
at once; "ran and failed" ones (a Failed pod, CrashLoopBackOff) only once the Job has used up its
``backoffLimit`` (immediately for ``backoffLimit: 0``), i.e. when its own Failed condition is about
to follow anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from gitops.backends.kubernetes.health._fields import (
    Obj,
    annotations_of,
    belongs_to,
    condition,
    generation_observed,
    get,
    integer,
    items,
    key_of,
    labels_of,
    text,
)
from gitops.model.health import Failure

WAITING_REASONS = frozenset({
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
})
#: Restarts after which a not-ready container with a terminated last state counts as crash-looping.
CRASH_RESTARTS = 3
CRASH_LOOP = "CrashLoopBackOff"
UNSCHEDULABLE = "Unschedulable"
POD_FAILED = "Failed"
#: Reasons that mean a container ran and failed (retried by a Job), not that it could not start.
RAN_AND_FAILED = frozenset({CRASH_LOOP, POD_FAILED})

DEPLOYMENT = ("apps", "Deployment")
STATEFULSET = ("apps", "StatefulSet")
DAEMONSET = ("apps", "DaemonSet")
REPLICASET = ("apps", "ReplicaSet")
REPLICATION_CONTROLLER = ("", "ReplicationController")
JOB = ("batch", "Job")
POD = ("", "Pod")
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HASH = "controller-revision-hash"
TEMPLATE_GENERATION = "pod-template-generation"


# -- pods ---------------------------------------------------------------------------------------


def pod_failures(pods: Iterable[Obj]) -> list[Failure]:
    """Every fail-fast finding in ``pods`` (see the module doc); ``Failure.object`` is the pod."""
    found: list[Failure] = []
    for pod in pods:
        found.extend(_one_pod(pod))
    return found


def _one_pod(pod: Obj) -> list[Failure]:
    if get(pod, "metadata", "deletionTimestamp") or text(pod, "status", "phase") == "Succeeded":
        return []
    key, name = key_of(pod), text(pod, "metadata", "name")
    found: list[Failure] = []
    scheduled = condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == UNSCHEDULABLE:
        found.append(Failure(key, name, "", UNSCHEDULABLE, str(scheduled.get("message") or "no node can run it")))
    if text(pod, "status", "phase") == "Failed":
        if text(pod, "spec", "restartPolicy") in ("Never", "OnFailure"):
            found.append(failed_pod(pod))
        return found
    for status in items(pod, "status", "initContainerStatuses") + items(pod, "status", "containerStatuses"):
        failure = _container(status)
        if failure is not None:
            reason, message = failure
            found.append(Failure(key, name, str(status.get("name") or ""), reason, message))
    return found


def _container(status: Obj) -> tuple[str, str] | None:
    """(reason, message) when this container status is a fail-fast finding."""
    restarts = integer(status, "restartCount")
    history = ""
    if isinstance(get(status, "lastState", "terminated"), Mapping):
        exit_code = get(status, "lastState", "terminated", "exitCode")
        why = text(status, "lastState", "terminated", "reason")
        history = f"last exit code {exit_code}" + (f" ({why})" if why else "") + f", {restarts} restarts"
    reason = text(status, "state", "waiting", "reason")
    if reason in WAITING_REASONS:
        message = text(status, "state", "waiting", "message")
        if reason == CRASH_LOOP and history:
            message = f"{message}; {history}" if message else history
        return reason, message
    running_ready = get(status, "state", "running") is not None and status.get("ready") is True
    if restarts >= CRASH_RESTARTS and history and not running_ready:
        return CRASH_LOOP, f"restarting: {history}"
    return None


def failed_pod(pod: Obj) -> Failure:
    """The Failure of a pod in phase Failed: the pod's own reason/message when it has one
    (DeadlineExceeded, Evicted), else the first container that exited non-zero."""
    key, name = key_of(pod), text(pod, "metadata", "name")
    reason = text(pod, "status", "reason") or POD_FAILED
    message = text(pod, "status", "message")
    for status in items(pod, "status", "initContainerStatuses") + items(pod, "status", "containerStatuses"):
        code = integer(status, "state", "terminated", "exitCode")
        if get(status, "state", "terminated") is not None and code != 0:
            why = text(status, "state", "terminated", "reason")
            detail = text(status, "state", "terminated", "message")
            exited = f"exited with code {code}" + (f" ({why})" if why else "") + (f": {detail}" if detail else "")
            return Failure(key, name, str(status.get("name") or ""), reason, message or exited)
    return Failure(key, name, "", reason, message or "pod failed")


# -- workloads ----------------------------------------------------------------------------------


def workload_failures(workload: Obj, pods: Sequence[Obj], history: Sequence[Obj] = ()) -> list[Failure]:
    """Fail-fast findings in the pods of ``workload``'s current revision, blamed on the workload.

    ``pods`` may hold any pods of the namespace: only the workload's own are read (by controller
    reference, or by selector for pods without owner references). ``history`` is what tells the
    current revision apart where the workload itself does not: the ReplicaSets of a Deployment
    (required for Deployments; the newest one's pods, i.e. its pod-template-hash, are current), or the
    ControllerRevisions of a DaemonSet (optional: DaemonSet pods also carry
    ``pod-template-generation``). StatefulSets name it in ``status.updateRevision``.

    Returns [] while the controller has not observed the latest spec: until then the "current"
    revision is still the old one, and its pods are not what this rollout is about.
    """
    gk = (text(workload, "apiVersion").rpartition("/")[0], text(workload, "kind"))
    if gk in (DEPLOYMENT, STATEFULSET, DAEMONSET) and not generation_observed(workload):
        return []
    current = _current_pods(gk, workload, pods, history)
    found = pod_failures(current)
    if gk == JOB and not _retries_exhausted(workload, current):
        found = [f for f in found if f.reason not in RAN_AND_FAILED and not _is_failed_pod(f, current)]
    owner = key_of(workload)
    return [replace(f, object=owner) for f in found]


def _current_pods(gk: tuple[str, str], workload: Obj, pods: Sequence[Obj], history: Sequence[Obj]) -> list[Obj]:
    if gk == POD:
        return [workload]
    own = [p for p in pods if belongs_to(p, workload)] if gk != DEPLOYMENT else []
    if gk == DEPLOYMENT:
        replicaset = newest_replicaset(workload, history)
        if replicaset is None:
            return []
        # Its pods: by controller reference, or by its selector, which carries pod-template-hash.
        return [p for p in pods if belongs_to(p, replicaset)]
    if gk == STATEFULSET:
        revision = text(workload, "status", "updateRevision")
        return [p for p in own if revision and labels_of(p).get(REVISION_HASH) == revision]
    if gk == DAEMONSET:
        generation = str(integer(workload, "metadata", "generation"))
        revision_hash = _newest_revision_hash(workload, history)
        return [p for p in own if labels_of(p).get(TEMPLATE_GENERATION) == generation
                or (revision_hash and labels_of(p).get(REVISION_HASH) == revision_hash)]
    if gk in (REPLICASET, REPLICATION_CONTROLLER, JOB):
        return own
    return []


def newest_replicaset(deployment: Obj, replicasets: Sequence[Obj]) -> Obj | None:
    """The Deployment's current ReplicaSet: of those it controls, the one with the highest
    ``deployment.kubernetes.io/revision`` (the controller gives the ReplicaSet of the current
    template the next revision, also when a rollback brings an old one back); None when it has
    none yet."""
    owned = [rs for rs in replicasets if belongs_to(rs, deployment)]
    if not owned:
        return None

    def number(rs: Obj) -> int:
        value = annotations_of(rs).get(REVISION_ANNOTATION, "")
        return int(value) if value.isdigit() else -1

    return max(owned, key=number)


def _newest_revision_hash(workload: Obj, revisions: Sequence[Obj]) -> str:
    # ControllerRevisions: the objects with a top-level "revision" (list items may lack "kind").
    owned = [r for r in revisions if "revision" in r and belongs_to(r, workload)]
    if not owned:
        return ""
    newest = max(owned, key=lambda r: integer(r, "revision"))
    return labels_of(newest).get(REVISION_HASH, "")


def _is_failed_pod(failure: Failure, pods: Sequence[Obj]) -> bool:
    return any(text(p, "metadata", "name") == failure.pod and text(p, "status", "phase") == "Failed" for p in pods)


def _retries_exhausted(job: Obj, pods: Sequence[Obj]) -> bool:
    """The Job has failed more often than ``spec.backoffLimit`` (default 6) allows. Counts what the
    Job controller counts — failed pods, and container restarts under restartPolicy OnFailure —
    from the pods themselves, so it is known before the controller writes the Job's status."""
    limit = integer(job, "spec", "backoffLimit", default=6)
    failed_pods = sum(1 for p in pods if text(p, "status", "phase") == "Failed")
    used = max(integer(job, "status", "failed"), failed_pods)
    for pod in pods:
        if text(pod, "spec", "restartPolicy") == "OnFailure" and text(pod, "status", "phase") != "Failed":
            used += sum(integer(s, "restartCount") for s in items(pod, "status", "initContainerStatuses")
                        + items(pod, "status", "containerStatuses"))
    return used > limit
