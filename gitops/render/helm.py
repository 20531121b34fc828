"""Helm charts: ``helm template`` of a chart in the repository or from a chart repository.

The output is a stream of manifests like any other: each object's origin names the chart template
it came from (helm's ``# Source: CHART/templates/x.yaml`` comment). Hooks that install and upgrade
do not run (``test``, ``pre-delete``, ``*-rollback``) are dropped; the Kubernetes backend puts
pre-install/pre-upgrade hooks in a wave before every other object and post- ones after them.
The helm binary, the target's API versions and the chart cache (:mod:`.charts`) are passed in by
the caller (the engine; where helm is and where the cache lives are found at the edge).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops.model import Diagnostic, Severity
from gitops.render.charts import ChartCache, ChartError

__all__ = ["APPLIED_HOOKS", "HELM_INSTALL", "HELM_MISSING", "HelmSource", "skipped_hook", "split_sources", "template"]

HELM_TIMEOUT_SECONDS = 120
#: How to get helm: the project's installer script (https://helm.sh/docs/intro/install/).
HELM_INSTALL = ("install helm 3 with `curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 "
                "| bash` (or see https://helm.sh/docs/intro/install/), or name the binary with --helm PATH "
                "(or GITOPS_HELM=PATH)")
HELM_MISSING = f"this app is a Helm chart, but no helm binary was found on PATH: {HELM_INSTALL}"
_SOURCE = re.compile(rb"^# Source: (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class HelmSource:
    """``helm:`` of an app: ``chart`` is a path in the repository, or a chart name in ``repo``
    (a chart repository URL, or ``oci://``) at ``version``."""

    chart: str
    release: str
    repo: str | None = None
    version: str | None = None
    values_files: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def local(self) -> bool:
        return self.repo is None


APPLIED_HOOKS = frozenset({"pre-install", "pre-upgrade", "post-install", "post-upgrade"})


def skipped_hook(body: dict[str, Any]) -> bool:
    """A hook that no install or upgrade runs (``test``, ``pre-delete``, ``post-rollback`` ...): never applied."""
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    hooks = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    if not isinstance(hooks, str):
        return False
    return not {h.strip() for h in hooks.split(",")} & APPLIED_HOOKS


def split_sources(output: bytes) -> list[tuple[str, bytes]]:
    """``helm template`` output cut into its documents, each with the template path its
    ``# Source:`` comment names (``""`` when it has none)."""
    parts: list[tuple[str, bytes]] = []
    for chunk in re.split(rb"^---[ \t]*$", output, flags=re.MULTILINE):
        if not chunk.strip():
            continue
        mark = _SOURCE.search(chunk)
        parts.append((mark.group(1).decode("utf-8", "replace").strip() if mark else "", chunk))
    return parts


def _error(message: str, display: str, code: str = "helm") -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, file=display, code=code)


def _run(helm: str, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes] | str:
    try:
        return subprocess.run([helm, *args], capture_output=True, timeout=HELM_TIMEOUT_SECONDS, check=False,
                              cwd=str(cwd), env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"helm {args[0]} did not finish within {HELM_TIMEOUT_SECONDS}s"
    except OSError as exc:
        return f"cannot run helm ({helm}): {exc}"


def _reason(completed: subprocess.CompletedProcess[bytes], root: Path) -> str:
    reason = completed.stderr.decode("utf-8", "replace").strip().replace(str(root) + "/", "")
    reason = reason.removeprefix("Error: ").removeprefix("error: ")
    # helm's own hint names a flag of helm's, not ours
    reason = "\n".join(line for line in reason.splitlines() if "--debug" not in line).strip()
    return reason if len(reason) <= 500 else reason[:497] + "..."


def _dependencies(helm: str, chart_dir: Path, display: str, env: dict[str, str], root: Path,
                  scratch: Path) -> tuple[Path, Diagnostic | None]:
    """The chart directory to render. Vendored ``charts/`` is used as it is; with a lock file and a
    missing archive, ``helm dependency build`` fetches what the lock pins into a copy of the chart
    in ``scratch`` (the checkout is never written to). A dependency still missing is an error."""
    chart_file = chart_dir / "Chart.yaml"
    try:
        meta = yaml.safe_load(chart_file.read_text("utf-8")) or {}
    except (OSError, UnicodeError, yaml.YAMLError) as exc:
        return chart_dir, _error(f"cannot read {chart_file.name}: {exc}", display)
    deps = meta.get("dependencies") or [] if isinstance(meta, dict) else []
    if not deps:
        return chart_dir, None

    def missing() -> list[str]:
        vendored = chart_dir / "charts"
        names = {p.name for p in vendored.iterdir()} if vendored.is_dir() else set()
        out = []
        for dep in deps:
            name = str(dep.get("name", "")) if isinstance(dep, dict) else ""
            if name in names or any(n.startswith(name + "-") and n.endswith(".tgz") for n in names):
                continue
            if isinstance(dep, dict) and str(dep.get("repository", "")).startswith("file://"):
                local = (chart_dir / str(dep["repository"]).removeprefix("file://")).resolve()
                if (local / "Chart.yaml").is_file() and (root == local or root in local.parents):
                    continue  # helm template reads file:// dependencies in place
            out.append(name)
        return out

    absent = missing()
    if absent and (chart_dir / "Chart.lock").is_file():
        original, chart_dir = chart_dir, scratch / "chart" / chart_dir.name
        shutil.copytree(original, chart_dir, symlinks=False)
        repositories = sorted({str(d["repository"]) for d in deps if isinstance(d, dict)
                               and str(d.get("repository", "")).startswith(("http://", "https://"))})
        for position, url in enumerate(repositories):  # helm builds only from repositories it knows
            added = _run(helm, ["repo", "add", f"gitops-dependency-{position}", url], chart_dir, env)
            if isinstance(added, str) or added.returncode != 0:
                why = added if isinstance(added, str) else _reason(added, root)
                return chart_dir, _error(f"chart repository {url} of a dependency: {why}", display, "helm-dependency")
        completed = _run(helm, ["dependency", "build", str(chart_dir)], chart_dir, env)
        if isinstance(completed, str):
            return chart_dir, _error(completed, display)
        if completed.returncode != 0:
            return chart_dir, _error(f"helm dependency build failed: {_reason(completed, root)}", display)
        absent = missing()
    if absent:
        how = "vendor it under charts/ or commit Chart.lock so that `helm dependency build` can fetch it"
        return chart_dir, _error(f"chart {meta.get('name', chart_dir.name)}: dependency {', '.join(absent)} "
                                 f"is missing ({how})", display, "helm-dependency")
    return chart_dir, None


def template(
    source: HelmSource,
    root: Path,
    helm: str | None,
    namespace: str,
    kube_version: str | None,
    display: str,
    home: Path | None = None,
    api_versions: Collection[str] = (),
    charts: ChartCache | None = None,
) -> tuple[bytes | None, Diagnostic | None]:
    """``helm template`` of ``source`` (paths relative to ``root``); never through a shell.
    ``api_versions``: what the target cluster serves (``--api-versions``, for
    ``.Capabilities.APIVersions``); ``charts``: the cache of repository charts (a pinned chart of
    an HTTP(S) repository is rendered from its cached archive, with no network)."""
    if helm is None:
        return None, _error(HELM_MISSING, display, "helm-missing")
    if not (os.path.isfile(helm) and os.access(helm, os.X_OK)):
        return None, _error(f"the helm binary {helm} does not exist or cannot be run: {HELM_INSTALL}", display,
                            "helm-missing")
    with tempfile.TemporaryDirectory(prefix="gitops-helm-") as scratch:
        base = home or Path(scratch)
        env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "TMPDIR")}
        # helm keeps repositories and caches under these; a run of ours never touches the user's
        env.update(HOME=scratch, HELM_CACHE_HOME=str(base / "cache"), HELM_CONFIG_HOME=str(base / "config"),
                   HELM_DATA_HOME=str(base / "data"))
        args = ["template", source.release]
        if source.local:
            chart_dir = (root / source.chart).resolve()
            if not (chart_dir / "Chart.yaml").is_file():
                return None, _error(f"{source.chart} is not a Helm chart (no Chart.yaml)", display, "not-found")
            chart_dir, problem = _dependencies(helm, chart_dir, display, env, root, Path(scratch))
            if problem is not None:
                return None, problem
            args.append(str(chart_dir))
        elif charts is not None and source.repo is not None and charts.cacheable(source.repo, source.version):
            assert source.version is not None
            try:
                args.append(str(charts.archive(source.repo, source.chart, source.version)))
            except ChartError as exc:
                return None, _error(f"cannot fetch the chart: {exc}", display, "helm-chart")
        else:
            assert source.repo is not None
            if source.repo.startswith("oci://"):
                args.append(source.repo.rstrip("/") + "/" + source.chart)
            else:
                args += [source.chart, "--repo", source.repo]
            if source.version:
                args += ["--version", source.version]
        args += ["--namespace", namespace, "--include-crds"]
        if kube_version:
            args += ["--kube-version", kube_version]
        for api_version in sorted(api_versions):
            args += ["--api-versions", api_version]
        for values_file in source.values_files:
            args += ["--values", str(root / values_file)]
        if source.values:
            inline = Path(scratch) / "inline-values.json"
            inline.write_text(json.dumps(source.values), "utf-8")
            args += ["--values", str(inline)]
        completed = _run(helm, args, root, env)
    if isinstance(completed, str):
        return None, _error(completed, display)
    if completed.returncode != 0:
        return None, _error(f"helm template failed: {_reason(completed, root)}", display)
    return completed.stdout, None
