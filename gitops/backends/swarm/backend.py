"""The Docker Swarm backend: compose files in, Engine API objects out, state and lock on the swarm.

Identity: ``ResourceKey("swarm", kind, <stack>, <full object name>)`` for kind ``Service``,
``Network``, ``Config``, ``Secret`` or ``Volume``; the body is the exact Engine API payload
(``api_version`` :data:`API_VERSION`).

* **prepare** translates each compose-file resource (:func:`compose_resource`) into the stack's
  objects (:func:`gitops.backends.swarm.translate.translate`); ``swarm/v1`` resources (from release
  manifests) pass through. External objects are referenced, never created or pruned. Warnings are
  collected in :attr:`SwarmBackend.warnings`; errors raise naming the file and field.
* **Secret values** never leave the process: a Secret body holds the spec without ``Data``; the
  bytes stay in a side table keyed by the (content-named) name and are sent only by the create
  call. A secret's name suffix is an HMAC of its content under the app's naming key, kept in the
  app's state (:meth:`SwarmStore.naming_key`); a plan before the first apply of an app (or of a
  stack deployed before keyed names) uses a key the apply has not stored yet, says so in a
  warning, and a plan saved then is refused as stale. ``gitops diff`` (no target) names secrets
  with :data:`compose.PROCESS_KEY`, random per process: equal content, equal names, within a run.
  Release manifests, stored in plain configs on the swarm, therefore hold no secret data.
  Re-creating a secret whose bytes this process never read (a rollback to a release whose secret
  object was pruned since) fails with "secret X was pruned; re-apply that revision from git".
* **compare** diffs daemon-default-normalized specs (:mod:`normalize`); services update in place,
  networks / configs / secrets / volumes cannot change and are replaced. **exact** is the same
  compare: the Engine API has no dry run, and the normalized diff already is what it would do.
* **apply** creates, or updates a service at its current ``Version.Index`` (keeping its
  ``ForceUpdate``); a no-op plan makes no call at all.
* **prune timing**: deleting a config or secret is deferred until the rollout of the release that
  stopped using it succeeded: the deploy flow then calls :meth:`SwarmBackend.finish_prunes`, the
  named prune step after the rollout. If the rollout fails, the deferred deletes are dropped and
  the old content-hashed objects are still there, so the rollback to the last good release reuses
  them (the secret bytes are not needed). A deferred delete that fails stays in the release's
  inventory and is retried by the next apply. Services are deleted at once; networks and volumes
  wait until the tasks of removed services let go of them.
* **prune safety**: volumes hold data (kept unless the app prunes data); an object whose compose
  entry says ``x-gitops-prune: false`` (or whose live labels say ``gitops.dev/prune=disabled``)
  opts out; a network, volume, config or secret still used by a service that stays is reported
  as what its delete would cascade to (:meth:`SwarmBackend.prune_facts`).
* **health** see :mod:`gitops.backends.swarm.health`.
* **state and lock** see :mod:`gitops.backends.swarm.store`.
"""

from __future__ import annotations

import base64
import copy
import posixpath
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, cast

from gitops.backends import base
from gitops.backends.base import Comparison, Live, PruneFacts, RunOnce
from gitops.backends.locking import StoreBacked
from gitops.errors import AlreadyExistsError, BackendError, GitopsError, ImmutableFieldError, StateConflictError
from gitops.model import Diagnostic, Origin, Resource, ResourceKey, Severity
from gitops.model.health import Health
from gitops.model.plans import PROVISIONAL_SECRET_NAMES, WAVE_KEY, WAVE_SPAN, Action, Applied, parse_wave
from gitops.render.compose import SECTION_KINDS
from gitops.render.yaml import escape_pointer

from . import normalize
from .client import SwarmAPIError, SwarmClient, SwarmNotFound
from .compose import PROCESS_KEY, Decrypt
from .health import exists_health, service_health, template_key
from .objects import SecretData, SecretObject, Translation
from .store import SwarmStore
from .translate import STACK_LABEL, translate
from .types import SecretSpec

API_VERSION = "swarm/v1"
COMPOSE_API_VERSION = "compose/v1"
COMPOSE_KIND = "ComposeFile"
GROUP = "swarm"
KINDS = ("Network", "Config", "Secret", "Volume", "Service")
WAVES = {"Network": 0, "Config": 1, "Secret": 1, "Volume": 2, "Service": 3}
IMMUTABLE = {
    "Network": "networks cannot change in place",
    "Config": "configs are immutable",
    "Secret": "secrets are immutable",
    "Volume": "volumes cannot change in place (replacing one loses its data)",
}
ReadFile = Callable[[str], bytes]
#: Label by which a live object opts out of pruning (as the Kubernetes annotation does).
PRUNE_LABEL = "gitops.dev/prune"


def compose_resource(stack: str, path: str, doc: Mapping[str, Any], origin: Origin | None = None) -> Resource:
    """The resource a compose file is handed to the backend as (one per file)."""
    return Resource(ResourceKey("compose", COMPOSE_KIND, stack, path), COMPOSE_API_VERSION, dict(doc),
                    origin or Origin(path))


def offline_objects(resources: list[Resource], app: str, stack: str,
                    read_file: ReadFile | None, decrypt: Decrypt | None = None) -> list[Resource]:
    """The Swarm objects compose files translate to, without an engine to talk to (``gitops
    diff``): what :meth:`SwarmBackend.prepare` makes, secret bodies without their data."""
    return SwarmBackend(cast(SwarmClient, None), app, stack=stack, read_file=read_file,
                        naming_key=PROCESS_KEY, decrypt=decrypt).prepare(resources)


PROVISIONAL_NAMES = ("app {app}: the secret names planned here are provisional: their suffix is keyed with the "
                     "app's secret naming key, which the next apply creates and keeps in the app's state (the "
                     "objects are new either way); a plan of this app cannot be saved (--out) before that apply")


def pruned_secret_message(name: str) -> str:
    return (f"secret {name} was pruned; re-apply that revision from git (secret values are never "
            "stored in the release history)")


def _labels(kind: str, live: Mapping[str, Any]) -> Mapping[str, Any]:
    if kind in ("Service", "Config", "Secret"):
        return (live.get("Spec") or {}).get("Labels") or {}
    return live.get("Labels") or {}


def _opted_out(kind: str, live: Mapping[str, Any]) -> bool:
    return str(_labels(kind, live).get(PRUNE_LABEL, "")) == "disabled"


def _references(spec: Mapping[str, Any]) -> dict[str, set[str]]:
    """Names and IDs of the networks, volumes, configs and secrets a service spec uses."""
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    networks = template.get("Networks") or spec.get("Networks") or []
    return {
        "Network": {str(n.get("Target", "")) for n in networks},
        "Volume": {str(m.get("Source", "")) for m in container.get("Mounts") or [] if m.get("Type") == "volume"},
        "Config": {str(c.get(f)) for c in container.get("Configs") or [] for f in ("ConfigName", "ConfigID")},
        "Secret": {str(c.get(f)) for c in container.get("Secrets") or [] for f in ("SecretName", "SecretID")},
    }


class SwarmBackend(StoreBacked):
    name = "swarm"
    store: SwarmStore

    def __init__(self, client: SwarmClient, app: str, *, stack: str | None = None,
                 read_file: ReadFile | None = None, delete_wait: float = 60.0,
                 naming_key: bytes | None = None, decrypt: Decrypt | None = None) -> None:
        """``read_file(path)`` reads a file named by a compose file, ``path`` already joined to
        the compose file's directory (keeping it inside the repository is the caller's job).
        ``naming_key``: the secret naming key to use instead of the one in the app's state (a
        view without a target). ``decrypt`` decrypts a SOPS-encrypted secret file in memory."""
        self.client = client
        self.app = app
        self.stack = stack or app
        self.read_file = read_file
        self.decrypt = decrypt
        self.delete_wait = delete_wait
        self.store = SwarmStore(client, app)
        self.warnings: list[Diagnostic] = []
        self._secret_data: dict[str, SecretData] = {}
        self._no_prune: set[ResourceKey] = set()  # x-gitops-prune: false in the compose files
        self._deferred: dict[ResourceKey, dict[str, Any]] = {}
        # Services whose spec this run wrote, as the daemon stored it; forgotten when a later plan
        # finds the service already as desired (e.g. Swarm's native rollback restored the good spec).
        self._written: dict[ResourceKey, str] = {}
        self._network_ids: dict[str, str] = {}
        self._target: str | None = None
        self._naming_key = naming_key

    def target_id(self) -> str:
        if self._target is None:
            cluster = ((self.client.info().get("Swarm") or {}).get("Cluster") or {}).get("ID") or ""
            self._target = f"swarm:{cluster or self.client.api.base_url}"
        return self._target

    def key(self, kind: str, name: str) -> ResourceKey:
        return ResourceKey(GROUP, kind, self.stack, name)

    # -- desired ----------------------------------------------------------------------------

    def _reader(self, compose_path: str) -> ReadFile | None:
        read_file = self.read_file
        if read_file is None:
            return None
        base = posixpath.dirname(compose_path)

        def read(path: str) -> bytes:
            return read_file(posixpath.normpath(posixpath.join(base, path)))

        return read

    def _translate(self, resource: Resource) -> Translation:
        stack = resource.key.namespace or self.stack
        if stack != self.stack:
            raise GitopsError(f"{resource.origin.file}: compose file is for stack {stack}, "
                              f"but this backend deploys stack {self.stack}")
        path = resource.key.name or resource.origin.file
        key = self._naming_key or self.store.naming_key()
        result = translate(resource.body, self.stack, secret_key=key, read_file=self._reader(path),
                           file=resource.origin.file, decrypt=self.decrypt)
        self.warnings.extend(d for d in result.diagnostics if d.severity is Severity.WARNING)
        provisional = Diagnostic(Severity.WARNING, PROVISIONAL_NAMES.format(app=self.app), file=resource.origin.file,
                                 code=PROVISIONAL_SECRET_NAMES)
        if self._naming_key is None and not self.store.naming_key_stored and provisional not in self.warnings \
                and any(not s.external and not (s.spec or {}).get("Driver") for s in result.secrets.values()):
            self.warnings.append(provisional)
        errors = result.diagnostics.errors
        if errors:
            problems = "; ".join(f"field {d.pointer}: {d.message}" if d.pointer else d.message for d in errors)
            raise GitopsError(f"{resource.origin.file}: cannot deploy to Swarm: {problems}")
        return result

    def _objects(self, resource: Resource) -> Iterator[Resource]:
        translation = self._translate(resource)
        origin = resource.origin

        def make(kind: str, name: str, body: Mapping[str, Any], prune: bool, entry: str = "") -> Resource:
            key = self.key(kind, name)
            if not prune:
                self._no_prune.add(key)
            section = next(s for s, k in SECTION_KINDS.items() if k == kind)
            where = origin.entry(f"/{section}/{escape_pointer(entry)}") if entry else origin
            return Resource(key, API_VERSION, dict(body), where)

        for name, network in translation.networks.items():
            if not network.external and network.spec is not None:
                yield make("Network", name, network.spec, network.prune, network.key)
        for name, config in translation.configs.items():
            if not config.external and config.spec is not None:
                yield make("Config", name, config.spec, config.prune, config.key)
        for name, secret in translation.secrets.items():
            if not secret.external:
                if secret.data is not None:
                    self._secret_data[name] = secret.data
                yield make("Secret", name, secret.spec or {}, secret.prune, secret.key)
        for name, volume in translation.volumes.items():
            if not volume.external and volume.spec is not None:
                yield make("Volume", name, volume.spec, volume.prune, volume.key)
        for name, service in translation.services.items():
            yield make("Service", name, service.spec, service.prune, service.key)

    def _pass_through(self, resource: Resource) -> Resource:
        if resource.key.group != GROUP or resource.key.kind not in KINDS:
            raise GitopsError(f"{resource.key}: not a Swarm object (declared at {resource.origin})")
        if resource.key.kind == "Secret" and "Data" in resource.body:
            body = dict(resource.body)
            self._secret_data[resource.key.name] = SecretData(base64.b64decode(body.pop("Data")))
            return Resource(resource.key, resource.api_version, body, resource.origin)
        return resource

    def api_versions(self) -> frozenset[str]:
        return frozenset()  # a swarm has no API versions to render against

    def run_once(self, body: Mapping[str, Any]) -> RunOnce | None:
        return None  # compose has no hooks

    def prepare(self, resources: list[Resource]) -> list[Resource]:
        """Swarm objects as they will be applied (see the module doc). Secret bodies carry no data."""
        if any(r.api_version == COMPOSE_API_VERSION for r in resources):
            self.warnings = []
            self._no_prune = set()
        prepared: dict[ResourceKey, Resource] = {}
        for resource in resources:
            if resource.api_version == COMPOSE_API_VERSION and resource.key.kind == COMPOSE_KIND:
                objects: Iterable[Resource] = self._objects(resource)
            elif resource.api_version == API_VERSION:
                objects = [self._pass_through(resource)]
            else:
                raise GitopsError(f"{resource.key}: the Swarm backend takes compose files, not "
                                  f"{resource.api_version} objects (declared at {resource.origin})")
            for obj in objects:
                seen = prepared.get(obj.key)
                if seen is not None and seen.body != obj.body:
                    raise GitopsError(f"{obj.key} is declared twice with different content: "
                                      f"at {seen.origin} and at {obj.origin}")
                prepared.setdefault(obj.key, obj)
        return list(prepared.values())

    # -- live -------------------------------------------------------------------------------

    def _inspect(self, key: ResourceKey) -> dict[str, Any] | None:
        calls = {"Service": self.client.inspect_service, "Network": self.client.inspect_network,
                 "Config": self.client.inspect_config, "Secret": self.client.inspect_secret,
                 "Volume": self.client.inspect_volume}
        try:
            found = calls[key.kind](key.name)
        except SwarmNotFound:
            return None
        name = (found.get("Spec") or {}).get("Name") if key.kind in ("Service", "Config", "Secret") \
            else found.get("Name")
        return found if name == key.name else None  # the API also matches ID prefixes

    def observe(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, dict[str, Any] | None]:
        wanted = list(dict.fromkeys(keys))
        found: dict[ResourceKey, dict[str, Any] | None] = {}
        if any(k.namespace == self.stack for k in wanted):
            listed = self.client.stack_objects(self.stack)
            index: dict[tuple[str, str], dict[str, Any]] = {}
            for kind, objects in listed.items():
                for obj in objects:
                    name = (obj.get("Spec") or {}).get("Name") if kind in ("Service", "Config", "Secret") \
                        else obj.get("Name")
                    index[(kind, str(name))] = obj
            for key in wanted:
                if key.namespace == self.stack and (key.kind, key.name) in index:
                    found[key] = index[(key.kind, key.name)]
        for key in wanted:
            if key not in found:
                found[key] = self._inspect(key) if key.kind in KINDS else None
        if any(k.kind == "Service" and v is not None for k, v in found.items()):
            self._network_ids = self.client.network_ids()
        return found

    def owned(self, key: ResourceKey, live: dict[str, Any]) -> bool:
        return bool(_labels(key.kind, live).get(STACK_LABEL) == self.stack)

    def fingerprint(self, live: Live) -> str:
        def view(key: ResourceKey, obj: dict[str, Any]) -> Any:
            if key.kind == "Network":
                return [obj.get("Id"), normalize.normalize_network(obj)]
            if key.kind == "Volume":
                return [obj.get("CreatedAt"), normalize.normalize_volume(obj)]
            return [obj.get("ID"), obj.get("Spec")]

        return base.fingerprint(live, view)

    def wave(self, key: ResourceKey, body: Mapping[str, Any] | None = None) -> int:
        labels = (((body or {}).get("Spec") or body or {}).get("Labels")) or {}
        return WAVE_SPAN * (parse_wave(labels.get(WAVE_KEY)) or 0) + WAVES.get(key.kind, 3)

    # -- compare ----------------------------------------------------------------------------

    def compare(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        kind = resource.key.kind
        if live is None:
            if kind == "Secret" and not self._can_create_secret(resource):
                return Comparison(Action.CREATE, pruned_secret_message(resource.key.name))
            return Comparison(Action.CREATE, "does not exist")
        changes = tuple(normalize.diff_kind(kind, resource.body, live, network_ids=self._network_ids))
        if not changes:
            if kind == "Service":
                # Live is as desired: that template is ours from now on. A native rollback that
                # changes it later (a run completing an interrupted release watches a failing
                # update that Swarm reverts) is a failure; an old rollback state that left this
                # template in place is not.
                self._written[resource.key] = template_key((live.get("Spec") or {}).get("TaskTemplate") or {})
            return Comparison(Action.NOOP)
        if kind in IMMUTABLE:
            return Comparison(Action.REPLACE, IMMUTABLE[kind], changes)
        if not self.owned(resource.key, live):
            return Comparison(Action.UPDATE, f"exists but is not part of stack {self.stack}: taking it over",
                              changes)
        return Comparison(Action.UPDATE, "", changes)

    def exact(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        """No dry run on the Engine API: the normalized compare is the exact answer."""
        return self.compare(resource, live)

    def _can_create_secret(self, resource: Resource) -> bool:
        return resource.key.name in self._secret_data or bool(resource.body.get("Driver"))

    # -- write ------------------------------------------------------------------------------

    def apply(self, resource: Resource, *, replace: bool = False, force_conflicts: bool = False) -> Applied:
        key = resource.key
        self._deferred.pop(key, None)  # desired again: a deferred prune of it is void
        if key.kind == "Service":
            return self._apply_service(resource)
        replaced = False
        if replace:
            current = self._inspect(key)
            if current is not None:
                self._remove(key, current)
                replaced = True
        elif key.kind == "Volume" and self._inspect(key) is not None:
            raise self._immutable(key)  # a volume create of an existing name succeeds and changes nothing
        try:
            self._create(resource)
        except AlreadyExistsError as err:
            raise self._immutable(key) from err
        return Applied.REPLACED if replaced else Applied.CREATED

    @staticmethod
    def _immutable(key: ResourceKey) -> ImmutableFieldError:
        return ImmutableFieldError(f"{key}: apply failed: it exists and {IMMUTABLE.get(key.kind, 'cannot change')}; "
                                   "it must be replaced")

    def _create(self, resource: Resource) -> None:
        key, body = resource.key, resource.body
        if key.kind == "Network":
            self.client.create_network(body)
        elif key.kind == "Config":
            self.client.create_config(body)
        elif key.kind == "Secret":
            if not self._can_create_secret(resource):
                raise GitopsError(f"{key}: create failed: {pruned_secret_message(key.name)}")
            self.client.create_secret(SecretObject(key=key.name, name=key.name, external=False,
                                                   spec=cast(SecretSpec, dict(body)),
                                                   data=self._secret_data.get(key.name)))
        elif key.kind == "Volume":
            self.client.create_volume(body)
        else:
            raise GitopsError(f"{key}: apply failed: unknown Swarm kind {key.kind}")

    def _apply_service(self, resource: Resource, attempts: int = 3) -> Applied:
        for attempt in range(attempts):
            live = self._inspect(resource.key)
            if live is None:
                self.client.create_service(resource.body)
                self._remember_written(resource.key)
                return Applied.CREATED
            spec = copy.deepcopy(resource.body)
            force = ((live.get("Spec") or {}).get("TaskTemplate") or {}).get("ForceUpdate")
            if force:
                spec.setdefault("TaskTemplate", {})["ForceUpdate"] = force
            try:
                warnings = self.client.update_service(str(live["ID"]), int(live["Version"]["Index"]), spec)
            except StateConflictError:
                # The orchestrator writes UpdateStatus too, which moves the version under us: read again.
                if attempt + 1 < attempts:
                    continue
                raise
            self.warnings.extend(Diagnostic(Severity.WARNING, w, resource=str(resource.key)) for w in warnings)
            self._remember_written(resource.key)
            return Applied.CONFIGURED
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _remember_written(self, key: ResourceKey) -> None:
        """The task template as the daemon stored what we wrote: a native rollback changes it."""
        live = self._inspect(key)
        if live is not None:
            self._written[key] = template_key((live.get("Spec") or {}).get("TaskTemplate") or {})

    def _reverted(self, key: ResourceKey, service: Mapping[str, Any]) -> bool:
        written = self._written.get(key)
        current = template_key((service.get("Spec") or {}).get("TaskTemplate") or {})
        return written is not None and written != current

    def _remove(self, key: ResourceKey, live: Mapping[str, Any]) -> None:
        """Delete now; networks and volumes are retried while tasks of removed services hold them."""
        ident = str(live.get("ID") or live.get("Id") or live.get("Name") or key.name)
        if key.kind == "Volume":
            ident = str(live.get("Name") or key.name)
        deadline = time.monotonic() + (self.delete_wait if key.kind in ("Network", "Volume") else 0)
        while True:
            try:
                self.client.remove(key.kind, ident)
                break
            except SwarmNotFound:
                return
            except SwarmAPIError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        # The swarm drops a network at once, but the node keeps its copy until the tasks of removed
        # services have stopped: wait for that too, so that a finished prune leaves nothing behind.
        while key.kind == "Network" and time.monotonic() < deadline:
            try:
                self.client.inspect_network(ident)
            except SwarmNotFound:
                return
            time.sleep(0.25)

    def delete(self, key: ResourceKey, live: dict[str, Any]) -> None:
        if key.kind in ("Config", "Secret"):
            self._deferred[key] = live  # deleted once the rollout succeeded: see finish_prunes
            return
        self._remove(key, live)

    def pending_prunes(self) -> list[ResourceKey]:
        """Configs and secrets whose delete waits for the rollout of this apply to succeed."""
        return sorted(self._deferred)

    def finish_prunes(self, rollout_ok: bool) -> list[ResourceKey]:
        """After the rollout: delete the deferred configs and secrets when it succeeded (the new
        release no longer uses them); when it failed, keep them (the rollback may need them)."""
        deferred, self._deferred = self._deferred, {}
        if not rollout_ok:
            return []
        failed: list[ResourceKey] = []
        for key, live in sorted(deferred.items()):
            try:
                self._remove(key, live)
            except GitopsError:
                failed.append(key)
        return failed

    # -- prune facts ------------------------------------------------------------------------

    def prune_disabled(self, resource: Resource) -> bool:
        return resource.key in self._no_prune

    def prune_facts(self, keys: Iterable[ResourceKey], live: Live,
                    desired: Collection[ResourceKey]) -> dict[ResourceKey, PruneFacts]:
        """Volumes hold data. A network, volume, config or secret used by a service that is not
        desired (another stack's, one not ours, one kept) would have to go with it: Docker
        refuses to delete an object in use, so that service is what the delete cascades to."""
        wanted = [k for k in keys if live.get(k) is not None]
        facts: dict[ResourceKey, PruneFacts] = {}
        users: dict[ResourceKey, set[ResourceKey]] = {k: set() for k in wanted}
        if any(k.kind != "Service" for k in wanted):
            services = self.client.services()
            for service in services:
                spec = service.get("Spec") or {}
                skey = ResourceKey(GROUP, "Service", str((spec.get("Labels") or {}).get(STACK_LABEL, "")),
                                   str(spec.get("Name", "")))
                if skey in desired:
                    continue  # its desired spec uses only desired objects
                refs = _references(spec)
                for key in wanted:
                    obj = live.get(key) or {}
                    idents = {key.name, str(obj.get("ID") or obj.get("Id") or "")} - {""}
                    if refs.get(key.kind, set()) & idents:
                        users[key].add(skey)
                        facts.setdefault(skey, PruneFacts(disabled=_opted_out("Service", service)))
        for key in wanted:
            facts[key] = PruneFacts(data=key.kind == "Volume", disabled=_opted_out(key.kind, live.get(key) or {}),
                                    cascade=tuple(sorted(users.get(key, ()))))
        return facts

    # -- health -----------------------------------------------------------------------------

    def watch(self, keys: Collection[ResourceKey], changed: Callable[[ResourceKey], None],
              stop: threading.Event) -> None:
        """The engine's event stream: a service, config, secret or network of ``keys`` updated,
        scaled or removed calls ``changed``. Returns when ``stop`` is set; an engine that stops
        answering is retried every 2 s."""
        by_name = {(key.kind, key.name): key for key in keys}
        kinds = {"service": "Service", "config": "Config", "secret": "Secret", "network": "Network"}

        def on_event(kind: str, _action: str, name: str) -> None:
            key = by_name.get((kinds.get(kind, ""), name))
            if key is not None:
                changed(key)

        while not stop.is_set():
            try:
                self.client.events(on_event, stop)
            except BackendError:
                stop.wait(2.0)

    def health(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, Health]:
        wanted = list(dict.fromkeys(keys))
        others = [k for k in wanted if k.kind != "Service"]
        live = self.observe(others) if others else {}
        result: dict[ResourceKey, Health] = {}
        for key in wanted:
            if key.kind != "Service":
                result[key] = exists_health(live.get(key))
                continue
            service = self._inspect(key)
            if service is None:
                result[key] = exists_health(None)
                continue
            result[key] = service_health(key, service, self.client.service_tasks(str(service["ID"])),
                                         reverted=self._reverted(key, service))
        return result

