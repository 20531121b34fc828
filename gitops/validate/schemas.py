"""JSON Schemas for Kubernetes kinds, offline.

Source: the PyPI package ``kubernetes-validate`` (github.com/willthames/kubernetes-validate),
which ships the OpenAPI definitions of every Kubernetes minor release from 1.25 on, converted to
JSON Schema draft 2020-12, in two flavours: ``vX.Y.0-local`` (unknown fields allowed) and
``vX.Y.0-local-strict`` (``additionalProperties: false``). The layout is kubeconform's:
``<kind>-<group's first label>-<version>.json`` (``deployment-apps-v1.json``,
``configmap-v1.json``), every file referring to ``_definitions.json``. The package is only read
as data; its Python code is not imported.

Two validators per kind:

* a *fast* one, compiled here from the schema into Python closures. It answers valid/invalid
  and is shared by every object of that kind (the definitions it refers to are compiled once);
* a *precise* one (``jsonschema`` Draft 2020-12 with a registry holding the definitions), run
  only on objects the fast one rejects, to report every problem with its JSON pointer.

The closure compiler handles the keywords these schemas use (type, properties,
additionalProperties, items, required, enum, oneOf, $ref); a schema with any other keyword is
validated with ``jsonschema`` alone. ``format`` is not asserted (kubeconform does not either:
Kubernetes' own formats such as ``int-or-string`` or Go durations are not JSON Schema formats).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "SCHEMA_SOURCE",
    "KindSchema",
    "SchemaError",
    "SchemaStore",
    "UnsupportedVersion",
    "available_versions",
]

DEFAULT_KUBERNETES_VERSION = "1.35"
SCHEMA_SOURCE = "kubernetes-validate (PyPI), offline JSON Schemas per Kubernetes minor version"

Check = Callable[[Any], bool]


class UnsupportedVersion(Exception):
    """No schemas for the requested Kubernetes version."""


@dataclass(frozen=True)
class SchemaError:
    pointer: str  # JSON pointer inside the validated object
    message: str


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.0-local$")


@cache
def available_versions() -> tuple[str, ...]:
    """Kubernetes minor versions with schemas, oldest first ("1.25", ..., "1.37")."""
    root = _package_dir()
    if root is None or not root.is_dir():
        return ()
    found: list[tuple[int, int]] = []
    for entry in root.iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def _parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.\d+)?$", text.strip())
    if not match:
        raise UnsupportedVersion(f"not a Kubernetes version: {text!r} (expected X.Y, e.g. 1.35)")
    return int(match.group(1)), int(match.group(2))


def schema_file_name(api_version: str, kind: str) -> str:
    """kubeconform's file naming: ``rbac.authorization.k8s.io/v1`` + ``Role`` -> ``role-rbac-v1.json``."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        suffix = f"{group.split('.', 1)[0]}-{version}"
    else:
        suffix = api_version
    return f"{kind.lower()}-{suffix.lower()}.json"


# --- the closure compiler ---------------------------------------------------------------------------

_SUPPORTED = frozenset({"type", "properties", "additionalProperties", "items", "required", "enum", "oneOf", "$ref"})
_IGNORED = frozenset(
    {
        "description", "format", "$schema", "$id", "title", "default", "example", "examples",
        "x-kubernetes-group-version-kind", "x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy",
        "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
        "x-kubernetes-unions", "discriminator", "fields-to-discriminateBy", "localhostProfile",
    }
)  # fmt: skip


class _Unsupported(Exception):
    pass


def _type_check(types: list[str]) -> Check:
    accepted: set[type] = set()
    integral_floats = False
    for name in types:
        if name == "string":
            accepted.add(str)
        elif name == "integer":
            accepted.add(int)
            integral_floats = True
        elif name == "number":
            accepted.update((int, float))
        elif name == "boolean":
            accepted.add(bool)
        elif name == "null":
            accepted.add(type(None))
        elif name == "object":
            accepted.add(dict)
        elif name == "array":
            accepted.add(list)
        else:
            raise _Unsupported(f"type {name}")
    exact = frozenset(accepted)
    if integral_floats and float not in exact:

        def check_integer(value: Any) -> bool:
            cls = value.__class__
            return cls in exact or (cls is float and value.is_integer())

        return check_integer
    return lambda value: value.__class__ in exact


class _Compiler:
    """Compiles schemas to boolean closures; definitions are compiled once and shared."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.compiled: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        name = ref.rsplit("/", 1)[-1]
        if "#/$defs/" not in ref and "#/definitions/" not in ref:
            raise _Unsupported(f"$ref {ref}")
        found = self.compiled.get(name)
        if found is not None:
            return found
        if name not in self.definitions:
            raise _Unsupported(f"$ref {ref}")
        slot: list[Check] = []

        def deferred(value: Any) -> bool:  # recursive definitions (JSONSchemaProps) go through here
            return slot[0](value)

        self.compiled[name] = deferred
        try:
            check = self.compile(self.definitions[name])
        except _Unsupported:
            del self.compiled[name]
            raise
        slot.append(check)
        self.compiled[name] = check
        return check

    def compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, dict):
            raise _Unsupported("schema is not an object")
        unknown = set(schema) - _SUPPORTED - _IGNORED
        if unknown:
            raise _Unsupported(", ".join(sorted(unknown)))
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"]))
        if "type" in schema:
            types = schema["type"]
            checks.append(_type_check([types] if isinstance(types, str) else list(types)))
        if "enum" in schema:
            allowed = list(schema["enum"])

            def check_enum(value: Any) -> bool:
                return any(value == item and type(value) is type(item) for item in allowed)

            checks.append(check_enum)
        if "oneOf" in schema:
            options = [self.compile(option) for option in schema["oneOf"]]

            def check_one_of(value: Any) -> bool:
                return sum(1 for option in options if option(value)) == 1

            checks.append(check_one_of)
        if "required" in schema:
            required = tuple(schema["required"])

            def check_required(value: Any) -> bool:
                return value.__class__ is not dict or all(key in value for key in required)

            checks.append(check_required)
        properties = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        additional = schema.get("additionalProperties", True)
        if properties or additional is not True:
            extra: Check | None = None if additional is True else self.compile(additional)

            def check_object(value: Any) -> bool:
                if value.__class__ is not dict:
                    return True
                for key, item in value.items():
                    check = properties.get(key)
                    if check is not None:
                        if not check(item):
                            return False
                    elif extra is not None and not extra(item):
                        return False
                return True

            checks.append(check_object)
        if "items" in schema:
            item_check = self.compile(schema["items"])

            def check_items(value: Any) -> bool:
                return value.__class__ is not list or all(item_check(item) for item in value)

            checks.append(check_items)
        if not checks:
            return lambda value: True
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            first, second = checks
            return lambda value: first(value) and second(value)
        return lambda value: all(check(value) for check in checks)


# --- error messages ------------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        return _json_type(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 60:
        text = text[:57] + '..."'
    return f"{_json_type(value)} {text}" if value is not None else "null"


def _pointer(path: Iterator[Any] | Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def describe(error: jsonschema.ValidationError) -> SchemaError:
    """A jsonschema error as a short, precise sentence at its JSON pointer."""
    pointer = _pointer(error.absolute_path)
    validator = error.validator
    value = error.validator_value
    instance = error.instance
    if validator == "type":
        types = [value] if isinstance(value, str) else list(value)
        wanted = " or ".join(t for t in types if t != "null") or "null"
        if "null" in types and wanted != "null":
            wanted += " (or null)"
        return SchemaError(pointer, f"expected {wanted}, got {_short(instance)}")
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extras = sorted(key for key in instance if key not in allowed)
        if len(extras) == 1:
            return SchemaError(f"{pointer}/{extras[0]}", f"unknown field {extras[0]!r}")
        return SchemaError(pointer, "unknown fields " + ", ".join(repr(e) for e in extras))
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return SchemaError(pointer, f"missing required field {missing!r}")
    if validator == "enum":
        options = ", ".join(json.dumps(option) for option in value)
        return SchemaError(pointer, f"must be one of {options}, got {_short(instance)}")
    if validator == "oneOf":
        kinds: list[str] = []
        if error.context:
            for sub in error.context:
                if sub.validator == "type":
                    sub_types = sub.validator_value
                    kinds.extend([sub_types] if isinstance(sub_types, str) else sub_types)
            wanted = " or ".join(dict.fromkeys(k for k in kinds if k != "null"))
            if wanted:
                return SchemaError(pointer, f"expected {wanted}, got {_short(instance)}")
        kinds = []
        for option in value if isinstance(value, list) else []:
            option_types = option.get("type", []) if isinstance(option, dict) else []
            kinds.extend([option_types] if isinstance(option_types, str) else option_types)
        wanted = " or ".join(dict.fromkeys(k for k in kinds if k != "null"))
        if wanted:
            return SchemaError(pointer, f"expected {wanted}, got {_short(instance)}")
        return SchemaError(pointer, f"matches none or several of the allowed forms: {_short(instance)}")
    message = error.message
    if len(message) > 200:
        message = message[:197] + "..."
    return SchemaError(pointer, message)


def _leaf_errors(errors: Iterator[jsonschema.ValidationError]) -> list[SchemaError]:
    found = [describe(error) for error in errors]
    unique: dict[tuple[str, str], SchemaError] = {}
    for item in found:
        unique.setdefault((item.pointer, item.message), item)
    return sorted(unique.values(), key=lambda e: e.pointer)


# --- per-kind schemas ---------------------------------------------------------------------------------


class KindSchema:
    """Validators for one kind: a fast boolean check, and a precise one for the explanation."""

    def __init__(self, name: str, precise: Any, fast: Check | None) -> None:
        self.name = name
        self._precise = precise
        self._fast = fast

    def errors(self, obj: Any) -> list[SchemaError]:
        try:
            if self._fast is not None:
                if self._fast(obj):
                    return []
            elif self._precise.is_valid(obj):
                return []
            return _leaf_errors(self._precise.iter_errors(obj)) or [
                SchemaError("", "does not match the schema of its kind")
            ]
        except RecursionError:
            return [SchemaError("", "object is nested too deeply to validate")]


class SchemaStore:
    """Kubernetes kind schemas of one version and flavour (strict or not), loaded lazily."""

    def __init__(self, kubernetes_version: str | None = None, strict: bool = False) -> None:
        wanted = kubernetes_version or DEFAULT_KUBERNETES_VERSION
        major, minor = _parse_version(wanted)
        versions = available_versions()
        if not versions:
            raise UnsupportedVersion("no Kubernetes schemas found: install the Python package kubernetes-validate")
        usable = [v for v in versions if _parse_version(v) <= (major, minor)]
        if not usable:
            raise UnsupportedVersion(
                f"no schemas for Kubernetes {major}.{minor}: available {versions[0]} to {versions[-1]}"
            )
        self.version = usable[-1]
        self.requested = f"{major}.{minor}"
        self.strict = strict
        root = _package_dir()
        assert root is not None
        self.directory = root / f"v{self.version}.0-local{'-strict' if strict else ''}"
        self._kinds: dict[tuple[str, str], KindSchema | None] = {}
        self._definitions: dict[str, Any] | None = None
        self._registry: Registry[Any] | None = None
        self._compiler: _Compiler | None = None

    def _load_definitions(self) -> tuple[dict[str, Any], Registry[Any], _Compiler]:
        if self._definitions is None or self._registry is None or self._compiler is None:
            with (self.directory / "_definitions.json").open("rb") as handle:
                document = json.load(handle)
            self._definitions = document
            self._registry = Resource.from_contents(document) @ Registry()
            self._compiler = _Compiler(document.get("$defs", {}))
        return self._definitions, self._registry, self._compiler

    def has(self, api_version: str, kind: str) -> bool:
        return (self.directory / schema_file_name(api_version, kind)).is_file()

    def lookup(self, api_version: str, kind: str) -> KindSchema | None:
        key = (api_version, kind)
        if key in self._kinds:
            return self._kinds[key]
        path = self.directory / schema_file_name(api_version, kind)
        found: KindSchema | None = None
        if path.is_file():
            with path.open("rb") as handle:
                schema = json.load(handle)
            if _matches_gvk(schema, api_version, kind):
                _, registry, compiler = self._load_definitions()
                precise = jsonschema.Draft202012Validator(schema, registry=registry)
                try:
                    fast: Check | None = compiler.compile(schema)
                except _Unsupported:
                    fast = None
                found = KindSchema(path.name, precise, fast)
        self._kinds[key] = found
        return found


def _matches_gvk(schema: dict[str, Any], api_version: str, kind: str) -> bool:
    """The file name folds the group to its first label; check the full group and kind."""
    gvks = schema.get("x-kubernetes-group-version-kind")
    if not gvks:
        return True
    group, _, version = api_version.rpartition("/")
    return any(g.get("group", "") == group and g.get("version") == version and g.get("kind") == kind for g in gvks)


def precise_validator(schema: dict[str, Any]) -> Any:
    """A Draft 2020-12 validator for a standalone schema (CRDs, compose), no format assertions."""
    return jsonschema.Draft202012Validator(schema)


def leaf_errors(validator: Any, instance: Any) -> list[SchemaError]:
    try:
        if validator.is_valid(instance):
            return []
        return _leaf_errors(validator.iter_errors(instance))
    except RecursionError:
        return [SchemaError("", "object is nested too deeply to validate")]
