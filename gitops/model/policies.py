"""Policy settings: how the policy rules (``gitops.validate.policy``) apply to an app.

Read from ``policy:`` in gitops.yaml (top level, then per app) by ``config``; used by ``validate``.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass, field


class Level(enum.StrEnum):
    OFF = "off"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Exclude:
    """Objects no rule applies to; each field is a shell pattern (``legacy-*``), empty = any."""

    kind: str = ""
    name: str = ""
    namespace: str = ""

    def matches(self, kind: str, name: str, namespace: str) -> bool:
        return all(not pattern or fnmatch.fnmatchcase(value, pattern)
                   for pattern, value in ((self.kind, kind), (self.name, name), (self.namespace, namespace)))


@dataclass(frozen=True)
class PolicySettings:
    """Rule id -> level (rules not listed keep their default severity), and the excluded objects."""

    levels: dict[str, Level] = field(default_factory=dict)
    exclude: tuple[Exclude, ...] = ()

    def over(self, base: PolicySettings) -> PolicySettings:
        """These settings on top of ``base`` (an app's on top of the file's)."""
        return PolicySettings({**base.levels, **self.levels}, base.exclude + self.exclude)

    def excluded(self, kind: str, name: str, namespace: str) -> bool:
        return any(e.matches(kind, name, namespace) for e in self.exclude)
