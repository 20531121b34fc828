"""Resources: what a repository declares, each with where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class ResourceKey:
    """The identity of an object on a target.

    Kubernetes: API group (``""`` for the core group), kind, namespace (``""`` for cluster-scoped
    kinds) and name. Swarm: group ``"swarm"``, kind (``Service``, ``Network``, ``Config``,
    ``Secret``, ``Volume``), namespace = the stack name, and the object's name.
    """

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        scope = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{scope}{self.name}"


@dataclass(frozen=True)
class Origin:
    """Where a resource was declared: file (relative to the repo root), document index, line (and
    column, of the document's first node)."""

    file: str
    document: int | None = None
    line: int | None = None
    pointer: str = ""  # where the object sits in its document: "" or e.g. "/items/2" in a List
    #: For a file that declares several objects (a compose file): the line of each entry, by its
    #: pointer (``/services/web``), so each object made from it can say where it was declared.
    entries: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    column: int | None = field(default=None, compare=False)

    def entry(self, pointer: str) -> Origin:
        """The origin of the object declared at ``pointer`` inside this file."""
        line = dict(self.entries).get(pointer)
        return Origin(self.file, self.document, line or self.line, pointer,
                      column=None if line is not None else self.column)

    def __str__(self) -> str:
        where = self.file
        if self.document is not None:
            where += f"[doc {self.document}]"
        if self.line is not None:
            where += f":{self.line}"
        return where


@dataclass(frozen=True)
class Resource:
    """One desired object: its identity, its manifest body as plain JSON data, and its origin."""

    key: ResourceKey
    api_version: str
    body: dict[str, Any] = field(compare=False, hash=False)
    origin: Origin = field(compare=False, hash=False)
