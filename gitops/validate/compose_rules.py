"""The one table of what a compose file may hold for Swarm, and the check that applies it.

Every key, at every place of a compose file that ``docker stack deploy`` reads, is *supported*,
*ignored* (a warning: the stack is deployed without it), *caution* (deployed, with a warning that
it probably does not do what was meant) or *refused* (an error: it cannot be deployed), each with
its reason. Keys a place does not list are refused like Docker's loader refuses them
(``Additional property X is not allowed``); ``x-`` extension keys are allowed where Docker allows
them. :data:`FEATURES` holds the rules about values and combinations of fields (``endpoint_mode:
dnsrr`` with ports published through the ingress mesh, relative bind sources, ...).

:func:`check` is called by ``validate`` (which gives each finding its file and line) and by the
Swarm translator (``gitops.backends.swarm.translate``), so what validate accepts translates, and
what the translator would refuse is a validation error. The translator only converts; it keeps the
errors only it can find (values it cannot convert).
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.model import Diagnostic, Severity
from gitops.render.compose import dotted
from gitops.render.yaml import escape_pointer
from gitops.validate.units import nano_cpus, size_bytes

#: The compose extension key by which a service, network, volume, config or secret opts out of
#: pruning (gitops's own; Docker ignores ``x-`` keys). Validation requires a boolean.
PRUNE_KEY = "x-gitops-prune"
#: The compose extension key that puts a service in a user wave (an integer; lower waves are
#: applied and healthy first). Carried on the service as the label ``gitops.dev/wave``.
WAVE_COMPOSE_KEY = "x-gitops-wave"
#: The compose extension key, on a service or at the top of the file (then for every service), that
#: lists environment variables whose values are secret: masked in every plan and diff like a
#: Secret's. Carried on the service as the label ``gitops.dev/sensitive-env``.
SENSITIVE_COMPOSE_KEY = "x-gitops-sensitive"

__all__ = ["DEFAULT_NETWORK", "FEATURES", "KEYS", "Rule", "Support", "bind_source", "check", "used_networks"]


class Support(enum.StrEnum):
    SUPPORTED = "supported"
    IGNORED = "ignored"
    CAUTION = "caution"
    REFUSED = "refused"


@dataclass(frozen=True)
class Rule:
    support: Support
    reason: str = ""
    code: str = ""

    @property
    def severity(self) -> Severity | None:
        if self.support is Support.REFUSED:
            return Severity.ERROR
        if self.support in (Support.IGNORED, Support.CAUTION):
            return Severity.WARNING
        return None


OK = Rule(Support.SUPPORTED)


def _ignored(reason: str) -> Rule:
    return Rule(Support.IGNORED, reason, "swarm-ignored")


def _refused(reason: str = "") -> Rule:
    return Rule(Support.REFUSED, reason, "compose-schema")


def _ok(*keys: str) -> dict[str, Rule]:
    return dict.fromkeys(keys, OK)


_NOT_SERVICES = "not supported by Swarm services"
_CPUS = "use deploy.resources.limits.cpus"

#: Keys at each place of a compose file; a place not listed here has no key rules.
KEYS: dict[str, dict[str, Rule]] = {
    "compose": {
        **_ok("version", "services", "networks", "volumes", "configs", "secrets"),
        "name": _refused("the stack name (target.stack in gitops.yaml) names the objects"),
    },
    "service": {
        **_ok("image", "command", "entrypoint", "environment", "labels", "ports", "networks", "volumes",
              "configs", "secrets", "healthcheck", "deploy", "stop_grace_period", "stop_signal", "user",
              "working_dir", "hostname", "init", "cap_add", "cap_drop", "dns", "dns_search", "extra_hosts",
              "sysctls", "ulimits", "logging", "tty", "stdin_open", "read_only", "isolation", "restart"),
        # in the format docker stack deploy reads, but not used by a Swarm service
        "build": _ignored("Swarm does not build images; build and push the image and set image:"),
        "container_name": _ignored("Swarm names the containers of a service itself"),
        "depends_on": _ignored("Swarm starts services in no particular order"),
        "links": _ignored("use networks and service names instead"),
        "external_links": _ignored("use networks and service names instead"),
        "network_mode": _ignored("not supported by docker stack deploy; use networks:"),
        "privileged": _ignored(_NOT_SERVICES),
        "devices": _ignored(_NOT_SERVICES),
        "cgroup_parent": _ignored(_NOT_SERVICES),
        "cgroupns_mode": _ignored(_NOT_SERVICES),
        "security_opt": _ignored(_NOT_SERVICES),
        "userns_mode": _ignored(_NOT_SERVICES),
        "ipc": _ignored(_NOT_SERVICES),
        "pid": _ignored(_NOT_SERVICES),
        "shm_size": _ignored(_NOT_SERVICES),
        "domainname": _ignored(_NOT_SERVICES),
        "mac_address": _ignored(_NOT_SERVICES),
        "tmpfs": _ignored("not supported by docker stack deploy; use a volume of type tmpfs"),
        "expose": _ignored("informational only; services on one network reach each other on every port"),
        "credential_spec": _ignored("Windows credential specs are not supported by this tool"),
        "oom_score_adj": _ignored("needs Engine API 1.46; this backend speaks 1.41"),
        # refused: docker stack deploy's format does not have them, or gitops cannot honour them
        "env_file": _refused("gitops does not read env_file; list the variables under environment:"),
        "mem_limit": _refused("use deploy.resources.limits.memory"),
        "mem_reservation": _refused("use deploy.resources.reservations.memory"),
        "cpus": _refused(_CPUS),
        "cpu_count": _refused(_CPUS),
        "cpu_percent": _refused(_CPUS),
        "cpu_shares": _refused(_CPUS),
        "cpu_quota": _refused(_CPUS),
        "cpu_period": _refused(_CPUS),
        "pids_limit": _refused("use deploy.resources.limits.pids"),
        "scale": _refused("use deploy.replicas"),
        "platform": _refused("use deploy.placement.constraints (node.platform.arch / node.platform.os)"),
        "stop_signal_timeout": _refused("use stop_grace_period"),
        "extends": _refused("not resolved by docker stack deploy"),
        "profiles": _refused("docker stack deploy has no profiles"),
        "pull_policy": _refused("Swarm pulls when a node lacks the image"),
        "runtime": _refused(_NOT_SERVICES),
        **dict.fromkeys(("device_cgroup_rules", "uts", "volumes_from", "storage_opt", "oom_kill_disable",
                         "group_add", "memswap_limit", "mem_swappiness", "cpu_rt_runtime", "cpu_rt_period",
                         "cpuset", "blkio_config", "annotations", "attach", "develop", "dns_opt"),
                        _refused(_NOT_SERVICES)),
    },
    "deploy": _ok("mode", "replicas", "labels", "resources", "restart_policy", "placement", "update_config",
                  "rollback_config", "endpoint_mode"),
    "resources": {
        **_ok("limits", "reservations"),
        "memory_swap": _ignored("not part of a Swarm service's resources (Engine API 1.41)"),
        "memory_swappiness": _ignored("not part of a Swarm service's resources (Engine API 1.41)"),
    },
    "limits": _ok("cpus", "memory", "pids"),
    "reservations": _ok("cpus", "memory", "generic_resources"),
    "restart_policy": _ok("condition", "delay", "max_attempts", "window"),
    "update_config": _ok("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"),
    "placement": _ok("constraints", "preferences", "max_replicas_per_node"),
    "healthcheck": {
        **_ok("test", "interval", "timeout", "start_period", "retries", "disable"),
        "start_interval": _ignored("needs Engine API 1.44; this backend speaks 1.41"),
    },
    "logging": _ok("driver", "options"),
    "port": _ok("target", "published", "protocol", "mode"),
    "mount": {
        **_ok("type", "source", "target", "read_only", "bind", "volume", "tmpfs"),
        "consistency": _ignored("Swarm has no mount consistency"),
    },
    "bind": _ok("propagation"),
    "volume_options": _ok("nocopy"),
    "tmpfs": _ok("size"),
    "attachment": {
        **_ok("aliases", "driver_opts"),
        "ipv4_address": _ignored("docker stack deploy does not set static addresses"),
        "ipv6_address": _ignored("docker stack deploy does not set static addresses"),
    },
    "file_reference": _ok("source", "target", "uid", "gid", "mode"),
    "network": _ok("driver", "driver_opts", "labels", "internal", "attachable", "ipam", "external", "name"),
    "ipam": _ok("driver", "config"),
    "ipam_pool": _ok("subnet"),
    "volume": _ok("driver", "driver_opts", "labels", "external", "name", "x-cluster-spec"),
    "config": {
        **_ok("file", "external", "name", "labels", "template_driver"),
        "content": _refused("not supported by docker stack deploy; use file:"),
        "environment": _refused("not supported by docker stack deploy; use file:"),
    },
    "secret": {
        **_ok("file", "external", "name", "labels", "template_driver", "driver", "driver_opts"),
        "content": _refused("not supported by docker stack deploy; use file:"),
        "environment": _refused("not supported by docker stack deploy; use file:"),
    },
}
#: Places where ``x-`` keys are extensions, as in Docker's schema.
EXTENSIBLE = frozenset({"compose", "service", "network", "volume", "config", "secret"})
UNKNOWN = _refused()

#: Rules about values and combinations of fields.
FEATURES: dict[str, Rule] = {
    "dnsrr-ingress": Rule(Support.REFUSED, "endpoint_mode dnsrr cannot publish ports in ingress mode (Docker "
                          "refuses it); publish them with mode: host", "swarm-endpoint-mode"),
    "relative-bind": Rule(Support.REFUSED, "a relative bind source names a path on the machine that deploys, "
                          "not on the nodes; use an absolute path", "swarm-bind-source"),
    "home-bind": Rule(Support.REFUSED, "~ in a bind source names the deploying user's home; use an absolute "
                      "path", "swarm-bind-source"),
    "host-ip": Rule(Support.IGNORED, "Swarm publishes on every interface", "swarm-ignored"),
    "volume-mode": Rule(Support.IGNORED, "Swarm has no SELinux relabelling or mount consistency", "swarm-ignored"),
    "restart-no": Rule(Support.IGNORED, "tasks restart by default in Swarm; use deploy.restart_policy.condition: "
                       "none", "swarm-ignored"),
    "restart-and-policy": Rule(Support.IGNORED, "deploy.restart_policy is set and wins", "swarm-ignored"),
    "unused-network": Rule(Support.IGNORED, "no service uses it, so docker stack deploy does not create it",
                           "swarm-ignored"),
    "local-network": Rule(Support.CAUTION, "the driver makes a node-local network; Swarm services need overlay",
                          "swarm-network-driver"),
    "external-name": Rule(Support.CAUTION, "external.name is deprecated; use name:", "compose-deprecated"),
    "replicas-global": Rule(Support.REFUSED, "replicas can only be used with replicated or replicated-job mode",
                            "compose-value"),
    "test-and-disable": Rule(Support.REFUSED, "test and disable cannot both be set", "compose-value"),
    "nocopy-bind": Rule(Support.REFUSED, "nocopy applies to named volumes only", "compose-value"),
    "propagation-volume": Rule(Support.REFUSED, "propagation applies to bind mounts only", "compose-value"),
    "options-type": Rule(Support.REFUSED, "these options do not match the mount's type", "compose-value"),
    "tmpfs-source": Rule(Support.REFUSED, "a tmpfs mount has no source", "compose-value"),
    "preference-spread": Rule(Support.REFUSED, "a placement preference needs spread:", "compose-value"),
    "extra-host": Rule(Support.REFUSED, "extra_hosts entries are host:ip (or host=ip)", "compose-value"),
    "volume-mode-unknown": Rule(Support.REFUSED, "unknown volume mode (ro, rw, nocopy, a propagation, or one "
                                "Swarm ignores)", "compose-value"),
}

PROPAGATIONS = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})
VOLUME_MODES = frozenset({"ro", "rw", "nocopy"})
VOLUME_MODES_IGNORED = frozenset({"z", "Z", "consistent", "cached", "delegated"})
RESTART = {"no": None, "false": None, "": None, "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
"""A service-level ``restart:`` (before an optional ``:max-attempts``) -> the restart condition."""

#: The values a field may take, where Docker's schema only asks for a string; (place, key) -> values.
VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("deploy", "mode"): frozenset({"replicated", "global", "replicated-job", "global-job"}),
    ("deploy", "endpoint_mode"): frozenset({"vip", "dnsrr"}),
    ("restart_policy", "condition"): frozenset({"none", "on-failure", "any"}),
    ("update_config", "failure_action"): frozenset({"pause", "continue", "rollback"}),
    ("update_config", "order"): frozenset({"start-first", "stop-first"}),
    ("port", "mode"): frozenset({"ingress", "host"}),
    ("mount", "type"): frozenset({"volume", "bind", "tmpfs"}),
    ("bind", "propagation"): PROPAGATIONS,
    ("service", "restart"): frozenset(RESTART),
}
#: Values compared without regard to case (as docker stack deploy does).
CASELESS = frozenset({("deploy", "endpoint_mode")})
LOCAL_NETWORK_DRIVERS = frozenset({"bridge", "host", "none", "macvlan", "ipvlan"})
DEFAULT_NETWORK = "default"


_HOST_IP = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[0-9.]*)$")


@dataclass(frozen=True)
class PortSpec:
    """A short-syntax port, ``[[ip:]published[-end]:]target[-end][/protocol]``."""

    target: tuple[int, int]
    published: tuple[int, int] | None
    protocol: str
    host_ip: str


def port_range(text: str) -> tuple[int, int] | None:
    """``80`` or ``8000-8010`` as (first, last); None when it is not a port range."""
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last) if sep else int(first)
    except ValueError:
        return None
    return (low, high) if 0 <= low <= high <= 65535 else None


def parse_port(spec: object) -> PortSpec:
    """A short-syntax port as docker/cli reads it; ``ValueError`` with Docker's message if it is not one."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        if not 0 < spec <= 65535 or spec != int(spec):
            raise ValueError(f"Invalid containerPort: {spec}")
        return PortSpec((int(spec), int(spec)), None, "tcp", "")
    text = str(spec)
    body, slash, proto = text.rpartition("/") if "/" in text else (text, "", "tcp")
    if body.startswith("["):  # [ipv6]:published:target
        host, _, rest = body.partition("]:")
        parts = [host + "]", *rest.split(":", 1)]
    else:
        parts = body.rsplit(":", 2)
    host_ip = parts[0] if len(parts) == 3 else ""
    published_text = parts[-2] if len(parts) >= 2 else ""
    if not _HOST_IP.match(host_ip) or not parts[-1]:
        raise ValueError(f"Invalid port specification: {text!r}")
    target = port_range(parts[-1])
    if target is None:
        raise ValueError(f"Invalid containerPort: {parts[-1]}")
    published = None
    if published_text:
        published = port_range(published_text)
        if published is None:
            raise ValueError(f"Invalid hostPort: {published_text}")
        if target[1] - target[0] != published[1] - published[0] and target[0] != target[1]:
            raise ValueError(f"Invalid ranges specified for container and host Ports: {parts[-1]} and "
                             f"{published_text}")
    protocol = proto.lower()
    if protocol not in ("tcp", "udp", "sctp") or (slash and not proto):
        raise ValueError(f"Invalid proto: {proto}")
    return PortSpec(target, published, protocol, host_ip.strip("[]"))


def allowed(place: str, key: str, value: object) -> bool:
    """Whether ``value`` is one the table allows for ``key`` at ``place`` (any, when it lists none)."""
    values = VALUES.get((place, key))
    if values is None or value is None:
        return True
    text = str(value).lower() if (place, key) in CASELESS else str(value)
    if (place, key) == ("service", "restart"):
        text = text.partition(":")[0]
    return text in values


def _pointer(*parts: object) -> str:
    return "".join("/" + escape_pointer(str(p)) for p in parts)


Finding = tuple[Rule, str, str]  # rule, pointer, message


def check(doc: Mapping[str, Any], *, file: str | None = None, document: int | None = None,
          relative_binds: bool = False, home_binds: bool = False) -> list[Diagnostic]:
    """Every key and feature of ``doc`` that the table does not call supported, as diagnostics.

    ``relative_binds`` / ``home_binds``: the caller resolves relative and ``~`` bind sources
    itself (the translator, given a project or home directory), so they are not refused here.
    """
    found = list(_findings(doc, relative_binds=relative_binds, home_binds=home_binds))
    return [Diagnostic(severity, message, file=file, document=document, pointer=pointer, code=rule.code)
            for rule, pointer, message in found if (severity := rule.severity) is not None]


def _keys(place: str, value: Any, *where: object) -> Iterator[Finding]:
    if not isinstance(value, Mapping):
        return
    table = KEYS[place]
    for key in value:
        name = str(key)
        if not allowed(place, name, value[key]):
            options = ", ".join(sorted(v for v in VALUES[(place, name)] if v))
            yield (Rule(Support.REFUSED, code="compose-value"), _pointer(*where, name),
                   f"{dotted(_pointer(*where, name))} must be one of {options}")
        rule = table.get(name)
        if rule is None:
            if place in EXTENSIBLE and name.startswith("x-"):
                continue
            rule = UNKNOWN
        if rule.support is Support.SUPPORTED:
            continue
        pointer = _pointer(*where, name)
        if rule.support is Support.REFUSED:
            message = f"{dotted(_pointer(*where))} Additional property {name} is not allowed"
        else:
            message = f"{dotted(pointer)} is ignored by docker stack deploy"
        yield rule, pointer, message + (f": {rule.reason}" if rule.reason else "")


def _parsed(parse: Callable[[object], int], value: object, *where: object) -> Iterator[Finding]:
    """A value the translator converts with ``parse`` (the same parsers, so the same verdict)."""
    if value is None:
        return
    try:
        parse(value)
    except ValueError as err:
        pointer = _pointer(*where)
        yield Rule(Support.REFUSED, code="compose-value"), pointer, f"{dotted(pointer)}: {err}"


def _feature(name: str, pointer: str) -> Finding:
    rule = FEATURES[name]
    return rule, pointer, f"{dotted(pointer)}: {rule.reason}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _findings(doc: Mapping[str, Any], *, relative_binds: bool, home_binds: bool) -> Iterator[Finding]:
    yield from _keys("compose", doc)
    services = _mapping(doc.get("services"))
    for name, service in services.items():
        if isinstance(service, Mapping):
            yield from _service(str(name), service, relative_binds=relative_binds, home_binds=home_binds)
    for section, place in (("networks", "network"), ("volumes", "volume"), ("configs", "config"),
                           ("secrets", "secret")):
        for key, entry in _mapping(doc.get(section)).items():
            yield from _keys(place, entry, section, key)
            if isinstance(_mapping(entry).get("external"), Mapping):
                yield _feature("external-name", _pointer(section, key, "external"))
    yield from _networks(doc, services)


def _service(name: str, service: Mapping[str, Any], *, relative_binds: bool,
             home_binds: bool) -> Iterator[Finding]:
    at = ("services", name)
    yield from _keys("service", service, *at)
    deploy = _mapping(service.get("deploy"))
    yield from _keys("deploy", service.get("deploy"), *at, "deploy")
    for key, place in (("resources", "resources"), ("restart_policy", "restart_policy"),
                       ("update_config", "update_config"), ("rollback_config", "update_config"),
                       ("placement", "placement")):
        yield from _keys(place, deploy.get(key), *at, "deploy", key)
    resources = _mapping(deploy.get("resources"))
    for key in ("limits", "reservations"):
        yield from _keys(key, resources.get(key), *at, "deploy", "resources", key)
        amounts = _mapping(resources.get(key))
        yield from _parsed(nano_cpus, amounts.get("cpus"), *at, "deploy", "resources", key, "cpus")
        yield from _parsed(size_bytes, amounts.get("memory"), *at, "deploy", "resources", key, "memory")
    for index, host in _items(service.get("extra_hosts")):
        if not any(sep in str(host) for sep in "=:"):
            yield _feature("extra-host", _pointer(*at, "extra_hosts", index))
    if str(deploy.get("mode") or "") in ("global", "global-job") and deploy.get("replicas") is not None:
        yield _feature("replicas-global", _pointer(*at, "deploy", "replicas"))
    for index, preference in _items(_mapping(deploy.get("placement")).get("preferences")):
        if not _mapping(preference).get("spread"):
            yield _feature("preference-spread", _pointer(*at, "deploy", "placement", "preferences", index))
    health = _mapping(service.get("healthcheck"))
    if health.get("disable") is True and health.get("test"):
        yield _feature("test-and-disable", _pointer(*at, "healthcheck"))
    yield from _keys("healthcheck", service.get("healthcheck"), *at, "healthcheck")
    yield from _keys("logging", service.get("logging"), *at, "logging")
    for key, attachment in _mapping(service.get("networks")).items():
        yield from _keys("attachment", attachment, *at, "networks", key)
    for section in ("secrets", "configs"):
        for index, ref in _items(service.get(section)):
            yield from _keys("file_reference", ref, *at, section, index)
    restart = service.get("restart")
    if restart is not None:
        if "restart_policy" in deploy:
            yield _feature("restart-and-policy", _pointer(*at, "restart"))
        elif str(restart).partition(":")[0] in ("no", "false", ""):
            yield _feature("restart-no", _pointer(*at, "restart"))
    yield from _ports(service, at, dnsrr=str(deploy.get("endpoint_mode") or "").lower() == "dnsrr")
    yield from _mounts(service, at, relative_binds=relative_binds, home_binds=home_binds)


def _ports(service: Mapping[str, Any], at: tuple[str, str], *, dnsrr: bool) -> Iterator[Finding]:
    ingress: list[str] = []
    for index, port in _items(service.get("ports")):
        pointer = _pointer(*at, "ports", index)
        if isinstance(port, Mapping):
            yield from _keys("port", port, *at, "ports", index)
            published = port.get("published")
            if published not in (None, "") and port_range(str(published)) is None:
                yield (Rule(Support.REFUSED, code="compose-port"), _pointer(*at, "ports", index, "published"),
                       f"{dotted(_pointer(*at, 'ports', index, 'published'))}: Invalid hostPort: {published}")
            if str(port.get("mode") or "ingress") == "ingress":
                ingress.append(pointer)
        elif isinstance(port, (str, int)) and not isinstance(port, bool):
            ingress.append(pointer)
            try:
                spec = parse_port(port)
            except ValueError as err:
                yield Rule(Support.REFUSED, code="compose-port"), pointer, f"{dotted(pointer)}: {err}"
                continue
            if spec.host_ip:
                yield _feature("host-ip", pointer)
    if dnsrr and ingress:
        yield _feature("dnsrr-ingress", ingress[0])


BindSource = enum.Enum("BindSource", "HOME RELATIVE ABSOLUTE")


def is_path(source: str) -> bool:
    """Whether the source of a short-syntax volume is a host path (a bind) rather than a volume name."""
    return source.startswith(("/", ".", "~"))


def bind_source(source: str) -> BindSource:
    """``~`` (the deploying user's home), relative (to the project directory), or absolute."""
    if source == "~" or source.startswith("~/"):
        return BindSource.HOME
    return BindSource.ABSOLUTE if posixpath.isabs(source) else BindSource.RELATIVE


def _bind_source(source: str, pointer: str, *, relative_binds: bool, home_binds: bool) -> Iterator[Finding]:
    kind = bind_source(source)
    if kind is BindSource.HOME and not home_binds:
        yield _feature("home-bind", pointer)
    elif kind is BindSource.RELATIVE and not relative_binds:
        yield _feature("relative-bind", pointer)


def _mounts(service: Mapping[str, Any], at: tuple[str, str], *, relative_binds: bool,
            home_binds: bool) -> Iterator[Finding]:
    for index, volume in _items(service.get("volumes")):
        pointer = _pointer(*at, "volumes", index)
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) < 2 or len(parts) > 3:
                continue
            if is_path(parts[0]):
                yield from _bind_source(parts[0], pointer, relative_binds=relative_binds, home_binds=home_binds)
            modes = set(parts[2].split(",")) if len(parts) == 3 else set()
            if modes & VOLUME_MODES_IGNORED:
                yield _feature("volume-mode", pointer)
            if modes - VOLUME_MODES - PROPAGATIONS - VOLUME_MODES_IGNORED:
                yield _feature("volume-mode-unknown", pointer)
            if "nocopy" in modes and is_path(parts[0]):
                yield _feature("nocopy-bind", pointer)
            if modes & PROPAGATIONS and not is_path(parts[0]):
                yield _feature("propagation-volume", pointer)
        elif isinstance(volume, Mapping):
            yield from _keys("mount", volume, *at, "volumes", index)
            kind = str(volume.get("type") or "volume")
            for key, place in (("bind", "bind"), ("volume", "volume_options"), ("tmpfs", "tmpfs")):
                yield from _keys(place, volume.get(key), *at, "volumes", index, key)
                if volume.get(key) is not None and key != kind:
                    yield _feature("options-type", _pointer(*at, "volumes", index, key))
            size = _mapping(volume.get("tmpfs")).get("size")
            yield from _parsed(size_bytes, size, *at, "volumes", index, "tmpfs", "size")
            if kind == "tmpfs" and volume.get("source"):
                yield _feature("tmpfs-source", _pointer(*at, "volumes", index, "source"))
            if kind == "bind" and volume.get("source"):
                yield from _bind_source(str(volume["source"]), _pointer(*at, "volumes", index, "source"),
                                        relative_binds=relative_binds, home_binds=home_binds)


def used_networks(services: Mapping[str, Any]) -> set[str]:
    """The networks the services attach to (``default`` for a service that names none)."""
    used: set[str] = set()
    for service in services.values():
        attached = _mapping(service).get("networks")
        if not attached:
            used.add(DEFAULT_NETWORK)
        elif isinstance(attached, (Mapping, list, tuple)):
            used.update(str(k) for k in attached)
    return used


def _networks(doc: Mapping[str, Any], services: Mapping[str, Any]) -> Iterator[Finding]:
    networks = _mapping(doc.get("networks"))
    used = used_networks(services)
    for key in sorted(networks, key=str):
        pointer = _pointer("networks", key)
        config = _mapping(networks[key])
        yield from _keys("ipam", config.get("ipam"), "networks", key, "ipam")
        for index, pool in _items(_mapping(config.get("ipam")).get("config")):
            yield from _keys("ipam_pool", pool, "networks", key, "ipam", "config", index)
        if str(key) not in used:
            yield _feature("unused-network", pointer)
            continue
        driver = str(config.get("driver") or "")
        if not config.get("external") and driver in LOCAL_NETWORK_DRIVERS:
            yield _feature("local-network", _pointer("networks", key, "driver"))
