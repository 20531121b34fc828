"""A service's ``deploy:`` settings -> the Swarm spec: mode and replicas, resources, restart
policy, placement, and the rolling update and rollback configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import types as t
from .compose import (
    Context,
    read_duration,
    read_int,
    read_mapping,
    read_string_list,
)
from .units import nano_cpus, size_bytes


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
    return result


def restart_policy(ctx: Context, deploy: Mapping[str, Any], restart: object,
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
        return result  # a service-level restart is ignored (the compose rule table warns)
    if restart is None:
        return None
    # Like docker stack deploy: the legacy service-level restart becomes a restart policy.
    name, _, count = str(restart).partition(":")
    if name in ("no", "false", ""):
        return None  # tasks restart by default in Swarm (the compose rule table warns)
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


def resources(ctx: Context, value: object, *where: object) -> t.ResourceRequirements | None:
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
        if pref.get("spread"):
            preferences.append({"Spread": {"SpreadDescriptor": str(pref["spread"])}})
        else:
            ctx.error("a placement preference needs spread:", *where, "preferences", index)
    if preferences:
        result["Preferences"] = preferences
    max_replicas = read_int(ctx, config.get("max_replicas_per_node"), *where, "max_replicas_per_node")
    if max_replicas:
        result["MaxReplicas"] = max_replicas
    return result or None


def mode(ctx: Context, deploy: Mapping[str, Any], *where: object) -> t.ServiceMode:
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
