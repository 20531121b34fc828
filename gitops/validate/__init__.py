"""Validate: every problem of the rendered manifests and compose files, as diagnostics.

``validate.run(rendered, options)`` checks Kubernetes manifests (``validate.kubernetes``) and
compose files for Swarm (``validate.compose``), and the policy rules (``validate.policy``) when
``options.policy`` is given, then gives each diagnostic the line and column of the
field it points at.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from gitops.model import Diagnostic, Severity
from gitops.model.policies import PolicySettings
from gitops.render import Rendered
from gitops.render.yaml import Position, gc_paused, locate_documents, locate_in_data
from gitops.validate import compose as compose_checks
from gitops.validate import kubernetes as kubernetes_checks
from gitops.validate import policy as policy_checks
from gitops.validate.schemas import (
    DEFAULT_KUBERNETES_VERSION,
    SCHEMA_SOURCE,
    SchemaStore,
    UnsupportedVersion,
    available_versions,
)

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "SCHEMA_SOURCE",
    "Counts",
    "Options",
    "SchemaStore",
    "UnsupportedVersion",
    "available_versions",
    "run",
]


@dataclass(frozen=True)
class Options:
    strict: bool = False
    default_namespace: str = "default"
    backend: str | None = None  # the app's backend, when validating an app of gitops.yaml
    policy: PolicySettings | None = None  # the policy rules' settings; None: no policy checks


@dataclass
class Counts:
    objects: int = 0
    services: int = 0


def run(rendered: Rendered, store: SchemaStore, root: Path, options: Options) -> tuple[list[Diagnostic], Counts]:
    diagnostics: list[Diagnostic] = []
    counts = Counts()
    if options.backend == "swarm" and rendered.manifests:
        files = sorted({m.origin.file for m in rendered.manifests})
        for file in files:
            diagnostics.append(Diagnostic(Severity.ERROR, "a Swarm app holds only compose files (a top-level "
                                          "services: key); this file was read as Kubernetes manifests", file=file,
                                          code="wrong-backend"))  # fmt: skip
    if options.backend == "kubernetes":
        for compose_file in rendered.compose:
            diagnostics.append(Diagnostic(Severity.ERROR, "a compose file in a Kubernetes app",
                                          file=compose_file.file, code="wrong-backend"))  # fmt: skip
    if rendered.manifests:
        counts.objects = kubernetes_checks.check(
            rendered.manifests, store, options.strict, options.default_namespace, diagnostics
        )
    for compose_file in rendered.compose:
        counts.services += compose_checks.check(compose_file, root, diagnostics)
    if options.policy is not None:
        diagnostics.extend(policy_checks.check(rendered, options.policy, strict=options.strict,
                                               default_namespace=options.default_namespace))
    return diagnostics, counts


def attach_lines(diagnostics: list[Diagnostic], rendered: Rendered) -> list[Diagnostic]:
    """Give diagnostics that point at a field the line and column of that field (kept by the
    loader, or one re-read per file)."""
    wanted: dict[tuple[str, int], set[str]] = defaultdict(set)
    for diagnostic in diagnostics:
        if diagnostic.file in rendered.sources and diagnostic.document is not None and diagnostic.pointer:
            wanted[(diagnostic.file, diagnostic.document)].add(diagnostic.pointer)
    if not wanted:
        return diagnostics
    by_file: dict[str, dict[int, set[str]]] = defaultdict(dict)
    lines: dict[tuple[str, int], dict[str, Position]] = {}
    for (file, document), pointers in wanted.items():
        tracked = rendered.lines.get((file, document))
        if tracked is not None:  # lines kept by the loader: no re-read
            lines[(file, document)] = locate_in_data(tracked[0], tracked[1], tracked[2], pointers, tracked[3])
        else:
            by_file[file][document] = pointers
    for file, documents in by_file.items():  # one pass over each file, however many documents
        data, dialect = rendered.sources[file]
        for document, located in locate_documents(data, documents, dialect).items():
            lines[(file, document)] = located
    out = []
    with gc_paused():
        for diagnostic in diagnostics:
            found = None
            if diagnostic.file is not None and diagnostic.document is not None and diagnostic.pointer:
                found = lines.get((diagnostic.file, diagnostic.document), {}).get(diagnostic.pointer)
            out.append(diagnostic.at_line(*found) if found is not None else diagnostic)
    return out
