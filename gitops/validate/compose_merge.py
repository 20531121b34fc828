"""Several compose files of one Swarm app merged into one stack, as ``docker stack deploy -c a -c b``.

The rules are docker/cli's compose loader (``cli/compose/loader/merge.go``, the Docker 20.10 this
project deploys with), checked against ``docker stack config -c a -c b`` by the tests:

* each file is interpolated first (with the app's env files), then merged in order onto the first;
* ``services``: a service in both is merged key by key: mappings are merged (the later file wins
  a key it sets), sequences are appended, scalars are replaced, except that a later ``false``,
  ``0`` or empty string does not replace a value (docker/cli merges with mergo, which skips zero
  values) unless the key is a count docker keeps as a pointer (``replicas``, ``parallelism``,
  ``max_attempts``, ``retries``);
  ``ports`` are merged by published port, ``volumes`` by target, ``secrets`` and ``configs`` by
  source (and come out sorted by that key); ``command``, ``entrypoint`` and ``healthcheck.test``
  are replaced; ``environment`` and ``labels`` (list or mapping) are merged by name; a network
  in both keeps the later ``aliases`` and addresses; ``logging`` merges options when the driver is
  the same and is replaced otherwise;
* ``networks``, ``volumes``, ``secrets``, ``configs`` at the top level: an entry in a later file
  replaces the earlier one whole; other top-level keys come from the first file;
* relative paths resolve from the first file's directory.

Every value of the merged document remembers the file and field it came from, so a diagnostic
about the merged stack names the file and line where the user wrote that value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from gitops.model import Diagnostic
from gitops.render import Rendered
from gitops.render.compose import ComposeFile
from gitops.render.yaml import escape_pointer
from gitops.validate.compose_rules import parse_port

__all__ = ["merge", "merge_rendered"]

SECTIONS = ("networks", "volumes", "secrets", "configs")
REPLACED = frozenset({"command", "entrypoint"})
COUNTS = frozenset({"replicas", "parallelism", "max_attempts", "retries"})  # *uint64 in docker/cli: 0 counts
NAMED = frozenset({"environment", "labels"})  # a list of NAME=value or a mapping: merged by name

Where = tuple[int, str]  # (index of the file, JSON pointer in it)


def _published(entry: Any) -> int:
    if isinstance(entry, Mapping):
        value = entry.get("published")
        try:
            return int(str(value).split("-")[0]) if value not in (None, "") else 0
        except ValueError:
            return 0
    try:
        published = parse_port(entry).published
    except ValueError:
        return 0
    return published[0] if published else 0


def _volume_target(entry: Any) -> str:
    if isinstance(entry, Mapping):
        return str(entry.get("target", ""))
    parts = str(entry).split(":")
    return parts[1] if len(parts) >= 2 else parts[0]


def _source(entry: Any) -> str:
    return str(entry.get("source", "")) if isinstance(entry, Mapping) else str(entry)


KEYED: dict[str, Callable[[Any], Any]] = {
    "ports": _published, "volumes": _volume_target, "secrets": _source, "configs": _source,
}


def _zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


class _Merger:
    def __init__(self) -> None:
        self.where: dict[str, Where] = {}  # merged pointer -> where its value was written

    def place(self, pointer: str, origin: Where) -> None:
        self.where[pointer] = origin
        # Anything recorded below it came from an earlier file and is gone now.
        for stale in [p for p in self.where if p.startswith(pointer + "/")]:
            del self.where[stale]

    def value(self, base: Any, override: Any, key: str, pointer: str, origin: Where) -> Any:
        if key in REPLACED or (key == "test" and pointer.endswith("/healthcheck/test")):
            if _zero(override):
                return base
            self.place(pointer, origin)
            return override
        if key in KEYED and isinstance(base, list) and isinstance(override, list):
            return self.keyed(base, override, KEYED[key], pointer, origin)
        if key in NAMED and isinstance(base, list | dict) and isinstance(override, list | dict):
            return self.named(_as_mapping(base), _as_mapping(override), pointer, origin)
        if key == "logging" and isinstance(base, dict) and isinstance(override, dict) and base.get("driver") \
                and override.get("driver") and base["driver"] != override["driver"]:
            self.place(pointer, origin)
            return override
        if key == "networks" and pointer.count("/") == 3 and isinstance(base, list | dict) \
                and isinstance(override, list | dict):
            return self.mapping(_as_networks(base), _as_networks(override), pointer, origin)
        if isinstance(base, dict) and isinstance(override, dict):
            return self.mapping(base, override, pointer, origin)
        if isinstance(base, list) and isinstance(override, list):
            for i in range(len(override)):
                self.where[f"{pointer}/{len(base) + i}"] = (origin[0], f"{origin[1]}/{i}")
            return [*base, *override]
        if _zero(override) and key not in COUNTS and base is not None:
            return base
        self.place(pointer, origin)
        return override

    def mapping(self, base: dict[str, Any], override: dict[str, Any], pointer: str, origin: Where) -> dict[str, Any]:
        out = dict(base)
        for key, value in override.items():
            here = f"{pointer}/{escape_pointer(str(key))}"
            there = (origin[0], f"{origin[1]}/{escape_pointer(str(key))}")
            if key in out:
                out[key] = self.value(out[key], value, str(key), here, there)
            else:
                out[key] = value
                self.place(here, there)
        return out

    def named(self, base: dict[str, Any], override: dict[str, Any], pointer: str, origin: Where) -> dict[str, Any]:
        out = dict(base)
        for key, value in override.items():
            out[key] = value
            self.place(f"{pointer}/{escape_pointer(str(key))}", origin)
        return out

    def keyed(self, base: list[Any], override: list[Any], key_of: Callable[[Any], Any], pointer: str,
              origin: Where) -> list[Any]:
        entries: dict[Any, tuple[Any, str | Where]] = {}
        for i, entry in enumerate(base):
            entries[key_of(entry)] = (entry, f"{pointer}/{i}")  # a merged pointer: its origin is known
        for i, entry in enumerate(override):
            entries[key_of(entry)] = (entry, (origin[0], f"{origin[1]}/{i}"))
        ordered = sorted(entries.items(), key=lambda item: item[0])
        old = dict(self.where)
        for stale in [p for p in self.where if p.startswith(pointer + "/")]:
            del self.where[stale]
        out = []
        for i, (_, (entry, came)) in enumerate(ordered):
            if isinstance(came, str):  # from the merged base: where it was, and what was recorded under it
                self.where[f"{pointer}/{i}"] = _resolve(old, came)
                for p, w in old.items():
                    if p.startswith(came + "/"):
                        self.where[f"{pointer}/{i}{p[len(came):]}"] = w
            else:
                self.where[f"{pointer}/{i}"] = came
            out.append(entry)
        return out


def _resolve(where: Mapping[str, Where], pointer: str) -> Where:
    """Where the value at a merged pointer was written: under the nearest recorded pointer, or
    at the same place in the first file."""
    prefix = pointer
    while prefix and prefix not in where:
        prefix = prefix.rpartition("/")[0]
    if not prefix:
        return (0, pointer)
    index, inner = where[prefix]
    return (index, inner + pointer[len(prefix):])


def _as_mapping(value: list[Any] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value:
        name, sep, rest = str(item).partition("=")
        out[name] = rest if sep else None
    return out


def _as_networks(value: list[Any] | dict[str, Any]) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {str(name): None for name in value}


def merge(files: list[ComposeFile]) -> tuple[ComposeFile, dict[str, Where]]:
    """The stack of ``files`` merged in order, and where each merged field was written: merged
    JSON pointer -> (index of the file, pointer in it); a pointer not listed is under the nearest
    listed one (see :func:`_resolve`), or else at the same place in the first file."""
    first = files[0]
    merger = _Merger()
    data: dict[str, Any] = dict(first.data)
    for index, later in enumerate(files[1:], start=1):
        services = dict(data.get("services") or {})
        for name, service in (later.data.get("services") or {}).items():
            pointer = f"/services/{escape_pointer(str(name))}"
            if name in services and isinstance(services[name], dict) and isinstance(service, dict):
                merged = dict(services[name])
                for key in KEYED:  # docker/cli re-keys (and sorts) these whenever the service is merged
                    if isinstance(merged.get(key), list):
                        merged[key] = merger.keyed(merged[key], [], KEYED[key], f"{pointer}/{key}", (index, ""))
                services[name] = merger.mapping(merged, service, pointer, (index, pointer))
            else:
                services[name] = service
                merger.place(pointer, (index, pointer))
        data["services"] = services
        for section in SECTIONS:
            entries = later.data.get(section)
            if not isinstance(entries, dict):
                continue
            merged_section = dict(data.get(section) or {})
            for name, body in entries.items():
                merged_section[name] = body
                entry = f"/{section}/{escape_pointer(str(name))}"
                merger.place(entry, (index, entry))
            data[section] = merged_section
    display = " + ".join(f.file for f in files)
    merged_file = ComposeFile(display, first.directory, data, first.stack, set().union(*(f.unset for f in files)),
                              tuple(f.file for f in files))
    return merged_file, merger.where


def merge_rendered(rendered: Rendered) -> Callable[[list[Diagnostic]], list[Diagnostic]]:
    """Merge the compose files of one app's render in place (nothing to do for one file or none),
    and return what turns a diagnostic about the merged stack into one about the file and field
    where the value was written."""
    if len(rendered.compose) < 2:
        return lambda diagnostics: diagnostics
    files = [f.file for f in rendered.compose]
    merged, where = merge(rendered.compose)
    rendered.compose = [merged]

    def remap(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        out = []
        for diagnostic in diagnostics:
            if diagnostic.file != merged.file:
                out.append(diagnostic)
                continue
            index, inner = _resolve(where, diagnostic.pointer)
            out.append(replace(diagnostic, file=files[index], document=diagnostic.document or 1, pointer=inner))
        return out

    return remap
