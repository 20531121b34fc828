"""Field-level differences between two normalized JSON values, with sensitive values masked.

The one diff engine and the one masking rule of every backend. A backend brings two things: its
normalization (projecting live objects onto the fields we manage, dropping server defaults,
canonicalizing quantities, keying lists by their merge keys; see ``backends/*/normalize.py``) and
which paths hold secret values (a :data:`Sensitive` predicate, usually :func:`under`). This module
walks the two values and reports each differing leaf or subtree.

Paths are JSON pointers (RFC 6901). An element of a list keyed by a merge key is addressed by that
key, e.g. ``/spec/template/spec/containers/[name=app]/image``.

Walking: mappings recurse by key; lists of mappings of equal length recurse by index; anything
else (scalars, lists of scalars, lists whose length changed) is compared whole. ``True`` and ``1``
differ. With ``absent_is_empty`` (what an API server that drops null, ``{}`` and ``[]`` needs), a
field that is absent on one side and empty on the other is no change.

Masking (:func:`mask`): a change is sensitive when its path is sensitive or when a sensitive path
lies inside its values (adding a whole ``/data`` map of a Secret, or a whole ``Env`` holding a
secret variable); a sensitive change keeps only the fact that it changed.

Which environment variables are secret (:func:`secret_env`, the one rule of both backends): a name
that looks secret (:func:`is_secret_name`: ``PASSWORD``, ``TOKEN``, ``SECRET``, ``API_KEY`` ...,
but not ``..._FILE`` or ``..._PATH``, which say where a secret is) and every name the user marks
sensitive (the ``gitops.dev/sensitive-env`` annotation of a Kubernetes object, ``x-gitops-sensitive``
of a compose service or of the whole file, carried as the same label on the Swarm service).
The policy rule ``secret-env`` asks the same :func:`is_secret_name`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gitops.model.plans import MASK, SENSITIVE_KEY, FieldChange

Sensitive = Callable[[str], bool]

#: Environment variable names that hold a secret ...
SECRET_NAME = re.compile(r"PASSW(OR)?D|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL"
                         r"|AUTH_?KEY|CLIENT_?SECRET", re.IGNORECASE)
#: ... unless they say where to find it or how it is encoded.
SECRET_NAME_NOT = re.compile(r"(_FILE|_PATH|_DIR|_URL_FILE|_ENABLED|_LENGTH|_TTL|_EXPIRY|_EXPIRES|_HEADER)$",
                             re.IGNORECASE)


def is_secret_name(name: object) -> bool:
    """Whether an environment variable's name says it holds a secret (the built-in patterns)."""
    return isinstance(name, str) and bool(SECRET_NAME.search(name)) and not SECRET_NAME_NOT.search(name)


def marked_names(value: object) -> frozenset[str]:
    """The variable names a ``gitops.dev/sensitive-env`` annotation or label lists (commas or
    spaces between them), or an ``x-gitops-sensitive`` list."""
    if isinstance(value, str):
        return frozenset(n for n in re.split(r"[\s,]+", value) if n)
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(n).strip() for n in value if str(n).strip())
    return frozenset()


def marked_in(*maps: object) -> frozenset[str]:
    """The names marked sensitive in any of the given annotation or label maps."""
    names: set[str] = set()
    for labels in maps:
        if isinstance(labels, dict):
            names |= marked_names(labels.get(SENSITIVE_KEY))
    return frozenset(names)


def secret_env(marked: Iterable[str] = ()) -> Callable[[str], bool]:
    """Which environment variable names are secret: the built-in patterns and the ``marked`` ones."""
    extra = frozenset(marked)
    return lambda name: name in extra or is_secret_name(name)


def nothing(_: str) -> bool:
    """No path is sensitive."""
    return False


def under(*pointers: str) -> Sensitive:
    """Each of ``pointers`` and every path below it are sensitive."""
    prefixes = tuple(p + "/" for p in pointers)

    def check(path: str) -> bool:
        return path in pointers or path.startswith(prefixes)

    return check


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def either(*checks: Sensitive) -> Sensitive:
    """A path is sensitive when any of ``checks`` says so."""
    return lambda path: any(check(path) for check in checks)


def is_empty(value: Any) -> bool:
    """Null, {} and [] are what an API server drops on the way in."""
    return value is None or value == {} or value == []


def fields(before: Any, after: Any, sensitive: Sensitive = nothing, *, absent_is_empty: bool = True,
           path: str = "") -> list[FieldChange]:
    """Every difference between ``before`` and ``after``, deepest first-differing paths only."""
    changes: list[FieldChange] = []
    _walk(before, after, path, sensitive, absent_is_empty, changes)
    return changes


def _walk(before: Any, after: Any, path: str, sensitive: Sensitive, absent_is_empty: bool,
          out: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}/{escape(str(key))}"
            if key not in before:
                if not (absent_is_empty and is_empty(after[key])):
                    out.append(_change(child, None, after[key], sensitive, absent_before=True))
            elif key not in after:
                if not (absent_is_empty and is_empty(before[key])):
                    out.append(_change(child, before[key], None, sensitive, absent_after=True))
            else:
                _walk(before[key], after[key], child, sensitive, absent_is_empty, out)
        return
    if (isinstance(before, list) and isinstance(after, list) and len(before) == len(after)
            and all(isinstance(b, dict) and isinstance(a, dict) for b, a in zip(before, after, strict=True))):
        for index, (b, a) in enumerate(zip(before, after, strict=True)):
            _walk(b, a, f"{path}/{index}", sensitive, absent_is_empty, out)
        return
    if _same(before, after) or (absent_is_empty and is_empty(before) and is_empty(after)):
        return
    out.append(_change(path or "/", before, after, sensitive))


def _same(a: Any, b: Any) -> bool:
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def _change(path: str, before: Any, after: Any, sensitive: Sensitive, *, absent_before: bool = False,
            absent_after: bool = False) -> FieldChange:
    change = FieldChange(path, before, after, absent_before, absent_after)
    if any(sensitive(p) for p in _paths(path, before, after)):
        return mask(change)
    return change


def mask(change: FieldChange) -> FieldChange:
    """The change without its values: only the fact that it changed (the one masking rule)."""
    return FieldChange(change.path, None if change.absent_before else MASK, None if change.absent_after else MASK,
                       change.absent_before, change.absent_after, sensitive=True)


def _paths(path: str, *values: Any) -> Iterator[str]:
    """``path`` and the path of everything inside ``values``."""
    yield path
    for value in values:
        yield from _inner(path if path != "/" else "", value)


def _inner(path: str, value: Any) -> Iterator[str]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        child = f"{path}/{escape(str(key))}"
        yield child
        yield from _inner(child, item)


_NONE: Any = object()
_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*=)")
#: What a sensitive value that changed shows as, where a whole document is shown.
MASK_CHANGED = MASK[:-1] + ", changed)"


def masked(value: Any, sensitive: Sensitive, before: Any = _NONE, path: str = "") -> Any:
    """A copy of a whole document with every sensitive value replaced by the mask, for showing it
    (a unified YAML diff). Given ``before`` (the same document at the earlier revision), a
    sensitive value that differs from it shows as changed: a diff of the two masked documents
    keeps the fact of the change and never the value. A sensitive ``NAME=value`` string (an item of
    a Swarm service's ``Env``) keeps its name: ``NAME=(sensitive value)``."""
    if path and sensitive(path) and not isinstance(value, dict):  # the keys of a secret map are shown
        shown = MASK if before is _NONE or _same(value, before) else MASK_CHANGED
        named = _NAMED.match(value) if isinstance(value, str) else None  # NAME=value keeps its name
        return named.group(1) + shown if named else shown
    if isinstance(value, dict):
        olds = before if isinstance(before, dict) else {}
        return {k: masked(v, sensitive, olds.get(k, None) if before is not _NONE else _NONE,
                          f"{path}/{escape(str(k))}") for k, v in value.items()}
    if isinstance(value, list):
        old_list = before if isinstance(before, list) else []
        return [masked(v, sensitive, (old_list[i] if i < len(old_list) else None) if before is not _NONE else _NONE,
                       f"{path}/{i}") for i, v in enumerate(value)]
    return value
