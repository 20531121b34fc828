"""What a translation produces: one value per Swarm object, holding its exact Engine API payload."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from gitops.model import Diagnostics

from . import types as t


class SecretData:
    """Secret bytes that never show themselves: ``repr``/``str`` give only the size."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"SecretData(<redacted, {len(self._value)} bytes>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretData) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ServiceObject:
    key: str  # the compose key (``web``)
    name: str  # ``<stack>_web``
    spec: t.ServiceSpec = field(hash=False)
    prune: bool = True  # False: ``x-gitops-prune: false``, kept when it leaves the compose file


@dataclass(frozen=True)
class NetworkObject:
    key: str
    name: str
    external: bool
    spec: t.NetworkCreate | None = field(default=None, hash=False)  # None when external
    prune: bool = True


@dataclass(frozen=True)
class ConfigObject:
    key: str
    name: str
    external: bool
    spec: t.ConfigSpec | None = field(default=None, hash=False)
    prune: bool = True


@dataclass(frozen=True)
class SecretObject:
    """A secret; ``spec`` has no ``Data``: :meth:`payload` adds it for the create call only."""

    key: str
    name: str
    external: bool
    spec: t.SecretSpec | None = field(default=None, hash=False)
    data: SecretData | None = field(default=None, hash=False, repr=False)
    prune: bool = True

    def payload(self) -> dict[str, Any]:
        """The ``POST /secrets/create`` body, with ``Data`` (base64). Send it; never log it."""
        body: dict[str, Any] = dict(self.spec or {})
        if self.data is not None:
            body["Data"] = base64.b64encode(self.data.reveal()).decode("ascii")
        return body


@dataclass(frozen=True)
class VolumeObject:
    """A named volume. Swarm creates it on each node when a task mounts it (from the mount's
    ``VolumeOptions``); ``spec`` is the equivalent ``POST /volumes/create`` body for observing it."""

    key: str
    name: str
    external: bool
    spec: t.VolumeCreate | None = field(default=None, hash=False)
    prune: bool = True


@dataclass(frozen=True)
class Translation:
    stack: str
    services: dict[str, ServiceObject]  # by Swarm name
    networks: dict[str, NetworkObject]
    configs: dict[str, ConfigObject]
    secrets: dict[str, SecretObject]
    volumes: dict[str, VolumeObject]
    diagnostics: Diagnostics

    @property
    def ok(self) -> bool:
        return not self.diagnostics.has_errors


