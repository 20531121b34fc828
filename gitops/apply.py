"""Apply: carry out a plan wave by wave (creates and updates in wave order, prunes last in reverse)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gitops.backends.base import Backend
from gitops.errors import GitopsError
from gitops.model import Resource, ResourceKey
from gitops.model.plans import Action, AppPlan, Change, ChangeSet

Progress = Callable[[Change], None]


def run(backend: Backend, plan: AppPlan, resources: list[Resource],
        live: Mapping[ResourceKey, dict[str, Any] | None], *, force_conflicts: bool = False,
        on_change: Progress | None = None) -> ChangeSet:
    """Apply every change of ``plan``. Stops at the first failed create/update (the caller rolls
    back); a failed delete is recorded and the others go on (it stays in the inventory)."""
    by_key = {r.key: r for r in resources}
    result = ChangeSet()
    for change in plan.changes:
        if change.action is Action.NOOP:
            result.unchanged.append(change.key)
            continue
        if on_change is not None:
            on_change(change)
        try:
            if change.action is Action.DELETE:
                current = live.get(change.key)
                if current is not None:
                    backend.delete(change.key, current)
                result.deleted.append(change.key)
                continue
            resource = by_key[change.key]
            backend.apply(resource, replace=change.action is Action.REPLACE, force_conflicts=force_conflicts)
        except GitopsError as err:
            if change.action is Action.DELETE:
                result.failed_deletes.append(change.key)
                continue
            result.failed = change.key
            result.error = str(err)
            return result
        {Action.CREATE: result.created, Action.UPDATE: result.configured,
         Action.REPLACE: result.replaced}[change.action].append(change.key)
    return result
