"""Desired vs live Swarm objects in one comparable form, and which of their fields are secret.

The daemon stores what it is sent, plus a few defaults; the Docker CLI sends some empty values we
never send; and the live object names networks by ID and images by digest. Comparing payloads
directly would show noise on every plan. :func:`normalize_service` maps a ServiceSpec (desired, as
built by :mod:`translate`, or live, ``GET /services/{id}`` -> ``Spec`` *without*
``insertDefaults``) to a canonical form in which every field has its *effective* value once:

1. **transforms** (:data:`SERVICE_TRANSFORMS`): images in familiar form without the digest the
   CLI may pin, network targets as names, legacy top-level ``Networks`` moved into the task;
2. **rules** (:data:`SERVICE_RULES`, in order): ``drop`` a field that is not desired state,
   ``fill`` an absent field with the value the daemon uses when it is absent, ``drop_if`` a field
   equal to a value that means "not set";
3. **keyed lists** (:data:`KEYED_LISTS`): lists whose order does not matter become mappings keyed
   by identity (``Env`` by variable, ``Mounts`` by target, ports by ``protocol:target`` ...) so a
   diff names the changed item, not a shifted index; unordered string lists are sorted;
4. **pruning**: ``None``, ``""``, ``0``, ``False``, ``{}`` and ``[]`` mean "not set" in the Engine
   API (its Go types omit them), so they are removed, except at the paths of :data:`KEEP` where
   such a value is meaningful (``Replicas: 0``, ``Parallelism: 0``, ``Init: false`` ...) and
   inside string maps (labels, env, options), where an empty string is a value.

An unchanged stack then diffs as empty; the ``diff_*`` functions list the remaining differences
with :func:`gitops.diff.fields` (the field diff and the mask every backend shares), naming which
paths are secret (:func:`sensitive`): the values of ``Env`` variables named like a secret or marked
by the ``gitops.dev/sensitive-env`` label (compose's ``x-gitops-sensitive``), and a secret's ``Data``.

Daemon facts these tables rely on (Docker 20.10, API 1.41): a missing ``UpdateConfig`` /
``RollbackConfig`` means parallelism 1, failure action pause, monitor 5s, order stop-first, but a
*present* one with a missing field means zero (monitor 0 = no monitoring); an empty failure action
is stored as ``pause``; a missing ``RestartPolicy`` means condition any with a 5s delay, and a
missing ``Delay`` inside one also means 5s; a missing ``StopGracePeriod`` means 10s;
``EndpointSpec.Mode`` is stored as ``vip`` once ports exist; ``ContainerSpec.Isolation: default``,
``TaskTemplate.Runtime: container`` and ``ForceUpdate: 0`` are always added.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gitops import diff
from gitops.model.plans import FieldChange

# -- the rule table --------------------------------------------------------------------------------

Action = Literal["drop", "fill", "drop_if"]


@dataclass(frozen=True)
class Rule:
    """One normalization rule. ``path`` is a JSON pointer; ``*`` matches any one key or index.

    ``drop``: remove the field. ``fill``: when the field is absent (and its parent exists, or
    ``create`` is set), set it to ``value``. ``drop_if``: remove the field when it equals ``value``.
    """

    path: str
    action: Action
    why: str
    value: Any = None
    create: bool = False


S = 1_000_000_000  # one second in nanoseconds

_UPDATE_DEFAULTS = {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * S, "MaxFailureRatio": 0,
                    "Order": "stop-first"}

SERVICE_RULES: tuple[Rule, ...] = (
    Rule("/TaskTemplate/ForceUpdate", "drop",
         "a counter bumped to force a redeploy (docker service update --force); not desired state"),
    Rule("/TaskTemplate/Placement/Platforms", "drop",
         "filled by the client from the image's registry manifest when it resolves the image"),
    Rule("/TaskTemplate/ContainerSpec/Secrets/*/SecretID", "drop",
         "resolved from SecretName at apply time; names are content-hashed and identify the secret"),
    Rule("/TaskTemplate/ContainerSpec/Configs/*/ConfigID", "drop",
         "resolved from ConfigName at apply time; names are content-hashed and identify the config"),
    Rule("/TaskTemplate/ContainerSpec/Isolation", "drop_if", "the daemon stores 'default' when unset",
         "default"),
    Rule("/TaskTemplate/Runtime", "drop_if", "the daemon stores 'container' for container services",
         "container"),
    Rule("/TaskTemplate/ContainerSpec/Mounts/*/Consistency", "drop_if", "'default' means unset", "default"),
    Rule("/TaskTemplate/ContainerSpec/StopGracePeriod", "drop_if",
         "an absent stop grace period is 10s (swarmkit default; insertDefaults shows it)", 10 * S),
    Rule("/TaskTemplate/ContainerSpec/Secrets/*/File/UID", "fill", "an absent uid is root", "0"),
    Rule("/TaskTemplate/ContainerSpec/Secrets/*/File/GID", "fill", "an absent gid is root", "0"),
    Rule("/TaskTemplate/ContainerSpec/Configs/*/File/UID", "fill", "an absent uid is root", "0"),
    Rule("/TaskTemplate/ContainerSpec/Configs/*/File/GID", "fill", "an absent gid is root", "0"),
    Rule("/TaskTemplate/RestartPolicy", "fill", "an absent restart policy is condition any, delay 5s",
         {"Condition": "any", "Delay": 5 * S}, create=True),
    Rule("/TaskTemplate/RestartPolicy/Condition", "fill", "an empty condition is stored as any", "any"),
    Rule("/TaskTemplate/RestartPolicy/Delay", "fill", "an absent restart delay is 5s (0 is a value)", 5 * S),
    Rule("/Mode", "fill", "an absent mode is replicated", {"Replicated": {}}),
    Rule("/Mode/Replicated/Replicas", "fill", "absent replicas are 1 (0 is a value)", 1),
    Rule("/Mode/ReplicatedJob/MaxConcurrent", "fill", "absent max concurrent is 1", 1),
    Rule("/UpdateConfig", "fill", "an absent update config is swarmkit's default one", _UPDATE_DEFAULTS),
    Rule("/UpdateConfig/FailureAction", "fill", "an empty failure action is stored as pause", "pause"),
    Rule("/UpdateConfig/Order", "fill", "an empty order is stop-first", "stop-first"),
    Rule("/RollbackConfig", "fill", "an absent rollback config is swarmkit's default one", _UPDATE_DEFAULTS),
    Rule("/RollbackConfig/FailureAction", "fill", "an empty failure action is stored as pause", "pause"),
    Rule("/RollbackConfig/Order", "fill", "an empty order is stop-first", "stop-first"),
    Rule("/EndpointSpec/Mode", "drop_if", "vip is the default mode (stored once ports exist)", "vip"),
    Rule("/EndpointSpec/Ports/*/Protocol", "fill", "an absent protocol is tcp", "tcp"),
    Rule("/EndpointSpec/Ports/*/PublishMode", "fill", "an absent publish mode is ingress", "ingress"),
)

# Values that look empty but mean something; everything else empty is pruned.
KEEP: tuple[tuple[str, str], ...] = (
    ("/Mode/Replicated/Replicas", "0 replicas is a real value"),
    ("/Mode/Replicated", "selects the mode"),
    ("/Mode/Global", "an empty object selects the mode"),
    ("/Mode/GlobalJob", "an empty object selects the mode"),
    ("/Mode/ReplicatedJob", "selects the mode"),
    ("/Mode/ReplicatedJob/*", "0 is a value"),
    ("/UpdateConfig/Parallelism", "0 means all tasks at once"),
    ("/RollbackConfig/Parallelism", "0 means all tasks at once"),
    ("/TaskTemplate/RestartPolicy/Delay", "0 is a value; absent means 5s"),
    ("/TaskTemplate/ContainerSpec/StopGracePeriod", "0 is a value; absent means 10s"),
    ("/TaskTemplate/ContainerSpec/Init", "false overrides the daemon's default; absent uses it"),
    ("/TaskTemplate/ContainerSpec/Secrets/*/File/Mode", "mode 0 is a value"),
    ("/TaskTemplate/ContainerSpec/Configs/*/File/Mode", "mode 0 is a value"),
)
# Inside these string maps every value counts, "" and None (a bare ``KEY`` in Env) included.
STRING_MAPS = frozenset({"Labels", "Env", "Options", "Sysctls", "DriverOpts"})

# Lists whose order does not matter: (path, how to key an item) or (path, None) = sort as a set.
KeyFn = Callable[[Any], str]


def _env_key(item: Any) -> str:
    return str(item).partition("=")[0]


def _port_key(item: Any) -> str:
    return f"{item.get('Protocol', 'tcp')}:{item.get('TargetPort', 0)}"


def _file_key(ref: Any, name_field: str) -> str:
    return str((ref.get("File") or {}).get("Name") or ref.get(name_field))


KEYED_LISTS: tuple[tuple[str, KeyFn | None], ...] = (
    ("/TaskTemplate/ContainerSpec/Env", _env_key),
    ("/TaskTemplate/ContainerSpec/Mounts", lambda m: str(m.get("Target", ""))),
    ("/TaskTemplate/ContainerSpec/Secrets", lambda s: _file_key(s, "SecretName")),
    ("/TaskTemplate/ContainerSpec/Configs", lambda c: _file_key(c, "ConfigName")),
    ("/TaskTemplate/ContainerSpec/Ulimits", lambda u: str(u.get("Name", ""))),
    ("/TaskTemplate/Networks", lambda n: str(n.get("Target", ""))),
    ("/TaskTemplate/Networks/*/Aliases", None),
    ("/EndpointSpec/Ports", _port_key),
    ("/TaskTemplate/Placement/Constraints", None),
    ("/TaskTemplate/ContainerSpec/CapabilityAdd", None),
    ("/TaskTemplate/ContainerSpec/CapabilityDrop", None),
)

IGNORED_LABEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("com.docker.swarm.", "reserved for labels swarmkit writes on tasks and containers"),
)


# -- pointer helpers -------------------------------------------------------------------------------


def _split(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _matches(pattern: list[str], path: list[str]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True))


def _children(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, list):
        return list(enumerate(node))
    return []


def _parents(root: Any, pattern: list[str]) -> list[Any]:
    """Every container matched by ``pattern`` minus its last part."""
    nodes = [root]
    for part in pattern[:-1]:
        found = []
        for node in nodes:
            for key, child in _children(node):
                if part in ("*", str(key)) and isinstance(child, (dict, list)):
                    found.append(child)
        nodes = found
    return nodes


def _apply_rule(root: dict[str, Any], rule: Rule) -> None:
    parts = _split(rule.path)
    last = parts[-1]
    if rule.create and rule.action == "fill":
        node: Any = root
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if node is None:
                return
    for parent in _parents(root, parts):
        if not isinstance(parent, dict):
            continue
        keys = list(parent) if last == "*" else [last]
        for key in keys:
            present = key in parent and parent[key] is not None
            if rule.action == "drop":
                parent.pop(key, None)
            elif rule.action == "drop_if":
                if present and parent[key] == rule.value:
                    del parent[key]
            elif not present and last != "*":
                parent[key] = copy.deepcopy(rule.value)


def _keyed(root: dict[str, Any], pattern: str, key_fn: KeyFn | None) -> None:
    parts = _split(pattern)
    for parent in _parents(root, parts):
        if not isinstance(parent, dict):
            continue
        items = parent.get(parts[-1])
        if not isinstance(items, list):
            continue
        if key_fn is None:
            parent[parts[-1]] = sorted(set(items), key=str)
            continue
        keyed: dict[str, Any] = {}
        for item in items:
            key = key_fn(item)
            if parts[-1] == "Env":
                name, sep, value = str(item).partition("=")
                keyed[name] = value if sep else None
                continue
            unique, n = key, 2
            while unique in keyed:
                unique, n = f"{key}#{n}", n + 1
            keyed[unique] = item
        parent[parts[-1]] = keyed


def _prune(node: Any, path: list[str], keep: list[list[str]], in_string_map: bool = False) -> Any:
    """Remove empty values (see module doc); returns the pruned node or ``_EMPTY``."""
    if isinstance(node, dict):
        result = {}
        string_map = bool(path) and path[-1] in STRING_MAPS
        for key, value in node.items():
            child = _prune(value, [*path, str(key)], keep, string_map)
            if child is not _EMPTY:
                result[key] = child
        if result or any(_matches(k, path) for k in keep):
            return result
        return _EMPTY
    if isinstance(node, list):
        items = [_prune(v, [*path, str(i)], keep) for i, v in enumerate(node)]
        items = [i for i in items if i is not _EMPTY]
        return items if items or any(_matches(k, path) for k in keep) else _EMPTY
    if in_string_map:
        return node
    if node is None or node == "" or node is False or (node == 0 and not isinstance(node, bool)):
        return node if any(_matches(k, path) for k in keep) else _EMPTY
    return node


class _Empty:
    def __repr__(self) -> str:
        return "<empty>"


_EMPTY: Any = _Empty()
_KEEP = [_split(p) for p, _ in KEEP]


# -- transforms ------------------------------------------------------------------------------------

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def canonical_image(image: str, *, keep_digest: bool = False) -> str:
    """``docker.io/library/nginx@sha256:..`` -> ``nginx:latest``: familiar name, explicit tag, and
    no digest unless ``keep_digest`` (the CLI pins the digest it resolved; the user did not)."""
    if not keep_digest:
        image = _DIGEST.sub("", image)
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if image.startswith(prefix):
            image = image[len(prefix):]
            break
    name = image.split("@", 1)[0]
    if ":" not in name.rsplit("/", 1)[-1]:
        image = name + ":latest" + image[len(name):]
    return image


def _transform(spec: dict[str, Any], *, names_by_id: Mapping[str, str], keep_digest: bool) -> None:
    task = spec.setdefault("TaskTemplate", {})
    if "Networks" in spec:  # deprecated location (API < 1.25 style); the daemon accepts both
        if not task.get("Networks"):
            task["Networks"] = spec["Networks"]
        del spec["Networks"]
    container = task.get("ContainerSpec")
    if isinstance(container, dict) and isinstance(container.get("Image"), str):
        container["Image"] = canonical_image(container["Image"], keep_digest=keep_digest)
    for network in task.get("Networks") or []:
        target = network.get("Target")
        if target in names_by_id:
            network["Target"] = names_by_id[target]
    for labels in (spec.get("Labels"), (container or {}).get("Labels")):
        if isinstance(labels, dict):
            for key in [k for k in labels if k.startswith(tuple(p for p, _ in IGNORED_LABEL_PREFIXES))]:
                del labels[key]


# -- public normalizers ----------------------------------------------------------------------------


def normalize_service(spec: Mapping[str, Any], *, network_ids: Mapping[str, str] | None = None,
                      keep_digest: bool = False) -> dict[str, Any]:
    """The canonical form of a ServiceSpec (desired, or live ``Spec``). ``network_ids`` maps
    network names to IDs so live targets (IDs) read as names."""
    result: dict[str, Any] = copy.deepcopy(dict(spec))
    names_by_id = {v: k for k, v in (network_ids or {}).items()}
    _transform(result, names_by_id=names_by_id, keep_digest=keep_digest)
    for rule in SERVICE_RULES:
        _apply_rule(result, rule)
    for pattern, key_fn in KEYED_LISTS:
        _keyed(result, pattern, key_fn)
    pruned = _prune(result, [], _KEEP)
    return {} if pruned is _EMPTY else dict(pruned)


_NETWORK_FIELDS = ("Name", "Driver", "Labels", "Options", "Internal", "Attachable", "IPAM", "EnableIPv6")
NETWORK_IGNORED_OPTIONS: tuple[tuple[str, str], ...] = (
    ("com.docker.network.driver.overlay.vxlanid_list", "VXLAN IDs the daemon allocates"),
)


def normalize_network(network: Mapping[str, Any], *,
                      desired: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A NetworkCreate payload or a live network (``GET /networks/{id}``) in canonical form.

    Given the ``desired`` payload, subnets and gateways the daemon allocated are dropped when the
    desired network did not ask for them."""
    result = {k: copy.deepcopy(network[k]) for k in _NETWORK_FIELDS if k in network}
    options = result.get("Options") or {}
    for key, _ in NETWORK_IGNORED_OPTIONS:
        options.pop(key, None)
    ipam = result.get("IPAM") or {}
    if ipam.get("Driver") == "default":
        del ipam["Driver"]
    if desired is not None:
        wanted = (desired.get("IPAM") or {}).get("Config") or []
        if not wanted:
            ipam.pop("Config", None)
        else:
            for have, want in zip(ipam.get("Config") or [], wanted, strict=False):
                for key in ("Gateway", "IPRange"):
                    if key not in want:
                        have.pop(key, None)
    pruned = _prune(result, [], [])
    return {} if pruned is _EMPTY else dict(pruned)


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A ConfigSpec or a live config (its ``Spec``): name, labels, base64 data, templating."""
    spec = config.get("Spec", config)
    result = {k: copy.deepcopy(spec[k]) for k in ("Name", "Labels", "Data", "Templating") if k in spec}
    pruned = _prune(result, [], [])
    return {} if pruned is _EMPTY else dict(pruned)


def normalize_secret(secret: Mapping[str, Any]) -> dict[str, Any]:
    """A SecretSpec or a live secret (its ``Spec``). The daemon never returns ``Data``; the
    content is compared through the content-hashed name instead, so ``Data`` is dropped."""
    spec = secret.get("Spec", secret)
    result = {k: copy.deepcopy(spec[k]) for k in ("Name", "Labels", "Driver", "Templating") if k in spec}
    pruned = _prune(result, [], [])
    return {} if pruned is _EMPTY else dict(pruned)


def normalize_volume(volume: Mapping[str, Any]) -> dict[str, Any]:
    """A VolumeCreate payload or a live volume (``GET /volumes/{name}``)."""
    result: dict[str, Any] = {
        "Name": volume.get("Name"),
        "Driver": volume.get("Driver") or "local",
        "Labels": copy.deepcopy(volume.get("Labels") or {}),
        "Options": copy.deepcopy(volume.get("DriverOpts", volume.get("Options")) or {}),
    }
    pruned = _prune(result, [], [])
    return {} if pruned is _EMPTY else dict(pruned)


# -- diff: what is secret per kind; the field diff and the mask are gitops.diff's -----------------

ENV = "/TaskTemplate/ContainerSpec/Env"


def _fields(before: Any, after: Any, sensitive: diff.Sensitive = diff.nothing) -> list[FieldChange]:
    """The shared field diff; empties are already pruned, so an empty value left here is meaningful."""
    return diff.fields(before, after, sensitive, absent_is_empty=False)


def sensitive(kind: str, *bodies: Mapping[str, Any] | None) -> diff.Sensitive:
    """Which paths of a Swarm object of ``kind`` hold secret values: a secret's ``Data``, and the
    ``Env`` value of every variable that :func:`gitops.diff.secret_env` calls secret, by the
    built-in name patterns and the names the ``gitops.dev/sensitive-env`` label of any of
    ``bodies`` (ServiceSpecs, or live services holding one as ``Spec``) lists. ``Env`` paths may be
    keyed by the variable (``.../Env/DB_PASSWORD``, as a plan compares them) or by index into one of
    ``bodies`` (``.../Env/3``, a ``NAME=value`` string as a whole spec is shown)."""
    if kind == "Secret":
        return diff.under("/Data")
    if kind != "Service":
        return diff.nothing
    specs = [(b.get("Spec", b) if isinstance(b, Mapping) else {}) for b in bodies]
    names = diff.secret_env(diff.marked_in(*(dict(spec.get("Labels") or {}) for spec in specs)))
    indexed = frozenset(f"{ENV}/{index}" for spec in specs
                        for index, item in enumerate(_env_list(spec)) if names(str(item).split("=", 1)[0]))
    prefix = ENV + "/"

    def check(path: str) -> bool:
        if not path.startswith(prefix):
            return False
        segment = path[len(prefix):].split("/", 1)[0]
        return path in indexed or (not segment.isdigit() and names(diff.unescape(segment)))

    return check


def _env_list(spec: Mapping[str, Any]) -> list[Any]:
    env = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env")
    return env if isinstance(env, list) else []


def diff_service(desired: Mapping[str, Any], live: Mapping[str, Any], *,
                 network_ids: Mapping[str, str] | None = None) -> list[FieldChange]:
    """Differences from the live ServiceSpec (``before``) to the desired one (``after``).
    The live digest is ignored unless the desired image pins one."""
    image = str(((desired.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
    keep = "@sha256:" in image
    after = normalize_service(desired, network_ids=network_ids, keep_digest=keep)
    before = normalize_service(live.get("Spec", live), network_ids=network_ids, keep_digest=keep)
    return _fields(before, after, sensitive("Service", desired, live))


def diff_kind(kind: str, desired: Mapping[str, Any], live: Mapping[str, Any], *,
              network_ids: Mapping[str, str] | None = None) -> list[FieldChange]:
    """Differences from ``live`` (or an earlier desired body) to ``desired``, for any Swarm kind."""
    if kind == "Service":
        return diff_service(desired, live, network_ids=network_ids)
    return {"Network": diff_network, "Config": diff_config, "Secret": diff_secret,
            "Volume": diff_volume}[kind](desired, live)


def diff_network(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldChange]:
    return _fields(normalize_network(live, desired=desired), normalize_network(desired))


def diff_config(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldChange]:
    return _fields(normalize_config(live), normalize_config(desired))


def diff_secret(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldChange]:
    return _fields(normalize_secret(live), normalize_secret(desired), diff.under("/Data"))


def diff_volume(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldChange]:
    return _fields(normalize_volume(live), normalize_volume(desired))
