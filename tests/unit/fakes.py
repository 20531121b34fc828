"""An in-memory Backend for unit tests of the deploy flow.

It behaves like the real backends wherever the contract says so, and tests/contract runs the same
contract tests on it and on both real backends, so it cannot drift from reality unnoticed:
typed health (``Health`` / ``HealthStatus`` / ``Failure``), what ``apply`` did (``Applied``),
an immutable field that the "server" refuses to change in place (ImmutableFieldError), versions
on the state with optimistic writes (StateConflictError), and a lock with a TTL held through the
same renewal loop the real backends use (``gitops.backends.locking``), on a clock tests may move.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from gitops import diff
from gitops.backends import locking
from gitops.backends.base import Comparison, Lease, Live, PruneFacts, RunOnce
from gitops.clock import SYSTEM, Clock, Stopping
from gitops.errors import BackendError, ImmutableFieldError, StateConflictError
from gitops.model import Diagnostic, Failure, Health, HealthStatus, Origin, Resource, ResourceKey
from gitops.model.plans import WAVE_KEY, WAVE_SPAN, Action, Applied, FieldChange, parse_wave
from gitops.model.releases import AppState

LABEL = "fake/app"
PRUNE = "gitops.dev/prune"
DATA_KINDS = ("PersistentVolumeClaim", "Volume")
#: An object that runs once (a hook): ``fake/run-once: recreate,succeeded,failed`` (any of them).
RUN_ONCE = "fake/run-once"


def _frozen_paths(live: dict[str, Any]) -> tuple[str, ...]:
    """Fields that cannot change in place (as on Kubernetes): a selector, the data of an immutable object."""
    paths = ("/spec/selector",)
    if live.get("immutable") is True:
        paths = (*paths, "/data", "/immutable")
    return paths


def _frozen_change(fields: Iterable[FieldChange], live: dict[str, Any]) -> str:
    for change in fields:
        for prefix in _frozen_paths(live):
            if change.path == prefix or change.path.startswith(prefix + "/"):
                return prefix
    return ""


@dataclass
class FakeBackend:
    app: str = "demo"
    name: str = "fake"
    objects: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    state: AppState | None = None
    writes: int = 0
    failing_images: set[str] = field(default_factory=set)
    fail_apply_of: set[ResourceKey] = field(default_factory=set)
    lock_holder: str = ""  # set at construction: held by that runner, which never lets go
    lock_expires: float = math.inf  # on ``clock``
    applied: list[ResourceKey] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    on_write: Callable[[], None] | None = None  # called before each write (tests inject events)
    renewal_refused: threading.Event = field(default_factory=threading.Event)  # a renewal found it taken
    lease: Lease | None = None  # the lease of the newest lock() block
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Like the real API server: deleting a Namespace deletes what is in it (objects whose key
    # namespace is its name); ``cascade_of`` adds other cascades (a CRD's custom resources, ...).
    cascade_of: dict[ResourceKey, tuple[ResourceKey, ...]] = field(default_factory=dict)
    leaves_of: dict[ResourceKey, tuple[ResourceKey, ...]] = field(default_factory=dict)
    finished: list[bool] = field(default_factory=list)  # finish_prunes calls (rollout_ok)
    watchers: list[tuple[set[ResourceKey], Callable[[ResourceKey], None]]] = field(default_factory=list)

    def target_id(self) -> str:
        return "fake:memory"

    def _write(self) -> None:
        if self.on_write is not None:
            self.on_write()
        self.writes += 1

    def api_versions(self) -> frozenset[str]:
        return frozenset({"v1", *(f"v1/{kind}" for kind in ("ConfigMap", "Secret", "Namespace", "Deployment", "Job"))})

    def run_once(self, body: Mapping[str, Any]) -> RunOnce | None:
        text = ((body.get("metadata") or {}).get("annotations") or {}).get(RUN_ONCE)
        if not isinstance(text, str):
            return None
        policies = {p.strip() for p in text.split(",")}
        return RunOnce("recreate" in policies, "succeeded" in policies, "failed" in policies)

    def prepare(self, resources: list[Resource]) -> list[Resource]:
        out = []
        for r in resources:
            body = copy.deepcopy(r.body)
            body.setdefault("metadata", {}).setdefault("labels", {})[LABEL] = self.app
            out.append(Resource(r.key, r.api_version, body, r.origin))
        return out

    def observe(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, dict[str, Any] | None]:
        return {k: copy.deepcopy(self.objects.get(k)) for k in keys}

    def _fields(self, resource: Resource, live: dict[str, Any]) -> list[FieldChange]:
        return diff.fields(live, resource.body, lambda p: resource.key.kind == "Secret" and p.startswith("/data"))

    def compare(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        if live is None:
            return Comparison(Action.CREATE)
        fields = self._fields(resource, live)
        if not fields:
            return Comparison(Action.NOOP)
        frozen = _frozen_change(fields, live)
        if frozen:
            return Comparison(Action.REPLACE, f"{frozen} cannot change in place", tuple(fields))
        return Comparison(Action.UPDATE, "", tuple(fields))

    def exact(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        result = self.compare(resource, live)
        return replace(result, reason=result.reason or "server dry-run")

    def owned(self, key: ResourceKey, live: dict[str, Any]) -> bool:
        return bool(live.get("metadata", {}).get("labels", {}).get(LABEL) == self.app)

    def fingerprint(self, live: Live) -> str:
        return hashlib.sha256(json.dumps({str(k): v for k, v in sorted(live.items())}, sort_keys=True).encode()
                              ).hexdigest()

    def wave(self, key: ResourceKey, body: Mapping[str, Any] | None = None) -> int:
        annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
        kind_wave = {"Namespace": 0, "ConfigMap": 1, "Secret": 1, "Deployment": 2}.get(key.kind, 3)
        return WAVE_SPAN * (parse_wave(annotations.get(WAVE_KEY)) or 0) + kind_wave

    def apply(self, resource: Resource, *, replace: bool = False, force_conflicts: bool = False) -> Applied:
        self._write()
        if resource.key in self.fail_apply_of:
            raise BackendError(f"{resource.key}: apply failed: injected")
        live = self.objects.get(resource.key)
        if live is not None and not replace:
            frozen = _frozen_change(self._fields(resource, live), live)
            if frozen:
                raise ImmutableFieldError(f"{resource.key}: apply failed: {frozen}: field is immutable")
        self.objects[resource.key] = copy.deepcopy(resource.body)
        self.applied.append(resource.key)
        self.touch(resource.key)
        if live is None:
            return Applied.CREATED
        if replace:
            return Applied.REPLACED
        return Applied.UNCHANGED if live == resource.body else Applied.CONFIGURED

    def delete(self, key: ResourceKey, live: dict[str, Any]) -> None:
        self._write()
        self.objects.pop(key, None)
        for other in self._cascade(key):
            self.objects.pop(other, None)
        self.touch(key)

    def _cascade(self, key: ResourceKey) -> list[ResourceKey]:
        inside = [k for k in self.objects if key.kind == "Namespace" and k.namespace == key.name and k != key]
        return sorted({*inside, *(k for k in self.cascade_of.get(key, ()) if k in self.objects)})

    def prune_disabled(self, resource: Resource) -> bool:
        return _disabled(resource.body)

    def prune_facts(self, keys: Iterable[ResourceKey], live: Live,
                    desired: Collection[ResourceKey]) -> dict[ResourceKey, PruneFacts]:
        facts: dict[ResourceKey, PruneFacts] = {}
        for key in keys:
            cascade = tuple(self._cascade(key))
            facts[key] = PruneFacts(key.kind in DATA_KINDS, _disabled(self.objects.get(key) or {}), cascade,
                                    self.leaves_of.get(key, ()))
            for other in (*cascade, *self.leaves_of.get(key, ())):
                facts.setdefault(other, PruneFacts(other.kind in DATA_KINDS, _disabled(self.objects.get(other) or {})))
        return facts

    def finish_prunes(self, rollout_ok: bool) -> list[ResourceKey]:
        self.finished.append(rollout_ok)
        return []

    def watch(self, keys: Collection[ResourceKey], changed: Callable[[ResourceKey], None],
              stop: threading.Event) -> None:
        """Like the real backends: every write to one of ``keys`` is reported (from the writer's
        thread, through ``on_write`` observers) until ``stop``."""
        watched = set(keys)
        with self._guard:
            self.watchers.append((watched, changed))
        try:
            stop.wait()
        finally:
            with self._guard:
                self.watchers.remove((watched, changed))

    def touch(self, key: ResourceKey) -> None:
        """Something (us, or another hand) changed ``key`` on the target: tell the watchers."""
        for watched, changed in list(self.watchers):
            if key in watched:
                changed(key)

    def health(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, Health]:
        out: dict[ResourceKey, Health] = {}
        for key in keys:
            obj = self.objects.get(key)
            if obj is None:
                out[key] = Health(HealthStatus.MISSING, "not found")
            elif obj.get("image") in self.failing_images:
                out[key] = Health(HealthStatus.PROGRESSING).with_failures(
                    [Failure(key, pod="p-1", container="app", reason="CrashLoopBackOff", message="boom")])
            else:
                out[key] = Health(HealthStatus.HEALTHY)
        return out

    # -- state: optimistic writes on a version, like a resourceVersion or a config sequence ---------

    def load_state(self) -> AppState:
        return copy.deepcopy(self.state) if self.state is not None else AppState(app=self.app)

    def save_state(self, state: AppState) -> AppState:
        self._write()
        with self._guard:
            stored = self.state.version if self.state is not None else ""
            if state.version != stored:
                raise StateConflictError(f"app {self.app}: state changed since it was read "
                                         f"(version {state.version or 'none'}, stored {stored}); run again")
            self.state = replace(state, version=str(int(stored or 0) + 1))
            return self.state

    # -- lock: a TTL, renewed by the shared loop ---------------------------------------------------

    def try_acquire(self, holder: str, ttl: int) -> tuple[bool, str]:
        """One atomic attempt (like the real stores): take a free, expired or own lock."""
        with self._guard:
            if self.lock_holder and self.lock_holder != holder and self.clock() < self.lock_expires:
                return False, self.lock_holder
            self.lock_holder, self.lock_expires = holder, self.clock() + ttl
            self.writes += 1
            return True, holder

    def _renew(self, holder: str, ttl: int) -> bool:
        with self._guard:
            if self.lock_holder != holder:
                self.renewal_refused.set()
                return False
            self.lock_expires = self.clock() + ttl
            return True

    def _release(self, holder: str) -> None:
        with self._guard:
            if self.lock_holder == holder:
                self.lock_holder, self.lock_expires = "", math.inf

    @contextmanager
    def lock(self, holder: str, ttl_seconds: int, wait: float, *, stopping: Stopping | None = None,
             clock: Clock = SYSTEM) -> Iterator[Lease]:
        with locking.held(app=self.app, ttl=ttl_seconds, wait=wait, stopping=stopping, clock=clock,
                          acquire=lambda: self.try_acquire(holder, ttl_seconds),
                          renew=lambda: self._renew(holder, ttl_seconds), release=lambda: self._release(holder),
                          where="fake lock") as lease:
            self.lease = lease
            yield lease


def _disabled(body: dict[str, Any]) -> bool:
    metadata = body.get("metadata") or {}
    return any((metadata.get(k) or {}).get(PRUNE) == "disabled" for k in ("annotations", "labels"))


def res(kind: str, name: str, **body: Any) -> Resource:
    key = ResourceKey("", kind, "ns", name)
    return Resource(key, "v1", {"kind": kind, "metadata": {"name": name}, **body}, Origin("app.yaml", 0, 1))
