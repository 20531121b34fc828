"""The engine: the only module that composes every stage (source, render, validate, observe, diff,
plan, apply, rollout, rollback, state). The CLI and the daemon call only this module."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gitops import config, source
from gitops import render as render_stage
from gitops import validate as validate_stage
from gitops.errors import GitopsError
from gitops.model import Diagnostic, Severity
from gitops.model.reports import ValidationReport
from gitops.render.compose import parse_env_file
from gitops.render.yaml import Limits


def _local_root(cwd: Path, paths: Sequence[Path]) -> Path:
    """The directory that bounds local paths: the working directory, or what the paths share."""
    resolved_cwd = cwd.resolve()
    parents = [(p if p.is_dir() else p.parent).resolve() for p in paths]
    if all(p == resolved_cwd or resolved_cwd in p.parents for p in parents):
        return resolved_cwd
    return Path(os.path.commonpath([str(p) for p in parents]))


def _sort_key(diagnostic: Diagnostic) -> tuple[str, int, int]:
    return (diagnostic.file or "", diagnostic.document or 0, diagnostic.line or 0)


def validate(
    paths: Sequence[str] = (),
    *,
    repo: str | None = None,
    ref: str | None = None,
    strict: bool = False,
    kubernetes_version: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    cache_dir: Path | None = None,
) -> ValidationReport:
    """Validate paths (files or directories), or every app of ``gitops.yaml`` when none is given.

    With ``repo``, the repository is fetched at ``ref`` into the cache and ``paths`` are relative
    to its root. Content problems are diagnostics in the report; a refused URL, a failed fetch or
    an unknown Kubernetes version raise :class:`GitopsError`.
    """
    started = time.perf_counter()
    cwd = cwd or Path.cwd()
    environment: Mapping[str, str] = env if env is not None else dict(os.environ)
    report = ValidationReport(strict=strict, paths=list(paths), schema_source=validate_stage.SCHEMA_SOURCE)
    diagnostics: list[Diagnostic] = []

    if repo is not None:
        checkout = source.fetch(repo, ref, cache_dir)
        report.repository, report.ref, report.revision = checkout.url, checkout.ref, checkout.revision
        root = checkout.root
        targets: list[Path] = []
        for path in paths:
            try:
                targets.append(source.resolve_inside(root, path))
            except source.SourceError as exc:
                diagnostics.append(Diagnostic(Severity.ERROR, str(exc), file=path, code="path-escape"))
    else:
        targets = [p if p.is_absolute() else cwd / p for p in map(Path, paths)]
        root = _local_root(cwd, targets) if targets else cwd.resolve()
        report.revision = source.local(root).revision if root.is_dir() else None

    settings: config.Settings | None = None
    if not paths:
        try:
            settings = config.load(root)
        except config.ConfigError as exc:
            report.diagnostics = exc.diagnostics
            report.seconds = time.perf_counter() - started
            return report

    version = kubernetes_version or (settings.kubernetes_version if settings else None)
    try:
        store = validate_stage.SchemaStore(version, strict)
    except validate_stage.UnsupportedVersion as exc:
        raise GitopsError(str(exc)) from None
    report.kubernetes_version = store.version

    def run(renderer: render_stage.Renderer, options: validate_stage.Options) -> None:
        rendered = renderer.result
        found, counts = validate_stage.run(rendered, store, root, options)
        diagnostics.extend(validate_stage.attach_lines(rendered.diagnostics + found, rendered))
        report.files += rendered.files
        report.objects += counts.objects
        report.services += counts.services

    if settings is None:
        renderer = render_stage.Renderer(root, limits, environment)
        for target in targets:
            renderer.add_path(target)
        run(renderer, validate_stage.Options(strict=strict))
    else:
        for app in settings.apps:
            report.apps.append(app.name)
            app_env = dict(environment)
            for env_file in app.env_files:
                try:
                    app_env.update(parse_env_file(source.resolve_inside(root, env_file).read_text("utf-8")))
                except (source.SourceError, OSError, UnicodeError) as exc:
                    diagnostics.append(Diagnostic(Severity.ERROR, f"app {app.name}: env file {env_file}: {exc}",
                                                  file=config.CONFIG_FILE, code="config"))  # fmt: skip
            renderer = render_stage.Renderer(root, limits, app_env, stack=app.target.stack)
            for path in app.paths:
                try:
                    renderer.add_path(source.resolve_inside(root, path))
                except source.SourceError as exc:
                    diagnostics.append(Diagnostic(Severity.ERROR, f"app {app.name}: {exc}", file=config.CONFIG_FILE,
                                                  code="path-escape"))  # fmt: skip
            run(renderer, validate_stage.Options(strict, app.target.namespace, app.backend))

    report.diagnostics = sorted(diagnostics, key=_sort_key)
    report.seconds = time.perf_counter() - started
    return report
