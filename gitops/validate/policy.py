"""Policy rules: the orchestration anti-patterns, for Kubernetes pod templates and Swarm services.

:data:`RULES` is the one table of rules (stable id, rationale, fix, default severity, backends);
:func:`check` applies them to what was rendered and returns diagnostics (code = the rule id,
message ``[rule-id] ...``, pointer = the field, resource = the object). A rule's level comes from
the table, then gitops.yaml's ``policy:`` (``PolicySettings``), then ``--strict`` (warnings
become errors). An object opts out of rules with a waiver: the annotation
``gitops.dev/ignore: rule[,rule] -- reason`` (Kubernetes, on the object or its pod template) or
``x-gitops-ignore`` with the same text on a compose service.

What ``validate.compose`` already reports is not checked again here: references to undefined
networks, configs, secrets and volumes are errors there, and ``privileged`` (which Swarm services
do not have) is a warning of the compose rule table.

No message prints an environment value: a secret-looking variable is named, never shown; a
literal IP address is shown alone, never the value around it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops.diff import is_secret_name
from gitops.model import Diagnostic, Severity
from gitops.model.policies import Level, PolicySettings
from gitops.render import Rendered
from gitops.render.compose import ComposeFile
from gitops.render.kubernetes import Manifest, display_name
from gitops.render.yaml import Dialect, escape_pointer, gc_paused, load
from gitops.validate.units import duration_ns

__all__ = ["BY_ID", "RULES", "WAIVER_ANNOTATION", "WAIVER_KEY", "Rule", "check"]

WAIVER_ANNOTATION = "gitops.dev/ignore"
WAIVER_KEY = "x-gitops-ignore"
K8S = frozenset({"kubernetes"})
SWARM = frozenset({"swarm"})
BOTH = K8S | SWARM


@dataclass(frozen=True)
class Rule:
    id: str
    rationale: str
    fix: str
    severity: Severity
    backends: frozenset[str]


W, E = Severity.WARNING, Severity.ERROR

RULES: tuple[Rule, ...] = (
    Rule("image-tag", "an image without a tag, or tagged latest, changes under the same manifest; a rollback "
         "cannot return to it", "pin a version tag (app:1.4.2) or a digest (app@sha256:...)", W, BOTH),
    Rule("memory-limit", "without a memory limit one container can take the node's memory from every other",
         "set resources.limits.memory (Swarm: deploy.resources.limits.memory)", W, BOTH),
    Rule("cpu-limit", "without a CPU limit one container can monopolize the node's CPUs",
         "set resources.limits.cpu (Swarm: deploy.resources.limits.cpus)", W, BOTH),
    Rule("resource-requests", "without requests (reservations) the scheduler places work on nodes that cannot "
         "hold it", "set resources.requests.cpu and .memory (Swarm: deploy.resources.reservations)", W, BOTH),
    Rule("readiness-probe", "without a readiness probe traffic reaches pods before they can serve, and a rollout "
         "cannot tell a broken version", "add a readinessProbe", W, K8S),
    Rule("liveness-probe", "without a liveness probe a hung container is never restarted", "add a livenessProbe",
         W, K8S),
    Rule("healthcheck", "without a healthcheck Swarm counts a started task as healthy: a rollout cannot fail "
         "fast, a hung task is never replaced", "add a healthcheck (test, interval, timeout, retries)", W, SWARM),
    Rule("probe-timing", "a probe every second or two, or one whose timeout reaches its period, loads the "
         "service it checks and fails it under load (a self-inflicted denial of service)",
         "probe every 5s or more, with a timeout shorter than the period", W, BOTH),
    Rule("bare-pod", "a bare Pod is not rescheduled when its node fails and cannot be rolled out",
         "use a Deployment (or a Job for work that ends)", W, K8S),
    Rule("secret-env", "a secret written literally in an environment value is readable by everyone who can "
         "read the repository, the object or the process list", "use valueFrom.secretKeyRef (Swarm: a secret "
         "and the _FILE variant of the variable), or a variable the deployer sets", E, BOTH),
    Rule("literal-ip", "an IP address baked into env or args breaks when the address changes and ties the "
         "manifest to one network", "use a service name (DNS), or a ConfigMap value", W, BOTH),
    Rule("single-replica", "one replica means downtime on every node failure and every rollout",
         "set replicas to 2 or more (or an autoscaler)", W, BOTH),
    Rule("privileged", "a privileged container has every capability and the host's devices: a breakout is one "
         "step away", "remove securityContext.privileged, add only the capabilities needed", E, K8S),
    Rule("privilege-escalation", "unless forbidden, a process can gain more privileges than its parent (setuid "
         "binaries)", "set securityContext.allowPrivilegeEscalation: false", W, K8S),
    Rule("run-as-non-root", "a container running as root turns any escape into root on the node",
         "set securityContext.runAsNonRoot: true (and a non-zero runAsUser)", W, K8S),
    Rule("host-namespace", "sharing the host's network, PID or IPC namespace exposes the node to the container",
         "remove hostNetwork / hostPID / hostIPC", W, K8S),
    Rule("host-path", "a hostPath volume ties the pod to one node's files and can expose the node",
         "use a PersistentVolumeClaim, a ConfigMap or an emptyDir", W, K8S),
    Rule("dangerous-capability", "capabilities such as SYS_ADMIN or NET_ADMIN give root-like power over the node",
         "drop the capability; add only narrow ones (NET_BIND_SERVICE)", W, BOTH),
    Rule("docker-socket", "the Docker socket inside a container is root on the node", "remove the mount of "
         "docker.sock; use a narrow API proxy if it is needed", E, BOTH),
    Rule("service-selector", "a Service whose selector matches no pod template of the app sends traffic nowhere",
         "make spec.selector match the labels of a pod template", W, K8S),
    Rule("ingress-backend", "an Ingress backend naming a Service or port the app does not define answers 503",
         "name a Service of the app and one of its ports", W, K8S),
    Rule("missing-reference", "a container referring to a Secret or ConfigMap the app does not define fails to "
         "start when it is absent", "define the object in the app, mark the reference optional: true, or "
         "waive the rule on the object with the reason it is created elsewhere", W, K8S),
    Rule("waiver", "a waiver without a reason (or naming no known rule) hides a problem without saying why",
         f"write <rule>[,<rule>] -- <reason> in the {WAIVER_ANNOTATION} annotation (compose: {WAIVER_KEY})", W,
         BOTH),
)
BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

# -- helpers ---------------------------------------------------------------------------------------

IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
DANGEROUS_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO",
                                    "DAC_READ_SEARCH", "SYS_BOOT", "SYS_TIME", "BPF", "PERFMON"})
DOCKER_SOCKETS = frozenset({"/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run"})
POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
JOBS = frozenset({"Job", "CronJob"})
REPLICATED = frozenset({"Deployment", "StatefulSet"})
MIN_PROBE_PERIOD = 3.0  # seconds
RULE_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pointer(*parts: object) -> str:
    return "".join("/" + escape_pointer(str(p)) for p in parts)


def image_problem(image: object) -> str | None:
    """Why an image reference is not pinned, or None (a version tag or a digest)."""
    if not isinstance(image, str) or not image:
        return None
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image} has no tag (it means latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image} is tagged latest"
    return None


def literal_ips(text: object) -> list[str]:
    """The routable IPv4 addresses written in a value (not 0.0.0.0, loopback, or version numbers
    that are no address)."""
    if not isinstance(text, str):
        return []
    found = []
    for match in IPV4.findall(text):
        try:
            address = ipaddress.IPv4Address(match)
        except ValueError:
            continue
        if address.is_unspecified or address.is_loopback or str(address) == "255.255.255.255":
            continue
        found.append(str(address))
    return found


def _seconds(value: object) -> float | None:
    try:
        return duration_ns(value) / 1e9
    except ValueError:
        return None


def _timing(period: float, timeout: float) -> str | None:
    if period < MIN_PROBE_PERIOD:
        return f"runs every {period:g}s"
    if timeout >= period:
        return f"has a timeout ({timeout:g}s) that reaches its period ({period:g}s)"
    return None


@dataclass(frozen=True)
class Waivers:
    rules: frozenset[str] = frozenset()
    problems: tuple[tuple[str, str], ...] = ()  # (pointer, message)


def parse_waiver(text: object, pointer: str, where: str) -> Waivers:
    """``rule[,rule] -- reason``: the rules waived, and what is wrong with the waiver."""
    if isinstance(text, list):
        parts = [parse_waiver(item, _pointer_join(pointer, i), where) for i, item in enumerate(text)]
        return Waivers(frozenset().union(*(p.rules for p in parts)), tuple(x for p in parts for x in p.problems))
    if not isinstance(text, str):
        return Waivers(problems=((pointer, f"{where} must be a string: <rule>[,<rule>] -- <reason>"),))
    names, sep, reason = text.partition("--")
    rules = [r.strip() for r in names.split(",") if r.strip()]
    problems = []
    unknown = [r for r in rules if r not in BY_ID]
    if unknown:  # a typo is shown; anything that does not even look like a rule id is not repeated
        shown = [r if RULE_ID.fullmatch(r) else "(a value that is no rule id)" for r in unknown]
        problems.append((pointer, f"{where} names no known rule: {', '.join(shown)} (gitops validate "
                         "--list-rules lists them)"))
    known = [r for r in rules if r in BY_ID]
    if not sep or not reason.strip():
        problems.append((pointer, f"{where} waives {', '.join(known) or 'no rule'} without a reason; write "
                         f"{','.join(known) or '<rule>'} -- <reason>"))
    return Waivers(frozenset(known), tuple(problems))


def _pointer_join(pointer: str, index: int) -> str:
    return f"{pointer}/{index}"


# -- findings --------------------------------------------------------------------------------------


@dataclass
class _Object:
    """The object findings are about, and where it is."""

    file: str
    document: int | None
    base: str  # the object's pointer in its document
    resource: str
    kind: str
    name: str
    namespace: str
    backend: str
    waivers: Waivers = field(default_factory=Waivers)


Finding = tuple[str, str, str]  # rule id, pointer relative to the object, detail


def check(rendered: Rendered, settings: PolicySettings, *, strict: bool = False,
          default_namespace: str = "default") -> list[Diagnostic]:
    """Every policy finding of the rendered manifests and compose files, as diagnostics."""
    out: list[Diagnostic] = []
    with gc_paused():  # many small objects, no cycles: the cyclic GC would only rescan the manifests
        if rendered.manifests:
            out.extend(_kubernetes(rendered.manifests, settings, strict, default_namespace))
        for compose in rendered.compose:
            raw = rendered.sources.get(compose.file)
            out.extend(_compose(compose, raw[0] if raw else None, settings, strict))
    return out


def _emit(obj: _Object, findings: Iterator[Finding], settings: PolicySettings, strict: bool) -> list[Diagnostic]:
    if settings.excluded(obj.kind, obj.name, obj.namespace):
        return []
    out = []
    problems = [("waiver", pointer, message) for pointer, message in obj.waivers.problems]
    for rule_id, pointer, detail in [*problems, *[(r, obj.base + p, d) for r, p, d in findings]]:
        if rule_id in obj.waivers.rules:
            continue
        rule = BY_ID[rule_id]
        if obj.backend not in rule.backends:
            continue
        level = settings.levels.get(rule_id)
        if level is Level.OFF:
            continue
        severity = Severity(level.value) if level is not None else rule.severity
        if strict:
            severity = Severity.ERROR
        out.append(Diagnostic(severity, f"[{rule_id}] {detail}; fix: {rule.fix}", file=obj.file,
                              document=obj.document, pointer=pointer, code=rule_id, resource=obj.resource))
    return out


# -- Kubernetes ------------------------------------------------------------------------------------


@dataclass
class _App:
    """What the app defines, for the cross-object rules: (namespace, name) of each kind."""

    secrets: set[tuple[str, str]] = field(default_factory=set)
    configmaps: set[tuple[str, str]] = field(default_factory=set)
    services: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=dict)  # -> ports
    templates: int = 0  # pod templates seen; each label of one: (namespace, key, value) -> template numbers
    labels: dict[tuple[str, str, str], set[int]] = field(default_factory=dict)
    scaled: set[tuple[str, str, str]] = field(default_factory=set)  # HPA targets (namespace, kind, name)


def _namespace(body: Mapping[str, Any], default: str) -> str:
    namespace = _map(body.get("metadata")).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else default


def _index(manifests: list[Manifest], default_namespace: str) -> _App:
    app = _App()
    for manifest in manifests:
        body = manifest.body
        kind, name = body.get("kind"), _map(body.get("metadata")).get("name")
        if not isinstance(kind, str) or not isinstance(name, str):
            continue
        namespace = _namespace(body, default_namespace)
        if kind == "Secret":
            app.secrets.add((namespace, name))
        elif kind == "ConfigMap":
            app.configmaps.add((namespace, name))
        elif kind == "Service":
            app.services[(namespace, name)] = [p for p in _list(_map(body.get("spec")).get("ports"))
                                               if isinstance(p, Mapping)]
        elif kind == "HorizontalPodAutoscaler":
            ref = _map(_map(body.get("spec")).get("scaleTargetRef"))
            app.scaled.add((namespace, str(ref.get("kind")), str(ref.get("name"))))
        path = POD_SPEC.get(kind)
        if path is not None:
            for key, value in _map(_map(_dig(body, path[:-1]).get("metadata")).get("labels")).items():
                app.labels.setdefault((namespace, str(key), str(value)), set()).add(app.templates)
            app.templates += 1
    return app


def _dig(body: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    node: Mapping[str, Any] = body
    for part in path:
        node = _map(node.get(part))
    return node


def _kubernetes(manifests: list[Manifest], settings: PolicySettings, strict: bool,
                default_namespace: str) -> list[Diagnostic]:
    app = _index(manifests, default_namespace)
    out: list[Diagnostic] = []
    for manifest in manifests:
        body = manifest.body
        kind = body.get("kind")
        if not isinstance(kind, str) or (kind not in POD_SPEC and kind not in ("Service", "Ingress")):
            continue
        metadata = _map(body.get("metadata"))
        name = metadata.get("name") if isinstance(metadata.get("name"), str) else ""
        namespace = _namespace(body, default_namespace)
        waivers = _k8s_waivers(body, kind)
        obj = _Object(manifest.origin.file, manifest.origin.document, manifest.origin.pointer,
                      display_name(manifest), kind, str(name), namespace, "kubernetes", waivers)
        if kind == "Service":
            findings: Iterator[Finding] = _service(body, namespace, app)
        elif kind == "Ingress":
            findings = _ingress(body, namespace, app)
        else:
            findings = _workload(body, kind, str(name), namespace, app)
        out.extend(_emit(obj, findings, settings, strict))
    return out


def _k8s_waivers(body: Mapping[str, Any], kind: str) -> Waivers:
    found: list[Waivers] = []
    places: list[tuple[str, ...]] = [("metadata",)]
    if kind in POD_SPEC and kind != "Pod":
        places.append((*POD_SPEC[kind][:-1], "metadata"))
    for place in places:
        annotations = _map(_dig(body, place).get("annotations"))
        if WAIVER_ANNOTATION in annotations:
            pointer = _pointer(*place, "annotations", WAIVER_ANNOTATION)
            found.append(parse_waiver(annotations[WAIVER_ANNOTATION], pointer,
                                      f"the {WAIVER_ANNOTATION} annotation"))
    return Waivers(frozenset().union(*(w.rules for w in found)), tuple(p for w in found for p in w.problems))


def _workload(body: Mapping[str, Any], kind: str, name: str, namespace: str, app: _App) -> Iterator[Finding]:
    path = POD_SPEC[kind]
    spec = _dig(body, path)
    job = kind in JOBS
    if kind == "Pod":
        yield "bare-pod", "/kind", "a bare Pod: nothing recreates it when it or its node fails"
    if kind in REPLICATED:
        replicas = _map(body.get("spec")).get("replicas", 1)
        if replicas == 1 and (namespace, kind, name) not in app.scaled:
            where = "/spec/replicas" if "replicas" in _map(body.get("spec")) else "/spec"
            yield "single-replica", where, f"{kind} {name} runs one replica"
    pod_security = _map(spec.get("securityContext"))
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield "host-namespace", _pointer(*path, key), f"the pod shares the host's namespace ({key}: true)"
    for index, volume in enumerate(_list(spec.get("volumes"))):
        volume = _map(volume)
        host = _map(volume.get("hostPath"))
        if host:
            at = _pointer(*path, "volumes", index, "hostPath")
            if str(host.get("path", "")).rstrip("/") in DOCKER_SOCKETS:
                yield "docker-socket", at, f"volume {volume.get('name')} mounts the Docker socket from the host"
            else:
                yield "host-path", at, f"volume {volume.get('name')} is a hostPath"
        yield from _volume_refs(volume, _pointer(*path, "volumes", index), namespace, app)
    for section in ("initContainers", "containers"):
        for index, container in enumerate(_list(spec.get(section))):
            if isinstance(container, Mapping):
                yield from _container(container, _pointer(*path, section, index), section == "initContainers",
                                      job, pod_security, namespace, app)


def _volume_refs(volume: Mapping[str, Any], at: str, namespace: str, app: _App) -> Iterator[Finding]:
    secret = _map(volume.get("secret"))
    if secret and not secret.get("optional") and (namespace, str(secret.get("secretName"))) not in app.secrets:
        yield "missing-reference", at + "/secret/secretName", (
            f"volume {volume.get('name')} refers to Secret {secret.get('secretName')}, which the app does not define")
    config = _map(volume.get("configMap"))
    if config and not config.get("optional") and (namespace, str(config.get("name"))) not in app.configmaps:
        yield "missing-reference", at + "/configMap/name", (
            f"volume {volume.get('name')} refers to ConfigMap {config.get('name')}, which the app does not define")


def _container(container: Mapping[str, Any], at: str, init: bool, job: bool, pod_security: Mapping[str, Any],
               namespace: str, app: _App) -> Iterator[Finding]:
    who = f"{'init container' if init else 'container'} {container.get('name')}"
    problem = image_problem(container.get("image"))
    if problem:
        yield "image-tag", at + "/image", f"{who}: {problem}"
    resources = _map(container.get("resources"))
    limits, requests = _map(resources.get("limits")), _map(resources.get("requests"))
    if "memory" not in limits:
        yield "memory-limit", at + ("/resources/limits" if limits else "/resources"), f"{who} has no memory limit"
    if "cpu" not in limits:
        yield "cpu-limit", at + ("/resources/limits" if limits else "/resources"), f"{who} has no CPU limit"
    missing = [k for k in ("cpu", "memory") if k not in requests and k not in limits]  # limits imply requests
    if missing:
        yield ("resource-requests", at + ("/resources/requests" if requests else "/resources"),
               f"{who} requests no {' and no '.join(missing)}")
    if not init and not job:
        for probe in ("readinessProbe", "livenessProbe"):
            if not isinstance(container.get(probe), Mapping):
                rule = "readiness-probe" if probe == "readinessProbe" else "liveness-probe"
                yield rule, at, f"{who} has no {probe}"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        spec = container.get(probe)
        if isinstance(spec, Mapping):
            period, timeout = spec.get("periodSeconds", 10), spec.get("timeoutSeconds", 1)
            if isinstance(period, int | float) and isinstance(timeout, int | float):
                wrong = _timing(float(period), float(timeout))
                if wrong:
                    yield "probe-timing", f"{at}/{probe}", f"{who}: the {probe} {wrong}"
    for index, item in enumerate(_list(container.get("env"))):
        item = _map(item)
        env_at = f"{at}/env/{index}"
        value = item.get("value")
        if is_secret_name(item.get("name")) and isinstance(value, str) and value and not _reference(value):
            yield ("secret-env", env_at + "/value",
                   f"{who}: environment variable {item.get('name')} holds a literal value that looks secret")
        for address in literal_ips(value):
            yield "literal-ip", env_at + "/value", f"{who}: environment variable {item.get('name')} holds the " \
                  f"address {address}"
        source = _map(item.get("valueFrom"))
        for key, kind, known in (("secretKeyRef", "Secret", app.secrets), ("configMapKeyRef", "ConfigMap",
                                                                           app.configmaps)):
            ref = _map(source.get(key))
            if ref and not ref.get("optional") and (namespace, str(ref.get("name"))) not in known:
                yield ("missing-reference", f"{env_at}/valueFrom/{key}/name",
                       f"{who}: {item.get('name')} refers to {kind} {ref.get('name')}, which the app does not define")
    for index, item in enumerate(_list(container.get("envFrom"))):
        item = _map(item)
        for key, kind, known in (("secretRef", "Secret", app.secrets), ("configMapRef", "ConfigMap", app.configmaps)):
            ref = _map(item.get(key))
            if ref and not ref.get("optional") and (namespace, str(ref.get("name"))) not in known:
                yield ("missing-reference", f"{at}/envFrom/{index}/{key}/name",
                       f"{who}: envFrom refers to {kind} {ref.get('name')}, which the app does not define")
    for key in ("command", "args"):
        for index, arg in enumerate(_list(container.get(key))):
            for address in literal_ips(arg):
                yield "literal-ip", f"{at}/{key}/{index}", f"{who}: {key} holds the address {address}"
    security = _map(container.get("securityContext"))
    if security.get("privileged") is True:
        yield "privileged", at + "/securityContext/privileged", f"{who} is privileged"
    if security.get("allowPrivilegeEscalation") is not False:
        yield ("privilege-escalation", at + ("/securityContext" if security else ""),
               f"{who} does not set allowPrivilegeEscalation: false")
    non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    if non_root is not True and not (isinstance(user, int) and user > 0 and non_root is not False):
        yield "run-as-non-root", at + ("/securityContext" if security else ""), f"{who} may run as root " \
              "(no runAsNonRoot: true and no non-zero runAsUser)"
    added = [str(c) for c in _list(_map(security.get("capabilities")).get("add"))]
    dangerous = [c for c in added if c.upper().removeprefix("CAP_") in DANGEROUS_CAPABILITIES]
    if dangerous:
        yield ("dangerous-capability", at + "/securityContext/capabilities/add",
               f"{who} adds {', '.join(dangerous)}")


def _reference(value: str) -> bool:
    """A value that only names another variable (``$(DB_PASSWORD)``), which is no secret itself."""
    return bool(re.fullmatch(r"(\$\([A-Za-z_][A-Za-z0-9_]*\))+", value))


def _service(body: Mapping[str, Any], namespace: str, app: _App) -> Iterator[Finding]:
    spec = _map(body.get("spec"))
    selector = _map(spec.get("selector"))
    if not selector or spec.get("type") == "ExternalName":
        return
    matching: set[int] | None = None
    for key, value in selector.items():
        having = app.labels.get((namespace, str(key), str(value)), set())
        matching = having if matching is None else matching & having
        if not matching:
            break
    if matching:
        return
    shown = ",".join(f"{k}={v}" for k, v in selector.items())
    yield "service-selector", "/spec/selector", f"the selector {shown} matches no pod template of the app"


def _ingress(body: Mapping[str, Any], namespace: str, app: _App) -> Iterator[Finding]:
    spec = _map(body.get("spec"))
    backends: list[tuple[str, Mapping[str, Any]]] = []
    if "defaultBackend" in spec:
        backends.append(("/spec/defaultBackend", _map(spec.get("defaultBackend"))))
    for r, rule in enumerate(_list(spec.get("rules"))):
        for p, path in enumerate(_list(_map(_map(rule).get("http")).get("paths"))):
            backends.append((f"/spec/rules/{r}/http/paths/{p}/backend", _map(_map(path).get("backend"))))
    for at, backend in backends:
        service = _map(backend.get("service"))
        if not service:
            continue  # a resource backend
        name = str(service.get("name"))
        ports = app.services.get((namespace, name))
        if ports is None:
            yield "ingress-backend", at + "/service/name", f"the backend Service {name} is not defined by the app"
            continue
        port = _map(service.get("port"))
        if "name" in port and not any(p.get("name") == port["name"] for p in ports):
            yield ("ingress-backend", at + "/service/port/name",
                   f"Service {name} has no port named {port['name']}")
        elif "number" in port and not any(p.get("port") == port["number"] for p in ports):
            yield ("ingress-backend", at + "/service/port/number",
                   f"Service {name} has no port {port['number']}")


# -- compose (Swarm) -------------------------------------------------------------------------------


def _compose(compose: ComposeFile, raw_text: bytes | None, settings: PolicySettings,
             strict: bool) -> list[Diagnostic]:
    services = _map(compose.data.get("services"))
    raw_services: Mapping[str, Any] = {}
    if raw_text is not None:
        documents = [d for d in load(raw_text, compose.file, Dialect.COMPOSE).documents if d.data is not None]
        raw_services = _map(_map(documents[0].data).get("services")) if documents else {}
    out: list[Diagnostic] = []
    for name, service in services.items():
        if not isinstance(service, Mapping):
            continue
        base = _pointer("services", name)
        waivers = (parse_waiver(service[WAIVER_KEY], base + "/" + WAIVER_KEY, f"services.{name}.{WAIVER_KEY}")
                   if WAIVER_KEY in service else Waivers())
        obj = _Object(compose.file, 1, base, f"Service/{compose.stack}/{name}", "Service", str(name),
                      compose.stack, "swarm", waivers)
        out.extend(_emit(obj, _swarm_service(str(name), service, _map(raw_services.get(name))), settings, strict))
    return out


def _environment(value: Any) -> list[tuple[str, str, Any]]:
    """(pointer suffix, name, value) of a compose environment (a mapping or a list of NAME=value)."""
    if isinstance(value, Mapping):
        return [(_pointer("environment", k), str(k), v) for k, v in value.items()]
    out = []
    for index, item in enumerate(_list(value)):
        key, sep, text = str(item).partition("=")
        out.append((_pointer("environment", index), key, text if sep else None))
    return out


def _swarm_service(name: str, service: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[Finding]:
    who = f"service {name}"
    problem = image_problem(service.get("image"))
    if problem:
        yield "image-tag", "/image", f"{who}: {problem}"
    deploy = _map(service.get("deploy"))
    resources = _map(deploy.get("resources"))
    limits = _map(resources.get("limits"))
    at = "/deploy/resources/limits" if limits else ("/deploy/resources" if resources else
                                                     ("/deploy" if deploy else ""))
    if "memory" not in limits:
        yield "memory-limit", at, f"{who} has no memory limit"
    if "cpus" not in limits:
        yield "cpu-limit", at, f"{who} has no CPU limit"
    if not _map(resources.get("reservations")):
        yield ("resource-requests", "/deploy/resources" if resources else ("/deploy" if deploy else ""),
               f"{who} reserves no CPU or memory")
    mode = str(deploy.get("mode") or "replicated")
    job = mode.endswith("-job")
    health = service.get("healthcheck")
    health_map = _map(health)
    if not job:
        test = health_map.get("test")
        if health is None:
            yield "healthcheck", "", f"{who} has no healthcheck"
        elif health_map.get("disable") is True or test in (["NONE"], "NONE"):
            yield "healthcheck", "/healthcheck", f"{who} disables its healthcheck"
    if health_map and not health_map.get("disable"):
        period = _seconds(health_map.get("interval", "30s"))
        timeout = _seconds(health_map.get("timeout", "30s"))
        if period is not None and timeout is not None:
            wrong = _timing(period, timeout)
            if wrong:
                yield "probe-timing", "/healthcheck", f"{who}: the healthcheck {wrong}"
    if mode == "replicated" and deploy.get("replicas", 1) == 1:
        yield "single-replica", "/deploy/replicas" if "replicas" in deploy else "", f"{who} runs one replica"
    raw_env = {key: value for _, key, value in _environment(raw.get("environment"))}
    for pointer, key, value in _environment(service.get("environment")):
        if value is None or value == "":
            continue
        written = raw_env.get(key, value)
        from_deployer = isinstance(written, str) and "$" in written  # ${VAR}: set where the stack is deployed
        if is_secret_name(key) and not from_deployer:
            yield ("secret-env", pointer, f"{who}: environment variable {key} holds a literal value that looks "
                   "secret")
        for address in literal_ips(str(value)):
            yield "literal-ip", pointer, f"{who}: environment variable {key} holds the address {address}"
    for key in ("command", "entrypoint"):
        value = service.get(key)
        items = [(f"/{key}", value)] if isinstance(value, str) else [(f"/{key}/{i}", v)
                                                                     for i, v in enumerate(_list(value))]
        for pointer, item in items:
            for address in literal_ips(item):
                yield "literal-ip", pointer, f"{who}: {key} holds the address {address}"
    added = [str(c) for c in _list(service.get("cap_add"))]
    dangerous = [c for c in added if c.upper().removeprefix("CAP_") in DANGEROUS_CAPABILITIES]
    if dangerous:
        yield "dangerous-capability", "/cap_add", f"{who} adds {', '.join(dangerous)}"
    for index, volume in enumerate(_list(service.get("volumes"))):
        if isinstance(volume, str):
            source = volume.split(":")[0] if ":" in volume else ""
        else:
            volume_map = _map(volume)
            source = str(volume_map.get("source", "")) if volume_map.get("type") == "bind" else ""
        if source.rstrip("/") in DOCKER_SOCKETS:
            yield "docker-socket", f"/volumes/{index}", f"{who} mounts the Docker socket ({source})"
