"""One compose service -> one Swarm ServiceSpec, as ``docker stack deploy`` converts it
(``docker/cli`` ``cli/compose/convert/service.go``): the container, its networks and health check
here; ports, mounts and deploy settings in :mod:`ports`, :mod:`mounts` and :mod:`deploy_settings`.
Which keys Swarm ignores or refuses is the compose rule table's business
(:mod:`gitops.validate.compose_rules`), not this module's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.model.plans import SENSITIVE_KEY, WAVE_KEY
from gitops.model.releases import SOPS_KEY
from gitops.render import SOPS_COMPOSE_KEY
from gitops.validate.compose_rules import DEFAULT_NETWORK, SENSITIVE_COMPOSE_KEY, WAVE_COMPOSE_KEY

from . import deploy_settings
from . import types as t
from .compose import (
    IMAGE_LABEL,
    STACK_LABEL,
    Context,
    is_user_defined_network,
    network_target,
    read_bool,
    read_command,
    read_duration,
    read_int,
    read_key_values,
    read_labels,
    read_mapping,
    read_names,
    read_prune,
    read_string_list,
    scope,
    stringify,
    with_stack_label,
)
from .mounts import file_references, service_mounts
from .objects import ServiceObject
from .ports import endpoint_ports

# -- services --------------------------------------------------------------------------------------


def _environment(ctx: Context, value: object, *where: object) -> list[str]:
    env = read_key_values(ctx, value, *where)
    return sorted(k if v is None else f"{k}={v}" for k, v in env.items())


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
        if is_user_defined_network(target):
            aliases.append(service)
        if aliases:
            attach["Aliases"] = aliases
        if driver_opts:
            attach["DriverOpts"] = driver_opts
        result.append(attach)
    return sorted(result, key=lambda n: n.get("Target", ""))


def _healthcheck(ctx: Context, value: object, *where: object) -> t.HealthConfig | None:
    if value is None:
        return None
    check = read_mapping(ctx, value, *where)
    disable = read_bool(ctx, check.get("disable"), *where, "disable")
    test = check.get("test")
    if disable:  # with a test too: refused by the compose rule table
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
    return result


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
        for entry in value:
            text = str(entry)
            host, sep, address = text.partition("=")
            if not sep:
                host, sep, address = text.partition(":")
            if not sep:
                continue  # refused by the compose rule table
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
    image = service.get("image")
    if not image:
        ctx.error("a Swarm service needs image: (Swarm does not build images)", *where)
        return None
    image = str(image)
    name = scope(ctx.stack, key)
    deploy = read_mapping(ctx, service.get("deploy"), *where, "deploy")

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
    mounts = service_mounts(ctx, service.get("volumes"), volumes, used_volumes, *where, "volumes")
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
    secrets = file_references(ctx, "secret", service.get("secrets"), ctx.secret_names, *where, "secrets")
    if secrets:
        container["Secrets"] = [{"File": target, "SecretName": ref} for ref, target in secrets]
    configs = file_references(ctx, "config", service.get("configs"), ctx.config_names, *where, "configs")
    if configs:
        container["Configs"] = [{"File": target, "ConfigName": ref} for ref, target in configs]

    task: t.TaskSpec = {"ContainerSpec": container}
    resources = deploy_settings.resources(ctx, deploy.get("resources"), *where, "deploy", "resources")
    if resources:
        task["Resources"] = resources
    restart = deploy_settings.restart_policy(ctx, deploy, service.get("restart"), *where)
    if restart is not None:
        task["RestartPolicy"] = restart
    placement = deploy_settings.placement(ctx, deploy.get("placement"), *where, "deploy", "placement")
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

    wave = read_int(ctx, service.get(WAVE_COMPOSE_KEY), *where, WAVE_COMPOSE_KEY)
    marked = ctx.sensitive | read_names(ctx, service.get(SENSITIVE_COMPOSE_KEY), *where, SENSITIVE_COMPOSE_KEY)
    from_sops = read_names(ctx, service.get(SOPS_COMPOSE_KEY), *where, SOPS_COMPOSE_KEY)
    spec: t.ServiceSpec = {
        "Name": name,
        "Labels": {**read_labels(ctx, deploy.get("labels"), *where, "deploy", "labels"),
                   **({WAVE_KEY: str(wave)} if wave is not None else {}),
                   **({SENSITIVE_KEY: ",".join(sorted(marked))} if marked else {}),
                   **({SOPS_KEY: ",".join(sorted(from_sops))} if from_sops else {}),
                   STACK_LABEL: ctx.stack, IMAGE_LABEL: image},
        "TaskTemplate": task,
        "Mode": deploy_settings.mode(ctx, deploy, *where, "deploy"),
    }
    update = deploy_settings.update_config(ctx, deploy.get("update_config"), *where, "deploy", "update_config")
    if update is not None:
        spec["UpdateConfig"] = update
    rollback = deploy_settings.update_config(ctx, deploy.get("rollback_config"), *where, "deploy", "rollback_config")
    if rollback is not None:
        spec["RollbackConfig"] = rollback
    endpoint: t.EndpointSpec = {}
    if deploy.get("endpoint_mode"):
        endpoint["Mode"] = str(deploy["endpoint_mode"]).lower()  # its values: the compose rule table
    ports = endpoint_ports(ctx, service.get("ports"), *where, "ports")
    if ports:
        endpoint["Ports"] = ports
    if endpoint:
        spec["EndpointSpec"] = endpoint
    return ServiceObject(key=key, name=name, spec=spec, prune=read_prune(ctx, service, *where))
