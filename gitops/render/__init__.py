"""Render: read the files of a checkout into Kubernetes manifests and compose files.

* A directory that holds a ``kustomization.yaml`` is built with kustomize (its files are not read
  one by one); any other directory is walked (sorted, hidden entries skipped) for ``.yaml``,
  ``.yml`` and ``.json`` files.
* A file whose single document has ``services:`` at the top level is a compose file (read with
  YAML 1.2 scalars, interpolated like ``docker stack deploy``); anything else is a stream of
  Kubernetes manifests.
* A Helm chart (an app's ``helm:``) is rendered with ``helm template`` (see :mod:`.helm`).
* A file of Kubernetes manifests that sops encrypted (a whole Secret, or its ``data``/``stringData``)
  is decrypted in memory with the ``sops`` binary (see :mod:`.sops`); only Secrets may be, since
  any other kind's values are shown in plans. The decrypted Secret carries the annotation
  ``gitops.dev/sops`` (its values are withheld from release records). The raw text kept for line
  lookups is the encrypted one.
* Sizes are bounded per file and per run; symlinks that lead out of the repository are refused.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.errors import DecryptionError
from gitops.model import Diagnostic, Severity
from gitops.model.releases import SOPS_KEY
from gitops.render import compose as compose_render
from gitops.render import helm as helm_render
from gitops.render import kubernetes as k8s
from gitops.render import sops as sops_files
from gitops.render.charts import ChartCache
from gitops.render.compose import ComposeFile
from gitops.render.kubernetes import Manifest
from gitops.render.yaml import Dialect, Limits, Lines, load

__all__ = ["ChartCache", "ComposeFile", "Limits", "Manifest", "Rendered", "Renderer"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
SENSITIVE_COMPOSE_KEY = "x-gitops-sensitive"  # as gitops.validate.compose_rules names it (a unit test keeps them equal)
#: The environment variables of a service whose values came from a SOPS env file (written here;
#: the Swarm translator makes it the service's gitops.dev/sops label: withheld from records).
SOPS_COMPOSE_KEY = "x-gitops-sops"


@dataclass
class Rendered:
    """Everything read: manifests, compose files, problems, and the raw text for line lookups."""

    manifests: list[Manifest] = field(default_factory=list)
    compose: list[ComposeFile] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, tuple[bytes, Dialect]] = field(default_factory=dict)
    # (file, document) -> (the document's data, Document.lines, first line, its column): positions
    # without a re-read
    lines: dict[tuple[str, int], tuple[Any, dict[int, Lines], int, int]] = field(default_factory=dict)
    files: int = 0
    bytes_read: int = 0


class Renderer:
    """Reads paths under one root (the checkout) into a :class:`Rendered`."""

    def __init__(
        self,
        root: Path,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        stack: str | None = None,
        keep_sources: bool = True,
        helm: str | None = None,
        charts: ChartCache | None = None,
        sops: sops_files.Sops | None = None,
        sensitive_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.limits = limits or Limits()
        self.env: Mapping[str, str] = env if env is not None else dict(os.environ)
        self.stack = stack
        self.keep_sources = keep_sources
        self.helm = helm  # the helm binary (None: not found); kustomize gets it for helmCharts:
        self.charts = charts  # the cache of repository charts (None: downloaded every time)
        self.sops = sops  # decrypts SOPS files (None: an encrypted file is an error)
        # Variables of ``env`` decrypted from a SOPS env file -> that file: a compose file may use
        # them only in environment values, which are then marked sensitive (x-gitops-sensitive).
        self.sensitive_env: Mapping[str, str] = sensitive_env or {}
        self.result = Rendered()
        self._over_budget = False

    # -- helpers ---------------------------------------------------------------------------------

    def display(self, path: Path) -> str:
        """The path relative to the repository root (the root is resolved; ``path`` may not be,
        e.g. when the repository is reached through a symlink)."""
        for candidate in (path, path.absolute()):
            try:
                return candidate.relative_to(self.root).as_posix() or "."
            except ValueError:
                pass
        try:
            parent = path.absolute().parent.resolve()
            return (parent / path.name).relative_to(self.root).as_posix() or "."
        except (ValueError, OSError):
            return str(path)

    def error(self, message: str, file: str | None, code: str, **where: object) -> None:
        self.result.diagnostics.append(Diagnostic(Severity.ERROR, message, file=file, code=code, **where))  # type: ignore[arg-type]

    def _inside(self, path: Path) -> bool:
        target = path.resolve()
        return target == self.root or self.root in target.parents

    # -- entry points ------------------------------------------------------------------------------

    def add_path(self, path: Path) -> None:
        """A file or a directory (``path`` may be absolute; it must lie under the root)."""
        if not path.exists() and not path.is_symlink():
            self.error("no such file or directory", self.display(path), "not-found")
            return
        if path.is_symlink() and not self._inside(path):
            self.error("symlink points outside the repository; refusing to follow it", self.display(path),
                       "symlink-escape")  # fmt: skip
            return
        if path.is_dir():
            self._add_directory(path)
        else:
            self._add_file(path, explicit=True)

    def _add_directory(self, directory: Path) -> None:
        if (directory / "Chart.yaml").is_file():
            display = self.display(directory)
            self.error(f"{display} is a Helm chart, not a directory of manifests: declare it in gitops.yaml as an "
                       f"app's helm: {{chart: {display}}}", display, "helm-chart-path")
            return
        for name in k8s.KUSTOMIZATION_FILES:
            if (directory / name).is_file():
                self._add_kustomization(directory, name)
                return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            self.error(f"cannot list directory: {exc.strerror}", self.display(directory), "io")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                if not self._inside(path):
                    self.error("symlink points outside the repository; refusing to follow it", self.display(path),
                               "symlink-escape")  # fmt: skip
                    continue
                if path.is_dir():
                    continue  # its target lies in the repository and is read where it is
            if entry.is_dir(follow_symlinks=False):
                self._add_directory(path)
            elif entry.name.endswith(MANIFEST_SUFFIXES):
                self._add_file(path, explicit=False)

    def _read(self, path: Path, display: str) -> bytes | None:
        limits = self.limits
        try:
            size = path.stat().st_size
        except OSError as exc:
            self.error(f"cannot read: {exc.strerror}", display, "io")
            return None
        if size > limits.max_file_bytes:
            self.error(f"file is {size} bytes, over the limit of {limits.max_file_bytes} bytes per file", display,
                       "file-too-large")  # fmt: skip
            return None
        if self.result.bytes_read + size > limits.max_repo_bytes:
            if not self._over_budget:
                self.error(f"the files read exceed the limit of {limits.max_repo_bytes} bytes per repository; "
                           "the rest was not read", display, "repo-too-large")  # fmt: skip
                self._over_budget = True
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(limits.max_file_bytes + 1)
        except OSError as exc:
            self.error(f"cannot read: {exc.strerror}", display, "io")
            return None
        self.result.bytes_read += len(data)
        self.result.files += 1
        return data

    def _add_file(self, path: Path, explicit: bool) -> None:
        display = self.display(path)
        data = self._read(path, display)
        if data is None:
            return
        self.add_text(data, display, path.parent)

    def add_text(self, data: bytes, display: str, directory: Path, keep_lines: bool = True) -> None:
        """Read one stream: a compose file or Kubernetes manifests."""
        track = self.keep_sources and keep_lines
        loaded = load(data, display, Dialect.KUBERNETES, self.limits, track_lines=track)
        documents = [d for d in loaded.documents if d.data is not None]
        if any(sops_files.is_encrypted_document(d.data) for d in documents):
            self._add_encrypted(data, display)
            return
        if len(documents) == 1 and compose_render.is_compose(documents[0].data):
            self._add_compose(data, display, directory)
            return
        if track:
            self.result.sources[display] = (data, Dialect.KUBERNETES)
            for document in documents:
                if document.lines is not None:
                    self.result.lines[(display, document.index)] = (document.data, document.lines, document.line,
                                                                        document.column)
        self.result.diagnostics.extend(loaded.diagnostics)
        self.result.manifests.extend(k8s.manifests_from_documents(display, loaded.documents, self.result.diagnostics))

    def decrypt(self, data: bytes, fmt: str, display: str) -> bytes | None:
        """The plain text of a SOPS file, or None after an error diagnostic (of the error's code)."""
        try:
            if self.sops is None:
                raise sops_files.not_found(display)
            return self.sops.decrypt(data, fmt, display)
        except DecryptionError as exc:
            self.error(str(exc).removeprefix(f"{display}: "), display, exc.code)
            return None

    def _add_encrypted(self, data: bytes, display: str) -> None:
        """Kubernetes manifests that sops encrypted: decrypted in memory; only Secrets may be."""
        if self.keep_sources:
            self.result.sources[display] = (data, Dialect.KUBERNETES)  # the encrypted text, for line lookups
        plain = self.decrypt(data, "json" if data.lstrip()[:1] == b"{" else "yaml", display)
        if plain is None:
            return
        loaded = load(plain, display, Dialect.KUBERNETES, self.limits)
        if loaded.diagnostics:  # their messages may quote the plain text: say only where
            self.error("the decrypted content of this SOPS file does not load as YAML", display, "sops-failed")
            return
        for document in loaded.documents:
            kind = document.data.get("kind") if isinstance(document.data, dict) else None
            if kind != "Secret":
                shown = kind if isinstance(kind, str) and kind.isidentifier() else "document that is not a Secret"
                self.error(f"a {shown} may not be SOPS-encrypted: its values would be shown in plans and kept in "
                           "release records; put secret values in a Secret", display, "sops-not-secret",
                           document=document.index, pointer="/kind")
                return
        for document in loaded.documents:
            if isinstance(document.data, dict):
                metadata = document.data.setdefault("metadata", {})
                if isinstance(metadata, dict):
                    annotations = metadata.get("annotations")
                    metadata["annotations"] = {**(annotations if isinstance(annotations, dict) else {}),
                                               SOPS_KEY: "decrypted"}
        self.result.manifests.extend(k8s.manifests_from_documents(display, loaded.documents, self.result.diagnostics))

    def _add_compose(self, data: bytes, display: str, directory: Path) -> None:
        loaded = load(data, display, Dialect.COMPOSE, self.limits)
        if self.keep_sources:
            self.result.sources[display] = (data, Dialect.COMPOSE)
        self.result.diagnostics.extend(loaded.diagnostics)
        documents = [d for d in loaded.documents if d.data is not None]
        if not documents:
            return
        unset: set[str] = set()
        used: dict[str, set[str]] = {}
        data_out = compose_render.interpolate(documents[0].data, self.env, display, self.result.diagnostics, unset,
                                              used if self.sensitive_env else None)
        self._mark_decrypted(data_out, used, display)
        for name in sorted(unset):
            self.result.diagnostics.append(
                Diagnostic(Severity.WARNING, f"the {name} variable is not set; defaulting to a blank string",
                           file=display, document=1, code="interpolation-unset")
            )  # fmt: skip
        stack = self.stack or directory.name or "stack"
        self.result.compose.append(ComposeFile(display, directory, data_out, stack, unset))

    def _mark_decrypted(self, data: dict[str, Any], used: dict[str, set[str]], display: str) -> None:
        """Environment values that hold a value decrypted from a SOPS env file are marked sensitive
        (the service's ``x-gitops-sensitive``, which the one mask reads); any other field that
        holds one is an error, since plans would show it."""
        marks: dict[str, set[str]] = {}
        for pointer, names in sorted(used.items()):
            decrypted = sorted(names & set(self.sensitive_env))
            if not decrypted:
                continue
            parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
            variable = None
            if len(parts) == 4 and parts[0] == "services" and parts[2] == "environment":
                service = (data.get("services") or {}).get(parts[1]) or {}
                environment = service.get("environment")
                if isinstance(environment, dict):
                    variable = parts[3]
                elif isinstance(environment, list) and parts[3].isdigit():
                    variable = str(environment[int(parts[3])]).split("=", 1)[0]
            if variable is not None:
                marks.setdefault(parts[1], set()).add(variable)
                continue
            files = ", ".join(sorted({self.sensitive_env[n] for n in decrypted}))
            self.error(f"{compose_render.dotted(pointer)} uses {', '.join(decrypted)}, decrypted from the SOPS env "
                       f"file {files}: a decrypted value may only be an environment value (which is then masked); "
                       "anywhere else plans would show it", display, "sops-value-use", document=1, pointer=pointer)
        for name, variables in marks.items():
            service = data["services"][name]
            marked = service.get(SENSITIVE_COMPOSE_KEY)
            if marked is None or isinstance(marked, list):
                service[SENSITIVE_COMPOSE_KEY] = sorted({*(str(v) for v in marked or []), *variables})
            service[SOPS_COMPOSE_KEY] = sorted(variables)

    def _encrypted_inside(self, documents: list[Any], display: str, where: str) -> bool:
        """A SOPS-encrypted document that kustomize or helm passed through is not decrypted (it
        would be applied encrypted): an error that says where encrypted files may be."""
        if not any(sops_files.is_encrypted_document(d.data) for d in documents):
            return False
        self.error(f"{where} renders a SOPS-encrypted document, which gitops does not decrypt there; list the "
                   "encrypted file in the app's paths instead", display, "sops-not-here")
        return True

    def add_helm(self, source: helm_render.HelmSource, namespace: str, kube_version: str | None,
                 display: str, api_versions: Collection[str] = ()) -> None:
        """``helm template`` of a chart (with the target's ``api_versions`` when it is known); each
        object's origin names its chart template."""
        output, problem = helm_render.template(source, self.root, self.helm, namespace, kube_version, display,
                                               api_versions=api_versions, charts=self.charts)
        if problem is not None:
            self.result.diagnostics.append(problem)
            return
        assert output is not None
        self.result.files += 1
        self.result.bytes_read += len(output)
        chart_dir = source.chart.rstrip("/") if source.local else None
        for template, chunk in helm_render.split_sources(output):
            if chart_dir is not None and "/" in template:
                label = chart_dir + "/" + template.split("/", 1)[1]  # CHART/templates/x -> its path in the repo
            else:
                label = f"{display} ({template or 'helm template'})"
            loaded = load(chunk, label, Dialect.KUBERNETES, self.limits)
            self.result.diagnostics.extend(loaded.diagnostics)
            if self._encrypted_inside(loaded.documents, label, "a Helm chart"):
                continue
            manifests = k8s.manifests_from_documents(label, loaded.documents, self.result.diagnostics)
            self.result.manifests.extend(m for m in manifests if not helm_render.skipped_hook(m.body))

    def _add_kustomization(self, directory: Path, name: str) -> None:
        display = self.display(directory / name)
        output, problem = k8s.build_kustomization(directory, display, self.helm)
        if problem is not None:
            self.result.diagnostics.append(problem)
            return
        assert output is not None
        self.result.files += 1
        label = f"{display} (kustomize build)"
        loaded = load(output, label, Dialect.KUBERNETES, self.limits)
        self.result.diagnostics.extend(loaded.diagnostics)
        if self._encrypted_inside(loaded.documents, display, "a kustomization"):
            return
        manifests = k8s.manifests_from_documents(label, loaded.documents, self.result.diagnostics)
        self.result.manifests.extend(m for m in manifests if not helm_render.skipped_hook(m.body))  # helmCharts:
