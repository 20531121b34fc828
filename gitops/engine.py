"""The engine: the only module that composes every stage (source, render, validate, observe, diff,
plan, apply, rollout, rollback, state). The CLI and the daemon call only this module."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitops import config, deploy, signatures, source
from gitops import diff as diff_stage
from gitops import plan as plan_stage
from gitops import promote as promote_stage
from gitops import prune as prune_stage
from gitops import render as render_stage
from gitops import validate as validate_stage
from gitops.backends.base import Backend
from gitops.errors import DecryptionError, GitopsError, SignatureError, StalePlanError, StoppedError
from gitops.model import Diagnostic, HealthStatus, Origin, Resource, Severity
from gitops.model.diffs import AppDiff, Bodies, RevisionDiff
from gitops.model.diffs import AppStatus as DiffStatus
from gitops.model.health import Health
from gitops.model.plans import Action, AppPlan, Change, FieldChange, Guard, Plan
from gitops.model.policies import PolicySettings
from gitops.model.releases import AppState, Outcome, Release
from gitops.model.reports import ValidationReport
from gitops.model.resources import ResourceKey
from gitops.render import kubernetes as k8s_render
from gitops.render import sops as sops_files
from gitops.render.compose import SECTION_KINDS, parse_env_file
from gitops.render.yaml import Dialect, Limits, escape_pointer, load, locate
from gitops.validate import policy as policy_stage
from gitops.validate.compose_merge import merge_rendered


def _local_root(cwd: Path, paths: Sequence[Path]) -> Path:
    """The directory that bounds local paths: the working directory, or what the paths share."""
    resolved_cwd = cwd.resolve()
    parents = [(p if p.is_dir() else p.parent).resolve() for p in paths]
    if all(p == resolved_cwd or resolved_cwd in p.parents for p in parents):
        return resolved_cwd
    return Path(os.path.commonpath([str(p) for p in parents]))


def helm_binary(env: Mapping[str, str], given: str | None = None) -> str | None:
    """The helm binary, the one lookup: ``given`` (``--helm``) when set, else ``GITOPS_HELM``, else
    ``helm`` on the PATH of ``env``; None when there is none (an app that needs it says how to get it)."""
    named = given or env.get("GITOPS_HELM")
    if named and os.sep not in named:  # a command name, looked up on the PATH
        return shutil.which(named, path=env.get("PATH")) or named
    return named or shutil.which("helm", path=env.get("PATH"))


@dataclass(frozen=True)
class Tools:
    """What rendering uses from the machine, found once at the edge (the CLI, the daemon) and
    carried by the workspace: the helm binary (None: looked up in the render's environment by
    :func:`helm_binary`), and the directory of the chart cache (None: repository charts are
    downloaded by every render)."""

    helm: str | None = None
    charts: Path | None = None

    @classmethod
    def find(cls, env: Mapping[str, str], helm: str | None = None) -> Tools:
        """The tools of a run: ``helm`` as the user named it (or found), and the chart cache under
        the user's cache directory (``$GITOPS_CACHE_DIR``, ``$XDG_CACHE_HOME/gitops``, ``~/.cache/gitops``)."""
        return cls(helm_binary(env, helm), source.default_cache_dir(env) / "charts")

    def renderer(self, root: Path, limits: Limits | None, env: Mapping[str, str], *, stack: str | None = None,
                 helm_env: Mapping[str, str] | None = None, sops: sops_files.Sops | None = None,
                 sensitive_env: Mapping[str, str] | None = None) -> render_stage.Renderer:
        """A Renderer of ``root`` with these tools (helm looked up in ``helm_env``, default ``env``,
        when none was found at the edge), decrypting SOPS files with ``sops``; ``sensitive_env``:
        the variables of ``env`` decrypted from a SOPS env file (name -> that file)."""
        charts = render_stage.ChartCache(self.charts) if self.charts is not None else None
        return render_stage.Renderer(root, limits, env, stack=stack,
                                     helm=self.helm or helm_binary(env if helm_env is None else helm_env),
                                     charts=charts, sops=sops, sensitive_env=sensitive_env)


def sops_tool(settings: config.Settings | None, environ: Mapping[str, str] | None = None) -> sops_files.Sops:
    """What decrypts SOPS files: ``GITOPS_SOPS``, else ``sops`` on PATH, with the keys of the
    process environment (``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY``, gpg's) and, when no key file is
    set there, ``sops.age_key_file`` of gitops.yaml. ``environ``: the process environment (the
    caller's; the interpolation env of the daemon is a filtered one and holds no keys)."""
    return sops_files.Sops.from_environ(os.environ if environ is None else environ,
                                        age_key_file=settings.sops_age_key_file if settings else None)


def _env_files(root: Path, app: config.App, sops: sops_files.Sops,
               diagnostics: list[Diagnostic]) -> tuple[dict[str, str], dict[str, str]]:
    """The values of the app's env files, and which of them came from a SOPS dotenv file (name ->
    that file). An encrypted env file is decrypted in memory; its problems are diagnostics."""
    values: dict[str, str] = {}
    decrypted: dict[str, str] = {}
    for env_file in app.env_files:
        try:
            raw = source.resolve_inside(root, env_file).read_bytes()
            fmt = sops_files.format_of(raw)
            if fmt is None:
                values.update(parse_env_file(raw.decode("utf-8")))
                continue
            if fmt != "dotenv":
                diagnostics.append(Diagnostic(Severity.ERROR, f"app {app.name}: env file {env_file} is a SOPS {fmt} "
                                              "file; env files are dotenv (sops --input-type dotenv)",
                                              file=env_file, code="sops-format"))  # fmt: skip
                continue
            try:
                plain = parse_env_file(sops.decrypt(raw, fmt, env_file).decode("utf-8"))
            except DecryptionError as exc:
                diagnostics.append(Diagnostic(Severity.ERROR, str(exc).removeprefix(f"{env_file}: "), file=env_file,
                                              code=exc.code))
                continue
            values.update(plain)
            decrypted.update(dict.fromkeys(plain, env_file))
        except (source.SourceError, OSError, UnicodeError) as exc:
            diagnostics.append(Diagnostic(Severity.ERROR, f"app {app.name}: env file {env_file}: {exc}",
                                          file=config.CONFIG_FILE, code="config"))
    return values, {name: file for name, file in decrypted.items() if name in values}


def _add_helm(renderer: render_stage.Renderer, app: config.App, kube_version: str | None,
              api_versions: Collection[str] = ()) -> None:
    if app.helm is not None:
        renderer.add_helm(app.helm, app.target.namespace, kube_version, f"{config.CONFIG_FILE} (app {app.name})",
                          api_versions)


def api_versions_for(app: config.App, backend: Backend) -> frozenset[str]:
    """What the app's target serves, for ``helm template --api-versions``: asked of the backend only
    for a Helm app (empty otherwise, and for a target without API versions)."""
    return backend.api_versions() if app.helm is not None else frozenset()


def _render_for_target(ws: Workspace, app: config.App, env: Mapping[str, str] | None,
                       session: Session | None) -> tuple[list[Resource], list[Diagnostic], Backend]:
    """The app rendered for its target, and the target's backend. An app without a chart is
    validated before its target is reached (a bad revision never needs a cluster to be refused);
    a Helm chart is rendered with the API versions its target serves, so its target comes first."""
    sops = _sops_of(ws, session)
    if app.helm is None:
        resources, found = render_app(ws, app, env, sops=sops)
        return resources, found, backend_for(ws, app, session)
    backend = backend_for(ws, app, session)
    resources, found = render_app(ws, app, env, api_versions=api_versions_for(app, backend), sops=sops)
    return resources, found, backend


def _sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, int]:
    return (diagnostic.file or "", diagnostic.document or 0, diagnostic.line or 0, diagnostic.column or 0)


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
    policy: bool = True,
    tools: Tools | None = None,
) -> ValidationReport:
    """Validate paths (files or directories), or every app of ``gitops.yaml`` when none is given.

    With ``repo``, the repository is fetched at ``ref`` into the cache and ``paths`` are relative
    to its root. ``policy``: run the policy rules too (with each app's ``policy:`` settings; the
    defaults for paths). Content problems are diagnostics in the report; a refused URL, a failed fetch or
    an unknown Kubernetes version raise :class:`GitopsError`. No target is asked: a Helm chart is
    rendered with helm's default API versions.
    """
    started = time.perf_counter()
    cwd = cwd or Path.cwd()
    environment: Mapping[str, str] = env if env is not None else dict(os.environ)
    run_tools = tools or Tools()
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

    sops = sops_tool(settings, environment)

    def run(renderer: render_stage.Renderer, options: validate_stage.Options) -> None:
        rendered = renderer.result
        # An app's compose files are one stack (`docker stack deploy -c a -c b`); loose files are not.
        remap = merge_rendered(rendered) if options.backend == "swarm" else (lambda found: found)
        found, counts = validate_stage.run(rendered, store, root, options)
        diagnostics.extend(validate_stage.attach_lines(remap(rendered.diagnostics + found), rendered))
        report.files += rendered.files
        report.objects += counts.objects
        report.services += counts.services

    if settings is None:
        renderer = run_tools.renderer(root, limits, environment, sops=sops)
        for target in targets:
            renderer.add_path(target)
        run(renderer, validate_stage.Options(strict=strict, policy=PolicySettings() if policy else None))
    else:
        for app in settings.apps:
            report.apps.append(app.name)
            app_env = dict(environment)
            values, decrypted = _env_files(root, app, sops, diagnostics)
            app_env.update(values)
            renderer = run_tools.renderer(root, limits, app_env, stack=app.target.stack, helm_env=environment,
                                          sops=sops, sensitive_env=decrypted)
            _add_helm(renderer, app, store.version)
            for path in app.paths:
                try:
                    renderer.add_path(source.resolve_inside(root, path))
                except source.SourceError as exc:
                    diagnostics.append(Diagnostic(Severity.ERROR, f"app {app.name}: {exc}", file=config.CONFIG_FILE,
                                                  code="path-escape"))  # fmt: skip
            run(renderer, validate_stage.Options(strict, app.target.namespace, app.backend,
                                                 app.policy if policy else None))

    report.diagnostics = sorted(diagnostics, key=_sort_key)
    report.seconds = time.perf_counter() - started
    return report


def policy_rules() -> tuple[policy_stage.Rule, ...]:
    """The policy rules, in table order (``gitops validate --list-rules``)."""
    return policy_stage.RULES


# -- plan, apply, status, history, rollback -------------------------------------------------------


ConfigError = config.ConfigError  # gitops.yaml does not validate (its diagnostics say where)


class ValidationFailed(GitopsError):
    """The app's manifests have errors: nothing is planned or applied."""

    def __init__(self, app: str, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        shown = "\n  ".join(str(d) for d in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"app {app}: {len(errors)} validation error(s); nothing was changed:\n  {shown}{more}")


@dataclass
class Workspace:
    """A checkout of the repository and its gitops.yaml."""

    root: Path
    revision: str | None
    settings: config.Settings
    local: bool = False  # a work tree on disk, which may hold uncommitted changes
    #: Where it was fetched from (URL and cache), so that another revision opens the same way.
    origin: tuple[str, Path | None] | None = field(default=None, compare=False)
    signature: signatures.Signature | None = None  # the revision's commit, verified (allowed signers given)
    tools: Tools = field(default_factory=Tools, compare=False)  # helm and the chart cache, for rendering


# -- signed commits (the allowed signers come from the caller, never from the revision) -----------

Signers = signatures.Signers
Signature = signatures.Signature


def _verify(root: Path, revision: str | None, signers: Signers | None) -> Signature | None:
    """The revision's signature when ``signers`` are given (SignatureError when it has none by
    one of them); None when nothing is to be verified."""
    if signers is None or not signers.configured:
        return None
    if revision is None:
        raise SignatureError(f"{root} holds no commit to verify (not a git work tree, or no commit yet); "
                             "nothing was changed")
    return signatures.verify(root, revision, signers)


def _require_signers(settings: config.Settings, revision: str | None, signers: Signers | None) -> None:
    """``verify.required`` in gitops.yaml: fail closed when the runner was given no signers (it
    guards against forgetting them; the signers themselves are never read from the revision)."""
    if signers is not None and not signers.configured and settings.verify_required:
        raise SignatureError(f"revision {(revision or 'of the working tree')[:12]}: {settings.file} requires signed "
                             "commits (verify.required), but no allowed signers were given: pass --verify-ssh FILE or "
                             "--verify-gpg FILE (or set GITOPS_VERIFY_SSH / GITOPS_VERIFY_GPG); nothing was changed")


def _signed_work_tree(cwd: Path, signers: Signers, cache_dir: Path | None) -> Workspace:
    """A local work tree under verification: its HEAD commit is verified and read from a snapshot
    of that commit (as `gitops diff` reads a ref), never from the files on disk; uncommitted
    changes to tracked files are refused, since they are not what was signed."""
    root = cwd.resolve()
    revision = source.local(root).revision
    signature = _verify(root, revision, signers)
    assert revision is not None
    changed = source.uncommitted(root)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise SignatureError(f"{root} has uncommitted changes ({shown}): with signed commits only the signed commit "
                             f"{revision[:12]} is applied; commit (and sign) them, or stash them; nothing was changed")
    return replace(open_ref(root, revision, cache_dir), signature=signature)


def open_workspace(*, repo: str | None = None, ref: str | None = None, cwd: Path | None = None,
                   cache_dir: Path | None = None, signers: Signers | None = None,
                   tools: Tools | None = None) -> Workspace:
    """The repository (``repo`` at ``ref``, else the work tree at ``cwd``) and its gitops.yaml.
    ``signers`` (plan, apply): the revision's commit must be signed by one of them, checked before
    gitops.yaml is read (SignatureError); empty signers still honour ``verify.required``. None:
    nothing is verified (status, history, rollback)."""
    if repo is not None:
        checkout = source.fetch(repo, ref, cache_dir)
        root, revision, local = checkout.root, checkout.revision, False
        signature = _verify(root, revision, signers)
    elif signers is not None and signers.configured:
        return replace(_signed_work_tree(cwd or Path.cwd(), signers, cache_dir), tools=tools or Tools())
    else:
        root = (cwd or Path.cwd()).resolve()
        revision = source.local(root).revision
        local, signature = True, None
    settings = config.load(root)
    _require_signers(settings, revision, signers)
    return Workspace(root, revision, settings, local, (repo, cache_dir) if repo is not None else None,
                     signature=signature, tools=tools or Tools())


def remote_revision(url: str, ref: str | None) -> str:
    """The commit ``ref`` points at on the remote now (one cheap `ls-remote`, no fetch)."""
    return source.remote_revision(url, ref)


def repository_identity(url: str) -> str:
    """The repository a URL names, credentials left out (the same for every reader of it)."""
    return source.identity(url)


def open_revision(url: str, revision: str, cache_dir: Path | None = None,
                  signers: Signers | None = None, tools: Tools | None = None) -> Workspace:
    """A workspace of exactly ``revision``, in a work tree of its own that no later fetch moves;
    with ``signers``, its commit verified first (SignatureError), as in :func:`open_workspace`."""
    checkout = source.snapshot(url, revision, cache_dir)
    signature = _verify(checkout.root, revision, signers)
    settings = config.load(checkout.root)
    _require_signers(settings, revision, signers)
    return Workspace(checkout.root, revision, settings, False, (url, cache_dir), signature=signature,
                     tools=tools or Tools())


def select_apps(ws: Workspace, names: Sequence[str]) -> list[config.App]:
    if not names:
        return list(ws.settings.apps)
    return [ws.settings.app(name) for name in names]


def render_app(ws: Workspace, app: config.App, env: Mapping[str, str] | None = None,
               limits: Limits | None = None, *,
               api_versions: Collection[str] = (), sops: sops_files.Sops | None = None
               ) -> tuple[list[Resource], list[Diagnostic]]:
    """The app's desired objects, validated (the policy rules included, with the app's settings);
    raises ValidationFailed when any error is found, before anything is written. ``api_versions``:
    what the target serves (:func:`api_versions_for`), when it is known. SOPS files are decrypted in
    memory with ``sops`` (default: :func:`sops_tool` of the process environment)."""
    environment = dict(env if env is not None else os.environ)
    sops = sops or sops_tool(ws.settings)
    diagnostics: list[Diagnostic] = []
    values, decrypted = _env_files(ws.root, app, sops, diagnostics)
    environment.update(values)
    try:
        store = validate_stage.SchemaStore(ws.settings.kubernetes_version, False)
    except validate_stage.UnsupportedVersion as exc:
        raise GitopsError(str(exc)) from None
    renderer = ws.tools.renderer(ws.root, limits, environment, stack=app.target.stack, sops=sops,
                                 sensitive_env=decrypted)
    _add_helm(renderer, app, store.version, api_versions)
    for path in app.paths:
        try:
            renderer.add_path(source.resolve_inside(ws.root, path))
        except source.SourceError as exc:
            diagnostics.append(Diagnostic(Severity.ERROR, f"app {app.name}: {exc}", file=config.CONFIG_FILE,
                                          code="path-escape"))
    rendered = renderer.result
    remap = merge_rendered(rendered) if app.backend == "swarm" else (lambda found: found)
    found, _ = validate_stage.run(rendered, store, ws.root,
                                  validate_stage.Options(False, app.target.namespace, app.backend, app.policy))
    diagnostics.extend(validate_stage.attach_lines(remap(rendered.diagnostics + found), rendered))
    diagnostics.sort(key=_sort_key)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise ValidationFailed(app.name, diagnostics)
    if app.backend == "kubernetes":
        scopes = k8s_render.crd_scopes(rendered.manifests)
        return k8s_render.to_resources(rendered.manifests, app.target.namespace, scopes), diagnostics
    from gitops.backends.swarm.backend import compose_resource

    resources = [compose_resource(app.target.stack or app.name, cf.path, cf.data, _compose_origin(rendered, cf))
                 for cf in rendered.compose]
    return resources, diagnostics


def _compose_origin(rendered: render_stage.Rendered, compose: render_stage.ComposeFile) -> Origin:
    """A compose file's origin, with the line of each service, network, config, secret and volume."""
    pointers = [f"/{section}/{escape_pointer(str(name))}" for section in SECTION_KINDS
                if isinstance(entries := compose.data.get(section), dict) for name in entries]
    source_text = rendered.sources.get(compose.file)
    lines = locate(source_text[0], 1, pointers, Dialect.COMPOSE) if source_text is not None else {}
    return Origin(compose.file, None, 1, "", tuple(sorted((pointer, at[0]) for pointer, at in lines.items())))


class Session:
    """What a long-running process keeps from one reconcile to the next: one client per target
    (its connection pool and API discovery), made on first use and closed with the session.
    Backends stay cheap per-call views bound to one app and one checkout. ``environ`` is the
    process environment the clients' connections read (a pod's in-cluster configuration)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self.environ: Mapping[str, str] = os.environ if environ is None else environ

    def client(self, app: config.App) -> Any:
        if app.backend == "kubernetes":
            key = ("kubernetes", app.target.kubeconfig or "", app.target.context or "")
        else:
            key = ("swarm", app.target.host or "", "")
        with self._lock:
            if key not in self._clients:
                self._clients[key] = _new_client(app, self.environ)
            return self._clients[key]

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def _new_client(app: config.App, environ: Mapping[str, str] | None = None) -> Any:
    """The app's target client. A Kubernetes target with no kubeconfig anywhere, in a pod, is
    reached with the pod's service account (``KUBERNETES_SERVICE_HOST``/``PORT`` read here, at the
    edge, and the standard token mount)."""
    if app.backend == "kubernetes":
        from gitops.backends.kubernetes.client import KubeClient
        from gitops.backends.kubernetes.kubeconfig import InCluster

        in_cluster = InCluster.detect(os.environ if environ is None else environ)
        return KubeClient(app.target.kubeconfig, app.target.context, in_cluster=in_cluster)
    from gitops.backends.swarm.client import SwarmClient

    return SwarmClient(app.target.host)


def _sops_of(ws: Workspace, session: Session | None) -> sops_files.Sops:
    return sops_tool(ws.settings, session.environ if session is not None else None)


def backend_for(ws: Workspace, app: config.App, session: Session | None = None) -> Backend:
    client = session.client(app) if session is not None else _new_client(app)
    if app.backend == "kubernetes":
        from gitops.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(client, app.name, namespace=app.target.namespace, take_over=app.sync.take_over)
    from gitops.backends.swarm.backend import SwarmBackend

    def read_file(path: str) -> bytes:
        resolved = source.resolve_inside(ws.root, os.path.relpath(path, ws.root) if os.path.isabs(path) else path)
        return resolved.read_bytes()

    return SwarmBackend(client, app.name, stack=app.target.stack or app.name, read_file=read_file,
                        decrypt=_sops_of(ws, session).decrypt)


def coordination_backend(ws: Workspace, name: str, session: Session | None = None, *,
                         prefer: str = "auto") -> Backend:
    """A backend whose lock serves as a lease for ``name`` (the daemon's leader election): with
    ``prefer`` "auto", on the target of the first Kubernetes app (a coordination.k8s.io Lease in
    gitops-system) when there is one, else on the first Swarm app's engine (its atomic config
    lock); "kubernetes" or "swarm" name the kind of target to use."""
    apps = sorted(ws.settings.apps, key=lambda a: a.backend != "kubernetes")
    if prefer in ("kubernetes", "swarm"):
        apps = [a for a in ws.settings.apps if a.backend == prefer]
    if not apps:
        raise GitopsError(f"gitops.yaml declares no {'' if prefer == 'auto' else prefer + ' '}app: "
                          "nothing to elect a leader on")
    app = replace(apps[0], name=name)
    return backend_for(ws, app, session)


def revision_of(ws: Workspace, app: config.App, resources: Sequence[Resource]) -> str:
    """The commit, marked with a content digest when the app's files have uncommitted changes
    (other files, a saved plan.json say, do not count)."""
    content = plan_stage.digest(resources)[:10]
    if ws.revision is None:
        return f"local-{content}"
    files = [config.CONFIG_FILE, *app.paths, *app.env_files]
    return f"{ws.revision}+dirty-{content}" if ws.local and source.dirty(ws.root, files) else ws.revision


def policy_for(app: config.App, allow: Collection[Guard] = ()) -> prune_stage.Policy:
    """The app's prune guards (its sync settings) with the run's overrides (flags) on top."""
    sync = app.sync
    return prune_stage.Policy(
        allow_cascade=sync.allow_cascade or Guard.CASCADE in allow,
        prune_data=sync.prune_data or Guard.DATA in allow,
        allow_mass_delete=Guard.MASS_DELETE in allow,
        max_delete_ratio=sync.max_delete_ratio,
        mass_delete_min=sync.mass_delete_min,
    )


@dataclass
class AppPlanned:
    app: config.App
    plan: AppPlan
    warnings: list[Diagnostic]


def plan(ws: Workspace, names: Sequence[str] = (), *, exact: bool = False,
         env: Mapping[str, str] | None = None, allow: Collection[Guard] = (),
         session: Session | None = None) -> tuple[Plan, list[Diagnostic]]:
    """Plans of the apps; a plan a prune guard refused says so in ``blocked`` (``Plan.ok``); an
    app that waits for one it depends on says so in a warning ("app web: waiting for `db` ...")."""
    plans: list[AppPlan] = []
    warnings: list[Diagnostic] = []
    for selected in select_apps(ws, names):
        app_ws, app, promoted = promoted_workspace(ws, selected, session=session)
        if promoted is not None and promoted.revision is None:
            warnings.append(Diagnostic(Severity.WARNING, f"app {app.name}: {promoted.waiting}: nothing of it is "
                                       "planned or applied until then", file=config.CONFIG_FILE, code="promote-from"))
            continue
        resources, found, backend = _render_for_target(app_ws, app, env, session)
        warnings.extend(found)
        app_plan, _ = deploy.plan_app(backend, resources, revision_of(app_ws, app, resources), exact=exact,
                                      prune=app.sync.prune, policy=policy_for(app, allow))
        warnings.extend(backend.warnings)
        if promoted is not None:
            app_plan = replace(app_plan, promotion=promoted.summary())
        plans.append(app_plan)
        waiting = dependency_wait(ws, app, env=env, session=session) if app.depends_on else ""
        if waiting:
            warnings.append(Diagnostic(Severity.WARNING, f"app {app.name}: {waiting}: it is applied once that app "
                                       "is healthy at this revision", file=config.CONFIG_FILE, code="depends-on"))
    return Plan(tuple(plans)), warnings


def apply(ws: Workspace, names: Sequence[str] = (), *, saved: Plan | None = None,
          options: deploy.Options | None = None, on_event: deploy.Event | None = None,
          env: Mapping[str, str] | None = None, allow: Collection[Guard] = (),
          session: Session | None = None, keep_going: bool = True) -> list[deploy.Result]:
    """Apply the apps (all of gitops.yaml, the named ones, or those of a saved plan), one after
    the other. An app that cannot be applied (it does not render, its target is unreachable, its
    lock is held, a prune guard refuses its plan: :class:`deploy.PlanBlocked`, before anything of
    it is written) gives a "failed" result carrying the error, and the next apps are still applied
    (``keep_going``; False raises that error instead). A stop request (StoppedError) always raises."""
    results: list[deploy.Result] = []
    saved_by_app = {p.app: p for p in saved.apps} if saved else {}
    selected = [ws.settings.app(name) for name in saved_by_app] if saved else select_apps(ws, names)
    done: dict[str, deploy.Result] = {}
    for app in config.in_dependency_order(selected):
        try:
            waiting = dependency_wait(ws, app, env=env, session=session, done=done)
            if waiting:
                raise GitopsError(f"app {app.name}: {waiting}; nothing of it was applied")
            app_ws, app_at, promoted = promoted_workspace(ws, app, session=session)
            saved_plan = saved_by_app.get(app.name)
            if promoted is not None:
                if promoted.revision is None:
                    raise GitopsError(f"app {app.name}: {promoted.waiting}; nothing of it was applied")
                if saved_plan is not None and saved_plan.revision != promoted.revision:
                    raise StalePlanError(f"plan is stale: app {app.name} was planned at {saved_plan.revision[:12]}, "
                                         f"the newest revision to promote is now {promoted.revision[:12]}; plan again")
            results.append(_apply_one(app_ws, app_at, saved_plan, options, on_event, env, allow, session))
            done[app.name] = results[-1]
        except StoppedError:
            raise
        except GitopsError as exc:
            if not keep_going:
                raise
            error = str(exc) if str(exc).startswith(f"app {app.name}") else f"app {app.name}: {exc}"
            results.append(deploy.Result(app.name, "failed", AppPlan(app.name, app.backend, "", ws.revision or "",
                                                                     "", ""), error=error))
    return results


def dependency_wait(ws: Workspace, app: config.App, *, env: Mapping[str, str] | None = None,
                    session: Session | None = None, done: Mapping[str, deploy.Result] | None = None) -> str:
    """Why ``app`` must wait for an app of its ``depends_on`` ("waiting for `db` (Progressing)"),
    or "" when every one is healthy at this revision: its last release succeeded, its target
    matches the repository, and its objects are healthy. ``done``: the results of apps applied
    earlier in this run (a failed one stops its dependants)."""
    for name in app.depends_on:
        result = (done or {}).get(name)
        if result is not None:
            if result.outcome in ("applied", "no-op"):
                continue
            return f"waiting for `{name}` ({result.outcome}{': ' + result.error if result.error else ''})"
        [dep] = status(ws, [name], env, session, waits=False)
        last = dep.applied
        if dep.sync == "Synced" and dep.health is HealthStatus.HEALTHY and last is not None \
                and last.outcome is Outcome.SUCCEEDED:
            continue
        why = dep.health.value if dep.sync == "Synced" else dep.sync
        if last is not None and last.outcome is not Outcome.SUCCEEDED:
            why += f", last release {last.outcome.value}"
        if dep.problems:
            why += f": {dep.problems[0]}"
        return f"waiting for `{name}` ({why})"
    return ""


def promotion(ws: Workspace, app: config.App, *, session: Session | None = None,
              now: datetime | None = None) -> promote_stage.Promotion | None:
    """For an app with ``promote_from``: the newest commit of this revision's history that the
    other app recorded, in its own target, as succeeded for at least ``promote_after``
    (``gitops.promote.choose``); None for any other app."""
    if app.promote_from is None:
        return None
    origin = ws.settings.app(app.promote_from)
    if ws.revision is None:
        raise GitopsError(f"app {app.name} is promoted from {origin.name}, which needs a git repository "
                          f"(no commit at {ws.root})")
    state = backend_for(ws, origin, session).load_state()
    commits = source.history(ws.root, ws.revision)
    definitions: dict[str, config.App | None] = {}
    own, theirs = _files_of(app), _files_of(origin)

    def definition(revision: str) -> config.App | None:
        if revision not in definitions:
            try:
                settings = config.parse(source.show(ws.root, revision, config.CONFIG_FILE))
                definitions[revision] = next((a for a in settings.apps if a.name == origin.name), None)
            except GitopsError:
                definitions[revision] = None
        return definitions[revision]

    def unchanged(older: str, newer: str) -> bool:
        """Every file the commits between change is one only the promoted app reads (or
        gitops.yaml, with the source app's definition the same): the source renders the same.
        A file of no app (a kustomize base, a file a compose file names) may be the source's too."""
        for changed in source.changed_files(ws.root, older, newer):
            if changed == config.CONFIG_FILE:
                before = definition(older)
                if before is None or before != definition(newer):
                    return False
            elif _inside(changed, theirs) or not _inside(changed, own):
                return False
        return True

    return promote_stage.choose(app.name, origin.name, state, commits, promote_after=app.promote_after,
                                now=now or datetime.now(UTC), unchanged=unchanged)


def _files_of(app: config.App) -> list[str]:
    """The files and directories an app reads, as gitops.yaml names them."""
    files = [*app.paths, *app.env_files]
    if app.helm is not None:
        files.extend([*([app.helm.chart] if app.helm.repo is None else []), *app.helm.values_files])
    return files


def _inside(file: str, paths: Sequence[str]) -> bool:
    for path in paths:
        prefix = path.strip("/").removeprefix("./")
        if prefix in ("", ".") or file == prefix or file.startswith(prefix + "/"):
            return True
    return False


def at_revision(ws: Workspace, revision: str) -> Workspace:
    """A workspace of another commit of the same repository, opened the way ``ws`` was (the
    daemon's URL and cache; a local clone through a snapshot of its own)."""
    if ws.origin is not None:
        return open_revision(ws.origin[0], revision, ws.origin[1], tools=ws.tools)
    return open_ref(ws.root, revision, tools=ws.tools)


def promoted_workspace(ws: Workspace, app: config.App, *, session: Session | None = None,
                       now: datetime | None = None) -> tuple[Workspace, config.App, promote_stage.Promotion | None]:
    """Where an app is rendered: ``ws`` itself, or for a promoted app the revision to promote
    (as that revision defines the app; the definition of ``ws`` when it does not have it yet)."""
    promoted = promotion(ws, app, session=session, now=now)
    if promoted is None or promoted.revision is None or (promoted.revision == ws.revision and not ws.local):
        return ws, app, promoted
    there = at_revision(ws, promoted.revision)
    defined = next((a for a in there.settings.apps if a.name == app.name), app)
    return there, defined, promoted


def _apply_one(ws: Workspace, app: config.App, saved_plan: AppPlan | None, options: deploy.Options | None,
               on_event: deploy.Event | None, env: Mapping[str, str] | None, allow: Collection[Guard],
               session: Session | None) -> deploy.Result:
    resources, _, backend = _render_for_target(ws, app, env, session)
    app_options = replace(
        options or deploy.Options(),
        timeout=(options.timeout if options and options.timeout else app.rollout.timeout_seconds),
        auto_rollback=app.rollout.auto_rollback and (options.auto_rollback if options else True),
        prune=app.sync.prune,
        force_conflicts=app.sync.take_over or (options.force_conflicts if options else False),
        policy=policy_for(app, allow),
    )
    revision = saved_plan.revision if saved_plan else revision_of(ws, app, resources)
    return deploy.apply_app(backend, resources, revision, app_options, saved=saved_plan,
                            on_event=on_event or (lambda _e: None))


def rollback(ws: Workspace, name: str, *, to_revision: str | None = None,
             options: deploy.Options | None = None, on_event: deploy.Event | None = None,
             session: Session | None = None) -> deploy.Result:
    app = ws.settings.app(name)
    backend = backend_for(ws, app, session)
    app_options = replace(options or deploy.Options(), timeout=app.rollout.timeout_seconds,
                          policy=policy_for(app))
    return deploy.rollback_app(backend, app_options, to_revision=to_revision,
                               on_event=on_event or (lambda _e: None))


def history(ws: Workspace, name: str, session: Session | None = None) -> AppState:
    app = ws.settings.app(name)
    return backend_for(ws, app, session).load_state()


@dataclass
class AppStatus:
    app: str
    backend: str
    target: str
    revision: str  # of the repository now
    applied: Release | None
    sync: str  # Synced / OutOfSync / Unknown
    health: HealthStatus
    changes: int = 0
    problems: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)  # left the repository, kept on the target (data, ...)
    blocked: list[str] = field(default_factory=list)  # why the repository's revision would be refused
    #: The plan the sync was judged from, and the health of each object it keeps (the app page).
    plan: AppPlan | None = field(default=None, repr=False)
    objects: dict[ResourceKey, Health] = field(default_factory=dict, repr=False)
    waiting: str = ""  # why the app is not applied now ("waiting for `db` (Progressing)"), or ""
    promotion: str = ""  # promote_from: the revision promoted and how far behind git it is

    def to_json(self) -> dict[str, Any]:
        current = self.applied
        return {
            "app": self.app, "backend": self.backend, "target": self.target, "revision": self.revision,
            "sync": self.sync, "health": self.health, "changes": self.changes, "problems": self.problems,
            "orphaned": self.orphaned, "blocked": self.blocked, "waiting": self.waiting, "promotion": self.promotion,
            "last": None if current is None else {
                "release": current.number, "revision": current.revision, "outcome": current.outcome.value,
                "started": current.started, "finished": current.finished, "message": current.message,
            },
        }


HEALTH_ORDER = [HealthStatus.DEGRADED, HealthStatus.MISSING, HealthStatus.UNKNOWN, HealthStatus.PROGRESSING,
                HealthStatus.SUSPENDED, HealthStatus.HEALTHY]  # worst first


def status_of(app: config.App, backend: Backend, state: AppState, app_plan: AppPlan) -> AppStatus:
    """An app's status from a plan already made (sync), and the health of its objects now."""
    changes = sum(1 for c in app_plan.changes if c.action is not Action.NOOP)
    orphaned = [f"{k.key} ({k.reason.value}{': ' + k.detail if k.detail else ''})" for k in app_plan.kept]
    keys = [c.key for c in app_plan.changes if c.action is not Action.DELETE]
    healths = backend.health(keys)
    worst = min((h.status for h in healths.values()), key=HEALTH_ORDER.index, default=HealthStatus.HEALTHY)
    problems = [f"{k}: {h.message}" for k, h in healths.items() if h.status is not HealthStatus.HEALTHY]
    return AppStatus(app.name, app.backend, backend.target_id(), app_plan.revision, state.current,
                     "OutOfSync" if changes else "Synced", worst, changes, problems, orphaned,
                     [b.message for b in app_plan.blocked], app_plan, dict(healths))


def status(ws: Workspace, names: Sequence[str] = (), env: Mapping[str, str] | None = None,
           session: Session | None = None, *, waits: bool = True) -> list[AppStatus]:
    """Each app's sync and health. A promoted app is judged at the revision it is promoted to
    (``promotion`` says which). ``waits``: also say why an app waits (``waiting``: an app it
    depends on, or no revision to promote yet)."""
    out: list[AppStatus] = []
    for selected in select_apps(ws, names):
        app, app_ws, promoted = selected, ws, None
        try:
            app_ws, app, promoted = promoted_workspace(ws, selected, session=session)
            backend = backend_for(app_ws, app, session)
            state = backend.load_state()
        except GitopsError as exc:
            out.append(AppStatus(app.name, app.backend, "", ws.revision or "", None, "Unknown", HealthStatus.UNKNOWN,
                                 problems=[str(exc)]))
            continue
        target = backend.target_id()
        promoting = promoted.summary() if promoted is not None and promoted.revision else ""
        waiting = promoted.waiting if promoted is not None else ""
        try:
            if waits and not waiting and selected.depends_on:
                waiting = dependency_wait(ws, selected, env=env, session=session)
            resources, _ = render_app(app_ws, app, env, api_versions=api_versions_for(app, backend),
                                      sops=_sops_of(app_ws, session))
            revision = revision_of(app_ws, app, resources)
            app_plan, _ = deploy.plan_app(backend, resources, revision, prune=app.sync.prune,
                                          policy=policy_for(app))
            out.append(replace(status_of(app, backend, state, app_plan), waiting=waiting, promotion=promoting))
        except GitopsError as exc:
            out.append(AppStatus(app.name, app.backend, target, ws.revision or "", state.current, "Unknown",
                                 HealthStatus.UNKNOWN, problems=[str(exc)], waiting=waiting, promotion=promoting))
    return out


# -- diff of two revisions (no target) ------------------------------------------------------------


def open_ref(root: Path, ref: str, cache_dir: Path | None = None, tools: Tools | None = None) -> Workspace:
    """A workspace of the commit ``ref`` names in the local repository at ``root`` (a work tree of
    its own, from the source cache: the user's work tree is not touched)."""
    revision = source.resolve(root, ref)
    top = source.toplevel(root)
    inside = root.resolve().relative_to(top)  # gitops.yaml may sit below the repository's root
    tree = source.snapshot(str(top), revision, cache_dir).root / inside
    try:
        return Workspace(tree, revision, config.load(tree), False, tools=tools or Tools())
    except config.ConfigError as exc:
        raise GitopsError(f"{ref} ({revision[:12]}): {exc}") from None


def offline_objects(ws: Workspace, app: config.App, env: Mapping[str, str] | None = None) -> list[Resource]:
    """The objects the app renders to at this workspace, as a target would be handed them, but
    without one: Kubernetes objects as rendered, compose files translated to Swarm objects."""
    resources, _ = render_app(ws, app, env)
    if app.backend == "kubernetes":
        return resources
    from gitops.backends.swarm.backend import offline_objects as swarm_objects

    def read_file(path: str) -> bytes:
        return source.resolve_inside(ws.root, path).read_bytes()

    return swarm_objects(resources, app.name, app.target.stack or app.name, read_file, sops_tool(ws.settings).decrypt)


def diff(base: Workspace, head: Workspace, names: Sequence[str] = (), *, base_label: str = "",
         head_label: str = "", env: Mapping[str, str] | None = None) -> RevisionDiff:
    """What the change from ``base`` to ``head`` does to each app's rendered objects. Every app of
    either revision (or the named ones) is rendered at both; one that does not validate at a
    revision is reported INVALID with its problems. Secret values are masked (gitops.diff)."""
    base_apps = {a.name: a for a in base.settings.apps}
    head_apps = {a.name: a for a in head.settings.apps}
    wanted = list(names) or [*head_apps, *(n for n in base_apps if n not in head_apps)]
    unknown = [n for n in wanted if n not in base_apps and n not in head_apps]
    if unknown:
        raise GitopsError(f"no app named {', '.join(unknown)} at either revision "
                          f"(apps: {', '.join(sorted(set(base_apps) | set(head_apps))) or 'none'})")
    sides = _render_sides(base, head, [(name, base_apps.get(name), head_apps.get(name)) for name in wanted], env)
    results: list[AppDiff] = []
    rendered: dict[tuple[str, str], list[Resource]] = {}
    for name in wanted:
        (before, base_errors), (after, head_errors) = sides[name]
        errors = [f"base: {e}" for e in base_errors] + [f"head: {e}" for e in head_errors]
        app_config = head_apps.get(name) or base_apps[name]
        if errors:
            results.append(AppDiff(name, app_config.backend, DiffStatus.INVALID, errors=tuple(errors)))
            continue
        if before is not None and before is after:  # the same inputs at both revisions: rendered once
            results.append(AppDiff(name, app_config.backend, DiffStatus.UNCHANGED,
                                   unchanged=len({r.key for r in before})))
            continue
        status = (DiffStatus.ADDED if before is None else DiffStatus.REMOVED if after is None else DiffStatus.CHANGED)
        results.append(_app_diff(name, app_config.backend, before or [], after or [], status))
        if before is None or after is None:
            rendered[(name, "head" if before is None else "base")] = after or before or []
    return RevisionDiff(base_label or (base.revision or ""), head_label or (head.revision or "working tree"),
                        base.revision or "", "" if head.local else head.revision or "",
                        tuple(_renames(results, rendered)))


#: What one side of an app renders to: its objects (None: the app is not defined there, or does
#: not render), and the problems that stopped it, as shown.
_Side = tuple[list[Resource] | None, list[str]]


def _render_side(ws: Workspace, app: config.App | None, env: Mapping[str, str] | None) -> _Side:
    if app is None:
        return None, []
    try:
        return offline_objects(ws, app, env), []
    except ValidationFailed as exc:
        return None, [str(d) for d in exc.diagnostics if d.severity is Severity.ERROR]
    except GitopsError as exc:
        return None, [str(exc)]


def _render_sides(base: Workspace, head: Workspace, apps: Sequence[tuple[str, config.App | None, config.App | None]],
                  env: Mapping[str, str] | None) -> dict[str, tuple[_Side, _Side]]:
    """Every app rendered at both revisions, in parallel threads (the time goes mostly to
    kustomize and helm subprocesses, which then run at once). An app defined alike at both
    revisions whose inputs are the same at both (:func:`_inputs`) is rendered once, at the base,
    and the head is given the very same objects (the caller sees it is unchanged without comparing);
    when it does not render, the head is rendered too (its problems name its own files)."""
    alike = [(name, at_base) for name, at_base, at_head in apps if at_base is not None and at_base == at_head
             and base.settings.kubernetes_version == head.settings.kubernetes_version]
    jobs = [(name, "base", base, at_base) for name, at_base, _ in apps]
    workers = max(1, min(len(jobs) * 2, RENDER_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") as pool:
        prints = {(name, label): pool.submit(_inputs, ws, app) for name, app in alike
                  for label, ws in (("base", base), ("head", head))}
        same = {name for name, _ in alike
                if (found := prints[(name, "base")].result()) is not None and found == prints[(name, "head")].result()}
        jobs += [(name, "head", head, at_head) for name, _, at_head in apps if name not in same]
        futures = {(name, label): pool.submit(_render_side, ws, app, env) for name, label, ws, app in jobs}
        done = {job: future.result() for job, future in futures.items()}
        again = {(name, "head"): pool.submit(_render_side, head, at_head, env) for name, _, at_head in apps
                 if name in same and done[(name, "base")][0] is None}
        done.update((job, future.result()) for job, future in again.items())
    return {name: (done[(name, "base")], done.get((name, "head"), done[(name, "base")])) for name, _, _ in apps}


RENDER_THREADS = 8  # renders (apps x revisions) at once in `gitops diff`, at most one a CPU


def _inputs(ws: Workspace, app: config.App) -> str | None:
    """A fingerprint of everything the app reads at this workspace's commit: the git objects of
    its paths, env files and chart, of the ``.gitattributes`` on the way to them, and of every file
    or directory its kustomizations, compose files or chart definitions may name inside the
    repository (followed until no new one appears).
    Equal fingerprints at two commits: the same rendered objects. None when the commit cannot tell:
    a local work tree, a symlink, a path that leaves the repository, a remote kustomize resource
    or chart dependency."""
    if ws.local or ws.revision is None:
        return None
    roots = [_normal(p.removeprefix("./")) for p in _files_of(app)]
    if any(root is None for root in roots):
        return None
    covered = sorted({root for root in roots if root is not None})
    # .gitattributes on the way to them may change what a checkout writes (eol, filters)
    attributes = {".gitattributes"}
    for root in covered:
        while (root := posixpath.dirname(root)) not in ("", "."):
            attributes.add(f"{root}/.gitattributes")
    covered += sorted(attributes - set(covered))
    wanted, listing = list(covered), []
    while wanted:
        try:
            entries = source.tree_entries(ws.root, ws.revision, wanted)
        except source.SourceError:
            return None
        wanted = []
        for mode, oid, path in entries:
            if mode == "120000":  # a symlink: what it points at is not in this listing
                return None
            listing.append(f"{mode} {oid} {path}")
            name = path.rpartition("/")[2]
            if name in k8s_render.KUSTOMIZATION_FILES or name in _CHART_FILES or (
                    app.backend == "swarm" and name.endswith(render_stage.MANIFEST_SUFFIXES)):
                named = _named_paths(ws.root / path, path.rpartition("/")[0], covered)
                if named is None:
                    return None
                new = sorted(p for p in named if not _inside(p, covered))
                covered.extend(new)
                wanted.extend(new)
    return hashlib.sha256("\n".join(["\0".join(sorted(covered)), *sorted(listing)]).encode()).hexdigest()


_CHART_FILES = ("Chart.yaml", "requirements.yaml")
#: what a kustomization's resources may name outside the commit (kustomize's remote targets)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|(?:github|gitlab)\.com/|bitbucket\.org/)|//|\?ref=",
                     re.IGNORECASE)


def _normal(path: str, directory: str = ".") -> str | None:
    """``path`` (relative to ``directory``) relative to the workspace root, or None when it leaves it."""
    if path.startswith("/") or "\0" in path:
        return None
    joined = posixpath.normpath(posixpath.join(directory, path))
    return None if joined == ".." or joined.startswith("../") else joined


def _named_paths(file: Path, directory: str, roots: Sequence[str]) -> set[str] | None:
    """Every string of a YAML file (a kustomization, a chart's ``Chart.yaml``, a compose file)
    taken as a path relative to its directory (a compose file's also relative to the app's paths:
    compose resolves from the first file's directory), where it stays inside the repository: a
    superset of the files it names (of a chart's, only its ``file://`` dependencies: the others are
    pinned by the chart's lock). None when a kustomization or chart may name something outside the
    commit: a remote resource or base, a path that leaves the repository."""
    try:
        loaded = load(file.read_bytes(), str(file))
    except OSError:
        return None
    chart = file.name in _CHART_FILES
    compose = file.name not in k8s_render.KUSTOMIZATION_FILES and not chart
    bases = {directory or "."}
    if compose:
        bases.update(posixpath.dirname(r) or "." if r.endswith(render_stage.MANIFEST_SUFFIXES) else r for r in roots)
    found: set[str] = set()
    stack: list[Any] = [d.data for d in loaded.documents]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node and "\n" not in node and len(node) < 1024:
            text = node.removeprefix("file://")
            if chart and text is node:
                continue
            if _REMOTE.search(text):
                if compose:
                    continue  # a URL in a command or a label: compose reads no file from it
                return None
            for base in bases:
                normal = _normal(text, base)
                if normal is not None:
                    found.add(normal)
                elif not compose:
                    return None
    return found


def _app_diff(name: str, backend: str, before: list[Resource], after: list[Resource],
              status: DiffStatus) -> AppDiff:
    old = {r.key: r for r in before}
    new = {r.key: r for r in after}
    changes: list[Change] = []
    bodies: dict[str, Bodies] = {}
    unchanged = 0
    for key in sorted(set(old) | set(new)):
        was, now = old.get(key), new.get(key)
        sensitive = _sensitive(backend, key.kind, was.body if was else None, now.body if now else None)
        if was is None and now is not None:
            changes.append(Change(key, Action.CREATE, "added", origin=str(now.origin)))
            bodies[str(key)] = Bodies(None, diff_stage.masked(now.body, sensitive))
        elif now is None and was is not None:
            changes.append(Change(key, Action.DELETE, "removed", origin=str(was.origin)))
            bodies[str(key)] = Bodies(diff_stage.masked(was.body, sensitive), None)
        elif was is not None and now is not None:
            # equal bodies normalize alike: no need to normalize them (most objects of a change)
            fields = [] if was.body == now.body else _desired_changes(backend, key.kind, was.body, now.body)
            if not fields:
                unchanged += 1
                continue
            changes.append(Change(key, Action.UPDATE, "", tuple(fields), origin=str(now.origin)))
            bodies[str(key)] = Bodies(diff_stage.masked(was.body, sensitive),
                                      diff_stage.masked(now.body, sensitive, was.body))
    if status is DiffStatus.CHANGED and not changes:
        status = DiffStatus.UNCHANGED
    return AppDiff(name, backend, status, tuple(changes), bodies, unchanged)


def _renames(results: list[AppDiff], rendered: dict[tuple[str, str], list[Resource]]) -> list[AppDiff]:
    """An app added at head that renders exactly what an app removed at head rendered: a rename."""
    def content(objects: list[Resource]) -> str:
        return plan_stage.digest(objects)

    removed = {content(rendered[(a.app, "base")]): a for a in results if a.status is DiffStatus.REMOVED
               and rendered.get((a.app, "base"))}
    out: list[AppDiff] = []
    gone: set[str] = set()
    for result in results:
        objects = rendered.get((result.app, "head"))
        old = removed.get(content(objects)) if result.status is DiffStatus.ADDED and objects else None
        if old is not None and old.backend == result.backend:
            out.append(AppDiff(result.app, result.backend, DiffStatus.RENAMED, unchanged=len(objects or []),
                               renamed_from=old.app))
            gone.add(old.app)
        else:
            out.append(result)
    return [r for r in out if not (r.status is DiffStatus.REMOVED and r.app in gone)]


def _sensitive(backend: str, kind: str, *bodies: dict[str, Any] | None) -> diff_stage.Sensitive:
    if backend == "kubernetes":
        from gitops.backends.kubernetes import normalize as kube

        return kube.sensitive(kind, *bodies)
    from gitops.backends.swarm import normalize as swarm

    return swarm.sensitive(kind, *bodies)


def _desired_changes(backend: str, kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    if backend == "kubernetes":
        from gitops.backends.kubernetes import normalize as kube

        return kube.desired_changes(kind, before, after)
    from gitops.backends.swarm import normalize as swarm

    return swarm.diff_kind(kind, after, before)
