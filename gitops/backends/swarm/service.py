"""One compose service -> one Swarm ServiceSpec, as ``docker stack deploy`` converts it
(``docker/cli`` ``cli/compose/convert/service.go`` and ``volume.go``), with a warning for every key
Swarm does not use."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from . import types as t
from .compose import (
    DEFAULT_FILE_MODE,
    DEFAULT_NETWORK,
    IMAGE_LABEL,
    STACK_LABEL,
    Context,
    is_user_defined_network,
    network_target,
    read_bool,
    read_command,
    read_duration,
    read_external,
    read_file_mode,
    read_int,
    read_key_values,
    read_labels,
    read_mapping,
    read_prune,
    read_string_list,
    scope,
    stringify,
    with_stack_label,
)
from .objects import ServiceObject
from .units import nano_cpus, size_bytes

IGNORED_SERVICE_KEYS: dict[str, str] = {
    "build": "Swarm does not build images; build and push the image and set image:",
    "container_name": "Swarm names the containers of a service itself",
    "depends_on": "Swarm starts services in no particular order",
    "links": "use networks and service names instead",
    "external_links": "use networks and service names instead",
    "network_mode": "not supported by docker stack deploy; use networks:",
    "privileged": "not supported by Swarm services",
    "devices": "not supported by Swarm services",
    "device_cgroup_rules": "not supported by Swarm services",
    "cgroup_parent": "not supported by Swarm services",
    "cgroupns_mode": "not supported by Swarm services",
    "security_opt": "not supported by Swarm services",
    "userns_mode": "not supported by Swarm services",
    "ipc": "not supported by Swarm services",
    "pid": "not supported by Swarm services",
    "uts": "not supported by Swarm services",
    "shm_size": "not supported by Swarm services",
    "tmpfs": "not supported by docker stack deploy; use a volume of type tmpfs",
    "expose": "informational only; services on one network reach each other on every port",
    "domainname": "not supported by Swarm services",
    "mac_address": "not supported by Swarm services",
    "profiles": "docker stack deploy has no profiles",
    "platform": "use deploy.placement.constraints (node.platform.arch / node.platform.os)",
    "runtime": "not supported by Swarm services",
    "pull_policy": "Swarm pulls when a node lacks the image",
    "env_file": "env_file must be merged into environment by the compose loader",
    "volumes_from": "not supported by Swarm services",
    "storage_opt": "not supported by Swarm services",
    "oom_kill_disable": "not supported by Swarm services",
    "oom_score_adj": "needs Engine API 1.46; this backend speaks 1.41",
    "credential_spec": "Windows credential specs are not supported by this tool",
    "group_add": "not supported by docker stack deploy",
    "mem_limit": "use deploy.resources.limits.memory",
    "mem_reservation": "use deploy.resources.reservations.memory",
    "memswap_limit": "not supported by Swarm services",
    "mem_swappiness": "not supported by Swarm services",
    "cpus": "use deploy.resources.limits.cpus",
    "cpu_count": "use deploy.resources.limits.cpus",
    "cpu_percent": "use deploy.resources.limits.cpus",
    "cpu_shares": "use deploy.resources.limits.cpus",
    "cpu_quota": "use deploy.resources.limits.cpus",
    "cpu_period": "use deploy.resources.limits.cpus",
    "cpu_rt_runtime": "not supported by Swarm services",
    "cpu_rt_period": "not supported by Swarm services",
    "cpuset": "not supported by Swarm services",
    "blkio_config": "not supported by Swarm services",
    "pids_limit": "use deploy.resources.limits.pids",
    "scale": "use deploy.replicas",
    "extends": "must be resolved by the compose loader",
    "annotations": "not supported by Swarm services",
    "attach": "not supported by Swarm services",
    "develop": "not supported by Swarm services",
    "dns_opt": "docker stack deploy ignores dns_opt",
    "stop_signal_timeout": "use stop_grace_period",
}

SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "labels", "ports", "networks", "volumes",
    "configs", "secrets", "healthcheck", "deploy", "stop_grace_period", "stop_signal", "user",
    "working_dir", "hostname", "init", "cap_add", "cap_drop", "dns", "dns_search", "extra_hosts",
    "sysctls", "ulimits", "logging", "tty", "stdin_open", "read_only", "isolation", "restart",
})
DEPLOY_KEYS = frozenset({
    "mode", "replicas", "labels", "resources", "restart_policy", "placement", "update_config",
    "rollback_config", "endpoint_mode",
})


# -- services --------------------------------------------------------------------------------------


def _environment(ctx: Context, value: object, *where: object) -> list[str]:
    env = read_key_values(ctx, value, *where)
    return sorted(k if v is None else f"{k}={v}" for k, v in env.items())


def _port_range(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    first = int(start)
    last = int(end) if sep else first
    if not (0 <= first <= last <= 65535):
        raise ValueError(f"invalid port range {text!r}")
    return first, last


def _short_ports(ctx: Context, spec: str, *where: object) -> list[t.PortConfig]:
    """``[[ip:]published[-end]:]target[-end][/protocol]`` as the CLI reads it."""
    protocol = "tcp"
    body = spec
    if "/" in spec:
        body, protocol = spec.rsplit("/", 1)
    parts = body.rsplit(":", 2) if not body.startswith("[") else None
    if parts is None:  # [ipv6]:published:target
        host, _, rest = body[1:].partition("]:")
        parts = [host, *rest.split(":", 1)]
    if len(parts) == 3:
        ctx.warning(f"host IP {parts[0]!r} is ignored: Swarm publishes on every interface", *where)
        parts = parts[1:]
    try:
        target = _port_range(parts[-1])
        published = _port_range(parts[0]) if len(parts) == 2 and parts[0] else None
    except ValueError:
        ctx.error(f"invalid port {spec!r}", *where)
        return []
    ports: list[t.PortConfig] = []
    if published is None:
        for port in range(target[0], target[1] + 1):
            ports.append({"Protocol": protocol, "TargetPort": port, "PublishMode": "ingress"})
    elif target[1] - target[0] == published[1] - published[0]:
        for offset in range(target[1] - target[0] + 1):
            ports.append({"Protocol": protocol, "TargetPort": target[0] + offset,
                          "PublishedPort": published[0] + offset, "PublishMode": "ingress"})
    elif target[0] == target[1]:
        for port in range(published[0], published[1] + 1):
            ports.append({"Protocol": protocol, "TargetPort": target[0], "PublishedPort": port,
                          "PublishMode": "ingress"})
    else:
        ctx.error(f"invalid port {spec!r}: published and target ranges differ in size", *where)
    return ports


def _long_port(ctx: Context, port: Mapping[str, Any], *where: object) -> list[t.PortConfig]:
    target = read_int(ctx, port.get("target"), *where, "target")
    if target is None:
        ctx.error("a port needs target:", *where)
        return []
    entry: t.PortConfig = {
        "Protocol": str(port.get("protocol") or "tcp"),
        "TargetPort": target,
        "PublishMode": str(port.get("mode") or "ingress"),
    }
    if entry["PublishMode"] not in ("ingress", "host"):
        ctx.error("mode must be ingress or host", *where, "mode")
    published = port.get("published")
    if port.get("host_ip"):
        ctx.warning("host_ip is ignored: Swarm publishes on every interface", *where, "host_ip")
    for extra in ("name", "app_protocol"):
        if extra in port:
            ctx.warning("ignored by docker stack deploy", *where, extra)
    if published is None or published == "":
        return [entry]
    try:
        first, last = _port_range(str(published))
    except ValueError:
        ctx.error(f"invalid published port {published!r}", *where, "published")
        return [entry]
    return [{**entry, "PublishedPort": p} for p in range(first, last + 1)]


def _port_sort_key(port: t.PortConfig) -> tuple[int, int, str, str]:
    return (port.get("PublishedPort", 0), port.get("TargetPort", 0), port.get("Protocol", ""),
            port.get("PublishMode", ""))


def _ports(ctx: Context, value: object, *where: object) -> list[t.PortConfig]:
    ports: list[t.PortConfig] = []
    if value is None:
        return ports
    if not isinstance(value, (list, tuple)):
        ctx.error("must be a list", *where)
        return ports
    for index, item in enumerate(value):
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            ports.extend(_short_ports(ctx, str(item), *where, index))
        elif isinstance(item, Mapping):
            ports.extend(_long_port(ctx, item, *where, index))
        else:
            ctx.error("a port is a string or a mapping", *where, index)
    return sorted(ports, key=_port_sort_key)


def _service_networks(ctx: Context, service: str, value: object, networks: Mapping[str, Any],
                      *where: object) -> list[t.NetworkAttachmentConfig]:
    wanted: dict[str, Any]
    if not value:
        wanted = {DEFAULT_NETWORK: None}
    elif isinstance(value, Mapping):
        wanted = {str(k): v for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        wanted = {str(k): None for k in value}
    else:
        ctx.error("must be a list or a mapping", *where)
        return []
    result: list[t.NetworkAttachmentConfig] = []
    for key, options in wanted.items():
        if key not in networks and key != DEFAULT_NETWORK:
            ctx.error(f"undefined network {key!r}", *where, key)
            continue
        target = network_target(ctx, key, networks)
        attach: t.NetworkAttachmentConfig = {"Target": target}
        opts = read_mapping(ctx, options, *where, key)
        aliases = read_string_list(ctx, opts.get("aliases"), *where, key, "aliases")
        driver_opts = read_labels(ctx, opts.get("driver_opts"), *where, key, "driver_opts")
        for extra in sorted(set(opts) - {"aliases", "driver_opts"}):
            ctx.warning("ignored by docker stack deploy", *where, key, extra)
        if is_user_defined_network(target):
            aliases.append(service)
        if aliases:
            attach["Aliases"] = aliases
        if driver_opts:
            attach["DriverOpts"] = driver_opts
        result.append(attach)
    return sorted(result, key=lambda n: n.get("Target", ""))


_PROPAGATIONS = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def _bind_source(ctx: Context, source: str, *where: object) -> str:
    if source == "~" or source.startswith("~/"):
        if ctx.home_dir is None:
            ctx.error("~ in a bind source names the deploying user's home; use an absolute path", *where)
            return source
        ctx.warning(f"~ in bind source {source!r} expanded to {ctx.home_dir!r}; it names a path on every node",
                    *where)
        return posixpath.normpath(ctx.home_dir + source[1:])
    if posixpath.isabs(source):
        return source  # verbatim, as docker stack deploy sends it (a trailing slash stays)
    if ctx.project_dir is None:
        ctx.error(f"relative bind source {source!r}: use an absolute path (it names a path on the nodes)",
                  *where)
        return source
    ctx.warning(f"relative bind source {source!r} resolved against {ctx.project_dir!r}; "
                "it names a path on every node", *where)
    return posixpath.normpath(posixpath.join(ctx.project_dir, source))


def _named_volume(ctx: Context, mount: t.Mount, source: str, volumes: Mapping[str, Any],
                  used: set[str], nocopy: bool, *where: object) -> bool:
    if source not in volumes:
        ctx.error(f"undefined volume {source!r}", *where)
        return False
    used.add(source)
    config = read_mapping(ctx, volumes.get(source), "volumes", source)
    external, explicit = read_external(ctx, source, config, "volumes", source)
    mount["Source"] = explicit or scope(ctx.stack, source)
    options: t.VolumeOptions = {}
    if nocopy:
        options["NoCopy"] = True
    if not external:
        labels = read_labels(ctx, config.get("labels"), "volumes", source, "labels")
        options["Labels"] = with_stack_label(ctx, labels)
        driver_opts = config.get("driver_opts")
        if config.get("driver") or driver_opts is not None:
            driver: t.Driver = {}
            if config.get("driver"):
                driver["Name"] = str(config["driver"])
            opts = read_labels(ctx, driver_opts, "volumes", source, "driver_opts")
            if opts:
                driver["Options"] = opts
            options["DriverConfig"] = driver
    mount["VolumeOptions"] = options
    return True


def _short_volume(ctx: Context, spec: str, volumes: Mapping[str, Any], used: set[str],
                  *where: object) -> t.Mount | None:
    parts = spec.split(":")
    if len(parts) == 1:
        return {"Type": "volume", "Target": parts[0]}
    if len(parts) > 3:
        ctx.error(f"invalid volume {spec!r}", *where)
        return None
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    mount: t.Mount = {"Target": target}
    nocopy = False
    for mode in modes:
        if mode == "ro":
            mount["ReadOnly"] = True
        elif mode == "rw":
            pass
        elif mode == "nocopy":
            nocopy = True
        elif mode in _PROPAGATIONS:
            mount["BindOptions"] = {"Propagation": mode}
        elif mode in ("z", "Z", "consistent", "cached", "delegated"):
            ctx.warning(f"volume mode {mode!r} is ignored by Swarm", *where)
        else:
            ctx.error(f"unknown volume mode {mode!r}", *where)
    if _is_path(source):
        mount = {"Type": "bind", "Source": _bind_source(ctx, source, *where), **mount}
        if nocopy:
            ctx.error("nocopy applies to named volumes only", *where)
        return mount
    if "BindOptions" in mount:
        ctx.error("propagation applies to bind mounts only", *where)
        del mount["BindOptions"]
    mount = {"Type": "volume", **mount}
    if not _named_volume(ctx, mount, source, volumes, used, nocopy, *where):
        return None
    return mount


def _long_volume(ctx: Context, spec: Mapping[str, Any], volumes: Mapping[str, Any], used: set[str],
                 *where: object) -> t.Mount | None:
    kind = str(spec.get("type") or "volume")
    target = spec.get("target")
    if not target:
        ctx.error("a volume needs target:", *where)
        return None
    mount: t.Mount = {"Type": kind, "Target": str(target)}
    if read_bool(ctx, spec.get("read_only"), *where, "read_only"):
        mount["ReadOnly"] = True
    if spec.get("consistency"):
        ctx.warning("consistency is ignored by Swarm", *where, "consistency")
    source = spec.get("source")
    known = {"type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs"}
    for extra in sorted(set(spec) - known):
        ctx.warning("ignored by docker stack deploy", *where, extra)
    for option in ("bind", "volume", "tmpfs"):
        if spec.get(option) is not None and option != kind:
            ctx.error(f"{option} options are incompatible with type {kind}", *where, option)
    if kind == "bind":
        if not source:
            ctx.error("a bind mount needs source:", *where)
            return None
        mount["Source"] = _bind_source(ctx, str(source), *where, "source")
        bind = read_mapping(ctx, spec.get("bind"), *where, "bind")
        if bind.get("propagation"):
            mount["BindOptions"] = {"Propagation": str(bind["propagation"])}
        for extra in sorted(set(bind) - {"propagation"}):
            ctx.warning("ignored by docker stack deploy", *where, "bind", extra)
        return mount
    if kind == "volume":
        options = read_mapping(ctx, spec.get("volume"), *where, "volume")
        nocopy = bool(read_bool(ctx, options.get("nocopy"), *where, "volume", "nocopy"))
        if not source:
            if nocopy:
                mount["VolumeOptions"] = {"NoCopy": True}
            return mount
        if not _named_volume(ctx, mount, str(source), volumes, used, nocopy, *where, "source"):
            return None
        return mount
    if kind == "tmpfs":
        if source:
            ctx.error("a tmpfs mount has no source", *where, "source")
        tmpfs = read_mapping(ctx, spec.get("tmpfs"), *where, "tmpfs")
        options_tmpfs: t.TmpfsOptions = {}
        if tmpfs.get("size") is not None:
            try:
                options_tmpfs["SizeBytes"] = size_bytes(tmpfs["size"])
            except ValueError as err:
                ctx.error(str(err), *where, "tmpfs", "size")
        if tmpfs.get("mode") is not None:
            mode = read_file_mode(ctx, tmpfs["mode"], *where, "tmpfs", "mode")
            if mode is not None:
                options_tmpfs["Mode"] = mode
        if options_tmpfs:
            mount["TmpfsOptions"] = options_tmpfs
        return mount
    ctx.error(f"volume type {kind!r} is not supported (volume, bind or tmpfs)", *where, "type")
    return None


def _mounts(ctx: Context, value: object, volumes: Mapping[str, Any], used: set[str],
            *where: object) -> list[t.Mount]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        ctx.error("must be a list", *where)
        return []
    mounts: list[t.Mount] = []
    for index, item in enumerate(value):
        mount: t.Mount | None
        if isinstance(item, str):
            mount = _short_volume(ctx, item, volumes, used, *where, index)
        elif isinstance(item, Mapping):
            mount = _long_volume(ctx, item, volumes, used, *where, index)
        else:
            ctx.error("a volume is a string or a mapping", *where, index)
            mount = None
        if mount is not None:
            mounts.append(mount)
    return mounts


def _file_target(ctx: Context, ref: Mapping[str, Any], source: str, *where: object) -> t.FileTarget:
    mode = read_file_mode(ctx, ref["mode"], *where, "mode") if ref.get("mode") is not None else None
    return {
        "Name": str(ref.get("target") or source),
        "UID": str(ref.get("uid") if ref.get("uid") not in (None, "") else "0"),
        "GID": str(ref.get("gid") if ref.get("gid") not in (None, "") else "0"),
        "Mode": DEFAULT_FILE_MODE if mode is None else mode,
    }


def _references(ctx: Context, kind: str, value: object, names: Mapping[str, str],
                *where: object) -> list[tuple[str, t.FileTarget]]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        ctx.error("must be a list", *where)
        return []
    refs: list[tuple[str, t.FileTarget]] = []
    for index, item in enumerate(value):
        ref: Mapping[str, Any] = (
            {"source": item} if isinstance(item, str) else read_mapping(ctx, item, *where, index))
        source = str(ref.get("source") or "")
        if source not in names:
            ctx.error(f"undefined {kind} {source!r}", *where, index)
            continue
        for extra in sorted(set(ref) - {"source", "target", "uid", "gid", "mode"}):
            ctx.warning("ignored by docker stack deploy", *where, index, extra)
        refs.append((names[source], _file_target(ctx, ref, source, *where, index)))
    return sorted(refs, key=lambda r: r[0])


def _healthcheck(ctx: Context, value: object, *where: object) -> t.HealthConfig | None:
    if value is None:
        return None
    check = read_mapping(ctx, value, *where)
    disable = read_bool(ctx, check.get("disable"), *where, "disable")
    test = check.get("test")
    if disable:
        if test:
            ctx.error("test and disable cannot both be set", *where)
        return {"Test": ["NONE"]}
    result: t.HealthConfig = {}
    if isinstance(test, str):
        result["Test"] = ["CMD-SHELL", test]
    elif isinstance(test, (list, tuple)):
        result["Test"] = [stringify(v) for v in test]
    elif test is not None:
        ctx.error("test must be a string or a list", *where, "test")
    durations = (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"))
    for key, api in durations:
        ns = read_duration(ctx, check.get(key), *where, key)
        if ns:
            result[api] = ns  # type: ignore[literal-required]
    retries = read_int(ctx, check.get("retries"), *where, "retries")
    if retries:
        result["Retries"] = retries
    if check.get("start_interval") is not None:
        ctx.warning("start_interval needs Engine API 1.44; ignored", *where, "start_interval")
    for extra in sorted(set(check) - {"test", "interval", "timeout", "start_period", "retries",
                                      "disable", "start_interval"}):
        ctx.warning("unknown healthcheck key, ignored", *where, extra)
    return result


def _update_config(ctx: Context, value: object, *where: object) -> t.UpdateConfig | None:
    if value is None:
        return None
    config = read_mapping(ctx, value, *where)
    parallelism = read_int(ctx, config.get("parallelism"), *where, "parallelism")
    result: t.UpdateConfig = {"Parallelism": 1 if parallelism is None else parallelism}
    delay = read_duration(ctx, config.get("delay"), *where, "delay")
    if delay:
        result["Delay"] = delay
    if config.get("failure_action"):
        action = str(config["failure_action"])
        if action not in ("pause", "continue", "rollback"):
            ctx.error("failure_action must be pause, continue or rollback", *where, "failure_action")
        result["FailureAction"] = action
    monitor = read_duration(ctx, config.get("monitor"), *where, "monitor")
    if monitor:
        result["Monitor"] = monitor
    ratio = config.get("max_failure_ratio")
    if ratio is not None:
        if isinstance(ratio, (int, float)) and not isinstance(ratio, bool):
            result["MaxFailureRatio"] = float(ratio)
        else:
            ctx.error("max_failure_ratio must be a number", *where, "max_failure_ratio")
    if config.get("order"):
        order = str(config["order"])
        if order not in ("start-first", "stop-first"):
            ctx.error("order must be start-first or stop-first", *where, "order")
        result["Order"] = order
    for extra in sorted(set(config) - {"parallelism", "delay", "failure_action", "monitor",
                                       "max_failure_ratio", "order"}):
        ctx.warning("unknown key, ignored", *where, extra)
    return result


def _restart_policy(ctx: Context, deploy: Mapping[str, Any], restart: object,
                    *where: object) -> t.RestartPolicy | None:
    policy = deploy.get("restart_policy")
    if policy is not None:
        config = read_mapping(ctx, policy, *where, "deploy", "restart_policy")
        at = (*where, "deploy", "restart_policy")
        result: t.RestartPolicy = {}
        condition = str(config.get("condition") or "any")
        if condition not in ("none", "on-failure", "any"):
            ctx.error("condition must be none, on-failure or any", *at, "condition")
        result["Condition"] = condition
        delay = read_duration(ctx, config.get("delay"), *at, "delay")
        if delay is not None:
            result["Delay"] = delay
        attempts = read_int(ctx, config.get("max_attempts"), *at, "max_attempts")
        if attempts is not None:
            result["MaxAttempts"] = attempts
        window = read_duration(ctx, config.get("window"), *at, "window")
        if window is not None:
            result["Window"] = window
        if restart is not None:
            ctx.warning("restart is ignored because deploy.restart_policy is set", *where, "restart")
        return result
    if restart is None:
        return None
    # Like docker stack deploy: the legacy service-level restart becomes a restart policy.
    name, _, count = str(restart).partition(":")
    if name in ("no", "false", ""):
        ctx.warning("restart: no has no effect in Swarm (tasks restart by default); "
                    "use deploy.restart_policy.condition: none", *where, "restart")
        return None
    legacy: t.RestartPolicy
    if name in ("always", "unless-stopped"):
        legacy = {"Condition": "any"}
    elif name == "on-failure":
        legacy = {"Condition": "on-failure"}
    else:
        ctx.error(f"unknown restart policy {name!r}", *where, "restart")
        return None
    if count:
        attempts = read_int(ctx, count, *where, "restart")
        if attempts:
            legacy["MaxAttempts"] = attempts
    return legacy


def _resources(ctx: Context, value: object, *where: object) -> t.ResourceRequirements | None:
    if value is None:
        return None
    config = read_mapping(ctx, value, *where)
    result: t.ResourceRequirements = {}
    limits = read_mapping(ctx, config.get("limits"), *where, "limits")
    if limits:
        limit: t.Limit = {}
        _cpu_memory(ctx, limits, limit, *where, "limits")  # type: ignore[arg-type]
        pids = read_int(ctx, limits.get("pids"), *where, "limits", "pids")
        if pids:
            limit["Pids"] = pids
        for extra in sorted(set(limits) - {"cpus", "memory", "pids"}):
            ctx.warning("ignored by docker stack deploy", *where, "limits", extra)
        result["Limits"] = limit
    reservations = read_mapping(ctx, config.get("reservations"), *where, "reservations")
    if reservations:
        reservation: t.ResourceObject = {}
        _cpu_memory(ctx, reservations, reservation, *where, "reservations")  # type: ignore[arg-type]
        generic: list[t.GenericResource] = []
        for index, item in enumerate(reservations.get("generic_resources") or []):
            at = (*where, "reservations", "generic_resources", index)
            spec = read_mapping(ctx, read_mapping(ctx, item, *at).get("discrete_resource_spec"), *at)
            value_int = read_int(ctx, spec.get("value"), *where, "reservations", "generic_resources", index)
            if spec.get("kind") and value_int is not None:
                generic.append({"DiscreteResourceSpec": {"Kind": str(spec["kind"]), "Value": value_int}})
        if generic:
            reservation["GenericResources"] = generic
        for extra in sorted(set(reservations) - {"cpus", "memory", "generic_resources"}):
            ctx.warning("ignored by docker stack deploy", *where, "reservations", extra)
        result["Reservations"] = reservation
    return result


def _cpu_memory(ctx: Context, source: Mapping[str, Any], target: dict[str, Any], *where: object) -> None:
    if source.get("cpus") is not None:
        try:
            cpus = nano_cpus(source["cpus"])
            if cpus:
                target["NanoCPUs"] = cpus
        except ValueError as err:
            ctx.error(str(err), *where, "cpus")
    if source.get("memory") is not None:
        try:
            memory = size_bytes(source["memory"])
            if memory:
                target["MemoryBytes"] = memory
        except ValueError as err:
            ctx.error(str(err), *where, "memory")


def _placement(ctx: Context, value: object, *where: object) -> t.Placement | None:
    if value is None:
        return None
    config = read_mapping(ctx, value, *where)
    result: t.Placement = {}
    constraints = read_string_list(ctx, config.get("constraints"), *where, "constraints")
    if constraints:
        result["Constraints"] = constraints
    preferences: list[t.PlacementPreference] = []
    for index, item in enumerate(config.get("preferences") or []):
        pref = read_mapping(ctx, item, *where, "preferences", index)
        if pref.get("spread"):
            preferences.append({"Spread": {"SpreadDescriptor": str(pref["spread"])}})
        else:
            ctx.error("a placement preference needs spread:", *where, "preferences", index)
    if preferences:
        result["Preferences"] = preferences
    max_replicas = read_int(ctx, config.get("max_replicas_per_node"), *where, "max_replicas_per_node")
    if max_replicas:
        result["MaxReplicas"] = max_replicas
    for extra in sorted(set(config) - {"constraints", "preferences", "max_replicas_per_node"}):
        ctx.warning("unknown key, ignored", *where, extra)
    return result or None


def _mode(ctx: Context, deploy: Mapping[str, Any], *where: object) -> t.ServiceMode:
    mode = str(deploy.get("mode") or "replicated")
    replicas = read_int(ctx, deploy.get("replicas"), *where, "replicas")
    if mode in ("global", "global-job"):
        if replicas is not None:
            ctx.error("replicas can only be used with replicated or replicated-job mode", *where, "replicas")
        return {"Global": {}} if mode == "global" else {"GlobalJob": {}}
    if mode == "replicated-job":
        job: t.ReplicatedJob = {}
        if replicas is not None:
            job = {"MaxConcurrent": replicas, "TotalCompletions": replicas}
        return {"ReplicatedJob": job}
    if mode != "replicated":
        ctx.error(f"unknown mode {mode!r}", *where, "mode")
    return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}


def _capabilities(values: list[str]) -> list[str]:
    result = set()
    for value in values:
        cap = value.upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        result.add(cap)
    return sorted(result)


def _extra_hosts(ctx: Context, value: object, *where: object) -> list[str]:
    hosts: list[str] = []
    if value is None:
        return hosts
    if isinstance(value, Mapping):
        items = [(str(k), stringify(v)) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = []
        for index, entry in enumerate(value):
            text = str(entry)
            host, sep, address = text.partition("=")
            if not sep:
                host, sep, address = text.partition(":")
            if not sep:
                ctx.error("extra_hosts entries are host:ip", *where, index)
                continue
            items.append((host, address))
    else:
        ctx.error("must be a list or a mapping", *where)
        return hosts
    for host, address in items:
        hosts.append(f"{address.strip('[]')} {host}")
    return hosts


def _ulimits(ctx: Context, value: object, *where: object) -> list[t.Ulimit]:
    result: list[t.Ulimit] = []
    for name, limit in sorted(read_mapping(ctx, value, *where).items()):
        if isinstance(limit, Mapping):
            soft = read_int(ctx, limit.get("soft"), *where, name, "soft")
            hard = read_int(ctx, limit.get("hard"), *where, name, "hard")
            result.append({"Name": name, "Soft": soft or 0, "Hard": hard or 0})
        else:
            single = read_int(ctx, limit, *where, name)
            if single is not None:
                result.append({"Name": name, "Soft": single, "Hard": single})
    return result


def service_object(ctx: Context, key: str, raw: object, networks: Mapping[str, Any], volumes: Mapping[str, Any],
             used_volumes: set[str]) -> ServiceObject | None:
    where: tuple[object, ...] = ("services", key)
    service = read_mapping(ctx, raw, *where)
    for name in sorted(service):
        if name in SERVICE_KEYS or name.startswith("x-"):
            continue
        if name in IGNORED_SERVICE_KEYS:
            ctx.warning(f"ignored by Swarm: {IGNORED_SERVICE_KEYS[name]}", *where, name)
        else:
            ctx.warning("unknown service key, ignored", *where, name)
    image = service.get("image")
    if not image:
        ctx.error("a Swarm service needs image: (Swarm does not build images)", *where)
        return None
    image = str(image)
    name = scope(ctx.stack, key)
    deploy = read_mapping(ctx, service.get("deploy"), *where, "deploy")
    for extra in sorted(set(deploy) - DEPLOY_KEYS):
        ctx.warning("unknown deploy key, ignored", *where, "deploy", extra)

    container: t.ContainerSpec = {"Image": image}
    container["Labels"] = with_stack_label(ctx, read_labels(ctx, service.get("labels"), *where, "labels"))
    entrypoint = read_command(ctx, service.get("entrypoint"), *where, "entrypoint")
    if entrypoint:
        container["Command"] = entrypoint
    command = read_command(ctx, service.get("command"), *where, "command")
    if command:
        container["Args"] = command
    for compose_key, api_key in (("hostname", "Hostname"), ("working_dir", "Dir"), ("user", "User"),
                                 ("stop_signal", "StopSignal"), ("isolation", "Isolation")):
        if service.get(compose_key) not in (None, ""):
            container[api_key] = stringify(service[compose_key])  # type: ignore[literal-required]
    env = _environment(ctx, service.get("environment"), *where, "environment")
    if env:
        container["Env"] = env
    hosts = _extra_hosts(ctx, service.get("extra_hosts"), *where, "extra_hosts")
    if hosts:
        container["Hosts"] = hosts
    dns = read_string_list(ctx, service.get("dns"), *where, "dns")
    search = read_string_list(ctx, service.get("dns_search"), *where, "dns_search")
    if dns or search:
        dns_config: t.DNSConfig = {}
        if dns:
            dns_config["Nameservers"] = dns
        if search:
            dns_config["Search"] = search
        container["DNSConfig"] = dns_config
    health = _healthcheck(ctx, service.get("healthcheck"), *where, "healthcheck")
    if health:
        container["Healthcheck"] = health
    mounts = _mounts(ctx, service.get("volumes"), volumes, used_volumes, *where, "volumes")
    if mounts:
        container["Mounts"] = mounts
    grace = read_duration(ctx, service.get("stop_grace_period"), *where, "stop_grace_period")
    if grace is not None:
        container["StopGracePeriod"] = grace
    for compose_key, api_key in (("tty", "TTY"), ("stdin_open", "OpenStdin"), ("read_only", "ReadOnly")):
        if read_bool(ctx, service.get(compose_key), *where, compose_key):
            container[api_key] = True  # type: ignore[literal-required]
    init = read_bool(ctx, service.get("init"), *where, "init")
    if init is not None:
        container["Init"] = init
    sysctls = read_key_values(ctx, service.get("sysctls"), *where, "sysctls", allow_bare=False)
    if sysctls:
        container["Sysctls"] = {k: v or "" for k, v in sysctls.items()}
    cap_add = _capabilities(read_string_list(ctx, service.get("cap_add"), *where, "cap_add"))
    if cap_add:
        container["CapabilityAdd"] = cap_add
    cap_drop = _capabilities(read_string_list(ctx, service.get("cap_drop"), *where, "cap_drop"))
    if cap_drop:
        container["CapabilityDrop"] = cap_drop
    ulimits = _ulimits(ctx, service.get("ulimits"), *where, "ulimits")
    if ulimits:
        container["Ulimits"] = ulimits
    secrets = _references(ctx, "secret", service.get("secrets"), ctx.secret_names, *where, "secrets")
    if secrets:
        container["Secrets"] = [{"File": target, "SecretName": ref} for ref, target in secrets]
    configs = _references(ctx, "config", service.get("configs"), ctx.config_names, *where, "configs")
    if configs:
        container["Configs"] = [{"File": target, "ConfigName": ref} for ref, target in configs]

    task: t.TaskSpec = {"ContainerSpec": container}
    resources = _resources(ctx, deploy.get("resources"), *where, "deploy", "resources")
    if resources:
        task["Resources"] = resources
    restart = _restart_policy(ctx, deploy, service.get("restart"), *where)
    if restart is not None:
        task["RestartPolicy"] = restart
    placement = _placement(ctx, deploy.get("placement"), *where, "deploy", "placement")
    if placement:
        task["Placement"] = placement
    task["Networks"] = _service_networks(ctx, key, service.get("networks"), networks, *where, "networks")
    logging = read_mapping(ctx, service.get("logging"), *where, "logging")
    if logging.get("driver") or logging.get("options"):
        log_driver: t.Driver = {"Name": str(logging.get("driver") or "")}
        options = read_labels(ctx, logging.get("options"), *where, "logging", "options")
        if options:
            log_driver["Options"] = options
        task["LogDriver"] = log_driver

    spec: t.ServiceSpec = {
        "Name": name,
        "Labels": {**read_labels(ctx, deploy.get("labels"), *where, "deploy", "labels"),
                   STACK_LABEL: ctx.stack, IMAGE_LABEL: image},
        "TaskTemplate": task,
        "Mode": _mode(ctx, deploy, *where, "deploy"),
    }
    update = _update_config(ctx, deploy.get("update_config"), *where, "deploy", "update_config")
    if update is not None:
        spec["UpdateConfig"] = update
    rollback = _update_config(ctx, deploy.get("rollback_config"), *where, "deploy", "rollback_config")
    if rollback is not None:
        spec["RollbackConfig"] = rollback
    endpoint: t.EndpointSpec = {}
    if deploy.get("endpoint_mode"):
        endpoint_mode = str(deploy["endpoint_mode"]).lower()
        if endpoint_mode not in ("vip", "dnsrr"):
            ctx.error("endpoint_mode must be vip or dnsrr", *where, "deploy", "endpoint_mode")
        endpoint["Mode"] = endpoint_mode
    ports = _ports(ctx, service.get("ports"), *where, "ports")
    if ports:
        endpoint["Ports"] = ports
        if endpoint.get("Mode") == "dnsrr" and any(p.get("PublishMode") == "ingress" for p in ports):
            ctx.error("endpoint_mode dnsrr cannot publish ports in ingress mode; use mode: host",
                      *where, "ports")
    if endpoint:
        spec["EndpointSpec"] = endpoint
    return ServiceObject(key=key, name=name, spec=spec, prune=read_prune(ctx, service, *where))


