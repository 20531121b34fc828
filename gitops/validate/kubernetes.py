"""Checks of Kubernetes manifests: required keys, removed APIs, schemas, CRDs, duplicates."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from gitops.model import Diagnostic, ResourceKey, Severity
from gitops.render.apis import group_of, removed, version_tuple
from gitops.render.kubernetes import Manifest, crd_scopes, display_name, identity
from gitops.validate.schemas import SchemaStore, leaf_errors, precise_validator

__all__ = ["CustomResources", "check"]


@dataclass
class _Crd:
    validator: Any | None
    namespaced: bool
    served: bool


def _openapi_to_jsonschema(node: Any, strict: bool) -> Any:
    """A CRD's OpenAPI v3 schema as JSON Schema: nullable, int-or-string, unknown-field rules."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: _openapi_to_jsonschema(sub, strict) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in ("allOf", "anyOf", "oneOf"):
            out[key] = _openapi_to_jsonschema(value, strict)
        elif key in ("nullable", "format") or key.startswith("x-kubernetes-"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if (
        strict
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


class CustomResources:
    """Kinds defined by the CustomResourceDefinitions among the manifests."""

    def __init__(self, manifests: list[Manifest], strict: bool) -> None:
        self.kinds: dict[tuple[str, str, str], _Crd] = {}  # (group, version, kind)
        self.scopes = crd_scopes(manifests)
        for manifest in manifests:
            body = manifest.body
            if body.get("kind") != "CustomResourceDefinition" or body.get("apiVersion") != "apiextensions.k8s.io/v1":
                continue
            spec = body.get("spec")
            if not isinstance(spec, dict) or not isinstance(spec.get("names"), dict):
                continue
            group, kind = spec.get("group"), spec["names"].get("kind")
            if not isinstance(group, str) or not isinstance(kind, str):
                continue
            for version in spec.get("versions") or []:
                if not isinstance(version, dict) or not isinstance(version.get("name"), str):
                    continue
                wrapper = version.get("schema")
                schema = wrapper.get("openAPIV3Schema") if isinstance(wrapper, dict) else None
                validator = None
                if isinstance(schema, dict):
                    converted = _openapi_to_jsonschema(copy.deepcopy(schema), strict)
                    props = converted.setdefault("properties", {})
                    props.setdefault("apiVersion", {"type": "string"})
                    props.setdefault("kind", {"type": "string"})
                    props.setdefault("metadata", {"type": "object"})
                    try:
                        validator = precise_validator(converted)
                    except Exception:  # a broken CRD schema is reported by the CRD's own schema check
                        validator = None
                self.kinds[(group, version["name"], kind)] = _Crd(
                    validator, spec.get("scope", "Namespaced") != "Cluster", bool(version.get("served", True))
                )

    def lookup(self, api_version: str, kind: str) -> _Crd | None:
        group = group_of(api_version)
        version = api_version.rpartition("/")[2]
        return self.kinds.get((group, version, kind))


def _missing(body: dict[str, Any]) -> list[str]:
    missing = []
    api_version = body.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        missing.append("apiVersion")
    kind = body.get("kind")
    if not isinstance(kind, str) or not kind:
        missing.append("kind")
    return missing


def check(
    manifests: list[Manifest],
    store: SchemaStore,
    strict: bool,
    default_namespace: str,
    diagnostics: list[Diagnostic],
) -> int:
    """Append every problem of the manifests to ``diagnostics``; return how many objects were checked."""
    custom = CustomResources(manifests, strict)
    seen: dict[ResourceKey, Manifest] = {}
    target_version = version_tuple(store.version)
    unknown_severity = Severity.ERROR if strict else Severity.WARNING
    for manifest in manifests:
        body = manifest.body
        origin = manifest.origin
        where: dict[str, Any] = {"file": origin.file, "document": origin.document, "line": origin.line,
                                 "column": origin.column}
        missing = _missing(body)
        if missing:
            keys = " and ".join(f"'{m}'" for m in missing)
            diagnostics.append(
                Diagnostic(Severity.ERROR, f"missing {keys} key{'s' if len(missing) > 1 else ''}",
                           pointer=origin.pointer or "", code="missing-" + missing[-1].lower(), **where)
            )  # fmt: skip
            continue
        api_version: str = body["apiVersion"]
        kind: str = body["kind"]
        key = identity(manifest, default_namespace, custom.scopes)
        name = display_name(manifest, key)
        metadata = body.get("metadata")
        has_name = isinstance(metadata, dict) and (
            (isinstance(metadata.get("name"), str) and metadata["name"])
            or (isinstance(metadata.get("generateName"), str) and metadata["generateName"])
        )
        if not has_name:
            diagnostics.append(
                Diagnostic(Severity.ERROR, "missing metadata.name (or metadata.generateName)",
                           pointer=f"{origin.pointer}/metadata", code="missing-name", resource=name, **where)
            )  # fmt: skip
        schema = store.lookup(api_version, kind)
        if schema is not None:
            for error in schema.errors(body):
                diagnostics.append(
                    Diagnostic(Severity.ERROR, _without_secret(kind, error.pointer, error.message),
                               pointer=origin.pointer + error.pointer, code="schema", resource=name, **where)
                )  # fmt: skip
        else:
            gone = removed(api_version, kind)
            crd = custom.lookup(api_version, kind)
            if gone is not None and target_version >= version_tuple(gone[0]):
                diagnostics.append(
                    Diagnostic(Severity.ERROR,
                               f"{api_version} {kind} was removed in Kubernetes {gone[0]}; use {gone[1]} instead",
                               pointer=f"{origin.pointer}/apiVersion", code="removed-api", resource=name, **where)
                )  # fmt: skip
            elif crd is not None:
                if crd.validator is not None:
                    for error in leaf_errors(crd.validator, body):
                        diagnostics.append(
                            Diagnostic(Severity.ERROR, error.message, pointer=origin.pointer + error.pointer,
                                       code="schema", resource=name, **where)
                        )  # fmt: skip
                if not crd.served:
                    diagnostics.append(
                        Diagnostic(Severity.ERROR, f"version {api_version} of {kind} is not served by its CRD",
                                   pointer=f"{origin.pointer}/apiVersion", code="crd-version", resource=name,
                                   **where)
                    )  # fmt: skip
            else:
                diagnostics.append(
                    Diagnostic(
                        unknown_severity,
                        f"unknown kind {kind} in {api_version}: no schema in Kubernetes {store.version} and no "
                        "CustomResourceDefinition for it among the validated files",
                        pointer=f"{origin.pointer}/kind",
                        code="unknown-kind",
                        resource=name,
                        **where,
                    )
                )
        if key is not None:
            first = seen.get(key)
            if first is None:
                seen[key] = manifest
            else:
                other = first.origin
                at = f"{other.file}" + (f", document {other.document}" if other.document is not None else "")
                diagnostics.append(
                    Diagnostic(Severity.ERROR,
                               f"duplicate object {key} (group {key.group or 'core'}): also defined in {at}",
                               pointer=f"{origin.pointer}/metadata/name", code="duplicate-object",
                               resource=str(key), **where)
                )  # fmt: skip
    return len(manifests)


def _without_secret(kind: object, pointer: str, message: str) -> str:
    """A schema message about a value of a Secret's data or stringData, without the value (the
    messages quote what they found: ``expected string, got integer 5``)."""
    parts = pointer.split("/")
    if kind != "Secret" or len(parts) < 3 or parts[1] not in ("data", "stringData"):
        return message
    head, found, rest = message.partition(", got ")
    if found:
        return f"{head}, got {rest.split(' ', 1)[0]} (the value is not shown: it is secret)"
    return "the value does not match the schema (it is not shown: it is secret)"

