"""Compose ``ports:`` -> Swarm ``EndpointSpec.Ports``: short syntax
``[[ip:]published[-end]:]target[-end][/protocol]`` and the long syntax, as ``docker stack deploy``
reads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.validate.compose_rules import parse_port, port_range

from . import types as t
from .compose import (
    Context,
    read_int,
)


def _short_ports(spec: object) -> list[t.PortConfig]:
    """The ports of a short-syntax spec; none for one the compose rule table refuses."""
    try:
        parsed = parse_port(spec)
    except ValueError:
        return []
    protocol, target, published = parsed.protocol, parsed.target, parsed.published
    ports: list[t.PortConfig] = []
    if published is None:
        for port in range(target[0], target[1] + 1):
            ports.append({"Protocol": protocol, "TargetPort": port, "PublishMode": "ingress"})
    elif target[1] - target[0] == published[1] - published[0]:
        for offset in range(target[1] - target[0] + 1):
            ports.append({"Protocol": protocol, "TargetPort": target[0] + offset,
                          "PublishedPort": published[0] + offset, "PublishMode": "ingress"})
    else:  # one target published on a range of ports
        for port in range(published[0], published[1] + 1):
            ports.append({"Protocol": protocol, "TargetPort": target[0], "PublishedPort": port,
                          "PublishMode": "ingress"})
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
    published = port.get("published")
    if published is None or published == "":
        return [entry]
    span = port_range(str(published))
    if span is None:
        return [entry]  # refused by the compose rule table
    return [{**entry, "PublishedPort": p} for p in range(span[0], span[1] + 1)]


def _port_sort_key(port: t.PortConfig) -> tuple[int, int, str, str]:
    return (port.get("PublishedPort", 0), port.get("TargetPort", 0), port.get("Protocol", ""),
            port.get("PublishMode", ""))


def endpoint_ports(ctx: Context, value: object, *where: object) -> list[t.PortConfig]:
    ports: list[t.PortConfig] = []
    if value is None:
        return ports
    if not isinstance(value, (list, tuple)):
        ctx.error("must be a list", *where)
        return ports
    for index, item in enumerate(value):
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            ports.extend(_short_ports(item))
        elif isinstance(item, Mapping):
            ports.extend(_long_port(ctx, item, *where, index))
        else:
            ctx.error("a port is a string or a mapping", *where, index)
    return sorted(ports, key=_port_sort_key)
