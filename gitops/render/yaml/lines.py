"""Locating: the line and column where a field of a loaded document stands in its file.

:mod:`.documents` keeps no position for every node unless asked (``track_lines``: that costs time
and memory on large inputs), only each document's first line and the positions of its problems.
:func:`locate` re-reads one document of the stream and answers the :data:`Position` (line and
column, 1-based, of the key of a mapping entry, of the first character of a list item) of each
JSON pointer a diagnostic points at (tokens escaped with :func:`escape_pointer`), so that
validation names file, document, line, column and field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import yaml

from gitops.render.yaml import events
from gitops.render.yaml.documents import Lines
from gitops.render.yaml.scalars import CONSTANTS, MERGE, Dialect, resolve_scalar, stringify_key

__all__ = ["Position", "escape_pointer", "locate", "locate_documents", "locate_in_data"]

#: (line, column), both 1-based; the column counts characters (Unicode code points).
Position: TypeAlias = tuple[int, int]


def escape_pointer(token: str) -> str:
    """One reference token of a JSON pointer (RFC 6901: ``~`` as ``~0``, ``/`` as ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def locate(
    data: bytes | str, document: int, pointers: Iterable[str], dialect: Dialect = Dialect.KUBERNETES
) -> dict[str, Position]:
    """The position of each JSON pointer in the given (1-based) document of a stream.

    A pointer that does not exist (a missing required field, a key brought in by a merge) gets the
    position of its nearest existing parent. Unknown documents give an empty answer.
    """
    return locate_documents(data, {document: pointers}, dialect).get(document, {})


def locate_documents(
    data: bytes | str, wanted: Mapping[int, Iterable[str]], dialect: Dialect = Dialect.KUBERNETES
) -> dict[int, dict[str, Position]]:
    """:func:`locate` for several documents of one stream, in one pass over it (a file of many
    documents with findings in each is read once, not once per document)."""
    answers: dict[int, dict[str, Position]] = {}
    last = max(wanted, default=0)
    # only the nodes on the way to a wanted pointer are followed; other subtrees are skipped
    prefixes: dict[int, set[str]] = {}
    for document, pointers in wanted.items():
        on_the_way = prefixes[document] = {""}
        for wanted_pointer in pointers:
            while wanted_pointer and wanted_pointer not in on_the_way:
                on_the_way.add(wanted_pointer)
                wanted_pointer = wanted_pointer.rsplit("/", 1)[0]
    skip = 0
    lines: dict[str, Position] = {}
    constants = CONSTANTS[dialect]
    parser: Any = events.open_parser(data)
    index = 0
    # stack entries: [pointer, is_map, has_key, key, key_position, next_index]
    stack: list[list[Any]] = []
    try:
        while True:
            event: Any = parser.get_event()
            cls = event.__class__
            if cls is events.DocumentStart:
                index += 1
                lines = {}
                stack = []
                skip = 0
                continue
            if cls is events.DocumentEnd and index in wanted:
                answers[index] = _answer(lines, wanted[index])
                if index >= last:
                    break
                continue
            if cls is events.StreamEnd:
                break
            if index not in wanted or cls is events.DocumentEnd:
                continue
            if skip:  # inside a collection no wanted pointer goes through
                if cls is events.MappingStart or cls is events.SequenceStart:
                    skip += 1
                elif cls is events.MappingEnd or cls is events.SequenceEnd:
                    skip -= 1
                continue
            is_node = cls in (events.ScalarEvent, events.MappingStart, events.SequenceStart, events.Alias)
            if is_node:
                mark = event.start_mark
                position = (mark.line + 1, mark.column + 1)
                pointer: str
                if not stack:
                    pointer = ""
                else:
                    parent = stack[-1]
                    if parent[1]:
                        if not parent[2]:
                            # a key: remember it (collections as keys are skipped)
                            if cls is events.ScalarEvent:
                                key = resolve_scalar(event, constants)
                                parent[3] = stringify_key(key) if key is not MERGE else "<<"
                            else:
                                parent[3] = None
                            parent[2] = True
                            parent[4] = position
                            if cls in (events.MappingStart, events.SequenceStart):
                                skip = 1
                            continue
                        parent[2] = False
                        key = parent[3]
                        if key is None:
                            if cls in (events.MappingStart, events.SequenceStart):
                                skip = 1
                            continue
                        pointer = f"{parent[0]}/{escape_pointer(key)}"
                        position = parent[4]
                    else:
                        pointer = f"{parent[0]}/{parent[5]}"
                        parent[5] += 1
                if pointer not in prefixes[index]:
                    if cls in (events.MappingStart, events.SequenceStart):
                        skip = 1
                    continue
                if pointer not in lines:
                    lines[pointer] = position
                if cls in (events.MappingStart, events.SequenceStart):
                    stack.append([pointer, cls is events.MappingStart, False, None, (0, 0), 0])
            elif cls in (events.MappingEnd, events.SequenceEnd):
                stack.pop()
    except yaml.YAMLError:
        pass
    finally:
        with contextlib.suppress(Exception):
            parser.dispose()
    if index in wanted and index not in answers:  # a stream cut short by a syntax error
        answers[index] = _answer(lines, wanted[index])
    return answers


def _answer(lines: Mapping[str, Position], pointers: Iterable[str]) -> dict[str, Position]:
    answer: dict[str, Position] = {}
    for pointer in set(pointers):
        probe = pointer
        while probe not in lines and probe:
            probe = probe.rsplit("/", 1)[0]
        if probe in lines:
            answer[pointer] = lines[probe]
    return answer


def locate_in_data(data: Any, table: Mapping[int, Lines], line: int, pointers: Iterable[str],
                   column: int = 1) -> dict[str, Position]:
    """:func:`locate` from a document loaded with ``track_lines`` (its data, ``Document.lines``,
    first line and column), without reading the stream again: the same answers, nearest parent
    included."""
    # pointer -> (node, position), or (None, position) where the path stops existing; prefixes are shared
    walked: dict[str, tuple[Any, Position]] = {"": (data, (line, column))}

    def walk(pointer: str) -> tuple[Any, Position]:
        known = walked.get(pointer)
        if known is not None:
            return known
        parent_pointer, _, raw = pointer.rpartition("/")
        node, found = walk(parent_pointer)
        result: tuple[Any, Position] = (None, found)
        lines = table.get(id(node)) if node is not None else None
        if lines is not None:
            token = raw.replace("~1", "/").replace("~0", "~")
            position = -1
            if isinstance(node, dict):
                if token in node:
                    position = list(node).index(token)
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                position = int(token)
            if position >= 0 and 2 * position + 1 < len(lines):
                result = (node[token] if isinstance(node, dict) else node[position],
                          (lines[2 * position], lines[2 * position + 1]))
        walked[pointer] = result
        return result

    return {pointer: walk(pointer)[1] for pointer in set(pointers)}
