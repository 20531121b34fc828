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


@dataclass(frozen=True)
class Change:
    """The planned action for one object, why, and the field-level differences."""

    key: ResourceKey
    action: Action
    reason: str = ""
    fields: tuple[FieldChange, ...] = ()
    wave: int = 0
    origin: str = ""

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

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

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
        )


@dataclass(frozen=True)
class Plan:
    """Plans of every selected app; the unit `gitops plan --out` saves and `gitops apply` takes."""

    apps: tuple[AppPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(a.has_changes for a in self.apps)

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
