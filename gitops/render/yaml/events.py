"""The source of YAML events that :mod:`.documents` and :mod:`.lines` read.

libyaml (PyYAML's C parser) when PyYAML was built with it, PyYAML's pure-Python parser
otherwise: the same events, slower. Only events are used, never PyYAML's composer or
constructors, so nothing is built from tags. The event classes are named here once, short, for
the loops that dispatch on them.
"""

from __future__ import annotations

from typing import Any

from yaml import events as _events
from yaml.parser import Parser as _PyParser
from yaml.reader import Reader as _PyReader
from yaml.scanner import Scanner as _PyScanner

__all__ = [
    "Alias",
    "CParser",
    "DocumentEnd",
    "DocumentStart",
    "MappingEnd",
    "MappingStart",
    "ScalarEvent",
    "SequenceEnd",
    "SequenceStart",
    "StreamEnd",
    "open_parser",
]


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


CParser: Any = _c_parser() or _PurePythonParser  # the parser class in use; read at each open_parser()


def open_parser(data: bytes | str) -> Any:
    """A parser over ``data``: ``get_event()`` gives the next event, ``dispose()`` frees it."""
    return CParser(data)


ScalarEvent = _events.ScalarEvent
MappingStart = _events.MappingStartEvent
MappingEnd = _events.MappingEndEvent
SequenceStart = _events.SequenceStartEvent
SequenceEnd = _events.SequenceEndEvent
Alias = _events.AliasEvent
DocumentStart = _events.DocumentStartEvent
DocumentEnd = _events.DocumentEndEvent
StreamEnd = _events.StreamEndEvent
