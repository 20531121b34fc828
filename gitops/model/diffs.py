"""What a change to the repository does to the rendered objects (``gitops diff``): for each app,
the objects added, removed and changed between two revisions, with field-level changes in the
plan's terms (:class:`~gitops.model.plans.Change`). No live state: nothing here comes from a target.

Bodies kept for the unified YAML view are masked already (``gitops.diff.masked``): a value never
reaches this value type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from gitops.model.plans import Action, Change


class AppStatus(enum.StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    ADDED = "added"  # in gitops.yaml at head only
    REMOVED = "removed"  # in gitops.yaml at base only
    RENAMED = "renamed"  # added at head, rendering exactly what a removed app rendered
    INVALID = "invalid"  # does not render or validate at one of the revisions


@dataclass(frozen=True)
class Bodies:
    """One object's masked bodies at base and head (None where it does not exist)."""

    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class AppDiff:
    app: str
    backend: str
    status: AppStatus
    changes: tuple[Change, ...] = ()  # no NOOP entries
    bodies: dict[str, Bodies] = field(default_factory=dict, compare=False)  # by str(key)
    unchanged: int = 0  # objects equal at both revisions
    renamed_from: str = ""
    errors: tuple[str, ...] = ()  # why it is INVALID (validation problems, each with its place)

    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(Action, 0)
        for change in self.changes:
            counts[change.action] += 1
        counts[Action.NOOP] = self.unchanged
        return counts

    def to_json(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "app": self.app, "backend": self.backend, "status": self.status.value,
            "renamed_from": self.renamed_from or None,
            "create": counts[Action.CREATE], "update": counts[Action.UPDATE], "delete": counts[Action.DELETE],
            "unchanged": self.unchanged, "changes": [c.to_json() for c in self.changes], "errors": list(self.errors),
        }


@dataclass(frozen=True)
class RevisionDiff:
    """Every selected app between two revisions of the repository."""

    base: str  # what the user named (a ref), for display
    head: str
    base_revision: str  # the commits
    head_revision: str  # "" for the working tree
    apps: tuple[AppDiff, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(a.status is not AppStatus.UNCHANGED for a in self.apps)

    @property
    def ok(self) -> bool:
        return all(a.status is not AppStatus.INVALID for a in self.apps)

    def to_json(self) -> dict[str, Any]:
        return {"base": {"ref": self.base, "revision": self.base_revision},
                "head": {"ref": self.head, "revision": self.head_revision or None},
                "has_changes": self.has_changes, "ok": self.ok, "apps": [a.to_json() for a in self.apps]}
