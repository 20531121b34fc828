"""A service's ``deploy:`` settings -> the Swarm spec: mode and replicas, resources, restart
policy, placement, and the rolling update and rollback configs."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from gitops.validate.compose_rules import RESTART
from gitops.validate.units import nano_cpus, size_bytes

from . import types as t
from .compose import (
    Context,
    read_duration,
    read_int,
    read_mapping,
    read_string_list,
)


def update_config(ctx: Context, value: object, *where: object) -> t.UpdateConfig | None:
    if value is None:
        return None
    config = read_mapping(ctx, value, *where)
    parallelism = read_int(ctx, config.get("parallelism"), *where, "parallelism")
    result: t.UpdateConfig = {"Parallelism": 1 if parallelism is None else parallelism}
    delay = read_duration(ctx, config.get("delay"), *where, "delay")
    if delay:
        result["Delay"] = delay
    if config.get("failure_action"):
        result["FailureAction"] = str(config["failure_action"])  # its values: the compose rule table
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
        result["Order"] = str(config["order"])
    return result


def restart_policy(ctx: Context, deploy: Mapping[str, Any], restart: object,
                    *where: object) -> t.RestartPolicy | None:
    policy = deploy.get("restart_policy")
    if policy is not None:
        config = read_mapping(ctx, policy, *where, "deploy", "restart_policy")
        at = (*where, "deploy", "restart_policy")
        result: t.RestartPolicy = {}
        result["Condition"] = str(config.get("condition") or "any")
        delay = read_duration(ctx, config.get("delay"), *at, "delay")
        if delay is not None:
            result["Delay"] = delay
        attempts = read_int(ctx, config.get("max_attempts"), *at, "max_attempts")
        if attempts is not None:
            result["MaxAttempts"] = attempts
        window = read_duration(ctx, config.get("window"), *at, "window")
        if window is not None:
            result["Window"] = window
        return result  # a service-level restart is ignored (the compose rule table warns)
    if restart is None:
        return None
    # Like docker stack deploy: the legacy service-level restart becomes a restart policy.
    name, _, count = str(restart).partition(":")
    condition = RESTART.get(name)
    if condition is None:
        return None  # no (tasks restart by default in Swarm), or a value the compose rule table refuses
    legacy: t.RestartPolicy = {"Condition": condition}
    if count:
        attempts = read_int(ctx, count, *where, "restart")
        if attempts:
            legacy["MaxAttempts"] = attempts
    return legacy


def resources(ctx: Context, value: object, *where: object) -> t.ResourceRequirements | None:
    if value is None:
        return None
    config = read_mapping(ctx, value, *where)
    result: t.ResourceRequirements = {}
    limits = read_mapping(ctx, config.get("limits"), *where, "limits")
    if limits:
        limit: t.Limit = {}
        _cpu_memory(limits, limit)  # type: ignore[arg-type]
        pids = read_int(ctx, limits.get("pids"), *where, "limits", "pids")
        if pids:
            limit["Pids"] = pids
        result["Limits"] = limit
    reservations = read_mapping(ctx, config.get("reservations"), *where, "reservations")
    if reservations:
        reservation: t.ResourceObject = {}
        _cpu_memory(reservations, reservation)  # type: ignore[arg-type]
        generic: list[t.GenericResource] = []
        for index, item in enumerate(reservations.get("generic_resources") or []):
            at = (*where, "reservations", "generic_resources", index)
            spec = read_mapping(ctx, read_mapping(ctx, item, *at).get("discrete_resource_spec"), *at)
            value_int = read_int(ctx, spec.get("value"), *where, "reservations", "generic_resources", index)
            if spec.get("kind") and value_int is not None:
                generic.append({"DiscreteResourceSpec": {"Kind": str(spec["kind"]), "Value": value_int}})
        if generic:
            reservation["GenericResources"] = generic
        result["Reservations"] = reservation
    return result


def _cpu_memory(source: Mapping[str, Any], target: dict[str, Any]) -> None:
    # A value that does not parse is refused by the compose rule table (with the same parsers).
    with contextlib.suppress(ValueError):
        if source.get("cpus") is not None and (cpus := nano_cpus(source["cpus"])):
            target["NanoCPUs"] = cpus
    with contextlib.suppress(ValueError):
        if source.get("memory") is not None and (memory := size_bytes(source["memory"])):
            target["MemoryBytes"] = memory


def placement(ctx: Context, value: object, *where: object) -> t.Placement | None:
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
        if pref.get("spread"):  # one without: refused by the compose rule table
            preferences.append({"Spread": {"SpreadDescriptor": str(pref["spread"])}})
    if preferences:
        result["Preferences"] = preferences
    max_replicas = read_int(ctx, config.get("max_replicas_per_node"), *where, "max_replicas_per_node")
    if max_replicas:
        result["MaxReplicas"] = max_replicas
    return result or None


def mode(ctx: Context, deploy: Mapping[str, Any], *where: object) -> t.ServiceMode:
    mode = str(deploy.get("mode") or "replicated")
    replicas = read_int(ctx, deploy.get("replicas"), *where, "replicas")
    if mode in ("global", "global-job"):  # with replicas: refused by the compose rule table
        return {"Global": {}} if mode == "global" else {"GlobalJob": {}}
    if mode == "replicated-job":
        job: t.ReplicatedJob = {}
        if replicas is not None:
            job = {"MaxConcurrent": replicas, "TotalCompletions": replicas}
        return {"ReplicatedJob": job}
    return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}
