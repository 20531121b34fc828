"""App state and the apply lock, kept in the cluster so every runner sees the same truth.

* State: a Secret ``gitops-state-<app>`` in the state namespace (default ``gitops-system``)
  holding the release history (with the manifests of recent releases, which may include Secret
  values: hence a Secret, not a ConfigMap). Written with the resourceVersion it was read at.
* Lock: a ``coordination.k8s.io/v1`` Lease ``gitops-lock-<app>``. Taking it is an atomic create,
  or an update at the read resourceVersion when the holder's lease has expired; the holder renews
  it from a background thread, so a crashed runner's lock expires by itself after its TTL.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from gitops.backends import locking
from gitops.backends.base import Lease
from gitops.backends.kubernetes.client import KubeClient, ResourceType
from gitops.clock import SYSTEM, Clock, Stopping
from gitops.errors import AlreadyExistsError, BackendError, StateConflictError
from gitops.model.releases import AppState

STATE_KEY = "state.json.gz"
STATE_BUDGET = 700_000  # bytes of packed manifests kept; a Secret holds at most 1 MiB
LABEL = "app.kubernetes.io/managed-by"


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text.replace("Z", ""), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.strptime(text.replace("Z", ""), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return None


class ClusterStore:
    def __init__(self, client: KubeClient, app: str, namespace: str) -> None:
        self.client = client
        self.app = app
        self.namespace = namespace
        self._secret_type: ResourceType | None = None

    def _secrets(self) -> ResourceType:
        if self._secret_type is None:
            found = self.client.resource_type("v1", "Secret")
            if found is None:
                raise BackendError("Secret: discover failed: the cluster has no v1 Secret")
            self._secret_type = found
        return self._secret_type

    def _leases(self) -> ResourceType:
        found = self.client.resource_type("coordination.k8s.io/v1", "Lease")
        if found is None:
            raise BackendError("Lease: discover failed: the cluster has no coordination.k8s.io/v1 Lease")
        return found

    @property
    def secret_name(self) -> str:
        return f"gitops-state-{self.app}"

    @property
    def lease_name(self) -> str:
        return f"gitops-lock-{self.app}"

    def ensure_namespace(self) -> None:
        namespaces = self.client.resource_type("v1", "Namespace")
        assert namespaces is not None
        if self.client.get(namespaces, "", self.namespace) is None:
            with suppress(AlreadyExistsError):  # another runner made it
                self.client.create(namespaces, {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": self.namespace, "labels": {LABEL: "gitops"}}})

    # -- state ----------------------------------------------------------------------------

    def load(self) -> AppState:
        secret = self.client.get(self._secrets(), self.namespace, self.secret_name)
        if secret is None:
            return AppState(app=self.app)
        raw = (secret.get("data") or {}).get(STATE_KEY)
        version = secret["metadata"]["resourceVersion"]
        if not raw:
            return AppState(app=self.app, version=version)
        data = json.loads(gzip.decompress(base64.b64decode(raw)))
        return AppState.from_json(data, version=version)

    def save(self, state: AppState) -> AppState:
        state = state.trimmed(STATE_BUDGET)
        payload = base64.b64encode(gzip.compress(json.dumps(state.to_json()).encode(), 6)).decode()
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Secret", "type": "gitops.dev/state",
            "metadata": {"name": self.secret_name, "namespace": self.namespace,
                         "labels": {LABEL: "gitops", "gitops.dev/app": self.app}},
            "data": {STATE_KEY: payload},
        }
        try:
            if state.version:
                body["metadata"]["resourceVersion"] = state.version
                stored = self.client.replace(self._secrets(), body)
            else:
                self.ensure_namespace()
                stored = self.client.create(self._secrets(), body)
        except (StateConflictError, AlreadyExistsError) as err:
            raise StateConflictError(f"app {self.app}: state changed since it was read (another runner wrote "
                                     f"Secret {self.namespace}/{self.secret_name}); run again") from err
        return AppState(app=state.app, releases=state.releases, bad_revisions=state.bad_revisions,
                        version=stored["metadata"]["resourceVersion"])

    # -- lock -----------------------------------------------------------------------------

    def _lease_body(self, holder: str, ttl: int, version: str = "", acquired: str = "") -> dict[str, Any]:
        now = _micro(_now())
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.lease_name, "namespace": self.namespace,
                         "labels": {LABEL: "gitops", "gitops.dev/app": self.app}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": ttl,
                     "acquireTime": acquired or now, "renewTime": now},
        }
        if version:
            body["metadata"]["resourceVersion"] = version
        return body

    def try_acquire(self, holder: str, ttl: int) -> tuple[bool, str]:
        """One attempt; (taken, current holder)."""
        leases = self._leases()
        current = self.client.get(leases, self.namespace, self.lease_name)
        if current is None:
            self.ensure_namespace()
            try:
                self.client.create(leases, self._lease_body(holder, ttl))
                return True, holder
            except AlreadyExistsError:
                return False, "another runner"
        spec = current.get("spec") or {}
        owner = spec.get("holderIdentity") or ""
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or ttl)
        expired = not owner or renewed is None or renewed + timedelta(seconds=duration) < _now()
        if owner != holder and not expired:
            return False, owner
        try:
            self.client.replace(leases, self._lease_body(holder, ttl, current["metadata"]["resourceVersion"]))
            return True, holder
        except StateConflictError:
            return False, owner or "another runner"

    def release(self, holder: str) -> None:
        leases = self._leases()
        current = self.client.get(leases, self.namespace, self.lease_name)
        if current is None or (current.get("spec") or {}).get("holderIdentity") != holder:
            return
        body = self._lease_body("", 1, current["metadata"]["resourceVersion"])
        body["spec"].pop("holderIdentity")
        with suppress(StateConflictError):  # someone took it meanwhile: not ours to release
            self.client.replace(leases, body)

    @contextmanager
    def lock(self, holder: str, ttl: int, wait: float, *, stopping: Stopping | None = None,
             clock: Clock = SYSTEM) -> Iterator[Lease]:
        with locking.held(app=self.app, ttl=ttl, wait=wait, stopping=stopping, clock=clock,
                          acquire=lambda: self.try_acquire(holder, ttl),
                          renew=lambda: self.try_acquire(holder, ttl)[0], release=lambda: self.release(holder),
                          where=f"Lease {self.namespace}/{self.lease_name}") as lease:
            yield lease
