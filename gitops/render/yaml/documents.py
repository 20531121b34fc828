"""Loading: a YAML (or JSON) stream of untrusted text into plain documents and diagnostics.

The events of :mod:`.events` are built into plain JSON-like data (maps, lists, and the scalars
:mod:`.scalars` resolves) with an explicit stack, so that

* every document of a multi-document stream comes out with its index and first line
  (:class:`Document`), and every problem as a diagnostic naming file, document and line, never
  an exception;
* anchors, aliases and merge keys (``<<``) are expanded, and duplicate mapping keys reported
  (YAML would silently keep the last value);
* input is bounded (:class:`Limits`): alias expansion (a billion-laughs document stops at the
  bound, at once) and nesting depth, whether our check or libyaml's own bound finds it first;
  no recursion happens on input data (deep nesting cannot crash us).
"""

from __future__ import annotations

import contextlib
import gc
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import yaml

from gitops.model import Diagnostic, Severity
from gitops.render.yaml.events import (  # bound by name: the loop below runs once per event
    Alias,
    DocumentEnd,
    DocumentStart,
    MappingEnd,
    MappingStart,
    ScalarEvent,
    SequenceEnd,
    SequenceStart,
    StreamEnd,
    open_parser,
)
from gitops.render.yaml.scalars import CONSTANTS, MERGE, Dialect, resolve_scalar, stringify_key

__all__ = ["Document", "Limits", "Lines", "LoadResult", "load"]

#: The positions of one container's entries, line and column (1-based) of each in turn: entry ``i``
#: at ``lines[2 * i]``, ``lines[2 * i + 1]`` (unsigned ints: 4 bytes each, not an object each).
Lines: TypeAlias = "array[int]"


@dataclass(frozen=True)
class Limits:
    """Bounds on untrusted input. Sizes in bytes; alias expansion in nodes."""

    max_file_bytes: int = 32 * 1024 * 1024
    max_repo_bytes: int = 512 * 1024 * 1024
    max_alias_nodes: int = 100_000
    max_depth: int = 200


@dataclass
class Document:
    """One YAML document: its 1-based index in the stream, first line (and column), and plain data."""

    index: int
    line: int
    data: Any
    # with ``track_lines``: id of each mapping / list in ``data`` -> the position of each of its
    # entries (a key's line and column, an item's first), in order; None when the document has
    # aliases or merge keys (one object at several places) or was not tracked.
    # ``lines.locate_in_data`` reads it.
    lines: dict[int, Lines] | None = None
    column: int = 1


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _too_deep(bound: str) -> str:
    return f"document nested deeper than {bound}"


# Limits that libyaml enforces itself (0.2.6, bundled with PyYAML 6.0.4, refuses nesting past
# 1000 levels, sometimes before our own depth check sees the events). libyaml tells them apart only
# by the problem text of a ScannerError/ParserError, so this table is the one place that reads it.
_LIBRARY_LIMITS: tuple[tuple[str, str, str], ...] = (
    ("exceeded maximum nesting depth", "too-deep", _too_deep("the YAML parser allows")),
)


def _library_limit(problem: str) -> tuple[str, str] | None:
    """The diagnostic (code, message) of a bound the YAML library enforced, if ``problem`` is one."""
    for text, code, message in _LIBRARY_LIMITS:
        if problem.startswith(text):
            return code, message
    return None


class _Abort(Exception):
    """Stop building the current document (a limit was hit); the message says which."""

    def __init__(self, message: str, code: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.line: int | None = mark.line + 1
        self.column: int | None = mark.column + 1


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building many small containers triggers the cyclic GC again and again; pause it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Frame:
    __slots__ = ("anchor", "column", "container", "has_key", "is_map", "key", "key_column", "key_line", "line",
                 "lines", "merges", "start_nodes")

    def __init__(self, container: Any, is_map: bool, anchor: str | None, start_nodes: int, line: int, column: int,
                 lines: Lines | None) -> None:
        self.container = container
        self.line = line
        self.column = column
        self.lines = lines
        self.is_map = is_map
        self.anchor = anchor
        self.start_nodes = start_nodes
        self.has_key = False
        self.key: Any = None
        self.key_line = 0
        self.key_column = 0
        self.merges: list[Any] | None = None


def load(
    data: bytes | str,
    file: str,
    dialect: Dialect = Dialect.KUBERNETES,
    limits: Limits | None = None,
    track_lines: bool = False,
) -> LoadResult:
    """Every document of a YAML (or JSON) stream, with every problem found as a diagnostic.

    ``track_lines``: also keep the line of every entry (``Document.lines``), so that diagnostics
    find their lines without reading the stream again."""
    limits = limits or Limits()
    result = LoadResult()
    with gc_paused():
        _Loader(data, file, dialect, limits, result, track_lines).run()
    return result


class _Loader:
    def __init__(self, data: bytes | str, file: str, dialect: Dialect, limits: Limits, result: LoadResult,
                 track_lines: bool = False) -> None:
        self.track_lines = track_lines
        self.data = data
        self.file = file
        self.constants = CONSTANTS[dialect]
        self.limits = limits
        self.result = result
        self.doc_index = 0

    def problem(self, message: str, code: str, line: int | None, document: int | None,
                column: int | None = None) -> None:
        self.result.diagnostics.append(
            Diagnostic(Severity.ERROR, message, file=self.file, document=document, line=line, code=code,
                       column=column)
        )

    def run(self) -> None:
        parser: Any = None
        try:
            parser = open_parser(self.data)
            self._events(parser)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            column = mark.column + 1 if mark is not None else None
            what = exc.problem or "syntax error"
            limit = _library_limit(what)
            if limit is not None:
                # The parser enforced a bound of its own before ours was reached: the same
                # problem as when our own check finds it, so the same diagnostic.
                code, message = limit
                self.problem(message + "; the rest of the file was not read", code, line, self.doc_index or 1, column)
                return
            context = f" ({exc.context})" if exc.context else ""
            self.problem(f"YAML syntax error: {what}{context}", "yaml-syntax", line, self.doc_index or None, column)
        except yaml.reader.ReaderError as exc:
            self.problem(
                f"the file is not valid text: {exc.reason} at character {exc.position}",
                "encoding",
                _line_of_position(self.data, exc.position),
                None,
            )
        except yaml.YAMLError as exc:
            self.problem(f"YAML error: {exc}", "yaml-syntax", None, self.doc_index or None)
        except Exception as exc:  # never a traceback for bad input
            self.problem(f"cannot read the file as YAML: {exc}", "yaml-syntax", None, self.doc_index or None)
        finally:
            if parser is not None:
                with contextlib.suppress(Exception):
                    parser.dispose()

    def _events(self, parser: Any) -> None:
        get_event: Any = parser.get_event
        constants = self.constants
        limits = self.limits
        max_depth = limits.max_depth
        stack: list[_Frame] = []
        anchors: dict[str, tuple[Any, int]] = {}
        open_anchors: set[str] = set()
        nodes = 0
        expanded = 0
        doc_line = 0
        doc_column = 1
        root: Any = None
        track = self.track_lines
        table: dict[int, Lines] | None = {} if track else None
        while True:
            event: Any = get_event()
            cls = event.__class__
            value: Any
            try:
                if cls is ScalarEvent:
                    nodes += 1
                    value = resolve_scalar(event, constants)
                    mark = event.start_mark
                    value_line = mark.line + 1
                    value_column = mark.column + 1
                    if event.anchor is not None:
                        anchors[event.anchor] = (value, 1)
                elif cls is MappingStart or cls is SequenceStart:
                    mark = event.start_mark
                    if len(stack) >= max_depth:
                        raise _Abort(_too_deep(f"{max_depth} levels"), "too-deep", mark)
                    if not stack:
                        doc_line = mark.line + 1
                        doc_column = mark.column + 1
                    is_map = cls is MappingStart
                    stack.append(_Frame({} if is_map else [], is_map, event.anchor, nodes, mark.line + 1,
                                        mark.column + 1, array("I") if table is not None else None))
                    nodes += 1
                    if event.anchor is not None:
                        open_anchors.add(event.anchor)
                    continue
                elif cls is MappingEnd or cls is SequenceEnd:
                    frame = stack.pop()
                    value = frame.container
                    value_line = frame.line
                    value_column = frame.column
                    if frame.merges:
                        value = _apply_merges(value, frame.merges)
                        table = None  # merged keys have no line of their own here
                    elif table is not None and frame.lines is not None:
                        table[id(value)] = frame.lines
                    if frame.anchor is not None:
                        open_anchors.discard(frame.anchor)
                        anchors[frame.anchor] = (value, nodes - frame.start_nodes)
                elif cls is Alias:
                    name = event.anchor
                    mark = event.start_mark
                    if name in open_anchors:
                        raise _Abort(f"alias *{name} refers to itself (recursive anchor)", "alias", mark)
                    if name not in anchors:
                        raise _Abort(f"alias *{name} has no anchor", "alias", mark)
                    value, size = anchors[name]
                    value_line = mark.line + 1
                    value_column = mark.column + 1
                    table = None  # one object at several places: lines by object do not work
                    expanded += size
                    nodes += size
                    if expanded > limits.max_alias_nodes:
                        raise _Abort(
                            f"aliases expand to more than {limits.max_alias_nodes} nodes "
                            "(a billion-laughs document?); refusing to expand",
                            "alias-limit",
                            mark,
                        )
                elif cls is DocumentStart:
                    self.doc_index += 1
                    doc_line = event.start_mark.line + 1
                    doc_column = event.start_mark.column + 1
                    root = None
                    table = {} if track else None
                    anchors.clear()
                    open_anchors.clear()
                    continue
                elif cls is DocumentEnd:
                    self.result.documents.append(Document(self.doc_index, doc_line, root, table, doc_column))
                    root = None
                    continue
                elif cls is StreamEnd:
                    return
                else:  # StreamStart
                    continue
                if not stack:
                    if cls is ScalarEvent:
                        doc_line = value_line
                        doc_column = value_column
                    root = value
                    continue
                frame = stack[-1]
                if not frame.is_map:
                    frame.container.append(value)
                    if frame.lines is not None:
                        frame.lines.append(value_line)
                        frame.lines.append(value_column)
                elif not frame.has_key:
                    frame.key = value
                    frame.has_key = True
                    frame.key_line = value_line
                    frame.key_column = value_column
                else:
                    frame.has_key = False
                    self._set(frame, value)
            except _Abort as abort:
                # Stop reading the file: skipping the rest of a hostile document would still
                # make the scanner do its (sometimes quadratic) work.
                self.problem(
                    abort.message + "; the rest of the file was not read", abort.code, abort.line, self.doc_index,
                    abort.column,
                )
                return

    def _set(self, frame: _Frame, value: Any) -> None:
        key = frame.key
        container: dict[str, Any] = frame.container
        if key is MERGE:
            if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                if frame.merges is None:
                    frame.merges = []
                frame.merges.extend(value if isinstance(value, list) else [value])
                return
            self.problem(
                "merge key << needs a mapping or a list of mappings", "yaml-merge", frame.key_line, self.doc_index,
                frame.key_column,
            )
            return
        if key.__class__ is not str:
            text = stringify_key(key)
            if text is None:
                what = "null" if key is None else type(key).__name__
                self.problem(
                    f"mapping key of type {what} is not supported (keys must be strings, numbers or booleans)",
                    "yaml-key",
                    frame.key_line,
                    self.doc_index,
                    frame.key_column,
                )
                return
            key = text
        if key in container:
            self.problem(
                f"duplicate mapping key {key!r} (YAML keeps only the last value)",
                "duplicate-key",
                frame.key_line,
                self.doc_index,
                frame.key_column,
            )
        elif frame.lines is not None:
            frame.lines.append(frame.key_line)
            frame.lines.append(frame.key_column)
        container[key] = value


def _apply_merges(mapping: dict[str, Any], merges: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in merges:  # earlier sources win, explicit keys win over all
        for key, value in source.items():
            merged.setdefault(key, value)
    merged.update(mapping)
    return merged


def _line_of_position(data: bytes | str, position: int) -> int:
    head = data[:position]
    return (head.count(b"\n") if isinstance(head, bytes) else head.count("\n")) + 1
