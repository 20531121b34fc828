"""Reading raw API objects (JSON as the API server returns it) without trusting their shape.

The API omits zero counts and empty lists, hand-written objects omit whole sections, and
apiVersion tells the group. These helpers turn all of that into plain defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops.model.resources import ResourceKey

#: A raw API object or any part of one.
Obj = Mapping[str, Any]


def get(obj: Obj, *path: str) -> Any:
    """The value at ``path`` (``get(obj, "status", "replicas")``), or None when any step is missing."""
    current: Any = obj
    for step in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(step)
    return current


def integer(obj: Obj, *path: str, default: int = 0) -> int:
    value = get(obj, *path)
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


def text(obj: Obj, *path: str) -> str:
    value = get(obj, *path)
    return value if isinstance(value, str) else ""


def items(obj: Obj, *path: str) -> list[Obj]:
    """The list of objects at ``path`` (conditions, containerStatuses, ...), [] when absent."""
    value = get(obj, *path)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def labels_of(obj: Obj) -> Mapping[str, str]:
    value = get(obj, "metadata", "labels")
    return value if isinstance(value, Mapping) else {}


def annotations_of(obj: Obj) -> Mapping[str, str]:
    value = get(obj, "metadata", "annotations")
    return value if isinstance(value, Mapping) else {}


def condition(obj: Obj, kind: str) -> Obj | None:
    """The ``status.conditions`` entry of type ``kind``, or None."""
    for cond in items(obj, "status", "conditions"):
        if cond.get("type") == kind:
            return cond
    return None


def condition_true(obj: Obj, kind: str) -> Obj | None:
    cond = condition(obj, kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def generation_observed(obj: Obj) -> bool:
    """The controller has seen the latest spec (``status.observedGeneration >= metadata.generation``)."""
    return integer(obj, "status", "observedGeneration") >= integer(obj, "metadata", "generation")


def group_of(obj: Obj) -> str:
    api_version = text(obj, "apiVersion")
    return api_version.rpartition("/")[0]


def key_of(obj: Obj) -> ResourceKey:
    return ResourceKey(group_of(obj), text(obj, "kind"), text(obj, "metadata", "namespace"),
                       text(obj, "metadata", "name"))


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference marked ``controller: true`` (the one object that manages this one)."""
    for ref in items(obj, "metadata", "ownerReferences"):
        if ref.get("controller"):
            return ref
    return None


def owned_by(obj: Obj, owner: Obj) -> bool:
    """``obj`` is controlled by ``owner``: same namespace and a controller reference to it
    (by uid when both carry one, else by kind and name)."""
    if text(obj, "metadata", "namespace") != text(owner, "metadata", "namespace"):
        return False
    ref = controller_of(obj)
    if ref is None:
        return False
    owner_uid = text(owner, "metadata", "uid")
    if owner_uid and ref.get("uid"):
        return bool(ref.get("uid") == owner_uid)
    return ref.get("kind") == text(owner, "kind") and ref.get("name") == text(owner, "metadata", "name")


def selects(selector: Obj | None, target: Obj) -> bool:
    """A label selector (``matchLabels`` and ``matchExpressions``) matches ``target``'s labels.
    An absent or empty selector selects nothing, as for workloads."""
    if not selector:
        return False
    have = labels_of(target)
    match_labels = selector.get("matchLabels") or {}
    if any(have.get(k) != v for k, v in match_labels.items()):
        return False
    expressions = [e for e in selector.get("matchExpressions") or [] if isinstance(e, Mapping)]
    for expr in expressions:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if (op == "In" and have.get(key) not in values) or (op == "NotIn" and have.get(key) in values):
            return False
        if (op == "Exists" and key not in have) or (op == "DoesNotExist" and key in have):
            return False
    return bool(match_labels or expressions)


def belongs_to(pod: Obj, owner: Obj) -> bool:
    """A pod is ``owner``'s: by its controller reference, or — for pods that carry no owner
    references at all (hand-written objects) — by the owner's selector in the same namespace."""
    if controller_of(pod) is not None:
        return owned_by(pod, owner)
    if text(pod, "metadata", "namespace") != text(owner, "metadata", "namespace"):
        return False
    selector = get(owner, "spec", "selector")
    if isinstance(selector, Mapping) and "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}  # ReplicationController: a plain map
    return selects(selector if isinstance(selector, Mapping) else None, pod)
