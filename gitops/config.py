"""``gitops.yaml``: the apps a repository declares, checked against ``schemas/gitops.schema.json``.

Example::

    version: 1
    kubernetes_version: "1.35"
    verify: {required: true}   # refuse to run without allowed signers (given to gitops, never read from here)
    sops: {age_key_file: /etc/gitops/age.key}   # the age key SOPS files are decrypted with (unless SOPS_AGE_KEY_FILE)
    defaults:
      sync: {prune: true, self_heal: true}   # also allow_cascade, prune_data, max_delete_ratio, mass_delete_min
      rollout: {timeout: 5m, auto_rollback: true}
    apps:
      - name: web
        backend: kubernetes
        paths: [k8s]
        target: {context: prod, namespace: web}
      - name: chart
        backend: kubernetes
        helm: {chart: charts/web, values_files: [charts/web/prod.yaml], values: {replicas: 2}}
        target: {namespace: web}
      - name: demo
        backend: swarm
        paths: [swarm/compose.yaml]
        target: {host: "unix:///var/run/docker.sock", stack: demo}
        policy: {single-replica: "off"}   # rule id -> off | warning | error; also exclude: [{kind, name, namespace}]

Every problem is reported with its field path (``apps[1].target.stack``) and line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema

from gitops.errors import GitopsError
from gitops.model import Diagnostic, Severity
from gitops.model.policies import Exclude, Level, PolicySettings
from gitops.render import yaml as yaml_loader
from gitops.render.helm import HelmSource

__all__ = [
    "CONFIG_FILE",
    "NOTIFY_ENV_PREFIX",
    "TRIGGERS",
    "App",
    "ConfigError",
    "Notifications",
    "Provider",
    "RolloutPolicy",
    "SecretRef",
    "Settings",
    "Subscription",
    "SyncPolicy",
    "Target",
    "load",
    "parse",
    "parse_duration",
]

CONFIG_FILE = "gitops.yaml"
Backend = Literal["kubernetes", "swarm"]


class ConfigError(GitopsError):
    """gitops.yaml is missing or wrong; ``diagnostics`` holds every problem."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(str(d) for d in diagnostics) or "invalid gitops.yaml")


@dataclass(frozen=True)
class SyncPolicy:
    prune: bool = False
    self_heal: bool = False
    interval_seconds: float = 60.0
    auto: bool = True  # the daemon applies new revisions; False: it only reports OutOfSync
    take_over: bool = True  # fields git declares are taken from other field managers when they drift
    allow_cascade: bool = False  # prune may delete objects whose delete takes others with it
    prune_data: bool = False  # prune may delete PersistentVolumeClaims and named volumes
    max_delete_ratio: float = 0.5  # a revision deleting more than this share of the app's objects ...
    mass_delete_min: int = 5  # ... and at least this many is refused (unless --allow-mass-delete)


@dataclass(frozen=True)
class RolloutPolicy:
    timeout_seconds: float = 300.0
    auto_rollback: bool = True


@dataclass(frozen=True)
class Target:
    """Kubernetes: kubeconfig context (None = current) and namespace. Swarm: Docker host and stack."""

    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = "default"
    host: str | None = None
    stack: str | None = None


@dataclass(frozen=True)
class App:
    name: str
    backend: Backend
    paths: tuple[str, ...]
    target: Target
    sync: SyncPolicy
    rollout: RolloutPolicy
    env_files: tuple[str, ...] = ()
    helm: HelmSource | None = None  # a Helm chart rendered with `helm template` (Kubernetes)
    depends_on: tuple[str, ...] = ()  # apps healthy at this revision before this one is applied
    #: Promotion: applied only at revisions this app recorded as succeeded (for promote_after seconds).
    promote_from: str | None = None
    promote_after: float = 0.0
    policy: PolicySettings = field(default_factory=PolicySettings)  # the file's policy, the app's on top

    @property
    def after(self) -> tuple[str, ...]:
        """The apps this one comes after: those it depends on, and the one it is promoted from
        (one graph: the same ordering and the same checks)."""
        return (*self.depends_on, *((self.promote_from,) if self.promote_from else ()))


# What the daemon notifies (``notifications:``). ``sync-started`` is what a commit status shows as
# pending; the rest are outcomes.
TRIGGERS = ("sync-started", "deployed", "sync-failed", "rolled-back", "health-degraded", "drift-detected",
            "drift-healed")
COMMIT_STATUS_TRIGGERS = ("sync-started", "deployed", "sync-failed", "rolled-back", "health-degraded")
# The only environment variables a gitops.yaml may name as a notification secret: whoever can
# commit must not be able to send the daemon's own secrets (its API token, cloud credentials) away.
NOTIFY_ENV_PREFIX = "GITOPS_NOTIFY_"


@dataclass(frozen=True)
class SecretRef:
    """A value read once when the daemon loads the file: a literal (a URL that is no secret), an
    environment variable (``GITOPS_NOTIFY_*``) or a file in the daemon's ``--notify-secrets`` directory."""

    literal: str | None = None
    env: str | None = None
    file: str | None = None

    @property
    def secret(self) -> bool:
        return self.literal is None

    def __str__(self) -> str:
        return self.literal if self.literal is not None else (f"${self.env}" if self.env else f"file {self.file}")


@dataclass(frozen=True)
class Provider:
    """Where notifications go: ``webhook`` (url, secret, headers), ``slack`` (url), ``github`` and
    ``gitlab`` commit statuses (api_url, repository, token, context)."""

    name: str
    type: Literal["webhook", "slack", "github", "gitlab"]
    url: SecretRef | None = None
    secret: SecretRef | None = None
    headers: tuple[tuple[str, SecretRef], ...] = ()
    api_url: str = ""
    repository: str = ""
    token: SecretRef | None = None
    context: str = "gitops/{app}"

    @property
    def commit_status(self) -> bool:
        return self.type in ("github", "gitlab")


@dataclass(frozen=True)
class Subscription:
    provider: str
    triggers: tuple[str, ...]  # never empty (the provider's default when the file gives none)
    apps: tuple[str, ...] = ()  # empty: every app


@dataclass(frozen=True)
class Notifications:
    providers: tuple[Provider, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    page_url: str = ""  # messages link to PAGE_URL/apps/APP


@dataclass(frozen=True)
class Settings:
    apps: tuple[App, ...]
    kubernetes_version: str | None = None
    file: str = CONFIG_FILE
    notifications: Notifications = Notifications()
    policy: PolicySettings = field(default_factory=PolicySettings)  # top level (each app's holds it)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # verify.required: plan, apply and the daemon refuse to run without allowed signers. The
    # signers themselves never come from here (the revision they verify could change them).
    verify_required: bool = False
    # sops.age_key_file: where the age key for SOPS files is on the machine that runs gitops
    # (absolute or ~); SOPS_AGE_KEY_FILE in the environment wins.
    sops_age_key_file: str | None = None

    def app(self, name: str) -> App:
        for app in self.apps:
            if app.name == name:
                return app
        raise GitopsError(f"no app named {name!r} in {self.file}")


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: int | float | str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"250ms"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 5m, 1h30m)")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("gitops").joinpath("schemas/gitops.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _field_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "unknown field" + ("s " if len(extras) > 1 else " ") + ", ".join(repr(e) for e in extras)
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if error.validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"must be one of {options}, got {json.dumps(error.instance)}"
    if error.validator == "pattern":
        return f"{json.dumps(error.instance)} is not allowed here (must match {error.validator_value})"
    if error.validator == "not":
        return f"{json.dumps(error.instance)} must be a relative path inside the repository"
    if error.validator == "anyOf" and "propertyNames" in error.schema_path:  # policy: a rule id
        return f"unknown rule {json.dumps(error.instance)} (gitops validate --list-rules lists the rules)"
    if error.validator == "oneOf" and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return _message(best) if best is not None else str(error.message)
    return str(error.message)


def _leaves(errors: Any) -> list[jsonschema.ValidationError]:
    out: list[jsonschema.ValidationError] = []
    for error in errors:
        if error.validator in ("if", "then", "else", "allOf") and error.context:
            out.extend(_leaves(error.context))
        else:
            out.append(error)
    return out


def parse(data: bytes | str, file: str = CONFIG_FILE) -> Settings:
    """Settings from the text of a gitops.yaml; ConfigError lists every problem."""
    loaded = yaml_loader.load(data, file)
    problems = list(loaded.diagnostics)
    documents = [d for d in loaded.documents if d.data is not None]
    if not problems and len(documents) != 1:
        problems.append(Diagnostic(Severity.ERROR, f"{file} must hold exactly one YAML document", file=file))
    if problems:
        raise ConfigError(problems)
    raw = documents[0].data
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(_leaves(validator.iter_errors(raw)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        pointers = {_pointer(e.absolute_path) for e in errors}
        lines = yaml_loader.locate(data, documents[0].index, pointers)
        diagnostics = []
        for error in errors:
            pointer = _pointer(error.absolute_path)
            line, column = lines.get(pointer, (None, None))
            diagnostics.append(
                Diagnostic(Severity.ERROR, f"{_field_path(error.absolute_path)}: {_message(error)}", file=file,
                           line=line, pointer=pointer, code="config", column=column)
            )  # fmt: skip
        raise ConfigError(diagnostics)
    return _build(raw, file, data, documents[0].index)


def _sync(raw: dict[str, Any] | None, base: SyncPolicy) -> SyncPolicy:
    raw = raw or {}
    return SyncPolicy(
        prune=raw.get("prune", base.prune),
        self_heal=raw.get("self_heal", base.self_heal),
        interval_seconds=parse_duration(raw["interval"]) if "interval" in raw else base.interval_seconds,
        auto=raw.get("auto", base.auto),
        take_over=raw.get("take_over", base.take_over),
        allow_cascade=raw.get("allow_cascade", base.allow_cascade),
        prune_data=raw.get("prune_data", base.prune_data),
        max_delete_ratio=float(raw.get("max_delete_ratio", base.max_delete_ratio)),
        mass_delete_min=int(raw.get("mass_delete_min", base.mass_delete_min)),
    )


def _rollout(raw: dict[str, Any] | None, base: RolloutPolicy) -> RolloutPolicy:
    raw = raw or {}
    return RolloutPolicy(
        timeout_seconds=parse_duration(raw["timeout"]) if "timeout" in raw else base.timeout_seconds,
        auto_rollback=raw.get("auto_rollback", base.auto_rollback),
    )


def _dependency_problems(apps: list[App]) -> list[tuple[str, str]]:
    """``depends_on`` or ``promote_from`` naming an app that does not exist (or the app itself,
    for promote_from), or going round in a cycle: one graph of both."""
    problems: list[tuple[str, str]] = []
    names = {app.name for app in apps}
    for index, app in enumerate(apps):
        for position, name in enumerate(app.depends_on):
            if name not in names:
                problems.append((f"/apps/{index}/depends_on/{position}",
                                 f"apps[{index}].depends_on: app {app.name} depends on {name!r}, which is not an app"))
        if app.promote_from == app.name:
            problems.append((f"/apps/{index}/promote_from",
                             f"apps[{index}].promote_from: app {app.name} cannot be promoted from itself"))
        elif app.promote_from is None and app.promote_after:
            problems.append((f"/apps/{index}/promote_after",
                             f"apps[{index}].promote_after: app {app.name} has no promote_from to wait on"))
        elif app.promote_from is not None and app.promote_from not in names:
            problems.append((f"/apps/{index}/promote_from", f"apps[{index}].promote_from: app {app.name} is promoted "
                             f"from {app.promote_from!r}, which is not an app"))
    graph = {app.name: [d for d in app.after if d in names and d != app.name] for app in apps}
    for index, app in enumerate(apps):
        cycle = _cycle_from(app.name, graph)
        if cycle:
            at = "depends_on" if app.depends_on else "promote_from"
            problems.append((f"/apps/{index}/{at}", f"apps[{index}].{at}: a cycle: {' -> '.join(cycle)}"))
    return problems


def _cycle_from(start: str, graph: Mapping[str, list[str]]) -> list[str] | None:
    """A dependency path that leads from ``start`` back to it, if there is one (each app looked
    at once)."""
    came_from: dict[str, str] = {}
    todo = [start]
    while todo:
        node = todo.pop()
        for dep in graph[node]:
            if dep == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if dep not in came_from:
                came_from[dep] = node
                todo.append(dep)
    return None


def in_dependency_order(apps: list[App]) -> list[App]:
    """The apps with each after the apps it depends on (and is promoted from), otherwise in their
    order in gitops.yaml."""
    by_name = {app.name: app for app in apps}
    out: list[App] = []
    placed: set[str] = set()

    def place(app: App) -> None:
        if app.name in placed:
            return
        placed.add(app.name)
        for dep in app.after:
            if dep in by_name:
                place(by_name[dep])
        out.append(app)

    for app in apps:
        place(app)
    return out


def _policy(raw: dict[str, Any] | None) -> PolicySettings:
    """``policy:`` (rule id -> off | warning | error, and exclude); YAML 1.1 reads ``off`` as false."""
    raw = raw or {}
    levels = {rule: Level.OFF if level is False else Level(level) for rule, level in raw.items() if rule != "exclude"}
    exclude = tuple(Exclude(e.get("kind", ""), e.get("name", ""), e.get("namespace", ""))
                    for e in raw.get("exclude", ()))
    return PolicySettings(levels, exclude)


def _build(raw: dict[str, Any], file: str, data: bytes | str, document: int) -> Settings:
    defaults = raw.get("defaults") or {}
    base_policy = _policy(raw.get("policy"))
    base_sync = _sync(defaults.get("sync"), SyncPolicy())
    base_rollout = _rollout(defaults.get("rollout"), RolloutPolicy())
    apps: list[App] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw["apps"]):
        name = item["name"]
        if name in seen:
            problems.append((f"/apps/{index}/name", f"apps[{index}].name: duplicate app name {name!r}"))
        seen.add(name)
        paths = item.get("paths", ())
        paths = (paths,) if isinstance(paths, str) else tuple(paths)
        for position, path in enumerate(paths):
            if ".." in Path(path).parts:
                message = f"apps[{index}].paths[{position}]: {path!r} leaves the repository"
                problems.append((f"/apps/{index}/paths", message))
        helm = _helm(item, index, problems)
        if not paths and helm is None:
            problems.append((f"/apps/{index}", f"apps[{index}]: give paths (files or directories) or helm (a chart)"))
        target_raw = item.get("target") or {}
        target = Target(
            context=target_raw.get("context"),
            kubeconfig=target_raw.get("kubeconfig"),
            namespace=target_raw.get("namespace", "default"),
            host=target_raw.get("host"),
            stack=target_raw.get("stack"),
        )
        apps.append(
            App(
                name=name,
                backend=item["backend"],
                paths=paths,
                target=target,
                sync=_sync(item.get("sync"), base_sync),
                rollout=_rollout(item.get("rollout"), base_rollout),
                env_files=tuple(item.get("env_files", ())),
                helm=helm,
                depends_on=tuple(item.get("depends_on", ())),
                promote_from=item.get("promote_from"),
                promote_after=parse_duration(item["promote_after"]) if "promote_after" in item else 0.0,
                policy=_policy(item.get("policy")).over(base_policy),
            )
        )
    problems.extend(_dependency_problems(apps))
    notifications = _notifications(raw.get("notifications"), seen, problems)
    verify = raw.get("verify") or {}
    if "signers" in verify:
        problems.append(("/verify/signers", "verify.signers: the allowed signers cannot come from the repository they "
                         "verify (a commit could change them): give them to gitops with --verify-ssh FILE or "
                         "--verify-gpg FILE (or GITOPS_VERIFY_SSH, GITOPS_VERIFY_GPG)"))
    sops = raw.get("sops") or {}
    age_key_file = sops.get("age_key_file")
    if age_key_file is not None and not (str(age_key_file).startswith(("/", "~"))):
        problems.append(("/sops/age_key_file", "sops.age_key_file must be an absolute path (or start with ~): the key "
                         "lives on the machine that runs gitops, never in the repository"))
    if problems:
        lines = yaml_loader.locate(data, document, [p for p, _ in problems])
        raise ConfigError(
            [Diagnostic(Severity.ERROR, m, file=file, line=lines.get(p, (None, None))[0], pointer=p, code="config",
                        column=lines.get(p, (None, None))[1]) for p, m in problems]
        )
    return Settings(tuple(apps), raw.get("kubernetes_version"), file, notifications, base_policy,
                    verify_required=bool(verify.get("required", False)),
                    sops_age_key_file=str(age_key_file) if age_key_file else None)


def _helm(item: dict[str, Any], index: int, problems: list[tuple[str, str]]) -> HelmSource | None:
    raw = item.get("helm")
    if raw is None:
        return None
    at, where = f"/apps/{index}/helm", f"apps[{index}].helm"
    if item["backend"] != "kubernetes":
        problems.append((at, f"{where}: a Helm chart is a Kubernetes source (backend is {item['backend']})"))
    repo = raw.get("repo")
    local = [raw["chart"]] if repo is None else []
    for position, path in enumerate(local + list(raw.get("values_files", ()))):
        if ".." in Path(path).parts or path.startswith("/"):
            field_at = "chart" if position < len(local) else f"values_files[{position - len(local)}]"
            problems.append((at, f"{where}.{field_at}: {path!r} leaves the repository"))
    if repo is not None and "version" not in raw:
        problems.append((at, f"{where}.version: a chart from a repository needs a pinned version"))
    return HelmSource(chart=raw["chart"], release=raw.get("release", item["name"]), repo=repo,
                      version=raw.get("version"), values_files=tuple(raw.get("values_files", ())),
                      values=dict(raw.get("values") or {}))


def _ref(raw: str | dict[str, str], pointer: str, problems: list[tuple[str, str]]) -> SecretRef:
    if isinstance(raw, str):
        return SecretRef(literal=raw)
    if "env" in raw and not raw["env"].startswith(NOTIFY_ENV_PREFIX):
        parts = [int(p) if p.isdigit() else p for p in pointer.split("/")[1:]]
        problems.append((pointer + "/env", f"{_field_path(parts)}.env: {raw['env']!r} cannot be read: "
                         f"notification secrets come from variables named {NOTIFY_ENV_PREFIX}*"))
    return SecretRef(env=raw.get("env"), file=raw.get("file"))


def _notifications(raw: dict[str, Any] | None, apps: set[str], problems: list[tuple[str, str]]) -> Notifications:
    if not raw:
        return Notifications()
    providers: dict[str, Provider] = {}
    for index, item in enumerate(raw["providers"]):
        at = f"/notifications/providers/{index}"
        name, kind = item["name"], item["type"]
        if name in providers:
            problems.append((at + "/name", f"notifications.providers[{index}].name: duplicate provider name {name!r}"))
        if kind == "slack" and isinstance(item["url"], str):
            problems.append((at + "/url", f"notifications.providers[{index}].url: a Slack webhook URL is a secret: "
                             f"give it as {{env: {NOTIFY_ENV_PREFIX}...}} or {{file: ...}}, not in git"))
        default_api = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}.get(kind, "")
        providers[name] = Provider(
            name=name, type=kind,
            url=_ref(item["url"], at + "/url", problems) if "url" in item else None,
            secret=_ref(item["secret"], at + "/secret", problems) if "secret" in item else None,
            headers=tuple((key, _ref(value, f"{at}/headers/{key}", problems))
                          for key, value in (item.get("headers") or {}).items()),
            api_url=str(item.get("api_url", default_api)).rstrip("/"),
            repository=item.get("repository", ""),
            token=_ref(item["token"], at + "/token", problems) if "token" in item else None,
            context=item.get("context", "gitops/{app}"),
        )  # fmt: skip
    subscriptions = []
    for index, item in enumerate(raw["subscriptions"]):
        at, where = f"/notifications/subscriptions/{index}", f"notifications.subscriptions[{index}]"
        provider = providers.get(item["provider"])
        if provider is None:
            known = ", ".join(sorted(providers)) or "none"
            problems.append((at + "/provider", f"{where}.provider: no provider named {item['provider']!r} "
                             f"(providers: {known})"))
            continue
        allowed = COMMIT_STATUS_TRIGGERS if provider.commit_status else TRIGGERS
        triggers = tuple(item.get("triggers", allowed))
        wrong = [t for t in triggers if t not in allowed]
        if wrong:
            problems.append((at + "/triggers", f"{where}.triggers: a {provider.type} commit status has no "
                             f"{', '.join(wrong)} (it takes {', '.join(allowed)})"))
        for position, app in enumerate(item.get("apps", ())):
            if app not in apps:
                problems.append((f"{at}/apps/{position}", f"{where}.apps[{position}]: no app named {app!r}"))
        subscriptions.append(Subscription(provider.name, triggers, tuple(item.get("apps", ()))))
    return Notifications(tuple(providers.values()), tuple(subscriptions), str(raw.get("page_url", "")).rstrip("/"))


def load(root: Path, file: str = CONFIG_FILE) -> Settings:
    """Read ``gitops.yaml`` at the repository root."""
    path = root / file
    if not path.is_file():
        raise ConfigError([Diagnostic(Severity.ERROR, f"no {file} at the repository root ({root})", file=file,
                                      code="config")])  # fmt: skip
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Diagnostic(Severity.ERROR, f"cannot read {file}: {exc.strerror}", file=file)]) from None
    return parse(data, file)
