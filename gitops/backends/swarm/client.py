"""The one place that talks to the Docker Engine (the only module that imports ``docker``).

A thin adapter over ``docker.APIClient`` (the low-level client): it sends the exact Engine API
payloads built by :mod:`gitops.backends.swarm.translate`, reads objects back raw (``GET
/services/{id}`` without ``insertDefaults``, which is what :mod:`normalize` expects), and turns the
SDK's exceptions into the error types of :mod:`gitops.errors` with the message
``Kind/stack/name: verb failed: why``. This is the one place where they get their types:

| the Engine says                                           | raised                                  |
|-----------------------------------------------------------|-----------------------------------------|
| no answer (socket missing, connection refused, timeout)    | SwarmUnreachable (UnreachableError)     |
| 404                                                       | SwarmNotFound (NotFoundError)           |
| 409: an object of that name exists                        | SwarmConflict (AlreadyExistsError)      |
| "update out of sequence": an update at a stale ``Version.Index`` | SwarmOutOfSequence (StateConflictError) |
| anything else                                             | SwarmAPIError (BackendError)            |

The Engine (API 1.41) answers a stale ``Version.Index`` with HTTP 500 and the swarmkit message
``update out of sequence``: reading that message here is the only place one is looked at.

Secret payloads are passed straight to the API and never put into an error message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests.exceptions

from gitops.errors import AlreadyExistsError, BackendError, NotFoundError, StateConflictError, UnreachableError

from .translate import STACK_LABEL, SecretObject

API_VERSION = "1.41"


class SwarmAPIError(BackendError):
    """An Engine API call failed."""


class SwarmUnreachable(SwarmAPIError, UnreachableError):
    """The Engine did not answer."""


class SwarmNotFound(SwarmAPIError, NotFoundError):
    """The object does not exist."""


class SwarmConflict(SwarmAPIError, AlreadyExistsError):
    """An object of that name already exists (HTTP 409)."""


class SwarmOutOfSequence(SwarmAPIError, StateConflictError):
    """An update at a ``Version.Index`` that is no longer the object's: read it again."""


OUT_OF_SEQUENCE = "update out of sequence"  # swarmkit's ErrSequenceConflict, sent as HTTP 500


@contextmanager
def _errors(kind: str, name: str, verb: str, stack: str = "") -> Iterator[None]:
    where = f"{kind}/{stack}/{name}" if stack else f"{kind}/{name}"
    try:
        yield
    except docker.errors.NotFound as err:
        raise SwarmNotFound(f"{where}: {verb} failed: not found") from err
    except docker.errors.APIError as err:
        why = str(err.explanation or err)
        if err.status_code == 409:
            raise SwarmConflict(f"{where}: {verb} failed: {why}") from err
        if OUT_OF_SEQUENCE in why:
            raise SwarmOutOfSequence(f"{where}: {verb} failed: {why}") from err
        raise SwarmAPIError(f"{where}: {verb} failed: {why}") from err
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as err:
        raise SwarmUnreachable(f"{where}: {verb} failed: cannot reach the Docker Engine: {err}") from err
    except docker.errors.DockerException as err:
        raise SwarmAPIError(f"{where}: {verb} failed: {err}") from err


def _stack_of(spec: Mapping[str, Any]) -> str:
    return str((spec.get("Labels") or {}).get(STACK_LABEL, ""))


class SwarmClient:
    """Low-level Engine API calls with exact payloads. ``api`` may be an existing ``APIClient``."""

    def __init__(self, base_url: str | None = None, *, api: Any = None, version: str = API_VERSION) -> None:
        if api is None:
            with _errors("Engine", base_url or "default", "connect"):
                api = docker.APIClient(base_url=base_url, version=version) if base_url else \
                    docker.APIClient(version=version)
        self.api: Any = api
        self.writes = 0  # write requests sent (creates, updates, deletes): a no-op apply sends none

    def close(self) -> None:
        self.api.close()

    def events(self, on_event: Callable[[str, str, str], None], stop: threading.Event, *,
               window: float = 10.0) -> None:
        """The engine's event stream for services, configs, secrets and networks until ``stop``:
        ``on_event(type, action, name)``. Read in windows of ``window`` seconds (``since``/``until``),
        so that ``stop`` is seen at least that often. Raises SwarmUnreachable when the engine does
        not answer (the caller retries)."""
        since = time.time()
        filters = {"type": ["service", "config", "secret", "network"]}
        while not stop.is_set():
            until = since + window
            with _errors("Engine", "events", "watch"):
                for event in self.api.events(since=since, until=until, filters=filters, decode=True):
                    actor = event.get("Actor") or {}
                    name = str((actor.get("Attributes") or {}).get("name", ""))
                    on_event(str(event.get("Type", "")), str(event.get("Action", "")), name)
                    if stop.is_set():
                        return
            since = until

    # -- raw calls ----------------------------------------------------------------------------

    def _post(self, path: str, body: Mapping[str, Any], **params: Any) -> Any:
        self.writes += 1
        response = self.api._post_json(self.api._url(path), data=dict(body), params=params or None)
        return self.api._result(response, json=True)

    def _get(self, path: str, *args: str, **params: Any) -> Any:
        return self.api._result(self.api._get(self.api._url(path, *args), params=params or None), json=True)

    # -- create -------------------------------------------------------------------------------

    def create_network(self, spec: Mapping[str, Any]) -> str:
        with _errors("Network", str(spec.get("Name")), "create", _stack_of(spec)):
            return str(self._post("/networks/create", {"CheckDuplicate": True, **spec})["Id"])

    def create_config(self, spec: Mapping[str, Any]) -> str:
        with _errors("Config", str(spec.get("Name")), "create", _stack_of(spec)):
            return str(self._post("/configs/create", spec)["ID"])

    def create_secret(self, secret: SecretObject) -> str:
        spec = secret.spec or {}
        with _errors("Secret", secret.name, "create", _stack_of(spec)):
            return str(self._post("/secrets/create", secret.payload())["ID"])

    def create_volume(self, spec: Mapping[str, Any]) -> str:
        with _errors("Volume", str(spec.get("Name")), "create", _stack_of(spec)):
            return str(self._post("/volumes/create", spec)["Name"])

    def resolve_references(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a ServiceSpec whose secret and config references carry their IDs, as the
        daemon needs (``docker stack deploy`` does the same lookup)."""
        result: dict[str, Any] = _deep_copy(spec)
        container = result.get("TaskTemplate", {}).get("ContainerSpec", {})
        lookups = (("Secrets", "Secret", self.secret_ids), ("Configs", "Config", self.config_ids))
        for field, kind, lookup in lookups:
            refs = container.get(field) or []
            names = [ref[f"{kind}Name"] for ref in refs]
            ids = lookup(names)
            for ref in refs:
                name = ref[f"{kind}Name"]
                if name not in ids:
                    raise SwarmNotFound(f"{kind}/{_stack_of(spec)}/{name}: lookup failed: not found")
                ref[f"{kind}ID"] = ids[name]
        return result

    def create_service(self, spec: Mapping[str, Any]) -> str:
        with _errors("Service", str(spec.get("Name")), "create", _stack_of(spec)):
            body = self.resolve_references(spec)
            return str(self._post("/services/create", body)["ID"])

    def update_service(self, service_id: str, version: int, spec: Mapping[str, Any]) -> list[str]:
        """Update to ``spec`` at ``version`` (``Version.Index``); returns the daemon's warnings."""
        with _errors("Service", str(spec.get("Name")), "update", _stack_of(spec)):
            body = self.resolve_references(spec)
            result = self._post(f"/services/{service_id}/update", body, version=version)
            return list((result or {}).get("Warnings") or [])

    # -- read ---------------------------------------------------------------------------------

    def inspect_service(self, name_or_id: str) -> dict[str, Any]:
        with _errors("Service", name_or_id, "inspect"):
            return dict(self._get("/services/{0}", name_or_id))

    def inspect_network(self, name_or_id: str) -> dict[str, Any]:
        with _errors("Network", name_or_id, "inspect"):
            return dict(self._get("/networks/{0}", name_or_id))

    def inspect_config(self, name_or_id: str) -> dict[str, Any]:
        with _errors("Config", name_or_id, "inspect"):
            return dict(self._get("/configs/{0}", name_or_id))

    def inspect_secret(self, name_or_id: str) -> dict[str, Any]:
        with _errors("Secret", name_or_id, "inspect"):
            return dict(self._get("/secrets/{0}", name_or_id))

    def inspect_volume(self, name: str) -> dict[str, Any]:
        with _errors("Volume", name, "inspect"):
            return dict(self._get("/volumes/{0}", name))

    def network_ids(self) -> dict[str, str]:
        """Name -> ID of every swarm-scoped network (to read ``Networks[].Target`` back as names)."""
        with _errors("Network", "*", "list"):
            networks = self.api.networks(filters={"scope": "swarm"})
        return {n["Name"]: n["Id"] for n in networks}

    def secret_ids(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        with _errors("Secret", ",".join(names), "list"):
            found = self.api.secrets(filters={"name": names})
        return {s["Spec"]["Name"]: s["ID"] for s in found if s["Spec"]["Name"] in names}

    def config_ids(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        with _errors("Config", ",".join(names), "list"):
            found = self.api.configs(filters={"name": names})
        return {c["Spec"]["Name"]: c["ID"] for c in found if c["Spec"]["Name"] in names}

    def info(self) -> dict[str, Any]:
        """``GET /info``: the engine and its swarm (cluster ID, the manager's clock)."""
        with _errors("Engine", "info", "read"):
            return dict(self.api.info())

    def service_tasks(self, service_id: str) -> list[dict[str, Any]]:
        """``GET /tasks?filters={"service":[id]}``: every task of one service, old ones included."""
        with _errors("Service", service_id, "list tasks"):
            return list(self.api.tasks(filters={"service": service_id}))

    def services(self) -> list[dict[str, Any]]:
        """Every service on the swarm, of any stack (to see what still uses an object)."""
        with _errors("Service", "*", "list"):
            return list(self.api.services())

    def configs(self, label: str) -> list[dict[str, Any]]:
        """Configs carrying ``label`` (``key`` or ``key=value``), with their ``Spec.Data``."""
        with _errors("Config", label, "list"):
            return list(self.api.configs(filters={"label": label}))

    def stack_objects(self, stack: str) -> dict[str, list[dict[str, Any]]]:
        """Every service, network, config, secret and volume labelled with the stack."""
        label = f"{STACK_LABEL}={stack}"
        with _errors("Stack", stack, "list"):
            volumes = (self.api.volumes(filters={"label": label}) or {}).get("Volumes") or []
            return {
                "Service": list(self.api.services(filters={"label": label})),
                "Network": list(self.api.networks(filters={"label": label})),
                "Config": list(self.api.configs(filters={"label": label})),
                "Secret": list(self.api.secrets(filters={"label": label})),
                "Volume": list(volumes),
            }

    # -- delete -------------------------------------------------------------------------------

    def remove(self, kind: str, name_or_id: str) -> None:
        """Delete one object; deleting an absent object is not an error."""
        calls = {
            "Service": self.api.remove_service,
            "Network": self.api.remove_network,
            "Config": self.api.remove_config,
            "Secret": self.api.remove_secret,
            "Volume": self.api.remove_volume,
        }
        self.writes += 1
        try:
            with _errors(kind, name_or_id, "delete"):
                calls[kind](name_or_id)
        except SwarmNotFound:
            pass


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
