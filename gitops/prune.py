"""Prune safety: which objects that left the repository may be deleted, and when a plan is refused.

The plan stage calls :func:`judge` with the objects it would prune; the backend supplies facts
(:meth:`gitops.backends.base.Backend.prune_facts`), this module decides. Rules, in order:

1. **Opted out**: an object marked ``gitops.dev/prune: disabled`` (Kubernetes) or
   ``x-gitops-prune: false`` (compose), or recorded so by an earlier release, is kept.
2. **Data**: PersistentVolumeClaims and named volumes are kept unless the app prunes data
   (``sync.prune_data`` / ``--prune-data``).
3. **Cascade**: a delete that would take other objects with it (a Namespace's objects, a CRD's
   custom resources, a network still used by a service) is refused while any of them is desired,
   not ours, kept or data, unless cascades are allowed (``sync.allow_cascade`` /
   ``--allow-cascade``; data in the cascade also needs ``prune_data``; an object that opts out of
   pruning is never cascaded onto). A refused delete is kept and the plan is blocked.
4. **Replacing data**: a PersistentVolumeClaim or volume whose change cannot be made in place
   (delete, then create) would lose its data: refused unless the app prunes data.
5. **Mass delete**: a revision that renders no objects at all, or deletes more than
   ``max_delete_ratio`` of the app's objects and at least ``mass_delete_min`` of them, is
   blocked unless allowed for the run (``--allow-mass-delete``).

Everything is a value: kept objects (:class:`Kept`), blocks (:class:`Block`) and the guards that
were lifted (:class:`Guard`), so a daemon can hold a revision and show why, without reading text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gitops.backends.base import Backend, Live, PruneFacts
from gitops.model import ResourceKey
from gitops.model.plans import Block, BlockReason, Guard, KeepReason, Kept

DEFAULT_MAX_DELETE_RATIO = 0.5
DEFAULT_MASS_DELETE_MIN = 5


@dataclass(frozen=True)
class Policy:
    """How strict prune is for one run: the app's settings with the run's flags on top."""

    allow_cascade: bool = False
    prune_data: bool = False
    allow_mass_delete: bool = False
    max_delete_ratio: float = DEFAULT_MAX_DELETE_RATIO
    mass_delete_min: int = DEFAULT_MASS_DELETE_MIN
    #: A rollback returns to a recorded release, which is not a careless commit: no mass-delete
    #: guard, and what a guard refuses is left undone (kept) instead of refusing the rollback.
    rollback: bool = False

    def allowing(self, guards: Collection[Guard]) -> Policy:
        """This policy with the given guards lifted (e.g. those a saved plan was made with)."""
        return Policy(self.allow_cascade or Guard.CASCADE in guards, self.prune_data or Guard.DATA in guards,
                      self.allow_mass_delete or Guard.MASS_DELETE in guards, self.max_delete_ratio,
                      self.mass_delete_min, self.rollback)


@dataclass(frozen=True)
class Verdict:
    """What prune may do: ``deletes`` (each with what it cascades to), what it keeps, why it refuses."""

    deletes: dict[ResourceKey, tuple[ResourceKey, ...]] = field(default_factory=dict)
    kept: tuple[Kept, ...] = ()
    blocked: tuple[Block, ...] = ()
    overrides: tuple[Guard, ...] = ()


def _names(keys: Collection[ResourceKey], limit: int = 8) -> str:
    shown = sorted(keys)[:limit]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(str(k) for k in shown) + more


def judge(backend: Backend, candidates: Collection[ResourceKey], live: Live, *, desired: Collection[ResourceKey],
          protected: Collection[ResourceKey], policy: Policy, app_objects: int,
          replacing: Collection[ResourceKey] = ()) -> Verdict:
    """Judge the objects prune would delete (``candidates``: owned, live, no longer desired), and
    the desired ones the plan would replace (delete, then create: that loses data too).

    ``protected`` are keys recorded as opting out of pruning; ``app_objects`` is how many objects
    the app has on the target (for the mass-delete share).
    """
    facts: dict[ResourceKey, PruneFacts] = {}
    if candidates or replacing:
        facts = dict(backend.prune_facts(sorted({*candidates, *replacing}), live, desired))
    used: set[Guard] = set()
    kept: list[Kept] = []
    blocked: list[Block] = []

    def fact(key: ResourceKey) -> PruneFacts:
        return facts.get(key, PruneFacts())

    def opted_out(key: ResourceKey) -> bool:
        return fact(key).disabled or key in protected

    deleting: set[ResourceKey] = set()
    for key in sorted(candidates):
        if opted_out(key):
            kept.append(Kept(key, KeepReason.DISABLED, "opts out of pruning"))
        elif fact(key).data and not policy.prune_data:
            kept.append(Kept(key, KeepReason.DATA, f"holds data; pass {Guard.DATA.flag} or set sync.prune_data"))
        else:
            deleting.add(key)

    # A refused delete is kept, which can make another delete cascade onto it: repeat until stable.
    cascades: dict[ResourceKey, tuple[ResourceKey, ...]] = {}
    changed = True
    while changed:
        changed = False
        for key in sorted(deleting):
            others = tuple(sorted(k for k in fact(key).cascade if k not in deleting))
            if not others:
                cascades[key] = ()
                continue
            never = [k for k in others if opted_out(k)]
            data = [k for k in others if fact(k).data]
            wanted = [k for k in others if k in desired]
            foreign = [k for k in others if k not in desired and k not in never and k not in data]
            if policy.allow_cascade and not never and (not data or policy.prune_data):
                cascades[key] = others
                continue
            deleting.discard(key)
            cascades.pop(key, None)
            changed = True
            parts = []
            if wanted:
                parts.append(f"{len(wanted)} still in the repository")
            if foreign:
                parts.append(f"{len(foreign)} not ours or kept")
            if data:
                parts.append(f"{len(data)} holding data")
            if never:
                parts.append(f"{len(never)} that opt out of pruning")
            why = f" ({', '.join(parts)})" if parts else ""
            if never:
                guard, lift = None, "remove the objects that opt out of pruning first"
            elif policy.allow_cascade:
                guard, lift = Guard.DATA, f"pass {Guard.DATA.flag} too to delete the data"
            else:
                guard = Guard.CASCADE
                lift = f"pass {Guard.CASCADE.flag}" + (f" and {Guard.DATA.flag}" if data else "") + " if you mean it"
            message = (f"{key}: not pruned: deleting it would also delete {len(others)} object(s){why}: "
                       f"{_names(others)}; {lift}")
            blocked.append(Block(BlockReason.CASCADE, message, guard, key, others))
            kept.append(Kept(key, KeepReason.BLOCKED, "its delete would cascade"))
    for key in sorted(deleting):
        if fact(key).data:
            used.add(Guard.DATA)
        if cascades.get(key):
            used.add(Guard.CASCADE)
            if any(fact(k).data for k in cascades[key]):
                used.add(Guard.DATA)
        for left in fact(key).leaves:
            if left not in desired:
                kept.append(Kept(left, KeepReason.LEFT_BEHIND, f"data left by {key}"))

    for key in sorted(replacing):
        if not fact(key).data:
            continue
        if policy.prune_data:
            used.add(Guard.DATA)
            continue
        blocked.append(Block(BlockReason.DATA_REPLACE, f"{key}: replacing it (delete, then create) would lose its "
                             f"data; pass {Guard.DATA.flag} if you mean it, or change it back in git",
                             Guard.DATA, key))

    if not policy.rollback:
        mass: Block | None = None
        if not desired:
            mass = Block(BlockReason.EMPTY, "the revision renders no objects at all; an empty folder is not taken to "
                         f"mean 'delete everything' ({len(deleting)} object(s) would be deleted); pass "
                         f"{Guard.MASS_DELETE.flag} if you mean it", Guard.MASS_DELETE, None, tuple(sorted(deleting)))
        # Net: an object replaced by a new one (Swarm's content-hashed configs) is not the app shrinking.
        shrink = min(len(deleting), max(0, app_objects - len(desired)))
        if mass is None and len(deleting) >= policy.mass_delete_min and shrink > policy.max_delete_ratio * app_objects:
            mass = Block(BlockReason.MASS_DELETE, f"the revision would delete {len(deleting)} of the app's "
                         f"{app_objects} objects (more than {policy.max_delete_ratio:.0%} and at least "
                         f"{policy.mass_delete_min}); pass {Guard.MASS_DELETE.flag} if you mean it, or raise "
                         "sync.max_delete_ratio", Guard.MASS_DELETE, None, tuple(sorted(deleting)))
        if mass is not None and policy.allow_mass_delete:
            used.add(Guard.MASS_DELETE)
        elif mass is not None:
            blocked.append(mass)

    unique: dict[ResourceKey, Kept] = {}
    for item in kept:
        unique.setdefault(item.key, item)
    return Verdict(
        deletes={k: cascades.get(k, ()) for k in sorted(deleting)},
        kept=tuple(sorted(unique.values(), key=lambda k: k.key)),
        blocked=tuple(blocked),
        overrides=tuple(g for g in Guard if g in used),
    )


def left_behind(state_kept: Collection[ResourceKey], live: Mapping[ResourceKey, object | None],
                already: Collection[ResourceKey]) -> tuple[Kept, ...]:
    """Objects an earlier release kept that are still there but no longer ours to prune (e.g. a
    StatefulSet's PersistentVolumeClaims): still remembered, so ``status`` shows them."""
    return tuple(Kept(k, KeepReason.LEFT_BEHIND, "left behind by an earlier prune")
                 for k in sorted(state_kept) if k not in already and live.get(k) is not None)
