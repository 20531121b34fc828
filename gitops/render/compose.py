"""Compose files read with ``docker stack deploy`` semantics: interpolation, then Swarm objects.

Interpolation follows Docker's compose loader: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+replacement}``,
``${VAR+replacement}`` and ``$$`` for a literal ``$``. Values come from the environment given
(the process environment by default) and from env files the app declares in ``gitops.yaml``.
``docker stack`` itself does not read ``.env``; an unset variable becomes an empty string with a
warning, as Docker does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.model import Diagnostic, Origin, Resource, ResourceKey, Severity
from gitops.render.yaml import escape_pointer

__all__ = ["SECTION_KINDS", "ComposeFile", "interpolate", "is_compose", "parse_env_file", "swarm_resources"]

_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-zA-Z][_a-zA-Z0-9]*)"
    r"|\{(?P<braced>[_a-zA-Z][_a-zA-Z0-9]*(?::?[-+?][^}]*)?)\}|(?P<invalid>))"
)
_BRACED = re.compile(r"^(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:?[-+?])(?P<arg>.*))?$", re.S)

SWARM_SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


@dataclass
class ComposeFile:
    """A compose file after interpolation, ready for Swarm checks."""

    file: str  # display path
    directory: Path  # where relative paths in the file resolve
    data: dict[str, Any]
    stack: str
    unset: set[str] = field(default_factory=set)
    merged_from: tuple[str, ...] = ()  # several files of one app merged into this one (their paths)

    @property
    def path(self) -> str:
        """The file whose directory relative paths resolve from (the first, when merged)."""
        return self.merged_from[0] if self.merged_from else self.file


def is_compose(data: Any) -> bool:
    """A document whose top level has ``services:`` is a compose file."""
    return isinstance(data, dict) and "services" in data


def dotted(pointer: str) -> str:
    """``/services/web/image`` -> ``services.web.image`` (Docker's way of naming a field)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return ".".join(parts) if parts else "(root)"


class _Interpolation(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _substitute(text: str, env: Mapping[str, str], unset: set[str], seen: set[str] | None = None) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        named = match.group("named")
        if seen is not None:
            referred = named or _BRACED.match(match.group("braced") or "")
            if isinstance(referred, str):
                seen.add(referred)
            elif referred is not None:
                seen.add(referred.group("name"))
        if named is not None:
            if named not in env:
                unset.add(named)
                return ""
            return env[named]
        braced = match.group("braced")
        if braced is None:
            raise _Interpolation(f'invalid interpolation format: "{text}"')
        parts = _BRACED.match(braced)
        if parts is None:
            raise _Interpolation(f'invalid interpolation format: "{text}"')
        name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg") or ""
        value = env.get(name)
        present = value is not None
        non_empty = bool(value)
        if op is None:
            if not present:
                unset.add(name)
            return value or ""
        if op in (":-", "-"):
            use_default = not non_empty if op == ":-" else not present
            return _substitute(arg, env, unset, seen) if use_default else str(value)
        if op in (":+", "+"):
            use_alt = non_empty if op == ":+" else present
            return _substitute(arg, env, unset, seen) if use_alt else ""
        # ":?" and "?": required
        missing = not non_empty if op == ":?" else not present
        if missing:
            detail = _substitute(arg, env, unset) if arg else ""
            raise _Interpolation(f"required variable {name} is missing a value" + (f": {detail}" if detail else ""))
        return str(value)

    return _PATTERN.sub(replace, text)


def interpolate(data: Any, env: Mapping[str, str], file: str, diagnostics: list[Diagnostic], unset: set[str],
                used: dict[str, set[str]] | None = None) -> Any:
    """A copy of the compose data with every string value of the Swarm sections interpolated.
    ``used`` (when given) gets, for each value that refers to variables, its pointer and their names."""

    def walk(value: Any, pointer: str) -> Any:
        if isinstance(value, str):
            if "$" not in value:
                return value
            seen: set[str] | None = set() if used is not None else None
            try:
                return _substitute(value, env, unset, seen)
            except _Interpolation as exc:
                message = exc.message
                if message.startswith("invalid interpolation format"):
                    message = (
                        f"invalid interpolation format for {dotted(pointer)}: {message.split(': ', 1)[1]}. "
                        "You may need to escape any $ with another $."
                    )
                diagnostics.append(
                    Diagnostic(Severity.ERROR, message, file=file, pointer=pointer, document=1, code="interpolation")
                )
                return value
            finally:
                if used is not None and seen:
                    used[pointer] = seen
        if isinstance(value, dict):
            return {key: walk(item, f"{pointer}/{escape_pointer(str(key))}") for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{pointer}/{index}") for index, item in enumerate(value)]
        return value

    if not isinstance(data, dict):
        return data
    result = dict(data)
    for section in SWARM_SECTIONS:
        if section in result:
            result[section] = walk(result[section], f"/{section}")
    return result


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<value>.*)$")


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines; ``#`` comments; single or double quotes around a value are removed."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            continue
        value = match.group("value").strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[match.group("key")] = value
    return values


#: The compose sections that declare Swarm objects, and the kind of each.
SECTION_KINDS = {"services": "Service", "networks": "Network", "volumes": "Volume", "secrets": "Secret",
                 "configs": "Config"}


def swarm_resources(compose: ComposeFile) -> list[Resource]:
    """The Swarm objects a stack deploy of this file creates (external ones are not ours)."""
    resources: list[Resource] = []
    for section, kind in SECTION_KINDS.items():
        entries = compose.data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, body in entries.items():
            spec = body if isinstance(body, dict) else {}
            if spec.get("external"):
                continue
            resources.append(
                Resource(
                    ResourceKey("swarm", kind, compose.stack, str(name)),
                    "swarm/v1",
                    spec,
                    Origin(compose.file, 1, None, f"/{section}/{escape_pointer(str(name))}"),
                )
            )
    return resources
