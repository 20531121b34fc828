"""Reports: what a command found, as one value that views render for humans or machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitops.model.diagnostics import Diagnostic, Severity


@dataclass
class ValidationReport:
    """The outcome of ``gitops validate``: every problem, and what was read."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    objects: int = 0  # Kubernetes objects
    services: int = 0  # compose services
    apps: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    kubernetes_version: str = ""
    schema_source: str = ""
    strict: bool = False
    repository: str | None = None  # URL with credentials hidden
    ref: str | None = None
    revision: str | None = None  # resolved commit SHA
    seconds: float = 0.0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "files": self.files,
            "objects": self.objects,
            "services": self.services,
            "apps": self.apps,
            "paths": self.paths,
            "strict": self.strict,
            "kubernetes_version": self.kubernetes_version,
            "schema_source": self.schema_source,
            "source": {"repository": self.repository, "ref": self.ref, "revision": self.revision},
            "seconds": round(self.seconds, 3),
            "diagnostics": [
                {
                    "severity": str(d.severity),
                    "file": d.file,
                    "document": d.document,
                    "line": d.line,
                    "column": d.column,
                    "pointer": d.pointer,
                    "resource": d.resource or None,
                    "code": d.code,
                    "message": d.message,
                }
                for d in self.diagnostics
            ],
        }
