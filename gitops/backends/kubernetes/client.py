"""The one place that imports the `kubernetes` SDK.

It is used for what it does well — reading kubeconfig (contexts, tokens, client certificates,
exec plugins) and keeping an authenticated HTTPS connection pool — while requests and responses
stay raw JSON: the SDK's model deserialisation costs milliseconds per object, which a plan of
thousands of objects cannot afford.

This is the edge where failures get their types (:mod:`gitops.errors`), once, with the message
``Kind/namespace/name: verb failed: why`` (:func:`KubeClient.translate`):

| the API says                                             | raised                |
|----------------------------------------------------------|-----------------------|
| no answer: connection refused, timeout, DNS, TLS          | UnreachableError      |
| 404                                                      | NotFoundError         |
| 409 ``AlreadyExists`` (a create)                          | AlreadyExistsError    |
| 409 ``Conflict`` on a server-side apply                   | ConflictError         |
| 409 ``Conflict`` otherwise (a write at a stale resourceVersion) | StateConflictError |
| 422 with a cause saying the field is immutable            | ImmutableFieldError   |
| anything else                                            | ApiError (status kept) |

The API server has no machine-readable reason for an immutable field (it is a ``FieldValueInvalid``
cause whose message says "field is immutable"): reading that cause here is the only place a message
is looked at; everything above tests types.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
import yaml
from urllib3.exceptions import HTTPError

from gitops.backends.kubernetes import kubeconfig as kubeconfig_loader
from gitops.backends.kubernetes.kubeconfig import Connection
from gitops.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    ImmutableFieldError,
    NotFoundError,
    StateConflictError,
    UnreachableError,
)

JSON = dict[str, Any]
DISCOVERY_TTL = 30.0  # seconds: a kind discovery does not know is looked up again after this
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ResourceType:
    """What discovery says about one kind at one group/version."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


class ApiError(BackendError):
    """A failed API request that has no type of its own, with the HTTP status and the Status reason."""

    def __init__(self, message: str, status: int, reason: str = "", details: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details = details or {}


class KubeClient:
    """Raw-JSON access to one cluster, from a kubeconfig file and context (or, in a pod without
    one, its service account).

    The kubeconfig is read by :mod:`gitops.backends.kubernetes.kubeconfig` when it holds only the
    usual entries, else by the SDK's loader; requests go through one urllib3 connection pool.
    """

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, *,
                 in_cluster: kubeconfig_loader.InCluster | None = None) -> None:
        """``in_cluster``: the pod's configuration (:meth:`InCluster.detect`), used when there is
        no kubeconfig at all."""
        where = (kubeconfig or "the default kubeconfig") + (f" (context {context})" if context else "")
        try:
            conn = (kubeconfig_loader.load(kubeconfig, context, in_cluster)
                    or _sdk_connection(kubeconfig, context))
        except (kubeconfig_loader.KubeconfigError, OSError, TypeError, ValueError, yaml.YAMLError) as err:
            raise BackendError(f"cannot load {where}: {err}") from err
        except Exception as err:  # the SDK's ConfigException, without importing the SDK up front
            from kubernetes.config.config_exception import ConfigException

            if isinstance(err, ConfigException):
                raise BackendError(f"cannot load {where}: {err}") from err
            raise
        self._conn = conn
        self._pool_lock = threading.Lock()
        self._pool_generation = -1
        self._pool_manager: urllib3.PoolManager | None = None
        if not conn.verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._discovery: dict[tuple[str, str], ResourceType] | None = None
        self._discovered_at = 0.0
        self._by_kind: dict[tuple[str, str], list[ResourceType]] = {}
        self._lock = threading.Lock()
        self.writes = 0  # write requests made (tests assert that a no-op apply makes none)

    @property
    def server(self) -> str:
        return self._conn.server

    @property
    def _pool(self) -> urllib3.PoolManager:
        """The connection pool, made anew when the connection's TLS material changed (an exec
        plugin rotated the client certificate)."""
        with self._pool_lock:
            if self._pool_manager is None or self._pool_generation != self._conn.generation:
                if self._pool_manager is not None:
                    self._pool_manager.clear()
                self._pool_generation = self._conn.generation
                self._pool_manager = urllib3.PoolManager(
                    num_pools=4, maxsize=8, ssl_context=self._conn.ssl_context(),
                    cert_reqs=ssl.CERT_REQUIRED if self._conn.verify else ssl.CERT_NONE,
                    assert_hostname=self._conn.tls_server_name or (None if self._conn.verify else False),
                    server_hostname=self._conn.tls_server_name or None,
                )
            return self._pool_manager

    def close(self) -> None:
        with self._pool_lock:
            if self._pool_manager is not None:
                self._pool_manager.clear()

    # -- raw requests ---------------------------------------------------------------------

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": content_type, "User-Agent": "gitops"}
        try:
            token = self._conn.token()
        except kubeconfig_loader.KubeconfigError as err:  # a token file gone, an exec plugin failing
            raise BackendError(f"cannot authenticate to {self.server}: {err}") from err
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: Any = None, content_type: str = "application/json", what: str = "",
                verb: str = "") -> JSON:
        return self.send(method, path, query=query, body=body, content_type=content_type, what=what,
                         verb=verb)[1]

    def send(self, method: str, path: str, *, query: dict[str, str] | None = None,
             body: Any = None, content_type: str = "application/json", what: str = "",
             verb: str = "") -> tuple[int, JSON]:
        """One request; (HTTP status, parsed body). Failures raise the types of the table above."""
        url = self.server + path + ("?" + urlencode(query) if query else "")
        payload = json.dumps(body).encode() if body is not None else None
        if method != "GET":
            self.writes += 1
        try:
            response = self._pool.request(method, url, body=payload, headers=self._headers(content_type),
                                          timeout=urllib3.Timeout(connect=10, read=120), retries=False)
        except (HTTPError, OSError) as err:
            raise UnreachableError(f"{what or path}: {verb or method.lower()} failed: "
                                   f"cannot reach {self.server}: {err}") from err
        if response.status >= 300:
            raise self.translate(response.status, response.data, what or path, verb or method.lower(),
                                 apply=content_type == APPLY_PATCH)
        if not response.data:
            return response.status, {}
        parsed: JSON = json.loads(response.data)
        return response.status, parsed

    @staticmethod
    def translate(status: int, body: bytes, what: str, verb: str, *, apply: bool = False) -> BackendError:
        """The error type of a failed response (the module's table)."""
        reason, message, details = "", f"HTTP {status}", None
        try:
            decoded = json.loads(body or b"{}")
            reason = decoded.get("reason", "")
            message = decoded.get("message", message)
            details = decoded.get("details")
        except (ValueError, TypeError, AttributeError):
            pass
        text = f"{what}: {verb} failed: {message}"
        if status == 404:
            return NotFoundError(text)
        if status == 409 and reason == "AlreadyExists":
            return AlreadyExistsError(text)
        if status == 409 and apply:
            return ConflictError(f"{text} (another field manager owns these fields; "
                                 "use --force-conflicts to take them over)")
        if status == 409:
            return StateConflictError(text)
        if status == 422 and _immutable(details):
            return ImmutableFieldError(text)
        return ApiError(text, status, reason, details)

    # -- discovery ------------------------------------------------------------------------

    def _discover(self) -> dict[tuple[str, str], ResourceType]:
        with self._lock:
            if self._discovery is not None:
                return self._discovery
            found: dict[tuple[str, str], ResourceType] = {}
            group_versions: list[tuple[str, str, bool]] = []
            core = self.request("GET", "/api", verb="discover")
            group_versions += [("", v, True) for v in core.get("versions", [])]
            groups = self.request("GET", "/apis", verb="discover")
            for group in groups.get("groups", []):
                preferred = group.get("preferredVersion", {}).get("version")
                for version in group.get("versions", []):
                    name = version["version"]
                    group_versions.append((group["name"], name, name == preferred))
            for group_name, version, preferred in group_versions:
                path = f"/apis/{group_name}/{version}" if group_name else f"/api/{version}"
                try:
                    listing = self.request("GET", path, verb="discover")
                except (ApiError, NotFoundError):
                    continue  # an aggregated API that is down does not stop the others
                for res in listing.get("resources", []):
                    if "/" in res["name"]:
                        continue  # subresources
                    rtype = ResourceType(group_name, version, res["kind"], res["name"],
                                         bool(res["namespaced"]), frozenset(res.get("verbs", [])))
                    found[(rtype.api_version, rtype.kind)] = rtype
                    kinds = self._by_kind.setdefault((group_name, rtype.kind), [])
                    if preferred:
                        kinds.insert(0, rtype)
                    else:
                        kinds.append(rtype)
            self._discovery = found
            self._discovered_at = time.monotonic()
            return found

    def resource_type(self, api_version: str, kind: str) -> ResourceType | None:
        for attempt in (0, 1):
            found = self._discover().get((api_version, kind))
            if found is None:
                group = api_version.rpartition("/")[0]
                candidates = self._by_kind.get((group, kind))
                found = candidates[0] if candidates else None
            if found is not None or attempt or not self._stale_miss():
                return found
        return None

    def preferred(self, group: str, kind: str) -> ResourceType | None:
        for attempt in (0, 1):
            self._discover()
            candidates = self._by_kind.get((group, kind))
            if candidates or attempt or not self._stale_miss():
                return candidates[0] if candidates else None
        return None

    def _stale_miss(self) -> bool:
        """A kind discovery does not know: maybe a CRD someone else installed since discovery was
        read (a long-running daemon). Read it again, at most once per DISCOVERY_TTL seconds."""
        with self._lock:
            if time.monotonic() - self._discovered_at < DISCOVERY_TTL:
                return False
            self._discovery = None
            self._by_kind = {}
            return True

    def api_versions(self, limit: int) -> frozenset[str]:
        """Every group/version discovery offers (``v1`` for the core group) and each of its kinds as
        ``group/version/Kind``: what Helm's ``.Capabilities.APIVersions.Has`` asks. At most ``limit``
        entries (group/versions first); from the discovery this client holds, read again when it is
        older than DISCOVERY_TTL (a long-running daemon sees CRDs installed since)."""
        self._stale_miss()  # drops a discovery older than DISCOVERY_TTL, nothing else
        found = sorted(self._discover().values(), key=lambda t: (t.group, t.version, t.kind))
        versions = sorted({t.api_version for t in found})
        kinds = [f"{t.api_version}/{t.kind}" for t in found]
        return frozenset([*versions, *kinds][:limit])

    def listable_types(self) -> list[ResourceType]:
        """The preferred version of every kind that can be listed (for reading a namespace whole)."""
        self._discover()
        return [types[0] for types in self._by_kind.values() if types and "list" in types[0].verbs]

    def forget_discovery(self) -> None:
        """After CRDs are applied, their kinds appear: read discovery again."""
        with self._lock:
            self._discovery = None
            self._by_kind = {}

    # -- verbs ----------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JSON | None:
        try:
            return self.request("GET", rtype.path(namespace, name), what=_what(rtype, namespace, name),
                                verb="get")
        except NotFoundError:
            return None

    def list(self, rtype: ResourceType, namespace: str = "", label_selector: str = "") -> list[JSON]:
        """Every object of a type (in a namespace, or everywhere), following continue tokens."""
        items: list[JSON] = []
        query: dict[str, str] = {"limit": "500"}
        if label_selector:
            query["labelSelector"] = label_selector
        while True:
            page = self.request("GET", rtype.path(namespace), query=query,
                                what=f"{rtype.kind} list", verb="list")
            for item in page.get("items", []):
                item.setdefault("apiVersion", rtype.api_version)
                item.setdefault("kind", rtype.kind)
                items.append(item)
            token = page.get("metadata", {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def watch(self, rtype: ResourceType, namespace: str, label_selector: str, on_event: Callable[[str, JSON], None],
              stop: threading.Event, *, window: int = 20) -> None:
        """Stream the changes of a type (``on_event(type, object)`` for ADDED, MODIFIED and DELETED)
        until ``stop``: a list for the starting resourceVersion, then watches of ``window`` seconds
        each (so ``stop`` is seen at least that often), listing again when the version expired.
        Raises UnreachableError when the server cannot be reached (the caller retries)."""
        version = ""
        while not stop.is_set():
            if not version:
                page = self.request("GET", rtype.path(namespace), query={"labelSelector": label_selector,
                                                                          "limit": "1"},
                                    what=f"{rtype.kind} list", verb="watch")
                version = str(page.get("metadata", {}).get("resourceVersion", ""))
            query = {"watch": "1", "labelSelector": label_selector, "resourceVersion": version,
                     "allowWatchBookmarks": "true", "timeoutSeconds": str(window)}
            url = self.server + rtype.path(namespace) + "?" + urlencode(query)
            try:
                response = self._pool.request("GET", url, headers=self._headers("application/json"),
                                              preload_content=False, retries=False,
                                              timeout=urllib3.Timeout(connect=10, read=window + 15))
            except (HTTPError, OSError) as err:
                raise UnreachableError(f"{rtype.kind} watch failed: cannot reach {self.server}: {err}") from err
            try:
                if response.status >= 300:
                    raise self.translate(response.status, response.read(), f"{rtype.kind} watch", "watch")
                buffered = b""
                for chunk in response.stream(4096):
                    buffered += chunk
                    while b"\n" in buffered:
                        line, buffered = buffered.split(b"\n", 1)
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, obj = str(event.get("type", "")), event.get("object") or {}
                        if kind == "ERROR":  # 410 Gone: the version is too old; list again
                            version = ""
                            break
                        version = str(obj.get("metadata", {}).get("resourceVersion", version))
                        if kind in ("ADDED", "MODIFIED", "DELETED"):
                            on_event(kind, obj)
                    if stop.is_set() or not version:
                        break
            except (HTTPError, OSError) as err:
                raise UnreachableError(f"{rtype.kind} watch failed: {err}") from err
            finally:
                response.release_conn()

    def apply(self, rtype: ResourceType, body: JSON, manager: str, *, force: bool = False,
              dry_run: bool = False) -> tuple[bool, JSON]:
        """Server-side apply of one object with our field manager; (created, the object as stored)."""
        metadata = body.get("metadata", {})
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        query = {"fieldManager": manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        status, stored = self.send("PATCH", rtype.path(namespace if rtype.namespaced else "", name), query=query,
                                   body=body, content_type=APPLY_PATCH, what=_what(rtype, namespace, name),
                                   verb="dry-run apply" if dry_run else "apply")
        return status == 201, stored

    def create(self, rtype: ResourceType, body: JSON) -> JSON:
        metadata = body.get("metadata", {})
        namespace = metadata.get("namespace", "") if rtype.namespaced else ""
        return self.request("POST", rtype.path(namespace), body=body,
                            what=_what(rtype, namespace, metadata.get("name", "")), verb="create")

    def replace(self, rtype: ResourceType, body: JSON) -> JSON:
        metadata = body.get("metadata", {})
        namespace = metadata.get("namespace", "") if rtype.namespaced else ""
        return self.request("PUT", rtype.path(namespace, metadata.get("name", "")), body=body,
                            what=_what(rtype, namespace, metadata.get("name", "")), verb="update")

    def delete(self, rtype: ResourceType, namespace: str, name: str, *, propagation: str = "Background",
               uid: str | None = None) -> bool:
        """Delete one object; False when it was already gone."""
        body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", rtype.path(namespace, name), body=body,
                         what=_what(rtype, namespace, name), verb="delete")
        except NotFoundError:
            return False
        return True


def _immutable(details: Any) -> bool:
    """Whether a 422's Status details name a field that cannot change (see the module doc)."""
    causes = details.get("causes") if isinstance(details, dict) else None
    return any("immutable" in str(cause.get("message", "")) for cause in causes or [] if isinstance(cause, dict))


def _what(rtype: ResourceType, namespace: str, name: str) -> str:
    return f"{rtype.kind}/{namespace + '/' if namespace and rtype.namespaced else ''}{name}"


def _sdk_connection(kubeconfig: str | None, context: str | None) -> Connection:
    """The SDK's kubeconfig loader, for what the fast reader leaves to it (auth providers, ...)."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    configuration = k8s_client.Configuration()
    load: Any = k8s_config.load_kube_config
    load(config_file=kubeconfig, context=context, client_configuration=configuration)

    def token() -> str | None:
        settings: Any = configuration.auth_settings()  # refreshes exec-plugin and provider tokens
        for auth in settings.values():
            if auth.get("in") == "header" and auth.get("value"):
                return str(auth["value"]).removeprefix("Bearer ").strip()
        return None

    return Connection(server=str(configuration.host).rstrip("/"), verify=bool(configuration.verify_ssl),
                      ca_file=configuration.ssl_ca_cert, cert_file=configuration.cert_file,
                      key_file=configuration.key_file, tls_server_name=configuration.tls_server_name or None,
                      token=token)
