"""The Backend protocol that the core stages program against.

The engine never imports `kubernetes` or `docker`; it talks to a target through this protocol.
A backend is bound to one app on one target (it knows the app's name, for ownership labels,
state and lock). Every member is typed; the core never probes a backend with ``getattr``.

Failures are raised as the types of :mod:`gitops.errors` (mapped once, at each client's edge):
``apply`` raises ConflictError / ImmutableFieldError, ``save_state`` StateConflictError, ``lock``
LockedError, anything that cannot reach the target UnreachableError. The same contract tests
(``tests/contract``) run on the in-memory fake and on both real backends.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from gitops.clock import SYSTEM, Clock, Stopping
from gitops.errors import LockLostError
from gitops.model import Diagnostic, Resource, ResourceKey
from gitops.model.health import Health
from gitops.model.plans import Action, Applied, FieldChange
from gitops.model.releases import AppState

Live = Mapping[ResourceKey, dict[str, Any] | None]


@dataclass(frozen=True)
class Comparison:
    """How one desired object relates to its live counterpart."""

    action: Action
    reason: str = ""
    fields: tuple[FieldChange, ...] = ()


class Lease:
    """A held lock, as the block holding it sees it (``with backend.lock(...) as lease``).

    The backend's renewer marks it lost when another runner took the lock over, or when it could
    not renew it for a whole TTL; the flow calls :meth:`check` before every write."""

    def __init__(self, app: str) -> None:
        self.app = app
        self._lost = threading.Event()
        self._why = ""

    def lose(self, why: str) -> None:
        self._why = why
        self._lost.set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LockLostError when the lock is no longer ours: the writer must stop."""
        if self._lost.is_set():
            raise LockLostError(f"app {self.app}: the lock was lost ({self._why}); stopped before the next write")


@dataclass(frozen=True)
class PruneFacts:
    """What a backend knows about deleting one live object (the prune guard judges with it).

    ``data``: it holds stateful storage (a PersistentVolumeClaim, a named volume).
    ``disabled``: the live object opts out of pruning (``gitops.dev/prune: disabled``).
    ``cascade``: other objects on the target the delete would remove with it, or that keep it
    from being deleted (objects in a Namespace, custom resources of a CRD, services on a network).
    ``leaves``: data the delete leaves behind on its own (a StatefulSet's PersistentVolumeClaims).
    """

    data: bool = False
    disabled: bool = False
    cascade: tuple[ResourceKey, ...] = ()
    leaves: tuple[ResourceKey, ...] = ()


@dataclass(frozen=True)
class RunOnce:
    """How a target treats an object that runs rather than stays (a Helm hook, by its
    ``helm.sh/hook-delete-policy``): ``recreate``, a change deletes it and creates it anew instead
    of updating it in place (before-hook-creation, the default); ``delete_on_success`` /
    ``delete_on_failure``, it is deleted once its wave is healthy (hook-succeeded) / once its wave
    failed (hook-failed). An object deleted after it succeeded is not planned again until it
    changes: the last good release holding it as it is says it ran."""

    recreate: bool = True
    delete_on_success: bool = False
    delete_on_failure: bool = False


#: At most this many API versions are handed to a renderer (a cluster serves a few hundred).
MAX_API_VERSIONS = 10_000


class Backend(Protocol):
    name: str  # "kubernetes", "swarm", ...
    app: str
    #: Problems that do not stop a deploy, found by the last ``prepare`` (and the writes since);
    #: the engine shows them to the user.
    warnings: list[Diagnostic]

    def target_id(self) -> str:
        """A stable name of the target (server URL, engine), for plans and messages."""
        ...

    def api_versions(self) -> frozenset[str]:
        """What the target serves, as Helm's ``.Capabilities.APIVersions`` names it: every
        ``group/version`` (``v1`` for the core group) and ``group/version/Kind``; read once per
        backend and bounded (``MAX_API_VERSIONS``). Empty for a target with no such notion (Swarm)."""
        ...

    def run_once(self, body: Mapping[str, Any]) -> RunOnce | None:
        """How a desired object that runs once per change is treated (a Helm hook); None for an
        ordinary object."""
        ...

    def prepare(self, resources: list[Resource]) -> list[Resource]:
        """Desired objects as they will be applied: namespaces defaulted, ownership labels added.
        Raises GitopsError naming the object when one cannot be applied to this target at all."""
        ...

    def observe(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, dict[str, Any] | None]:
        """Live objects for the given identities, read in bulk; None for absent ones."""
        ...

    def compare(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        """The action and field differences that would bring ``live`` to ``resource``."""
        ...

    def exact(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        """Like ``compare``, but the target's own answer where it can give one (Kubernetes: a
        server-side dry-run apply); ``plan --exact`` asks it for each update and replace. A target
        without a dry run answers as ``compare`` does."""
        ...

    def owned(self, key: ResourceKey, live: dict[str, Any]) -> bool:
        """Whether a live object was created by this app (may be pruned)."""
        ...

    def fingerprint(self, live: Live) -> str:
        """A digest of the live state a plan was computed on (versions of the objects)."""
        ...

    def wave(self, key: ResourceKey, body: Mapping[str, Any] | None = None) -> int:
        """Apply order: lower waves first; prune runs in reverse. The user's wave (``WAVE_KEY`` on
        ``body``, the desired or the live object) times ``WAVE_SPAN``, plus the kind's wave."""
        ...

    def apply(self, resource: Resource, *, replace: bool = False, force_conflicts: bool = False) -> Applied:
        """Create or update one object (``replace``: delete and re-create it); returns what the
        target did. Raises ConflictError (fields owned by another manager, unless
        ``force_conflicts``) and ImmutableFieldError (a change that needs ``replace``)."""
        ...

    def delete(self, key: ResourceKey, live: dict[str, Any]) -> None:
        """Delete one object that ``owned`` said is ours (the plan checked it); a backend may defer
        what must wait for the rollout to :meth:`finish_prunes`."""
        ...

    def prune_disabled(self, resource: Resource) -> bool:
        """Whether a desired (prepared) object opts out of pruning; the release remembers it."""
        ...

    def prune_facts(self, keys: Iterable[ResourceKey], live: Live,
                    desired: Collection[ResourceKey]) -> dict[ResourceKey, PruneFacts]:
        """Facts about deleting each of ``keys`` (present in ``live``, the plan's snapshot, which
        also holds the ``desired`` objects), read in bulk. The result also holds an entry for
        every object named in a ``cascade`` or ``leaves``, with its own ``data`` and ``disabled``."""
        ...

    def finish_prunes(self, rollout_ok: bool) -> list[ResourceKey]:
        """The prune step that waits for the rollout (Swarm: configs and secrets the new release
        stopped using): carried out when ``rollout_ok``, dropped otherwise. Returns the objects
        that could not be deleted (they stay in the inventory and are retried next time)."""
        ...

    def watch(self, keys: Collection[ResourceKey], changed: Callable[[ResourceKey], None],
              stop: threading.Event) -> None:
        """Block until ``stop`` is set, calling ``changed(key)`` soon after one of ``keys`` changes on
        the target by any hand (edited, scaled, deleted; our own writes too). Drift detection for
        the daemon: Kubernetes watches, the Docker event stream. A target that stops answering is
        retried, never raised."""
        ...

    def health(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, Health]:
        """Current health of the given objects, with fail-fast failures when there are any."""
        ...

    def load_state(self) -> AppState:
        """The app's state as stored, with the store's ``version`` (empty when none is stored)."""
        ...

    def save_state(self, state: AppState) -> AppState:
        """Write the app's state optimistically, on ``state.version``; return it as stored, with
        its new version. Raises StateConflictError when the stored version moved since."""
        ...

    def lock(self, holder: str, ttl_seconds: int, wait: float, *, stopping: Stopping | None = None,
             clock: Clock = SYSTEM) -> AbstractContextManager[Lease]:
        """Hold the app's lock on the target for the block, renewing it every ``ttl / 3``; raises
        LockedError when another holder keeps it for ``wait`` seconds (on ``clock``), and
        StoppedError as soon as ``stopping()`` says so while waiting. A holder that stops
        renewing loses the lock ``ttl_seconds`` later; the block's :class:`Lease` tells it."""
        ...


def fingerprint(live: Live, view: Callable[[ResourceKey, dict[str, Any]], Any]) -> str:
    """A digest of live objects as ``view`` sees them (the part a plan depends on), absent ones
    included, independent of order. Backends use it for ``Backend.fingerprint``."""
    digest = hashlib.sha256()
    for key in sorted(live):
        obj = live[key]
        digest.update(str(key).encode())
        if obj is None:
            digest.update(b"\0absent")
        else:
            digest.update(json.dumps(view(key, obj), sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()
