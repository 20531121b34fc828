"""Compose ``volumes:`` of a service -> Swarm ``Mounts`` (bind, named volume, tmpfs), and
``secrets:`` / ``configs:`` references -> the files they mount, as ``docker stack deploy`` converts
them (``docker/cli`` ``cli/compose/convert/volume.go``)."""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Mapping
from typing import Any

from gitops.validate.compose_rules import PROPAGATIONS, BindSource, bind_source, is_path
from gitops.validate.units import size_bytes

from . import types as t
from .compose import (
    DEFAULT_FILE_MODE,
    Context,
    read_bool,
    read_external,
    read_file_mode,
    read_labels,
    read_mapping,
    scope,
    with_stack_label,
)


def _bind_source(ctx: Context, source: str, *where: object) -> str:
    kind = bind_source(source)
    if kind is BindSource.HOME:
        if ctx.home_dir is None:
            return source  # refused by the compose rule table
        ctx.warning(f"~ in bind source {source!r} expanded to {ctx.home_dir!r}; it names a path on every node",
                    *where)
        return posixpath.normpath(ctx.home_dir + source[1:])
    if kind is BindSource.ABSOLUTE:
        return source  # verbatim, as docker stack deploy sends it (a trailing slash stays)
    if ctx.project_dir is None:
        return source  # refused by the compose rule table
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
        elif mode in PROPAGATIONS:
            mount["BindOptions"] = {"Propagation": mode}
        # other modes: ignored or refused by the compose rule table, as are nocopy on a bind and a
        # propagation on a named volume
    if is_path(source):
        return {"Type": "bind", "Source": _bind_source(ctx, source, *where), **mount}
    mount.pop("BindOptions", None)
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
    source = spec.get("source")
    if kind == "bind":
        if not source:
            ctx.error("a bind mount needs source:", *where)
            return None
        mount["Source"] = _bind_source(ctx, str(source), *where, "source")
        bind = read_mapping(ctx, spec.get("bind"), *where, "bind")
        if bind.get("propagation"):
            mount["BindOptions"] = {"Propagation": str(bind["propagation"])}
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
        tmpfs = read_mapping(ctx, spec.get("tmpfs"), *where, "tmpfs")
        options_tmpfs: t.TmpfsOptions = {}
        if tmpfs.get("size") is not None:
            with contextlib.suppress(ValueError):  # refused by the compose rule table
                options_tmpfs["SizeBytes"] = size_bytes(tmpfs["size"])
        if tmpfs.get("mode") is not None:
            mode = read_file_mode(ctx, tmpfs["mode"], *where, "tmpfs", "mode")
            if mode is not None:
                options_tmpfs["Mode"] = mode
        if options_tmpfs:
            mount["TmpfsOptions"] = options_tmpfs
        return mount
    return None  # another type: refused by the compose rule table


def service_mounts(ctx: Context, value: object, volumes: Mapping[str, Any], used: set[str],
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


def file_references(ctx: Context, kind: str, value: object, names: Mapping[str, str],
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
        refs.append((names[source], _file_target(ctx, ref, source, *where, index)))
    return sorted(refs, key=lambda r: r[0])
