"""Compose ``ports:`` -> Swarm ``EndpointSpec.Ports``: short syntax
``[[ip:]published[-end]:]target[-end][/protocol]`` and the long syntax, as ``docker stack deploy``
reads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import types as t
from .compose import (
    Context,
    read_int,
)


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
    if len(parts) == 3:  # a host IP: ignored (the compose rule table says so)
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


def endpoint_ports(ctx: Context, value: object, *where: object) -> list[t.PortConfig]:
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
