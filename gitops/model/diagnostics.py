"""Diagnostics: content problems are values, collected (never first-only) and shown together."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem: where (file, document index, line and column, JSON pointer of the field) and
    why. ``line`` and ``column`` are 1-based, of the offending key (or value, or item) as the YAML
    loader sees it; ``column`` counts characters (Unicode code points) and is None when unknown."""

    severity: Severity
    message: str
    file: str | None = None
    document: int | None = None
    line: int | None = None
    pointer: str = ""
    code: str = ""
    resource: str = ""  # the object the problem is about, e.g. "Deployment/web/api", when known
    column: int | None = None

    def at_line(self, line: int | None, column: int | None = None) -> Diagnostic:
        """The same diagnostic at ``line`` and ``column`` (``dataclasses.replace`` without its cost
        per call: validation gives thousands of diagnostics their lines)."""
        return Diagnostic(self.severity, self.message, self.file, self.document, line, self.pointer, self.code,
                          self.resource, column)

    def position(self) -> str:
        """``file:line:col`` (as far as known; "" without a file)."""
        if not self.file:
            return ""
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column is not None else "")

    def location(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.position())
        if self.document is not None:
            parts.append(f"document {self.document}")
        if self.resource:
            parts.append(self.resource)
        if self.pointer:
            parts.append(f"field {self.pointer}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{self.severity}: {where}: {self.message}" if where else f"{self.severity}: {self.message}"


class Diagnostics:
    """An ordered collection of diagnostics."""

    def __init__(self, items: Iterable[Diagnostic] = ()) -> None:
        self._items: list[Diagnostic] = list(items)

    def add(self, diagnostic: Diagnostic) -> None:
        self._items.append(diagnostic)

    def extend(self, items: Iterable[Diagnostic]) -> None:
        self._items.extend(items)

    def error(self, message: str, **where: object) -> None:
        self._items.append(Diagnostic(Severity.ERROR, message, **where))  # type: ignore[arg-type]

    def warning(self, message: str, **where: object) -> None:
        self._items.append(Diagnostic(Severity.WARNING, message, **where))  # type: ignore[arg-type]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self._items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self._items if d.severity is Severity.WARNING]

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self._items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
