"""The flow of one app on one target: plan, lock, record, apply, watch, roll back, record.

This composes the stages (plan, apply, rollout) for a single app and a single backend; the
engine calls it for every app it selected. It never imports an SDK: the backend does the I/O.

Guarantees:
* A no-op apply of the revision already recorded as succeeded makes no write at all.
* A saved plan is refused as stale when the manifests or the live objects it was computed on
  changed since.
* Before the first write, an in-progress release holding the union of the new and the old
  inventory is recorded, so an apply killed mid-way forgets nothing: the next run re-plans
  against that inventory and completes (or prunes) what was left.
* A plan a prune guard refused (:mod:`gitops.prune`: a cascading delete, a mass delete, an
  empty revision) is refused with :class:`PlanBlocked` before any write, the lock included.
  Objects prune keeps (data, opted out) are recorded in the release's ``kept`` list, the guards
  lifted for the run in its ``overrides``.
* Deletes that wait for the rollout (Swarm's old configs and secrets) are carried out by
  :meth:`Backend.finish_prunes` once the rollout succeeded, and dropped when it failed.
* When an apply or its rollout fails, with automatic rollback on, every object goes back to the
  last good release (objects that only the failed revision had are pruned); the result says
  rolled-back (exit code 3). A failed rollout also marks the revision bad; an apply the target
  refused (conflict, admission denial, unreachable) does not.
* Every write under the lock (state, objects) first checks the lock's Lease: once the lock is
  lost, the flow stops writing (no rollback either) and raises LockLostError.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gitops import apply, plan, rollout
from gitops import prune as prune_stage
from gitops.backends.base import Backend, Lease
from gitops.clock import SYSTEM, Clock
from gitops.errors import GitopsError, StalePlanError, StoppedError
from gitops.model import HealthStatus, Resource, ResourceKey
from gitops.model.plans import Action, AppPlan, Block, ChangeSet, user_wave
from gitops.model.releases import AppState, Outcome, Release, pack_resources, restore, withheld

Event = Callable[[dict[str, Any]], None]


def _quiet(_: dict[str, Any]) -> None:
    return None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Options:
    timeout: float = 300.0  # rollout wait, seconds
    auto_rollback: bool = True
    prune: bool = True
    force_conflicts: bool = False
    exact: bool = False
    allow_bad_revision: bool = False
    holder: str = field(default_factory=default_holder)
    lock_ttl: int = 30
    lock_wait: float = 600.0
    poll: float = 0.5
    # Asked before every write and every rollout poll: True stops the run there (StoppedError),
    # leaving the release in progress for the next run to complete (the daemon's SIGTERM, or a
    # newer revision arriving while this one's rollout is watched).
    stopping: Callable[[], bool] | None = None
    clock: Clock = SYSTEM  # every wait of the run (the lock, the rollout) is measured on it
    policy: prune_stage.Policy = field(default_factory=prune_stage.Policy)  # prune guards


class PlanBlocked(GitopsError):
    """A prune guard refused the plan (nothing was written); ``blocks`` says why, as values."""

    def __init__(self, app_plan: AppPlan) -> None:
        self.plan = app_plan
        self.blocks: tuple[Block, ...] = app_plan.blocked
        reasons = "\n  ".join(b.message for b in app_plan.blocked)
        super().__init__(f"app {app_plan.app}: revision {app_plan.revision[:12]} refused; nothing was changed:"
                         f"\n  {reasons}")


@dataclass
class Result:
    """What happened to one app."""

    app: str
    outcome: str  # "no-op" | "applied" | "rolled-back" | "failed"
    plan: AppPlan
    changeset: ChangeSet | None = None
    rollout: rollout.RolloutReport | None = None
    rollback: Result | None = None
    release: Release | None = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app, "outcome": self.outcome, "error": self.error,
            "revision": self.plan.revision,
            "changeset": self.changeset.to_json() if self.changeset else None,
            "rollout": self.rollout.to_json() if self.rollout else None,
            "rollback": self.rollback.to_json() if self.rollback else None,
            "release": self.release.number if self.release else None,
        }


def plan_app(backend: Backend, resources: list[Resource], revision: str, *, exact: bool = False,
             prune: bool = True, policy: prune_stage.Policy | None = None) -> tuple[AppPlan, list[Resource]]:
    """The plan of one app (a value: a blocked plan says why in ``blocked``; it raises nothing).
    The state is read before the objects are prepared: preparing may use what it holds (Swarm's
    secret naming key)."""
    state = backend.load_state()
    prepared = backend.prepare(resources)
    app_plan, _ = plan.build(backend, prepared, state, revision=revision, exact=exact, prune=prune, policy=policy)
    return app_plan, prepared


def _check_saved(saved: AppPlan | None, fresh: AppPlan) -> None:
    if saved is None:
        return
    if saved.app != fresh.app or saved.target != fresh.target:
        raise StalePlanError(f"the plan is for app {saved.app} on {saved.target}, not {fresh.app} on {fresh.target}")
    if saved.manifests_digest != fresh.manifests_digest:
        raise StalePlanError(f"plan is stale: the manifests of app {fresh.app} changed since the plan was made "
                             f"(revision {saved.revision} → {fresh.revision}); plan again")
    if saved.base_state != fresh.base_state:
        raise StalePlanError(f"plan is stale: live objects of app {fresh.app} changed since the plan was made; "
                             "plan again")


def apply_app(backend: Backend, resources: list[Resource], revision: str, options: Options | None = None,
              *, saved: AppPlan | None = None, on_event: Event = _quiet) -> Result:
    options = options or Options()
    policy = options.policy.allowing(saved.overrides) if saved is not None else options.policy

    def fresh_plan(state: AppState, prepared: list[Resource]) \
            -> tuple[AppPlan, dict[ResourceKey, dict[str, Any] | None], Result | None]:
        """The plan against ``state``, and the no-op result when that revision is applied already."""
        fresh, live = plan.build(backend, prepared, state, revision=revision, exact=options.exact,
                                 prune=options.prune, policy=policy)
        _check_saved(saved, fresh)
        if not fresh.ok:
            raise PlanBlocked(fresh)
        if not _settled(state, fresh):
            return fresh, live, None
        on_event({"event": "no-op", "app": backend.app, "revision": revision})
        return fresh, live, Result(backend.app, "no-op", fresh, release=state.current)

    state = backend.load_state()
    _, _, done = fresh_plan(state, backend.prepare(resources))
    if done is not None:
        return done
    if revision in state.bad_revisions and not options.allow_bad_revision:
        raise GitopsError(f"revision {revision} of app {backend.app} failed before and is marked bad; "
                          "fix it in git, or apply it again with --allow-bad-revision")

    on_event({"event": "lock", "app": backend.app, "holder": options.holder})
    with backend.lock(options.holder, options.lock_ttl, options.lock_wait, stopping=options.stopping,
                      clock=options.clock) as lease:
        state = backend.load_state()
        # Prepared again from the state read under the lock: what preparing takes from the state
        # (Swarm's secret naming key, stored by the first apply, maybe another runner's) is then
        # what this run's writes go with.
        prepared = backend.prepare(resources)
        fresh, live, done = fresh_plan(state, prepared)
        if done is not None:  # another runner applied this revision while we waited for the lock
            return done
        return _converge(backend, lease, fresh, prepared, live, state, options, on_event, Outcome.SUCCEEDED)


def _settled(state: AppState, fresh: AppPlan) -> bool:
    """The revision is applied, its rollout was watched to the end, and nothing drifted since."""
    current = state.current
    return (not fresh.has_changes and current is not None and current.outcome is Outcome.SUCCEEDED
            and current.digest == fresh.manifests_digest)


def _save(backend: Backend, lease: Lease, state: AppState) -> AppState:
    lease.check()
    return backend.save_state(state)


def _guard(lease: Lease, options: Options) -> Callable[[], None]:
    """What the apply and the rollout watch call before each write and poll."""
    def check() -> None:
        lease.check()
        if options.stopping is not None and options.stopping():
            raise StoppedError(f"app {lease.app}: stopped before the next write; the release stays in progress "
                               "and the next run completes it")
    return check


def _converge(backend: Backend, lease: Lease, app_plan: AppPlan, prepared: list[Resource],
              live: dict[ResourceKey, dict[str, Any] | None], state: AppState, options: Options,
              on_event: Event, success: Outcome, *, rolling_back: bool = False) -> Result:
    """Apply a plan under the lock, watch it, and on failure roll back (unless rolling back).

    When the newest release is still in progress, a runner died during its apply or its rollout:
    what it wrote is live but was never watched to the end. The same revision completes that
    release (same number); another revision records it as interrupted (not as bad: nobody saw it
    fail). Either way the whole app is watched, not only what this run changes, so a crash-looping
    workload that the dead runner wrote fails this rollout and is rolled back like any other.
    """
    desired_keys = [r.key for r in prepared]
    interrupted = state.current if state.current is not None and state.current.outcome is Outcome.IN_PROGRESS \
        else None
    number = state.next_number()
    if interrupted is not None:
        if interrupted.revision == app_plan.revision and interrupted.digest == app_plan.manifests_digest:
            number = interrupted.number
        else:
            state = state.with_release(replace(
                interrupted, outcome=Outcome.FAILED, finished=now(),
                message=f"interrupted before its rollout finished; superseded by revision {app_plan.revision}"))
        on_event({"event": "resume", "app": backend.app, "release": interrupted.number,
                  "revision": interrupted.revision})
    kept = tuple(sorted(k.key for k in app_plan.kept))
    release = Release(
        number=number, revision=app_plan.revision, digest=app_plan.manifests_digest,
        outcome=Outcome.IN_PROGRESS, started=now(),
        inventory=tuple(sorted(set(desired_keys) | state.inventory())),
        manifests=pack_resources(prepared),
        kept=kept, protected=app_plan.protected, overrides=tuple(g.value for g in app_plan.overrides),
    )
    state = _save(backend, lease, state.with_release(release))
    on_event({"event": "apply", "app": backend.app, "revision": app_plan.revision, "release": release.number})
    # A rollback waits for the whole app: objects it did not need to change may still be settling
    # (e.g. a Swarm service that Swarm itself is rolling back). So does the run that completes an
    # interrupted release: what the dead runner wrote was never watched.
    whole_app = rolling_back or interrupted is not None
    changeset = ChangeSet()
    report: rollout.RolloutReport | None = None
    started = options.clock.monotonic()
    stages = _stages(app_plan)
    # Hooks deleted after they succeeded are not in the plan (they ran): nothing of them to watch.
    planned = [c.key for c in app_plan.changes if c.action is not Action.DELETE]
    for number_in_order, (wave, stage) in enumerate(stages):
        last = number_in_order == len(stages) - 1
        if len(stages) > 1:
            on_event({"event": "wave", "app": backend.app, "wave": wave,
                      "objects": sum(1 for c in stage.changes if c.action is not Action.NOOP)})
        step = apply.run(
            backend, stage, prepared, live, force_conflicts=options.force_conflicts, guard=_guard(lease, options),
            on_change=lambda c: on_event({"event": "change", "app": backend.app, "action": c.action.value,
                                          "object": str(c.key)}),
        )
        _gather(changeset, step)
        if not step.ok:
            break
        # Each user wave is healthy before the next one starts; the last waits as a single-wave
        # apply does (the whole app when rolling back or completing an interrupted release).
        watched = planned if whole_app and last else step.changed
        on_event({"event": "rollout", "app": backend.app, "objects": len(watched)})
        remaining = max(0.0, options.timeout - (options.clock.monotonic() - started))
        report = rollout.wait(
            backend, watched, timeout=remaining, poll=options.poll, guard=_guard(lease, options),
            clock=options.clock,
            on_progress=lambda health: on_event({
                "event": "progress", "app": backend.app,
                "pending": sorted(str(k) for k, h in health.items() if h.status is not HealthStatus.HEALTHY),
            }),
        )
        _delete_hooks(backend, step.changed, prepared, report.ok, lease, options, on_event)
        if not report.ok:
            break
    rollout_ok = changeset.ok and report is not None and report.ok
    unfinished = backend.finish_prunes(rollout_ok)  # the prune step that waits for the rollout
    if rollout_ok:
        left = set(changeset.failed_deletes) | set(unfinished)
        release = replace(release, outcome=success, finished=now(),
                          inventory=tuple(sorted((set(desired_keys) | left) - set(kept))))
        state = _save(backend, lease, state.with_release(release))
        on_event({"event": "done", "app": backend.app, "outcome": success.value})
        outcome = "rolled-back" if rolling_back else "applied"
        return Result(backend.app, outcome, app_plan, changeset, report, release=release)

    why = (f"{changeset.failed}: {changeset.error}" if not changeset.ok
           else report.summary() if report else "unknown failure")
    release = replace(release, outcome=Outcome.FAILED, finished=now(), message=why)
    # Only a rollout that failed says the revision is bad. An apply the target refused (a field
    # conflict, an admission denial, a target that stopped answering) says nothing about the
    # revision's workloads: the release is recorded as failed and what was written is rolled
    # back, but the revision may be applied again once the cause is gone.
    rollout_failed = changeset.ok
    state = _save(backend, lease, state.with_release(release).with_bad_revision(app_plan.revision)
                  if rollout_failed and not rolling_back else state.with_release(release))
    on_event({"event": "failed", "app": backend.app, "revision": app_plan.revision, "why": why})
    result = Result(backend.app, "failed", app_plan, changeset, report, release=release, error=why)
    if rolling_back or not options.auto_rollback:
        return result
    result.rollback = _roll_back(backend, lease, state, options, on_event)
    if result.rollback.outcome == "rolled-back":
        result.outcome = "rolled-back"
    return result


def _delete_hooks(backend: Backend, changed: list[ResourceKey], prepared: list[Resource], ok: bool, lease: Lease,
                  options: Options, on_event: Event) -> None:
    """After a wave's rollout: delete the objects of it that run once and ask to be deleted after
    they succeeded (``ok``) or failed (a Helm hook's hook-succeeded / hook-failed). They stay in the
    release's manifests and inventory; a delete that fails is reported, and the object stays."""
    bodies = {r.key: r.body for r in prepared}
    doomed = []
    for key in changed:
        once = backend.run_once(bodies.get(key) or {})
        if once is not None and (once.delete_on_success if ok else once.delete_on_failure):
            doomed.append(key)
    if not doomed:
        return
    guard = _guard(lease, options)
    for key, live in backend.observe(doomed).items():
        if live is None:
            continue
        guard()
        try:
            backend.delete(key, live)
        except GitopsError as err:
            on_event({"event": "hook-delete-failed", "app": backend.app, "object": str(key), "why": str(err)})
            continue
        on_event({"event": "hook-deleted", "app": backend.app, "object": str(key),
                  "policy": "succeeded" if ok else "failed"})


def _stages(app_plan: AppPlan) -> list[tuple[int, AppPlan]]:
    """The plan in user waves (``gitops.dev/wave``): one stage per wave of creates and updates,
    in order; the last stage also holds the deletes (prune, in reverse wave order) and the
    unchanged objects. A plan with one wave is one stage, as it always was."""
    writes = sorted({user_wave(c.wave) for c in app_plan.changes if c.action not in (Action.NOOP, Action.DELETE)})
    if len(writes) <= 1:
        return [(writes[0] if writes else 0, app_plan)]
    stages = [(w, replace(app_plan, changes=tuple(c for c in app_plan.changes
                                                  if c.action not in (Action.NOOP, Action.DELETE)
                                                  and user_wave(c.wave) == w)))
              for w in writes[:-1]]
    rest = tuple(c for c in app_plan.changes if c.action in (Action.NOOP, Action.DELETE)
                 or user_wave(c.wave) >= writes[-1])
    return [*stages, (writes[-1], replace(app_plan, changes=rest))]


def _gather(total: ChangeSet, step: ChangeSet) -> None:
    for name in ("created", "configured", "replaced", "deleted", "unchanged", "failed_deletes"):
        getattr(total, name).extend(getattr(step, name))
    if step.failed is not None and total.failed is None:
        total.failed, total.error = step.failed, step.error


def _restore_withheld(backend: Backend, resources: list[Resource], revision: str) -> list[Resource]:
    """A release holds a SOPS-decrypted Secret without its values (a Swarm service without the
    environment values of a SOPS env file): a rollback applies it with the values the live object
    holds now (those of the revision rolled back from), since they are in no record. An object
    that is gone (or lacks them) cannot be restored: re-apply its revision from git."""
    wanted = [r for r in resources if withheld(r.body)]
    if not wanted:
        return resources
    live = backend.observe([r.key for r in wanted])
    restored: dict[ResourceKey, Resource] = {}
    for resource in wanted:
        found = live.get(resource.key)
        body = restore(resource.body, found) if found is not None else None
        if body is None:
            raise GitopsError(f"{resource.key}: cannot roll back to revision {revision[:12]}: its values came from a "
                              "SOPS file and are never recorded, and the live object no longer holds them; apply "
                              "that revision from git again (gitops apply at that commit); nothing was changed")
        restored[resource.key] = replace(resource, body=body)
    return [restored.get(r.key, r) for r in resources]


def _roll_back(backend: Backend, lease: Lease, state: AppState, options: Options, on_event: Event,
               to: Release | None = None) -> Result:
    good = to or state.last_good
    resources = good.resources() if good else []  # no good release yet: back to nothing (atomic install)
    resources = _restore_withheld(backend, resources, good.revision if good else "")
    revision = good.revision if good else "(none)"
    on_event({"event": "rollback", "app": backend.app, "to": revision})
    prepared = backend.prepare(resources) if resources else []
    # A rollback returns to a release: no mass-delete guard; a delete a guard refuses is kept
    # (left in place and remembered) instead of stopping the rollback.
    policy = replace(options.policy, rollback=True)
    rollback_plan, live = plan.build(backend, prepared, state, revision=revision, prune=True, policy=policy,
                                     protected=good.protected if good else ())
    return _converge(backend, lease, rollback_plan, prepared, live, state, options, on_event,
                     Outcome.ROLLED_BACK, rolling_back=True)


def rollback_app(backend: Backend, options: Options | None = None, *, to_revision: str | None = None,
                 on_event: Event = _quiet) -> Result:
    """`gitops rollback`: return the app to its last good release, or to a given revision."""
    options = options or Options()
    with backend.lock(options.holder, options.lock_ttl, options.lock_wait, stopping=options.stopping,
                      clock=options.clock) as lease:
        state = backend.load_state()
        target: Release | None = None
        if to_revision:
            matches = [r for r in state.releases if r.manifests and
                       (r.revision == to_revision or r.revision.startswith(to_revision))]
            if not matches:
                known = ", ".join(sorted({r.revision[:12] for r in state.releases if r.manifests})) or "none"
                raise GitopsError(f"app {backend.app} has no recorded release of revision {to_revision} "
                                  f"(revisions with manifests: {known})")
            target = matches[-1]
        else:
            current = state.current
            candidates = [r for r in state.releases
                          if r.manifests and r.outcome in (Outcome.SUCCEEDED, Outcome.ROLLED_BACK)
                          and (current is None or r.revision != current.revision)]
            if not candidates:
                raise GitopsError(f"app {backend.app} has no earlier good release to roll back to")
            target = candidates[-1]
        return _roll_back(backend, lease, state, options, on_event, to=target)
