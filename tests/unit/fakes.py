"""An in-memory Backend for unit tests of the deploy flow. The same scenarios run against the
real backends in tests/integration, so this fake cannot drift far from reality unnoticed."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gitops import diff
from gitops.backends.base import Comparison, Live, PruneFacts
from gitops.errors import BackendError, LockedError
from gitops.model import Origin, Resource, ResourceKey
from gitops.model.plans import Action
from gitops.model.releases import AppState

LABEL = "fake/app"
PRUNE = "gitops.dev/prune"
DATA_KINDS = ("PersistentVolumeClaim", "Volume")


@dataclass
class FakeHealth:
    status: str
    message: str = ""
    failures: tuple[Any, ...] = ()


@dataclass
class FakeFailure:
    reason: str
    message: str = ""
    pod: str = ""
    container: str = ""


@dataclass
class FakeBackend:
    app: str = "demo"
    name: str = "fake"
    objects: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    state: AppState | None = None
    writes: int = 0
    failing_images: set[str] = field(default_factory=set)
    fail_apply_of: set[ResourceKey] = field(default_factory=set)
    lock_holder: str = ""
    applied: list[ResourceKey] = field(default_factory=list)
    # Like the real API server: deleting a Namespace deletes what is in it (objects whose key
    # namespace is its name); ``cascade_of`` adds other cascades (a CRD's custom resources, ...).
    cascade_of: dict[ResourceKey, tuple[ResourceKey, ...]] = field(default_factory=dict)
    leaves_of: dict[ResourceKey, tuple[ResourceKey, ...]] = field(default_factory=dict)
    finished: list[bool] = field(default_factory=list)  # finish_prunes calls (rollout_ok)

    def target_id(self) -> str:
        return "fake:memory"

    def prepare(self, resources: list[Resource]) -> list[Resource]:
        out = []
        for r in resources:
            body = copy.deepcopy(r.body)
            body.setdefault("metadata", {}).setdefault("labels", {})[LABEL] = self.app
            out.append(Resource(r.key, r.api_version, body, r.origin))
        return out

    def observe(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, dict[str, Any] | None]:
        return {k: copy.deepcopy(self.objects.get(k)) for k in keys}

    def compare(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        if live is None:
            return Comparison(Action.CREATE)
        fields = diff.fields(live, resource.body, lambda p: resource.key.kind == "Secret" and p.startswith("/data"))
        if not fields:
            return Comparison(Action.NOOP)
        if any(f.path.startswith("/spec/selector") for f in fields):
            return Comparison(Action.REPLACE, "/spec/selector cannot change in place", tuple(fields))
        return Comparison(Action.UPDATE, "", tuple(fields))

    def owned(self, key: ResourceKey, live: dict[str, Any]) -> bool:
        return bool(live.get("metadata", {}).get("labels", {}).get(LABEL) == self.app)

    def fingerprint(self, live: Live) -> str:
        return hashlib.sha256(json.dumps({str(k): v for k, v in sorted(live.items())}, sort_keys=True).encode()
                              ).hexdigest()

    def wave(self, key: ResourceKey) -> int:
        return {"Namespace": 0, "ConfigMap": 1, "Secret": 1, "Deployment": 2}.get(key.kind, 3)

    def apply(self, resource: Resource, *, replace: bool = False, force_conflicts: bool = False) -> None:
        self.writes += 1
        if resource.key in self.fail_apply_of:
            raise BackendError(f"{resource.key}: apply failed: injected")
        self.objects[resource.key] = copy.deepcopy(resource.body)
        self.applied.append(resource.key)

    def delete(self, key: ResourceKey, live: dict[str, Any]) -> None:
        self.writes += 1
        self.objects.pop(key, None)
        for other in self._cascade(key):
            self.objects.pop(other, None)

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

    def health(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, Any]:
        out: dict[ResourceKey, Any] = {}
        for key in keys:
            obj = self.objects.get(key)
            if obj is None:
                out[key] = FakeHealth("Missing", "not found")
            elif obj.get("image") in self.failing_images:
                out[key] = FakeHealth("Degraded", "crash", (FakeFailure("CrashLoopBackOff", "boom", pod="p-1"),))
            else:
                out[key] = FakeHealth("Healthy")
        return out

    def load_state(self) -> AppState:
        return self.state or AppState(app=self.app)

    def save_state(self, state: AppState) -> AppState:
        self.writes += 1
        self.state = state
        return state

    @contextmanager
    def lock(self, holder: str, ttl_seconds: int, wait: float) -> Iterator[None]:
        if self.lock_holder and self.lock_holder != holder:
            raise LockedError(f"app {self.app} is locked by {self.lock_holder}")
        self.writes += 1
        self.lock_holder = holder
        try:
            yield
        finally:
            self.lock_holder = ""


def _disabled(body: dict[str, Any]) -> bool:
    metadata = body.get("metadata") or {}
    return any((metadata.get(k) or {}).get(PRUNE) == "disabled" for k in ("annotations", "labels"))


def res(kind: str, name: str, **body: Any) -> Resource:
    key = ResourceKey("", kind, "ns", name)
    return Resource(key, "v1", {"kind": kind, "metadata": {"name": name}, **body}, Origin("app.yaml", 0, 1))
