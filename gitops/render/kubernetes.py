"""Kubernetes manifests: documents to objects (``List`` expansion), identities, kustomize builds."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gitops.model import Diagnostic, Origin, Resource, ResourceKey, Severity
from gitops.render.apis import CLUSTER_SCOPED, group_of
from gitops.render.yaml import Document

__all__ = [
    "KUSTOMIZATION_FILES",
    "Manifest",
    "build_kustomization",
    "crd_scopes",
    "display_name",
    "identity",
    "manifests_from_documents",
    "to_resources",
]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_TIMEOUT_SECONDS = 120


@dataclass
class Manifest:
    """One Kubernetes object as read from the repository, before any check."""

    body: dict[str, Any]
    origin: Origin

    @property
    def api_version(self) -> Any:
        return self.body.get("apiVersion")

    @property
    def kind(self) -> Any:
        return self.body.get("kind")


def _type_name(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def manifests_from_documents(file: str, documents: Iterable[Document], diagnostics: list[Diagnostic]) -> list[Manifest]:
    """Objects of a YAML stream: empty documents skipped, ``List`` items expanded."""
    found: list[Manifest] = []
    for document in documents:
        data = document.data
        if data is None:
            continue
        origin = Origin(file, document.index, document.line, column=document.column)
        at: dict[str, Any] = {"file": file, "document": document.index, "line": document.line,
                              "column": document.column}
        if not isinstance(data, dict):
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"document is {_type_name(data)}, expected a mapping (a Kubernetes object)",
                    **at, code="not-an-object",
                )
            )  # fmt: skip
            continue
        kind = data.get("kind")
        items = data.get("items")
        if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and isinstance(items, list)):
            if items is None:
                continue
            if not isinstance(items, list):
                diagnostics.append(
                    Diagnostic(Severity.ERROR, f"{kind} items must be a list, got {_type_name(items)}",
                               **at, pointer="/items",
                               code="schema")
                )  # fmt: skip
                continue
            for position, item in enumerate(items):
                pointer = f"/items/{position}"
                if not isinstance(item, dict):
                    diagnostics.append(
                        Diagnostic(Severity.ERROR, f"List item is {_type_name(item)}, expected a mapping",
                                   **at, pointer=pointer,
                                   code="not-an-object")
                    )  # fmt: skip
                    continue
                found.append(Manifest(item, replace(origin, pointer=pointer)))
            continue
        found.append(Manifest(data, origin))
    return found


def crd_scopes(manifests: Iterable[Manifest]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for every CustomResourceDefinition among the manifests."""
    scopes: dict[tuple[str, str], bool] = {}
    for manifest in manifests:
        body = manifest.body
        if body.get("kind") != "CustomResourceDefinition":
            continue
        spec = body.get("spec")
        if not isinstance(spec, dict):
            continue
        names = spec.get("names")
        group = spec.get("group")
        if isinstance(names, dict) and isinstance(group, str) and isinstance(names.get("kind"), str):
            scopes[(group, names["kind"])] = spec.get("scope", "Namespaced") != "Cluster"
    return scopes


def identity(
    manifest: Manifest, default_namespace: str, scopes: dict[tuple[str, str], bool] | None = None
) -> ResourceKey | None:
    """Group, kind, namespace (defaulted; empty for cluster-scoped kinds), name; None if unnamed."""
    body = manifest.body
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    metadata = body.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(metadata, dict):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    group = group_of(api_version)
    namespaced = (scopes or {}).get((group, kind))
    if namespaced is None:
        namespaced = (group, kind) not in CLUSTER_SCOPED
    namespace = ""
    if namespaced:
        written = metadata.get("namespace")
        namespace = written if isinstance(written, str) and written else default_namespace
    return ResourceKey(group, kind, namespace, name)


def display_name(manifest: Manifest, key: ResourceKey | None = None) -> str:
    """How an object is named in messages: ``Deployment/web/api`` or ``Job/pi-*`` (generateName)."""
    if key is not None:
        return str(key)
    body = manifest.body
    kind = body.get("kind") if isinstance(body.get("kind"), str) and body.get("kind") else "object"
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    name = metadata.get("name")
    if isinstance(name, str) and name:
        namespace = metadata.get("namespace")
        return f"{kind}/{namespace}/{name}" if isinstance(namespace, str) and namespace else f"{kind}/{name}"
    generate = metadata.get("generateName")
    if isinstance(generate, str) and generate:
        return f"{kind}/{generate}*"
    return str(kind)


def to_resources(
    manifests: Iterable[Manifest], default_namespace: str, scopes: dict[tuple[str, str], bool] | None = None
) -> list[Resource]:
    """Resources for the manifests that have an identity (objects without a name are left out)."""
    resources: list[Resource] = []
    for manifest in manifests:
        key = identity(manifest, default_namespace, scopes)
        if key is not None:
            resources.append(Resource(key, str(manifest.body["apiVersion"]), manifest.body, manifest.origin))
    return resources


def _kustomize_command(directory: Path, helm: str | None) -> list[str] | None:
    # helmCharts: generators need Helm enabled and the helm binary (kustomize looks for it on PATH otherwise)
    helm_flags = ["--enable-helm", "--helm-command", helm] if helm else []
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build", *helm_flags, str(directory)]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize", *helm_flags, str(directory)]
    return None


def build_kustomization(
    directory: Path, display: str, helm: str | None = None
) -> tuple[bytes | None, Diagnostic | None]:
    """``kustomize build`` of a directory (or ``kubectl kustomize``); never through a shell. With
    ``helm`` (the binary), ``helmCharts:`` generators are built with Helm enabled."""
    command = _kustomize_command(directory, helm)
    if command is None:
        return None, Diagnostic(
            Severity.ERROR,
            "this is a kustomize directory, but no kustomize engine was found: install kustomize "
            "(https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl, and put it on PATH",
            file=display, code="kustomize-missing",
        )  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "TMPDIR", "LANG")}
    try:
        completed = subprocess.run(
            command, capture_output=True, timeout=KUSTOMIZE_TIMEOUT_SECONDS, check=False, env=env,
            cwd=str(directory), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, Diagnostic(
            Severity.ERROR, f"kustomize build did not finish within {KUSTOMIZE_TIMEOUT_SECONDS}s",
            file=display, code="kustomize",
        )  # fmt: skip
    except OSError as exc:
        return None, Diagnostic(Severity.ERROR, f"cannot run kustomize: {exc}", file=display, code="kustomize")
    if completed.returncode != 0:
        reason = completed.stderr.decode("utf-8", "replace").strip().replace(str(directory), display)
        reason = reason.removeprefix("Error: ").removeprefix("error: ")
        if len(reason) > 500:
            reason = reason[:497] + "..."
        return None, Diagnostic(Severity.ERROR, f"kustomize build failed: {reason}", file=display, code="kustomize")
    return completed.stdout, None
