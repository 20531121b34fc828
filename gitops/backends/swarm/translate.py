"""Compose document -> Swarm objects, with the names and labels ``docker stack deploy`` gives them.

Input: one compose document that is already loaded, merged and interpolated (a plain dict, the
shape ``docker stack config`` prints), and a stack name. Output: a :class:`Translation` holding the
exact Docker Engine API payloads (API 1.41) for every service, network, config, secret and volume
of the stack, and the diagnostics met on the way. Pure: no I/O except through the ``read_file``
callback, which reads a config or secret file named by the compose file (the caller enforces that
the path stays inside the repository).

Naming and labels follow ``docker/cli`` ``cli/compose/convert``:

* every object is ``<stack>_<key>`` unless the compose file sets ``name:`` (networks, volumes,
  configs, secrets); external objects are referenced by ``name:`` or by their key, never created;
* every object carries ``com.docker.stack.namespace=<stack>``; a service also carries
  ``com.docker.stack.image=<image>``; container labels get the namespace label too;
* a service without ``networks:`` joins ``default``, created as ``<stack>_default`` (overlay);
  on user-defined networks the service name is added as an alias;
* environment is sorted ``KEY=value``; configs and secrets references are sorted by name and
  default to uid/gid ``0`` and mode ``0444``.

One deliberate difference: configs and secrets are immutable in Swarm, so file-based ones get 10
hex digits derived from their content appended to their name (``<stack>_<key>-<hash>`` or
``<name>-<hash>``); changed content gives a new object and a service update that points at it.
A config's suffix is the SHA-256 of its content (which plans show anyway); a secret's is the
HMAC-SHA256 of its content under ``secret_key``, the app's naming key (:func:`compose.keyed_hash`),
so that a plan posted in public does not let anyone test guesses of the secret offline.
Without ``secret_key`` secrets are named with :data:`compose.PROCESS_KEY`, random per process;
``secret_key="plain"`` gives them the plain SHA-256 too: the names of stacks deployed before keyed
names (recorded fixtures, the migration test). ``hash_names=False`` gives exactly the CLI's names
(used to compare with ``docker stack deploy``).
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from gitops.errors import GitopsError
from gitops.render import sops as sops_files
from gitops.validate import compose_rules
from gitops.validate.compose_rules import DEFAULT_NETWORK, SENSITIVE_COMPOSE_KEY

from . import types as t
from .compose import (
    DEFAULT_FILE_MODE,
    DEFAULT_NETWORK_DRIVER,
    IMAGE_LABEL,
    MAX_OBJECT_NAME,
    STACK_LABEL,
    Context,
    Decrypt,
    ReadFile,
    SecretKey,
    content_hash,
    is_user_defined_network,
    naming_key,
    object_suffix,
    pointer,
    read_bool,
    read_external,
    read_labels,
    read_mapping,
    read_names,
    read_prune,
    scope,
    with_stack_label,
)
from .objects import (
    ConfigObject,
    NetworkObject,
    SecretData,
    SecretObject,
    ServiceObject,
    Translation,
    VolumeObject,
)
from .service import service_object

__all__ = [
    "DEFAULT_FILE_MODE", "DEFAULT_NETWORK", "IMAGE_LABEL", "STACK_LABEL", "ConfigObject",
    "NetworkObject", "ReadFile", "SecretData", "SecretObject", "ServiceObject", "Translation", "VolumeObject",
    "content_hash", "is_user_defined_network", "iter_objects", "pointer", "scope", "translate",
]

# -- top-level objects -----------------------------------------------------------------------------


def _networks(ctx: Context, networks: Mapping[str, Any], used: set[str]) -> dict[str, NetworkObject]:
    result: dict[str, NetworkObject] = {}
    for key in sorted(used):
        if key not in networks and key != DEFAULT_NETWORK:
            continue  # reported on the service that uses it
        config = read_mapping(ctx, networks.get(key), "networks", key)
        where = ("networks", key)
        external, explicit = read_external(ctx, key, config, *where)
        name = explicit or scope(ctx.stack, key)
        if external:
            result[name] = NetworkObject(key=key, name=name, external=True)
            continue
        driver = str(config.get("driver") or DEFAULT_NETWORK_DRIVER)
        spec: t.NetworkCreate = {
            "Name": name,
            "Driver": driver,
            "Labels": with_stack_label(ctx, read_labels(ctx, config.get("labels"), *where, "labels")),
        }
        options = read_labels(ctx, config.get("driver_opts"), *where, "driver_opts")
        if options:
            spec["Options"] = options
        if read_bool(ctx, config.get("internal"), *where, "internal"):
            spec["Internal"] = True
        if read_bool(ctx, config.get("attachable"), *where, "attachable"):
            spec["Attachable"] = True
        ipam = read_mapping(ctx, config.get("ipam"), *where, "ipam")
        if ipam.get("driver") or ipam.get("config"):
            ipam_spec: t.IPAM = {}
            if ipam.get("driver"):
                ipam_spec["Driver"] = str(ipam["driver"])
            pools: list[t.IPAMConfig] = []
            for index, pool in enumerate(ipam.get("config") or []):
                pool_map = read_mapping(ctx, pool, *where, "ipam", "config", index)
                entry: t.IPAMConfig = {}
                if pool_map.get("subnet"):
                    entry["Subnet"] = str(pool_map["subnet"])
                pools.append(entry)
            if pools:
                ipam_spec["Config"] = pools
            spec["IPAM"] = ipam_spec
        result[name] = NetworkObject(key=key, name=name, external=False, spec=spec,
                                     prune=read_prune(ctx, config, *where))
    return result


def _read(ctx: Context, path: str, *where: object) -> bytes | None:
    if ctx.read_file is None:
        ctx.error("file-based objects need a file reader", *where)
        return None
    try:
        return ctx.read_file(path)
    except (OSError, GitopsError, ValueError) as err:
        # The message names the path and the reason, never the content.
        ctx.error(f"cannot read {path!r}: {err.strerror if isinstance(err, OSError) else err}", *where)
        return None


def _decrypted(ctx: Context, section: str, path: str, data: bytes | None, *where: object) -> bytes | None:
    """A secret file that sops encrypted, decrypted in memory (a DecryptionError goes up as it is:
    no key, tampered, no sops); a config may not be one, since a config's content is shown in plans."""
    fmt = sops_files.format_of(data) if data is not None else None
    if fmt is None or data is None:
        return data
    if section != "secrets":
        ctx.error(f"{path} is SOPS-encrypted: only a secret may be (a config's content is shown in plans)", *where)
        return None
    shown = posixpath.normpath(posixpath.join(posixpath.dirname(ctx.file or ""), path))
    if ctx.decrypt is None:
        raise sops_files.not_found(shown)
    return ctx.decrypt(data, fmt, shown)


def _object_name(ctx: Context, section: str, base: str, data: bytes | None, *where: object) -> str:
    name = f"{base}-{object_suffix(section, data, ctx.secret_key)}" if ctx.hash_names and data is not None else base
    if len(name) > MAX_OBJECT_NAME:
        ctx.error(f"name {name!r} is longer than {MAX_OBJECT_NAME} characters", *where)
    return name


def _file_objects(ctx: Context, section: str) -> list[tuple[str, dict[str, Any], bool, str, bytes | None]]:
    """Shared part of configs and secrets: (key, config, external, name, data)."""
    result: list[tuple[str, dict[str, Any], bool, str, bytes | None]] = []
    for key, raw in sorted(ctx.section(section).items()):
        where = (section, key)
        config = read_mapping(ctx, raw, *where)
        external, explicit = read_external(ctx, key, config, *where)
        base = explicit or scope(ctx.stack, key)
        if external:
            result.append((key, config, True, base, None))
            continue
        data: bytes | None = None
        if config.get("file") is not None:
            data = _read(ctx, str(config["file"]), *where, "file")
            data = _decrypted(ctx, section, str(config["file"]), data, *where, "file")
        elif section == "secrets" and config.get("driver"):
            data = None
        elif "content" not in config and "environment" not in config:  # those: refused by the table
            ctx.error(f"{section[:-1]} needs file: or external: true", *where)
        result.append((key, config, False, _object_name(ctx, section, base, data, *where), data))
    return result


def _configs(ctx: Context) -> dict[str, ConfigObject]:
    result: dict[str, ConfigObject] = {}
    for key, config, external, name, data in _file_objects(ctx, "configs"):
        ctx.config_names[key] = name
        if external:
            result[name] = ConfigObject(key=key, name=name, external=True)
            continue
        spec: t.ConfigSpec = {
            "Name": name,
            "Labels": with_stack_label(ctx, read_labels(ctx, config.get("labels"), "configs", key, "labels")),
            "Data": base64.b64encode(data or b"").decode("ascii"),
        }
        if config.get("template_driver"):
            spec["Templating"] = {"Name": str(config["template_driver"])}
        result[name] = ConfigObject(key=key, name=name, external=False, spec=spec,
                                    prune=read_prune(ctx, config, "configs", key))
    return result


def _secrets(ctx: Context) -> dict[str, SecretObject]:
    result: dict[str, SecretObject] = {}
    for key, config, external, name, data in _file_objects(ctx, "secrets"):
        ctx.secret_names[key] = name
        if external:
            result[name] = SecretObject(key=key, name=name, external=True)
            continue
        spec: t.SecretSpec = {
            "Name": name,
            "Labels": with_stack_label(ctx, read_labels(ctx, config.get("labels"), "secrets", key, "labels")),
        }
        if config.get("driver"):
            driver: t.Driver = {"Name": str(config["driver"])}
            opts = read_labels(ctx, config.get("driver_opts"), "secrets", key, "driver_opts")
            if opts:
                driver["Options"] = opts
            spec["Driver"] = driver
        if config.get("template_driver"):
            spec["Templating"] = {"Name": str(config["template_driver"])}
        result[name] = SecretObject(key=key, name=name, external=False, spec=spec,
                                    data=SecretData(data if data is not None else b""),
                                    prune=read_prune(ctx, config, "secrets", key))
    return result


def _volume_objects(ctx: Context, volumes: Mapping[str, Any], used: set[str]) -> dict[str, VolumeObject]:
    result: dict[str, VolumeObject] = {}
    for key in sorted(used):
        if key not in volumes:
            continue
        config = read_mapping(ctx, volumes.get(key), "volumes", key)
        external, explicit = read_external(ctx, key, config, "volumes", key)
        name = explicit or scope(ctx.stack, key)
        if external:
            result[name] = VolumeObject(key=key, name=name, external=True)
            continue
        spec: t.VolumeCreate = {
            "Name": name,
            "Driver": str(config.get("driver") or "local"),
            "Labels": with_stack_label(ctx, read_labels(ctx, config.get("labels"), "volumes", key, "labels")),
        }
        opts = read_labels(ctx, config.get("driver_opts"), "volumes", key, "driver_opts")
        if opts:
            spec["DriverOpts"] = opts
        result[name] = VolumeObject(key=key, name=name, external=False, spec=spec,
                                    prune=read_prune(ctx, config, "volumes", key))
    return result




# -- entry point -----------------------------------------------------------------------------------


def translate(compose: Mapping[str, Any], stack: str, *, read_file: ReadFile | None = None,
              project_dir: str | None = None, hash_names: bool = True,
              file: str | None = None, home_dir: str | None = None, secret_key: SecretKey = None,
              decrypt: Decrypt | None = None) -> Translation:
    """Translate one loaded compose document into the Swarm objects of stack ``stack``.

    ``secret_key`` says how secrets are named (:data:`compose.SecretKey`: the app's key, by default
    a random key of this process, or ``"plain"``). ``read_file`` reads ``configs.*.file``
    / ``secrets.*.file`` (paths as written in the compose file). ``project_dir`` resolves relative
    bind sources the way ``docker stack deploy`` does (by default they are an error: they would
    name a path on the deploying machine). ``file`` is used in diagnostics. ``home_dir`` expands
    ``~`` in bind sources (an error by default, for the same reason). ``decrypt`` decrypts a
    SOPS-encrypted ``secrets.*.file`` in memory. Content problems become diagnostics; the
    translation goes on as far as it can.
    """
    ctx = Context(stack, compose, read_file, project_dir, hash_names, file, home_dir, naming_key(secret_key))
    ctx.decrypt = decrypt
    # What Swarm ignores or refuses, key by key, as validate reports it.
    ctx.diagnostics.extend(compose_rules.check(compose, file=file, relative_binds=project_dir is not None,
                                               home_binds=home_dir is not None))
    ctx.sensitive = read_names(ctx, compose.get(SENSITIVE_COMPOSE_KEY), SENSITIVE_COMPOSE_KEY)
    services = ctx.section("services")
    networks = ctx.section("networks")
    volumes = ctx.section("volumes")
    configs = _configs(ctx)
    secrets = _secrets(ctx)
    used_volumes: set[str] = set()
    service_objects: dict[str, ServiceObject] = {}
    for key, raw in sorted(services.items()):
        obj = service_object(ctx, key, raw, networks, volumes, used_volumes)
        if obj is not None:
            service_objects[obj.name] = obj
    network_objects = _networks(ctx, networks, compose_rules.used_networks(services))
    volume_objects = _volume_objects(ctx, volumes, used_volumes)
    return Translation(
        stack=stack,
        services=service_objects,
        networks=network_objects,
        configs=configs,
        secrets=secrets,
        volumes=volume_objects,
        diagnostics=ctx.diagnostics,
    )


def iter_objects(translation: Translation) -> Iterable[tuple[str, str, bool]]:
    """(kind, name, external) of every object, in creation order."""
    for kind, objects in (("Network", translation.networks), ("Config", translation.configs),
                          ("Secret", translation.secrets), ("Volume", translation.volumes)):
        for name, obj in objects.items():
            yield kind, name, obj.external
    for name in translation.services:
        yield "Service", name, False

