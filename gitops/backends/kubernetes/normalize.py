"""Make a desired manifest and a live object comparable, so that only real changes show.

The rules, in order:

1. **Ownership projection**: the live object is projected onto the fields the desired manifest
   sets plus the fields our field manager applied before (its ``managedFields`` entry,
   ``fieldsV1``). Everything else in the live object (server defaults, fields other managers own,
   ``status``) is left out, so defaults never show as changes, and a field we stop declaring shows
   as a removal, which is what server-side apply will do.
2. **Bookkeeping** is dropped on both sides: ``metadata.managedFields``, ``resourceVersion``,
   ``uid``, ``generation``, ``creationTimestamp``, ``selfLink``, ``status``, the
   last-applied-configuration annotation, and the ApplySet/inventory labels and annotations that
   apply adds itself.
3. **Keyed lists** (containers and volumes by name, ports by port and protocol, volume mounts by
   mount path, env by name, ...) become maps keyed ``[key=value]``, so that a reordering is no
   change and a diff names the element, not its index.
4. **Quantities** (``cpu: 0.5`` vs ``500m``, ``memory: 1024Mi`` vs ``1Gi``) are canonicalized
   under ``resources``, ``capacity``, ``hard`` and the like.
5. **Secret values**: ``stringData`` is folded into ``data`` (base64) before comparing; every path
   under ``/data`` and ``/stringData`` of a Secret is sensitive, and so is the value of every
   environment variable named like a secret or marked by the ``gitops.dev/sensitive-env``
   annotation (:func:`sensitive`).

An absent field equals an empty one (``{}``, ``[]``, null), because the API server drops those.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from gitops import diff
from gitops.model.plans import FieldChange

#: Fields in the live object that are bookkeeping, never part of a diff.
METADATA_NOISE = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
                  "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")
ANNOTATION_NOISE = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")

#: Keys that identify an element of a list of objects, tried in order (all elements need them).
LIST_KEYS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("containerPort", "protocol"),
    ("port", "protocol"),
    ("mountPath",),
    ("devicePath",),
    ("ip",),
    ("topologyKey", "whenUnsatisfiable"),
    ("type",),
)
DEFAULTED_KEY_PARTS = {"protocol": "TCP"}

#: Parents whose map values are quantities.
QUANTITY_PARENTS = frozenset({"limits", "requests", "capacity", "allocatable", "hard", "max", "min",
                              "default", "defaultRequest", "maxLimitRequestRatio", "overhead"})
QUANTITY_KEYS = frozenset({"sizeLimit", "storage"})

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}


def quantity(value: Any) -> Any:
    """The canonical value of a Kubernetes quantity (a Decimal as a string); others unchanged."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return value
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        return value
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
        scale = Decimal(10) ** int(suffix[1:]) if suffix and suffix[0] in "eE" else _SUFFIX[suffix]
        amount = amount * scale
    except (InvalidOperation, KeyError, ValueError):
        return value
    return format(amount.normalize(), "f")


_SECRET_VALUES = diff.under("/data", "/stringData")
_ENV_KEYED = re.compile(r"/env/\[name=([^\]/]*)\](?:/value)?$")


def sensitive(kind: str, *bodies: Mapping[str, Any] | None) -> diff.Sensitive:
    """Which paths of an object of ``kind`` hold secret values (rule 5): a Secret's ``data`` and
    ``stringData``, and the ``value`` of every environment variable that :func:`gitops.diff.secret_env`
    calls secret, by the built-in name patterns and the names the ``gitops.dev/sensitive-env``
    annotation of any of ``bodies`` (the desired and the live object) lists. Paths may be keyed
    (``/env/[name=DB_PASSWORD]/value``, as a plan compares them) or by index into one of ``bodies``
    (``/env/3/value``, as a whole document is shown)."""
    names = diff.secret_env(diff.marked_in(*(((b or {}).get("metadata") or {}).get("annotations") for b in bodies)))
    indexed = frozenset(path for body in bodies for path in _env_values(body, "", names))
    is_secret = kind == "Secret"

    def check(path: str) -> bool:
        if is_secret and _SECRET_VALUES(path):
            return True
        match = _ENV_KEYED.search(path)
        return bool(match and names(diff.unescape(match.group(1)))) or path in indexed

    return check


def _env_values(value: Any, path: str, names: Callable[[str], bool]) -> Iterator[str]:
    """The paths (by index) of the secret environment values in a body as written."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}/{diff.escape(str(key))}"
            if key == "env" and isinstance(item, list):
                for index, var in enumerate(item):
                    if isinstance(var, dict) and names(str(var.get("name", ""))):
                        yield f"{child}/{index}/value"
            elif isinstance(item, dict | list):
                yield from _env_values(item, child, names)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _env_values(item, f"{path}/{index}", names)


def desired_changes(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """The field changes between two desired versions of one object (two revisions of the
    repository), both normalized as the desired side of a plan is."""
    return diff.fields(keyed(strip_bookkeeping(fold_string_data(before))),
                       keyed(strip_bookkeeping(fold_string_data(after))), sensitive(kind, before, after))


def fold_string_data(body: dict[str, Any]) -> dict[str, Any]:
    """A Secret with ``stringData`` merged into ``data`` as the API server stores it."""
    if body.get("kind") != "Secret" or not body.get("stringData"):
        return body
    folded = dict(body)
    data = dict(folded.get("data") or {})
    for key, value in (folded.pop("stringData") or {}).items():
        data[str(key)] = base64.b64encode(str(value).encode()).decode()
    folded["data"] = data
    return folded


def owned_fields(live: dict[str, Any], manager: str) -> dict[str, Any]:
    """The fieldsV1 tree our manager owns through Apply (merged over its entries)."""
    owned: dict[str, Any] = {}
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            _merge_fields(owned, entry.get("fieldsV1") or {})
    return owned


def _merge_fields(into: dict[str, Any], tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            _merge_fields(into.setdefault(key, {}), value)
        else:
            into.setdefault(key, {})


def strip_bookkeeping(body: dict[str, Any], extra_labels: tuple[str, ...] = (),
                      extra_annotations: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "status"}
    metadata = dict(out.get("metadata") or {})
    for key in METADATA_NOISE:
        metadata.pop(key, None)
    for field, noise in (("annotations", ANNOTATION_NOISE + extra_annotations), ("labels", extra_labels)):
        values = metadata.get(field)
        if isinstance(values, dict):
            kept = {k: v for k, v in values.items() if k not in noise}
            if kept:
                metadata[field] = kept
            else:
                metadata.pop(field)
    out["metadata"] = metadata
    return out


def _list_key(items: list[Any]) -> tuple[str, ...] | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in LIST_KEYS:
        if all(key[0] in item for item in items):
            identities = [_identity(item, key) for item in items]
            if len(set(identities)) == len(identities):
                return key
    return None


def _identity(item: dict[str, Any], key: tuple[str, ...]) -> str:
    parts = []
    for part in key:
        value = item.get(part, DEFAULTED_KEY_PARTS.get(part))
        parts.append(f"{part}={value}")
    return "[" + ",".join(parts) + "]"


def _key_fields(field_key: str) -> dict[str, Any] | None:
    """The key fields of a fieldsV1 list-item entry (``k:{"name":"app"}``); None for other entries."""
    if not field_key.startswith("k:"):
        return None
    try:
        values = json.loads(field_key[2:])
    except ValueError:
        return None
    return values if isinstance(values, dict) else None


def _owned_items(owned: dict[str, Any], live: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Which live list elements our manager owns: `k:{...}` entries matched on their key fields."""
    found: dict[int, dict[str, Any]] = {}
    for field_key, sub in owned.items():
        values = _key_fields(field_key)
        if values is None:
            continue
        for index, item in enumerate(live):
            if all(item.get(k, DEFAULTED_KEY_PARTS.get(k)) == v for k, v in values.items()):
                found[index] = sub
                break
    return found


def project(live: Any, desired: Any, owned: dict[str, Any] | None) -> Any:
    """The part of ``live`` that ``desired`` sets or that we owned before (see module doc)."""
    owned = owned or {}
    if isinstance(live, dict):
        want = desired if isinstance(desired, dict) else {}
        result: dict[str, Any] = {}
        for key, value in live.items():
            sub_owned = owned.get(f"f:{key}")
            if key in want:
                result[key] = project(value, want[key], sub_owned)
            elif sub_owned is not None:
                result[key] = project(value, None, sub_owned)
        return result
    if isinstance(live, list):
        want_list = desired if isinstance(desired, list) else []
        key = _list_key(live) or _list_key(want_list)
        if key is None or not all(isinstance(i, dict) for i in live):
            return live  # an atomic list or a set of scalars: compared whole
        wanted = {_identity(item, key): item for item in want_list if isinstance(item, dict)}
        owned_items = _owned_items(owned, live)
        kept = []
        for index, item in enumerate(live):
            ident = _identity(item, key)
            if ident in wanted or index in owned_items:
                kept.append(project(item, wanted.get(ident), owned_items.get(index)))
        return kept
    return live


def keyed(value: Any, parent: str = "") -> Any:
    """Lists of objects keyed by their merge key; quantities canonical (rules 3 and 4)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if parent in QUANTITY_PARENTS or key in QUANTITY_KEYS:
                out[key] = quantity(item) if not isinstance(item, (dict, list)) else keyed(item, key)
            else:
                out[key] = keyed(item, key)
        return out
    if isinstance(value, list):
        key = _list_key(value)
        if key is None:
            return [keyed(item, parent) for item in value]
        return {_identity(item, key): keyed(item, parent) for item in value}
    return value


def comparable(desired: dict[str, Any], live: dict[str, Any] | None, manager: str,
               extra_labels: tuple[str, ...] = (), extra_annotations: tuple[str, ...] = ()
               ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Both sides ready for :func:`gitops.diff.fields`."""
    want = keyed(strip_bookkeeping(fold_string_data(desired), extra_labels, extra_annotations))
    if live is None:
        return want, None
    owned = owned_fields(live, manager)
    stripped = strip_bookkeeping(live, extra_labels, extra_annotations)
    projected = project(stripped, strip_bookkeeping(fold_string_data(desired)), owned)
    # apiVersion and kind identify the object; the live one is read at the desired version.
    projected["apiVersion"] = desired.get("apiVersion")
    projected["kind"] = desired.get("kind")
    return want, keyed(projected)


def _segments(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _owns(tree: dict[str, Any], segments: list[str]) -> bool:
    """Whether a fieldsV1 tree holds the field at ``segments`` (or a whole value above it)."""
    node: dict[str, Any] = tree
    for segment in segments:
        if not node:
            return True  # an atomic value (a leaf): owned whole, everything below it too
        if segment.startswith("[") and segment.endswith("]"):
            wanted = dict(part.split("=", 1) for part in segment[1:-1].split(",") if "=" in part)
            found = None
            for field_key, sub in node.items():
                values = _key_fields(field_key)
                if values is not None and set(values) <= set(wanted) and all(
                        str(values[k]) == wanted[k] for k in values):
                    found = sub
                    break
            if found is None:
                return False
            node = found
        else:
            child = node.get(f"f:{segment}")
            if child is None:
                return False
            node = child
    return True


def other_managers(live: dict[str, Any], path: str, manager: str) -> list[str]:
    """The field managers other than ``manager`` that own the field at ``path`` (a path of
    :func:`gitops.diff.fields` over :func:`keyed` values) of a live object: applying another value
    there is a server-side-apply conflict with each of them. Status writes do not count."""
    segments = _segments(path)
    owners = set()
    for entry in live.get("metadata", {}).get("managedFields") or []:
        name = entry.get("manager")
        if not name or name == manager or entry.get("subresource"):
            continue
        if _owns(entry.get("fieldsV1") or {}, segments):
            owners.add(str(name))
    return sorted(owners)
