"""Plan: pair desired objects with live ones, choose an action for each, order them in waves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from gitops.backends.base import Backend
from gitops.model import Resource, ResourceKey
from gitops.model.plans import Action, AppPlan, Change
from gitops.model.releases import AppState


def digest(resources: Iterable[Resource]) -> str:
    """A digest of the desired manifests (as prepared for the target), independent of order."""
    h = hashlib.sha256()
    for resource in sorted(resources, key=lambda r: r.key):
        h.update(str(resource.key).encode())
        h.update(json.dumps(resource.body, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def build(backend: Backend, resources: list[Resource], state: AppState, *, revision: str,
          exact: bool = False, prune: bool = True) -> tuple[AppPlan, dict[ResourceKey, dict[str, object] | None]]:
    """The plan for one app, and the live objects it was computed on.

    Objects in the app's inventory (what earlier releases applied) that are no longer desired are
    deleted, but only when the live object still carries this app's ownership label: nothing we
    did not create is ever pruned.
    """
    desired = {r.key: r for r in resources}
    inventory = state.inventory()
    live = backend.observe([*desired, *(k for k in sorted(inventory) if k not in desired)])
    changes: list[Change] = []
    for key, resource in desired.items():
        current = live.get(key)
        result = backend.compare(resource, current)
        if exact and result.action in (Action.UPDATE, Action.REPLACE):
            result = backend.exact(resource, current)
        changes.append(Change(key, result.action, result.reason, result.fields, backend.wave(key),
                              str(resource.origin)))
    if prune:
        for key in sorted(inventory - set(desired)):
            current = live.get(key)
            if current is None:
                continue
            if not backend.owned(key, current):
                continue
            changes.append(Change(key, Action.DELETE, "no longer in the repository", (), backend.wave(key)))
    changes.sort(key=lambda c: (c.action is Action.DELETE, -c.wave if c.action is Action.DELETE else c.wave,
                                c.key))
    plan = AppPlan(
        app=backend.app,
        backend=backend.name,
        target=backend.target_id(),
        revision=revision,
        manifests_digest=digest(resources),
        base_state=backend.fingerprint(live),
        changes=tuple(changes),
    )
    return plan, live
