"""Plan: pair desired objects with live ones, choose an action for each, order them in waves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from gitops import prune as prune_stage
from gitops.backends.base import Backend, Comparison
from gitops.model import Resource, ResourceKey
from gitops.model.plans import Action, AppPlan, BlockReason, Change
from gitops.model.releases import AppState


def digest(resources: Iterable[Resource]) -> str:
    """A digest of the desired manifests (as prepared for the target), independent of order."""
    h = hashlib.sha256()
    for resource in sorted(resources, key=lambda r: r.key):
        h.update(str(resource.key).encode())
        h.update(json.dumps(resource.body, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _ran(state: AppState) -> dict[ResourceKey, dict[str, object]]:
    """The objects of the last good release, as applied (what a deleted hook ran as)."""
    good = state.last_good
    return {r.key: r.body for r in good.resources()} if good is not None else {}


def build(backend: Backend, resources: list[Resource], state: AppState, *, revision: str,
          exact: bool = False, prune: bool = True, policy: prune_stage.Policy | None = None,
          protected: Iterable[ResourceKey] = ()) -> tuple[AppPlan, dict[ResourceKey, dict[str, object] | None]]:
    """The plan for one app, and the live objects it was computed on.

    Objects in the app's inventory (what earlier releases applied) that are no longer desired are
    deleted, but only when the live object still carries this app's ownership label: nothing we
    did not create is ever pruned. The prune guards (:mod:`gitops.prune`) then keep data and
    objects that opt out, and refuse cascading and mass deletes: the plan says so in ``kept`` and
    ``blocked``. ``protected`` adds keys known to opt out of pruning (a rollback passes those of
    the release it returns to).

    An object that runs once (``Backend.run_once``, a Helm hook) is re-created rather than updated
    when it changed (replace), and one deleted after it succeeded is left out of the plan while the
    last good release holds it unchanged (it ran; it is still in the manifests and the inventory).
    """
    policy = policy or prune_stage.Policy()
    desired = {r.key: r for r in resources}
    inventory = state.inventory()
    live = backend.observe([*desired, *(k for k in sorted(inventory) if k not in desired)])
    ran: dict[ResourceKey, dict[str, object]] | None = None  # read only when a hook needs it
    changes: list[Change] = []
    for key, resource in desired.items():
        current = live.get(key)
        once = backend.run_once(resource.body)
        if once is not None and once.delete_on_success and current is None:
            ran = _ran(state) if ran is None else ran
            if ran.get(key) == resource.body:
                continue  # a hook deleted after it succeeded: it runs again when it changes
        result = backend.compare(resource, current)
        if exact and result.action in (Action.UPDATE, Action.REPLACE):
            result = backend.exact(resource, current)
        if once is not None and once.recreate and result.action is Action.UPDATE:
            result = Comparison(Action.REPLACE, "a hook is created anew when it changes (before-hook-creation)",
                                result.fields)
        changes.append(Change(key, result.action, result.reason, result.fields, backend.wave(key, resource.body),
                              str(resource.origin)))
    opted_out = {k for k, r in desired.items() if backend.prune_disabled(r)}
    opted_out |= set(protected) & set(desired)
    remembered = (state.protected() - set(desired)) | opted_out
    candidates: list[ResourceKey] = []
    for key in sorted(inventory - set(desired)):
        current = live.get(key)
        if current is not None and backend.owned(key, current):
            candidates.append(key)
    if not prune:
        candidates = []
    replacing = [c.key for c in changes if c.action is Action.REPLACE]
    verdict = prune_stage.judge(backend, candidates, live, desired=set(desired), protected=remembered,
                                policy=policy, replacing=replacing,
                                app_objects=sum(1 for k in set(desired) | inventory if live.get(k) is not None))
    if policy.rollback:  # a rollback leaves a refused replace undone rather than stopping
        held = {b.key for b in verdict.blocked if b.reason is BlockReason.DATA_REPLACE}
        changes = [Change(c.key, Action.NOOP, "not replaced: it holds data", (), c.wave, c.origin)
                   if c.key in held else c for c in changes]
    for key, cascade in verdict.deletes.items():
        changes.append(Change(key, Action.DELETE, "no longer in the repository", (), backend.wave(key, live.get(key)),
                              cascade=cascade))
    kept = verdict.kept + prune_stage.left_behind(state.kept() - set(desired), live,
                                                  {k.key for k in verdict.kept} | set(verdict.deletes))
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
        kept=tuple(sorted(kept, key=lambda k: k.key)),
        blocked=() if policy.rollback else verdict.blocked,
        overrides=verdict.overrides,
        protected=tuple(sorted(remembered & (set(desired) | {k.key for k in kept}))),
    )
    return plan, live
