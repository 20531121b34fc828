"""Field-level differences between two normalized JSON values, with sensitive values masked.

Backends normalize both sides first (projecting live objects onto the fields we manage, dropping
server defaults, canonicalizing quantities, keying lists by their merge keys); this module only
walks the two values and reports each differing leaf or subtree.

Paths are JSON pointers (RFC 6901). An element of a list keyed by a merge key is addressed by that
key, e.g. ``/spec/template/spec/containers/[name=app]/image``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitops.model.plans import MASK, FieldChange

Sensitive = Callable[[str], bool]


def _never(_: str) -> bool:
    return False


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def is_empty(value: Any) -> bool:
    """Null, {} and [] are what an API server drops on the way in: absent equals empty."""
    return value is None or value == {} or value == []


def fields(before: Any, after: Any, sensitive: Sensitive = _never, path: str = "") -> list[FieldChange]:
    """Every difference between ``before`` and ``after``, deepest first-differing paths only."""
    changes: list[FieldChange] = []
    _walk(before, after, path, sensitive, changes)
    return changes


def _walk(before: Any, after: Any, path: str, sensitive: Sensitive, out: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}/{escape(str(key))}"
            if key not in before:
                if not is_empty(after[key]):
                    out.append(_change(child, None, after[key], sensitive, absent_before=True))
            elif key not in after:
                if not is_empty(before[key]):
                    out.append(_change(child, before[key], None, sensitive, absent_after=True))
            else:
                _walk(before[key], after[key], child, sensitive, out)
        return
    if (isinstance(before, list) and isinstance(after, list) and len(before) == len(after)
            and all(isinstance(b, dict) and isinstance(a, dict) for b, a in zip(before, after, strict=True))):
        for index, (b, a) in enumerate(zip(before, after, strict=True)):
            _walk(b, a, f"{path}/{index}", sensitive, out)
        return
    if before == after or (is_empty(before) and is_empty(after)):
        return
    if _same_number(before, after):
        return
    out.append(_change(path or "/", before, after, sensitive))


def _change(path: str, before: Any, after: Any, sensitive: Sensitive, *, absent_before: bool = False,
            absent_after: bool = False) -> FieldChange:
    """A change; a sensitive one never holds the values, only the fact that they differ."""
    if sensitive(path):
        before = None if absent_before else MASK
        after = None if absent_after else MASK
        return FieldChange(path, before, after, absent_before, absent_after, sensitive=True)
    return FieldChange(path, before, after, absent_before, absent_after)


def _same_number(a: Any, b: Any) -> bool:
    numeric = (int, float)
    return (isinstance(a, numeric) and isinstance(b, numeric)
            and not isinstance(a, bool) and not isinstance(b, bool) and a == b)
