"""The install manifests of this version: ``deploy/`` of the source tree, shipped in the wheel as
``gitops/manifests`` (a symlink in the source tree, whose files setuptools copies).

:func:`manifests` prints a Kubernetes variant as ``kubectl apply -k`` would build it, for the
subset of kustomize the shipped kustomizations use (``resources``: files and directories, in
order); anything more is refused, so the two cannot drift apart silently (a unit test compares
them with ``kubectl kustomize``)."""

from __future__ import annotations

import posixpath
from importlib import resources
from importlib.resources.abc import Traversable

import yaml

from gitops.errors import GitopsError

#: What ``gitops install --print`` knows: the variant and its directory under deploy/.
VARIANTS = {"kubernetes": "kubernetes", "kubernetes-sharded": "kubernetes/sharded", "swarm": "swarm"}
KUSTOMIZATION = "kustomization.yaml"
SWARM_STACK = "stack.yaml"


def _at(path: str) -> Traversable:
    node = resources.files("gitops") / "manifests"
    for part in path.split("/"):
        node = node / part
    return node


def _kustomize(directory: str) -> list[str]:
    """The documents a kustomization's ``resources`` list, in order (directories recursively)."""
    spec = yaml.safe_load(_at(f"{directory}/{KUSTOMIZATION}").read_text("utf-8")) or {}
    extra = set(spec) - {"apiVersion", "kind", "resources"}
    if extra:
        raise GitopsError(f"deploy/{directory}/{KUSTOMIZATION}: {', '.join(sorted(extra))} is more than "
                          "`gitops install` renders (resources only)")
    documents: list[str] = []
    for entry in spec.get("resources") or []:
        path = posixpath.normpath(f"{directory}/{entry}")
        node = _at(path)
        if node.is_dir():
            documents += _kustomize(path)
        else:
            text = node.read_text("utf-8")
            documents += [doc.strip("\n") for doc in text.split("\n---\n") if yaml.safe_load(doc) is not None]
    return documents


def manifests(variant: str) -> str:
    """The manifests of ``variant`` (a key of :data:`VARIANTS`): Kubernetes objects as one
    multi-document YAML stream, or the Swarm stack file."""
    if variant not in VARIANTS:
        raise GitopsError(f"no install variant {variant!r}; one of: {', '.join(VARIANTS)}")
    if variant == "swarm":
        return _at(f"{VARIANTS[variant]}/{SWARM_STACK}").read_text("utf-8")
    return "".join(f"---\n{doc}\n" for doc in _kustomize(VARIANTS[variant]))
