"""Plans: what apply would do, as a value that can be saved, shown and applied later.

A plan never holds secret values: field changes of sensitive paths carry only the fact that they
changed. To apply a saved plan, the engine renders the same revision again, checks that the
manifests digest is the one planned, and refuses when the target's base state moved.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from gitops.model.resources import ResourceKey

MASK = "(sensitive value)"


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "no-op": " "}[self.value]


class Guard(enum.StrEnum):
    """A prune safety guard; each can be overridden for one run (a flag) or for an app (a setting)."""

    CASCADE = "cascade"  # a delete would take other objects with it (--allow-cascade, sync.allow_cascade)
    DATA = "data"  # stateful storage would be deleted (--prune-data, sync.prune_data)
    MASS_DELETE = "mass-delete"  # most of the app, or all of it, would go (--allow-mass-delete)

    @property
    def flag(self) -> str:
        return {"cascade": "--allow-cascade", "data": "--prune-data", "mass-delete": "--allow-mass-delete"}[self.value]


class KeepReason(enum.StrEnum):
    """Why an object that left the repository is left in place (and still remembered)."""

    DATA = "data"  # a PersistentVolumeClaim / named volume: kept unless the app prunes data
    DISABLED = "prune disabled"  # the object opts out (gitops.dev/prune: disabled, x-gitops-prune: false)
    BLOCKED = "blocked"  # its delete would cascade (see the plan's blocks)
    LEFT_BEHIND = "left behind"  # data a pruned object leaves (a StatefulSet's PersistentVolumeClaims)


@dataclass(frozen=True)
class Kept:
    """An object no longer desired that prune leaves in place; releases remember it as ``kept``."""

    key: ResourceKey
    reason: KeepReason
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"key": _key_json(self.key), "reason": self.reason.value, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Kept:
        return cls(_key_from(data["key"]), KeepReason(data["reason"]), data.get("detail", ""))


class BlockReason(enum.StrEnum):
    CASCADE = "cascade"  # a delete would remove objects that are desired, not ours, or data
    MASS_DELETE = "mass-delete"  # more than the app's share of deletes
    EMPTY = "empty"  # the revision renders no objects at all
    DATA_REPLACE = "data-replace"  # a change would replace (delete and create) an object holding data


@dataclass(frozen=True)
class Block:
    """Why a plan may not be applied as it is: a value (a daemon holds the revision and shows it).

    ``guard`` is the override that lifts it (None: nothing does, e.g. a cascade onto an object that
    opts out of pruning); ``key`` the object whose delete is refused; ``objects`` what it would take.
    """

    reason: BlockReason
    message: str
    guard: Guard | None = None
    key: ResourceKey | None = None
    objects: tuple[ResourceKey, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "message": self.message,
                "guard": self.guard.value if self.guard else None,
                "key": _key_json(self.key) if self.key else None,
                "objects": [_key_json(k) for k in self.objects]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Block:
        return cls(BlockReason(data["reason"]), data.get("message", ""),
                   Guard(data["guard"]) if data.get("guard") else None,
                   _key_from(data["key"]) if data.get("key") else None,
                   tuple(_key_from(k) for k in data.get("objects", [])))


def _key_json(key: ResourceKey) -> list[str]:
    return [key.group, key.kind, key.namespace, key.name]


def _key_from(data: list[str]) -> ResourceKey:
    return ResourceKey(*data)


@dataclass(frozen=True)
class FieldChange:
    """One changed field: JSON pointer, value before and after (masked when sensitive).

    ``before`` / ``after`` are ``None`` together with ``absent_before`` / ``absent_after`` when
    the field did not exist on that side (to tell a removed field from one set to null).
    """

    path: str
    before: Any = None
    after: Any = None
    absent_before: bool = False
    absent_after: bool = False
    sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path}
        if self.sensitive:
            data["sensitive"] = True
        if not self.absent_before:
            data["before"] = MASK if self.sensitive else self.before
        if not self.absent_after:
            data["after"] = MASK if self.sensitive else self.after
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldChange:
        return cls(
            path=data["path"],
            before=data.get("before"),
            after=data.get("after"),
            absent_before="before" not in data,
            absent_after="after" not in data,
            sensitive=bool(data.get("sensitive", False)),
        )


#: The code of the warning a Swarm plan gives while the app has no secret naming key yet (its first
#: apply creates it): the plan's secret names are provisional, so the plan cannot be saved.
PROVISIONAL_SECRET_NAMES = "provisional-secret-names"  # noqa: S105 (a warning code, no password)
#: Environment variables whose values are masked like a Secret's: an annotation (Kubernetes) or a
#: service label (Swarm, from compose's ``x-gitops-sensitive``), names separated by commas.
SENSITIVE_KEY = "gitops.dev/sensitive-env"
WAVE_KEY = "gitops.dev/wave"  # the user's wave: an annotation (Kubernetes), x-gitops-wave (compose services)
WAVE_SPAN = 1000  # Change.wave = user wave * WAVE_SPAN + the kind's wave


def user_wave(wave: int) -> int:
    """The user's wave a Change.wave belongs to (each is healthy before the next one starts)."""
    return wave // WAVE_SPAN


def parse_wave(value: object) -> int | None:
    """A wave as written (an integer, or a string of one); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class Change:
    """The planned action for one object, why, and the field-level differences."""

    key: ResourceKey
    action: Action
    reason: str = ""
    fields: tuple[FieldChange, ...] = ()
    wave: int = 0
    origin: str = ""
    cascade: tuple[ResourceKey, ...] = ()  # a delete: the other objects it removes with it

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.key.group,
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "action": self.action.value,
            "reason": self.reason,
            "wave": self.wave,
            "origin": self.origin,
            "fields": [f.to_json() for f in self.fields],
            "cascade": [_key_json(k) for k in self.cascade],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(
            key=ResourceKey(data["group"], data["kind"], data["namespace"], data["name"]),
            action=Action(data["action"]),
            reason=data.get("reason", ""),
            fields=tuple(FieldChange.from_json(f) for f in data.get("fields", [])),
            wave=int(data.get("wave", 0)),
            origin=data.get("origin", ""),
            cascade=tuple(_key_from(k) for k in data.get("cascade", [])),
        )


PLAN_FORMAT = 1


@dataclass(frozen=True)
class AppPlan:
    """The plan of one app against one target."""

    app: str
    backend: str
    target: str
    revision: str
    manifests_digest: str
    base_state: str  # fingerprint of the live state the plan was computed on
    changes: tuple[Change, ...] = field(default_factory=tuple)
    kept: tuple[Kept, ...] = ()  # objects that left the repository but are not pruned
    blocked: tuple[Block, ...] = ()  # non-empty: apply refuses this plan (before any write)
    overrides: tuple[Guard, ...] = ()  # guards this plan needed lifted (recorded in the release)
    protected: tuple[ResourceKey, ...] = ()  # desired objects that opt out of pruning
    promotion: str = ""  # promote_from: what revision is promoted, and how far behind git it is

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    @property
    def ok(self) -> bool:
        """Whether the plan may be applied (no guard refused it)."""
        return not self.blocked

    def counts(self) -> dict[Action, int]:
        counts = {action: 0 for action in Action}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "backend": self.backend,
            "target": self.target,
            "revision": self.revision,
            "manifests_digest": self.manifests_digest,
            "base_state": self.base_state,
            "changes": [c.to_json() for c in self.changes],
            "kept": [k.to_json() for k in self.kept],
            "blocked": [b.to_json() for b in self.blocked],
            "overrides": [g.value for g in self.overrides],
            "protected": [_key_json(k) for k in self.protected],
            **({"promotion": self.promotion} if self.promotion else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppPlan:
        return cls(
            app=data["app"],
            backend=data["backend"],
            target=data["target"],
            revision=data["revision"],
            manifests_digest=data["manifests_digest"],
            base_state=data["base_state"],
            changes=tuple(Change.from_json(c) for c in data.get("changes", [])),
            kept=tuple(Kept.from_json(k) for k in data.get("kept", [])),
            blocked=tuple(Block.from_json(b) for b in data.get("blocked", [])),
            overrides=tuple(Guard(g) for g in data.get("overrides", [])),
            protected=tuple(_key_from(k) for k in data.get("protected", [])),
            promotion=str(data.get("promotion", "")),
        )


@dataclass(frozen=True)
class Plan:
    """Plans of every selected app; the unit `gitops plan --out` saves and `gitops apply` takes."""

    apps: tuple[AppPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(a.has_changes for a in self.apps)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.apps)

    def to_json(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "apps": [a.to_json() for a in self.apps]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"unsupported plan format {data.get('format')!r} (expected {PLAN_FORMAT})")
        return cls(apps=tuple(AppPlan.from_json(a) for a in data.get("apps", [])))


class Applied(enum.StrEnum):
    """What a backend's apply did to one object (fluxcd/pkg ssa: created / configured / unchanged)."""

    CREATED = "created"
    CONFIGURED = "configured"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"


@dataclass
class ChangeSet:
    """What an apply did, object by object (the fluxcd/pkg ssa idea)."""

    created: list[ResourceKey] = field(default_factory=list)
    configured: list[ResourceKey] = field(default_factory=list)
    replaced: list[ResourceKey] = field(default_factory=list)
    deleted: list[ResourceKey] = field(default_factory=list)
    unchanged: list[ResourceKey] = field(default_factory=list)
    failed: ResourceKey | None = None
    error: str = ""
    failed_deletes: list[ResourceKey] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None

    def record(self, key: ResourceKey, applied: Applied) -> None:
        {Applied.CREATED: self.created, Applied.CONFIGURED: self.configured, Applied.REPLACED: self.replaced,
         Applied.UNCHANGED: self.unchanged}[applied].append(key)

    @property
    def changed(self) -> list[ResourceKey]:
        return [*self.created, *self.configured, *self.replaced]

    def to_json(self) -> dict[str, Any]:
        def keys(items: list[ResourceKey]) -> list[str]:
            return [str(k) for k in items]

        return {
            "created": keys(self.created), "configured": keys(self.configured),
            "replaced": keys(self.replaced), "deleted": keys(self.deleted),
            "unchanged": len(self.unchanged), "failed": str(self.failed) if self.failed else None,
            "error": self.error, "failed_deletes": keys(self.failed_deletes),
        }
