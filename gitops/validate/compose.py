"""Checks of compose files for a Swarm target, with ``docker stack deploy`` semantics.

1. The file against ``schemas/compose-swarm.schema.json`` (the Compose v3 subset Swarm loads).
   Messages are worded like Docker's (``services.backend.depends_on must be a list``,
   ``(root) Additional property name is not allowed``) and carry a JSON pointer.
2. What Docker's loader checks after the schema: volume and port short syntax, durations.
3. What a deploy needs: every service has an ``image:`` (Swarm does not build), references to
   networks, volumes, secrets and configs are declared, ``file:`` sources exist in the repository.
4. The compose rule table (:mod:`gitops.validate.compose_rules`, which the Swarm translator reads
   too): keys Swarm ignores are warnings, keys and combinations it refuses are errors.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from gitops.model import Diagnostic, Severity
from gitops.render.compose import ComposeFile, dotted
from gitops.render.yaml import escape_pointer
from gitops.validate import compose_rules
from gitops.validate.compose_rules import PRUNE_KEY
from gitops.validate.units import duration_ns

__all__ = ["check"]



@cache
def _validator() -> Any:
    text = resources.files("gitops").joinpath("schemas/compose-swarm.schema.json").read_text(encoding="utf-8")
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("duration", raises=ValueError)(lambda value: not isinstance(value, str) or duration_ns(value) >= 0)
    return jsonschema.Draft7Validator(json.loads(text), format_checker=checker)


_HUMAN = {"array": "list", "object": "mapping"}


def _human_types(types: Any) -> str:
    names = [_HUMAN.get(t, t) for t in ([types] if isinstance(types, str) else list(types))]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _pointer(path: Any) -> str:
    return "".join("/" + escape_pointer(str(p)) for p in path)


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """(pointer, Docker-style message) for one schema error."""
    path = list(error.absolute_path)
    pointer = _pointer(path)
    field = dotted(pointer)
    validator = error.validator
    if validator == "type":
        return [(pointer, f"{field} must be a {_human_types(error.validator_value)}")]
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extras = [k for k in error.instance if k not in allowed and not any(p.search(k) for p in patterns)]
        return [
            (f"{pointer}/{escape_pointer(str(k))}", f"{field} Additional property {k} is not allowed") for k in extras
        ]
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [(pointer, f"{field} {missing} is required")]
    if validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        return [(pointer, f"{field} must be one of the following: {options}")]
    if validator == "format":
        return [(pointer, f"{field} Does not match format '{error.validator_value}'")]
    if validator == "uniqueItems":
        return [(pointer, f"{field} contains duplicate items")]
    if validator == "oneOf" and error.context:
        best = _best_child(error)
        if best is not None:
            return _describe(best)
        return [(pointer, f"{field} must be a {_one_of_types(error)}")]
    if validator == "const" or error.validator_value is False or validator == "false":
        return [(pointer, f"{field} is not allowed")]
    return [(pointer, f"{field} {error.message}")]


def _one_of_types(error: jsonschema.ValidationError) -> str:
    kinds: list[str] = []
    for option in error.validator_value:
        if isinstance(option, dict) and "type" in option:
            kinds.extend([option["type"]] if isinstance(option["type"], str) else option["type"])
        elif isinstance(option, dict) and "$ref" in option:
            kinds.append("array" if "list" in option["$ref"] else "object")
    return _human_types(list(dict.fromkeys(kinds)) or ["value"])


def _best_child(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """Like Docker: when the value has the type of one alternative, explain that alternative."""
    instance = error.instance
    typed = [
        child for child in error.context or [] if child.validator != "type" and len(child.relative_schema_path) > 1
    ]
    if typed:
        deepest = max(typed, key=lambda child: len(child.absolute_path))
        return deepest
    _ = instance
    return None


def _parse_volume(spec: str) -> str | None:
    """docker/cli's ParseVolume errors for the short syntax, or None when the spec is fine."""
    if not spec:
        return "invalid empty volume spec"
    parts = spec.split(":")
    # a Windows drive letter ("C:\\data:/data") is not a separator
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1].startswith(("\\", "/")):
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    if any(part == "" for part in parts):
        return f"invalid spec: {spec}: empty section between colons"
    if len(parts) > 3:
        return f"invalid spec: {spec}: too many colons"
    return None


def _names(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and isinstance(item.get("source"), str):
                out.append(item["source"])
        return out
    return []


def _inside(root: Path, path: Path) -> bool:
    base = root.resolve()
    target = path.resolve()
    return target == base or base in target.parents


def check(compose: ComposeFile, root: Path, diagnostics: list[Diagnostic]) -> int:
    """Append every problem of one compose file; return the number of services."""
    file = compose.file
    data = compose.data

    def report(severity: Severity, message: str, pointer: str, code: str) -> None:
        diagnostics.append(Diagnostic(severity, message, file=file, document=1, pointer=pointer, code=code))

    version = data.get("version")
    if version is not None and not str(version).startswith("3"):
        report(Severity.ERROR, f"unsupported Compose file version: {version} (docker stack needs 3.x)", "/version",
               "compose-version")  # fmt: skip
        return 0
    table = compose_rules.check(data, file=file, document=1)
    # One error per field: a key the table refuses is reported with the table's reason (not again
    # as the schema's additionalProperties error); a value the schema refuses, by the schema.
    refused = {d.pointer for d in table if d.severity is Severity.ERROR}
    seen: set[tuple[str, str]] = set()
    errors = list(_validator().iter_errors(data))
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        for pointer, message in _describe(error):
            if error.validator == "additionalProperties" and pointer in refused:
                continue
            if (pointer, message) not in seen:
                seen.add((pointer, message))
                report(Severity.ERROR, message, pointer, "compose-schema")
    schema_pointers = {pointer for pointer, _ in seen}
    diagnostics.extend(d for d in table if d.severity is not Severity.ERROR or d.pointer not in schema_pointers)
    services = data.get("services")
    if not isinstance(services, dict):
        return 0

    declared = {section: set(_names(data.get(section))) for section in ("networks", "volumes", "secrets", "configs")}
    for name, service in services.items():
        base = f"/services/{escape_pointer(str(name))}"
        if not isinstance(service, dict):
            continue
        if not service.get("image"):
            why = "has build: but no image:" if "build" in service else "has no image:"
            report(Severity.ERROR, f"service {name} {why} Swarm runs only images from a registry; build and push "
                   "the image, then set image:", f"{base}/image" if "image" in service else base,
                   "swarm-no-image")  # fmt: skip
        volumes = service.get("volumes")
        for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
            pointer = f"{base}/volumes/{index}"
            if isinstance(volume, str):
                problem = _parse_volume(volume)
                if problem:
                    report(Severity.ERROR, f"error decoding 'Volumes[{index}]': {problem}", pointer, "compose-volume")
                    continue
                source = volume.split(":")[0] if ":" in volume else ""
                named = source and not source.startswith((".", "/", "~", "$")) and not re.match(r"^[a-zA-Z]:", source)
                if named and source not in declared["volumes"]:
                    report(Severity.ERROR, f'service {name} refers to undefined volume "{source}"', pointer,
                               "compose-reference")  # fmt: skip
            elif (
                isinstance(volume, dict)
                and volume.get("type") == "volume"
                and volume.get("source")
                and volume["source"] not in declared["volumes"]
            ):
                report(Severity.ERROR, f'service {name} refers to undefined volume "{volume["source"]}"',
                           pointer, "compose-reference")  # fmt: skip
        networks = service.get("networks")
        for network in _names(networks):
            if network != "default" and network not in declared["networks"]:
                report(Severity.ERROR, f'service {name} refers to undefined network "{network}"', f"{base}/networks",
                       "compose-reference")  # fmt: skip
        for section, singular in (("secrets", "secret"), ("configs", "config")):
            for index, ref in enumerate(_names(service.get(section))):
                if ref not in declared[section]:
                    report(Severity.ERROR, f'service {name} refers to undefined {singular} "{ref}"',
                           f"{base}/{section}/{index}", "compose-reference")  # fmt: skip

    for section, singular in (("secrets", "secret"), ("configs", "config")):
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, spec in entries.items():
            if not isinstance(spec, dict):
                continue
            pointer = f"/{section}/{escape_pointer(str(name))}"
            file_source = spec.get("file")
            if isinstance(file_source, str):
                source = file_source
                path = (compose.directory / source) if not Path(source).is_absolute() else Path(source)
                if Path(source).is_absolute() or not _inside(root, path):
                    report(Severity.ERROR, f"{singular} {name}: file {source} is outside the repository",
                           f"{pointer}/file", "path-escape")  # fmt: skip
                elif not path.is_file():
                    report(Severity.ERROR, f"{singular} {name}: file {source} not found", f"{pointer}/file",
                           "compose-file-missing")  # fmt: skip
            elif not spec.get("external") and "template_driver" not in spec and "driver" not in spec:
                report(
                    Severity.ERROR, f"{singular} {name}: needs file: or external: true", pointer, "compose-reference"
                )
    for section in ("services", "networks", "volumes", "configs", "secrets"):
        entries = data.get(section)
        for name, spec in (entries.items() if isinstance(entries, dict) else ()):
            if isinstance(spec, dict) and PRUNE_KEY in spec and not isinstance(spec[PRUNE_KEY], bool):
                report(Severity.ERROR, f"{section}.{name}.{PRUNE_KEY} must be true or false",
                       f"/{section}/{escape_pointer(str(name))}/{PRUNE_KEY}", "compose-prune")
    return len(services)
