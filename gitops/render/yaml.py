"""Safe, fast YAML loading with the limits a GitOps tool needs.

libyaml (through PyYAML's C parser) produces *events*; this module builds plain JSON-like data
from them with an explicit stack, so that

* nothing is constructed from tags (safe loading: only maps, lists, strings, numbers, booleans,
  null);
* plain scalars are resolved the way the consumer reads them: Kubernetes reads YAML through
  go-yaml v2 (YAML 1.1: ``yes``/``on`` are booleans, timestamps stay strings), Docker's compose
  loader through go-yaml v3 (YAML 1.2 core: only ``true``/``false``);
* non-string mapping keys become strings the way ``sigs.k8s.io/yaml`` converts them;
* duplicate mapping keys are reported (YAML would silently keep the last value);
* alias expansion is bounded (a billion-laughs document stops at the bound, at once), nesting
  depth is bounded, and no recursion happens on input data (deep nesting cannot crash us).

Line numbers are not kept for every node (that costs time and memory on large inputs);
:func:`locate` re-reads one document to find the lines of the fields a diagnostic points at.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import re
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events as _events
from yaml.parser import Parser as _PyParser
from yaml.reader import Reader as _PyReader
from yaml.scanner import Scanner as _PyScanner

from gitops.model import Diagnostic, Severity

__all__ = [
    "Dialect",
    "Document",
    "Limits",
    "LoadResult",
    "escape_pointer",
    "load",
    "locate",
]


class Dialect(enum.Enum):
    KUBERNETES = "kubernetes"  # go-yaml v2 through sigs.k8s.io/yaml (YAML 1.1 scalars)
    COMPOSE = "compose"  # go-yaml v3 as used by Docker's compose loader (YAML 1.2 core scalars)


@dataclass(frozen=True)
class Limits:
    """Bounds on untrusted input. Sizes in bytes; alias expansion in nodes."""

    max_file_bytes: int = 32 * 1024 * 1024
    max_repo_bytes: int = 512 * 1024 * 1024
    max_alias_nodes: int = 100_000
    max_depth: int = 200


@dataclass
class Document:
    """One YAML document: its 1-based index in the stream, first line, and plain data."""

    index: int
    line: int
    data: Any


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# --- scalar resolution -----------------------------------------------------------------------

_NULLS = {"", "~", "null", "Null", "NULL"}
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INT_RE = re.compile(r"^[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")
_SPECIAL_FLOATS = {
    ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan"),
    ".inf": float("inf"), ".Inf": float("inf"), ".INF": float("inf"),
    "+.inf": float("inf"), "+.Inf": float("inf"), "+.INF": float("inf"),
    "-.inf": float("-inf"), "-.Inf": float("-inf"), "-.INF": float("-inf"),
}  # fmt: skip
_BOOLS_12 = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_BOOLS_11 = {
    **_BOOLS_12,
    "y": True, "Y": True, "yes": True, "Yes": True, "YES": True, "on": True, "On": True, "ON": True,
    "n": False, "N": False, "no": False, "No": False, "NO": False, "off": False, "Off": False,
    "OFF": False,
}  # fmt: skip
_MERGE = object()


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64) (or ParseUint) after go-yaml removed the underscores."""
    plain = text.replace("_", "")
    if not _INT_RE.match(plain):
        return None
    sign = -1 if plain[0] == "-" else 1
    digits = plain.lstrip("+-")
    lowered = digits[:2].lower()
    if lowered == "0x":
        value = int(digits[2:], 16)
    elif lowered == "0b":
        value = int(digits[2:], 2)
    elif lowered == "0o":
        value = int(digits[2:], 8)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value *= sign
    if value < -(2**63) or value >= 2**64:
        return None
    return value


def _make_resolver(dialect: Dialect) -> dict[str, Any]:
    constants: dict[str, Any] = dict.fromkeys(_NULLS)
    constants.update(_BOOLS_11 if dialect is Dialect.KUBERNETES else _BOOLS_12)
    constants.update(_SPECIAL_FLOATS)
    constants["<<"] = _MERGE
    return constants


_CONSTANTS = {dialect: _make_resolver(dialect) for dialect in Dialect}
_NUMERIC_START = frozenset("0123456789+-.")


def _resolve_plain(text: str, constants: dict[str, Any]) -> Any:
    if text in constants:
        return constants[text]
    if text[0] in _NUMERIC_START:
        number = _go_int(text)
        if number is not None:
            return number
        plain = text.replace("_", "")
        if _FLOAT_RE.match(plain):
            return float(plain)
    return text


_TAG_PREFIX = "tag:yaml.org,2002:"


def _resolve_scalar(event: Any, constants: dict[str, Any]) -> Any:
    tag: str | None = event.tag
    value: str = event.value
    if tag is None or tag == "!":
        if event.implicit[0]:
            return _resolve_plain(value, constants) if value else None
        return value
    short = tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else ""
    if short == "str":
        return value
    if short in ("int", "float", "bool", "null"):
        resolved = _resolve_plain(value, constants) if value else None
        if short == "null":
            return None
        if short == "float" and isinstance(resolved, int) and not isinstance(resolved, bool):
            return float(resolved)
        return resolved
    # Unknown or local tags (``!Ref``, ``!!binary``, ``!!timestamp``): read the text as a plain
    # scalar would be, like go-yaml does when decoding into an interface value.
    if event.implicit[0] or event.style in (None, ""):
        return _resolve_plain(value, constants) if value else None
    return value


def _go_float32_key(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 32), as sigs.k8s.io/yaml uses for float map keys."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    rounded = struct.unpack("f", struct.pack("f", value))[0]
    for precision in range(1, 10):
        text = f"{rounded:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == rounded:
            break
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    digits = mantissa.replace(".", "").lstrip("-").rstrip("0") or "0"
    negative = mantissa.startswith("-")
    # Go's shortest 'g' uses the exponent form when exp < -4 || exp >= 6, else a plain decimal.
    if exponent < -4 or exponent >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if exponent < 0 else "+"
        text = f"{body}e{sign}{abs(exponent):02d}"
    elif exponent >= len(digits) - 1:
        text = digits + "0" * (exponent - len(digits) + 1)
    elif exponent >= 0:
        text = digits[: exponent + 1] + "." + digits[exponent + 1 :]
    else:
        text = "0." + "0" * (-exponent - 1) + digits
    return ("-" if negative else "") + text


def stringify_key(key: Any) -> str | None:
    """A mapping key as Kubernetes reads it; None when it has no string form (null, collections)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _go_float32_key(key)
    return None


# --- loading -------------------------------------------------------------------------------------


class _PurePythonParser(_PyReader, _PyScanner, _PyParser):
    """Fallback when PyYAML was built without libyaml (same events, slower)."""

    def __init__(self, stream: bytes | str) -> None:
        _PyReader.__init__(self, stream)
        _PyScanner.__init__(self)
        _PyParser.__init__(self)

    def dispose(self) -> None:
        pass


def _c_parser() -> Any:
    try:
        from yaml import cyaml
    except ImportError:  # PyYAML without libyaml
        return None
    return getattr(cyaml, "CParser", None)


CParser: Any = _c_parser() or _PurePythonParser


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

    def __init__(self, message: str, code: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.line = line


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building many small containers triggers the cyclic GC again and again; pause it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_ScalarEvent = _events.ScalarEvent
_MappingStart = _events.MappingStartEvent
_MappingEnd = _events.MappingEndEvent
_SequenceStart = _events.SequenceStartEvent
_SequenceEnd = _events.SequenceEndEvent
_Alias = _events.AliasEvent
_DocumentStart = _events.DocumentStartEvent
_DocumentEnd = _events.DocumentEndEvent
_StreamEnd = _events.StreamEndEvent


class _Frame:
    __slots__ = ("anchor", "container", "has_key", "is_map", "key", "key_line", "merges", "start_nodes")

    def __init__(self, container: Any, is_map: bool, anchor: str | None, start_nodes: int) -> None:
        self.container = container
        self.is_map = is_map
        self.anchor = anchor
        self.start_nodes = start_nodes
        self.has_key = False
        self.key: Any = None
        self.key_line = 0
        self.merges: list[Any] | None = None


def load(
    data: bytes | str,
    file: str,
    dialect: Dialect = Dialect.KUBERNETES,
    limits: Limits | None = None,
) -> LoadResult:
    """Every document of a YAML (or JSON) stream, with every problem found as a diagnostic."""
    limits = limits or Limits()
    result = LoadResult()
    with _gc_paused():
        _Loader(data, file, dialect, limits, result).run()
    return result


class _Loader:
    def __init__(self, data: bytes | str, file: str, dialect: Dialect, limits: Limits, result: LoadResult) -> None:
        self.data = data
        self.file = file
        self.constants = _CONSTANTS[dialect]
        self.limits = limits
        self.result = result
        self.doc_index = 0

    def problem(self, message: str, code: str, line: int | None, document: int | None) -> None:
        self.result.diagnostics.append(
            Diagnostic(Severity.ERROR, message, file=self.file, document=document, line=line, code=code)
        )

    def run(self) -> None:
        parser: Any = None
        try:
            parser = CParser(self.data)
            self._events(parser)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            what = exc.problem or "syntax error"
            limit = _library_limit(what)
            if limit is not None:
                # The parser enforced a bound of its own before ours was reached: the same
                # problem as when our own check finds it, so the same diagnostic.
                code, message = limit
                self.problem(message + "; the rest of the file was not read", code, line, self.doc_index or 1)
                return
            context = f" ({exc.context})" if exc.context else ""
            self.problem(f"YAML syntax error: {what}{context}", "yaml-syntax", line, self.doc_index or None)
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
        root: Any = None
        while True:
            event: Any = get_event()
            cls = event.__class__
            value: Any
            try:
                if cls is _ScalarEvent:
                    nodes += 1
                    value = _resolve_scalar(event, constants)
                    if event.anchor is not None:
                        anchors[event.anchor] = (value, 1)
                elif cls is _MappingStart or cls is _SequenceStart:
                    if len(stack) >= max_depth:
                        raise _Abort(_too_deep(f"{max_depth} levels"), "too-deep", event.start_mark.line + 1)
                    if not stack:
                        doc_line = event.start_mark.line + 1
                    is_map = cls is _MappingStart
                    stack.append(_Frame({} if is_map else [], is_map, event.anchor, nodes))
                    nodes += 1
                    if event.anchor is not None:
                        open_anchors.add(event.anchor)
                    continue
                elif cls is _MappingEnd or cls is _SequenceEnd:
                    frame = stack.pop()
                    value = frame.container
                    if frame.merges:
                        value = _apply_merges(value, frame.merges)
                    if frame.anchor is not None:
                        open_anchors.discard(frame.anchor)
                        anchors[frame.anchor] = (value, nodes - frame.start_nodes)
                elif cls is _Alias:
                    name = event.anchor
                    line = event.start_mark.line + 1
                    if name in open_anchors:
                        raise _Abort(f"alias *{name} refers to itself (recursive anchor)", "alias", line)
                    if name not in anchors:
                        raise _Abort(f"alias *{name} has no anchor", "alias", line)
                    value, size = anchors[name]
                    expanded += size
                    nodes += size
                    if expanded > limits.max_alias_nodes:
                        raise _Abort(
                            f"aliases expand to more than {limits.max_alias_nodes} nodes "
                            "(a billion-laughs document?); refusing to expand",
                            "alias-limit",
                            line,
                        )
                elif cls is _DocumentStart:
                    self.doc_index += 1
                    doc_line = event.start_mark.line + 1
                    root = None
                    anchors.clear()
                    open_anchors.clear()
                    continue
                elif cls is _DocumentEnd:
                    self.result.documents.append(Document(self.doc_index, doc_line, root))
                    root = None
                    continue
                elif cls is _StreamEnd:
                    return
                else:  # StreamStart
                    continue
                if not stack:
                    if cls is _ScalarEvent:
                        doc_line = event.start_mark.line + 1
                    root = value
                    continue
                frame = stack[-1]
                if not frame.is_map:
                    frame.container.append(value)
                elif not frame.has_key:
                    frame.key = value
                    frame.has_key = True
                    frame.key_line = event.start_mark.line + 1
                else:
                    frame.has_key = False
                    self._set(frame, value)
            except _Abort as abort:
                # Stop reading the file: skipping the rest of a hostile document would still
                # make the scanner do its (sometimes quadratic) work.
                self.problem(
                    abort.message + "; the rest of the file was not read", abort.code, abort.line, self.doc_index
                )
                return

    def _set(self, frame: _Frame, value: Any) -> None:
        key = frame.key
        container: dict[str, Any] = frame.container
        if key is _MERGE:
            if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                if frame.merges is None:
                    frame.merges = []
                frame.merges.extend(value if isinstance(value, list) else [value])
                return
            self.problem(
                "merge key << needs a mapping or a list of mappings", "yaml-merge", frame.key_line, self.doc_index
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
                )
                return
            key = text
        if key in container:
            self.problem(
                f"duplicate mapping key {key!r} (YAML keeps only the last value)",
                "duplicate-key",
                frame.key_line,
                self.doc_index,
            )
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


# --- lines of fields -------------------------------------------------------------------------------


def locate(
    data: bytes | str, document: int, pointers: Iterable[str], dialect: Dialect = Dialect.KUBERNETES
) -> dict[str, int]:
    """The line of each JSON pointer in the given (1-based) document of a stream.

    A pointer that does not exist (a missing required field, a key brought in by a merge) gets the
    line of its nearest existing parent. Unknown documents give an empty answer.
    """
    wanted = set(pointers)
    lines: dict[str, int] = {}
    constants = _CONSTANTS[dialect]
    parser: Any = CParser(data)
    index = 0
    # stack entries: [pointer, is_map, has_key, key, key_line, next_index]
    stack: list[list[Any]] = []
    try:
        while True:
            event: Any = parser.get_event()
            cls = event.__class__
            if cls is _DocumentStart:
                index += 1
                continue
            if cls is _StreamEnd or (cls is _DocumentEnd and index == document):
                break
            if index != document or cls is _DocumentEnd:
                continue
            is_node = cls in (_ScalarEvent, _MappingStart, _SequenceStart, _Alias)
            if is_node:
                line = event.start_mark.line + 1
                pointer: str | None
                if not stack:
                    pointer = ""
                else:
                    parent = stack[-1]
                    if parent[1]:
                        if not parent[2]:
                            # a key: remember it (collections as keys are skipped)
                            if cls is _ScalarEvent:
                                key = _resolve_scalar(event, constants)
                                parent[3] = stringify_key(key) if key is not _MERGE else "<<"
                            else:
                                parent[3] = None
                            parent[2] = True
                            parent[4] = line
                            if cls in (_MappingStart, _SequenceStart):
                                stack.append([None, cls is _MappingStart, False, None, 0, 0])
                            continue
                        parent[2] = False
                        key = parent[3]
                        pointer = (
                            f"{parent[0]}/{escape_pointer(key)}" if key is not None and parent[0] is not None else None
                        )
                        line = parent[4]
                    else:
                        pointer = f"{parent[0]}/{parent[5]}" if parent[0] is not None else None
                        parent[5] += 1
                if pointer is not None and pointer not in lines:
                    lines[pointer] = line
                if cls in (_MappingStart, _SequenceStart):
                    stack.append([pointer, cls is _MappingStart, False, None, 0, 0])
            elif cls in (_MappingEnd, _SequenceEnd):
                stack.pop()
    except yaml.YAMLError:
        pass
    finally:
        with contextlib.suppress(Exception):
            parser.dispose()
    answer: dict[str, int] = {}
    for pointer in wanted:
        probe = pointer
        while probe not in lines and probe:
            probe = probe.rsplit("/", 1)[0]
        if probe in lines:
            answer[pointer] = lines[probe]
    return answer
