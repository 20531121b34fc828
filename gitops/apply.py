"""Apply: carry out a plan wave by wave (creates and updates in wave order, prunes last in reverse).

Returns a :class:`ChangeSet` built from what the backend reports it did for each object (created,
configured, replaced, unchanged, deleted), not from what the plan expected."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops.backends.base import Backend
from gitops.errors import GitopsError, LockLostError
from gitops.model import Resource, ResourceKey
from gitops.model.plans import Action, Applied, AppPlan, Change, ChangeSet

Progress = Callable[[Change], None]
Guard = Callable[[], None]


def _no_guard() -> None:
    return None


def run(backend: Backend, plan: AppPlan, resources: list[Resource],
        live: Mapping[ResourceKey, dict[str, Any] | None], *, force_conflicts: bool = False,
        on_change: Progress | None = None, workers: int = 4, guard: Guard = _no_guard) -> ChangeSet:
    """Apply every change of ``plan``, wave by wave; the objects of one wave are independent and
    are applied concurrently. Stops after the wave in which a create/update failed (the caller
    rolls back); a failed delete is recorded and the others go on (it stays in the inventory).

    ``guard()`` runs before each write and raises to stop the apply (``Lease.check``: an apply
    whose lock was lost raises LockLostError instead of writing on)."""
    by_key = {r.key: r for r in resources}
    result = ChangeSet()
    groups: list[list[Change]] = []
    for change in plan.changes:
        if change.action is Action.NOOP:
            result.unchanged.append(change.key)
            continue
        phase = (change.action is Action.DELETE, change.wave)
        if not groups or (groups[-1][0].action is Action.DELETE, groups[-1][0].wave) != phase:
            groups.append([])
        groups[-1].append(change)

    def one(change: Change) -> tuple[Change, Applied | None, str]:
        if on_change is not None:
            on_change(change)
        guard()
        try:
            if change.action is Action.DELETE:
                current = live.get(change.key)
                if current is not None:
                    backend.delete(change.key, current)
                return change, None, ""
            applied = backend.apply(by_key[change.key], replace=change.action is Action.REPLACE,
                                    force_conflicts=force_conflicts)
        except LockLostError:
            raise
        except GitopsError as err:
            return change, None, str(err)
        return change, applied, ""

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for group in groups:
            guard()
            for change, applied, error in pool.map(one, group):
                if error and change.action is Action.DELETE:
                    result.failed_deletes.append(change.key)
                elif error:
                    if result.failed is None:
                        result.failed, result.error = change.key, error
                elif applied is None:
                    result.deleted.append(change.key)
                else:
                    result.record(change.key, applied)
            if result.failed is not None:
                return result
    return result
