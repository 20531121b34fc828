"""The Kubernetes backend: server-side apply with one field manager, bulk reads, ownership labels."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops import diff
from gitops.backends import base
from gitops.backends.base import MAX_API_VERSIONS, Comparison, Live, PruneFacts, RunOnce
from gitops.backends.kubernetes import health, kinds, normalize
from gitops.backends.kubernetes.client import ApiError, KubeClient, ResourceType
from gitops.backends.kubernetes.store import ClusterStore
from gitops.backends.locking import StoreBacked
from gitops.errors import BackendError, ImmutableFieldError
from gitops.model import Diagnostic, Resource, ResourceKey
from gitops.model.health import Health
from gitops.model.plans import WAVE_KEY, WAVE_SPAN, Action, Applied, FieldChange, parse_wave

MANAGER = "gitops"
APP_LABEL = "gitops.dev/app"
#: Annotation (or label) by which an object opts out of pruning: ``gitops.dev/prune: disabled``.
PRUNE_KEY = "gitops.dev/prune"
PRUNE_DISABLED = "disabled"
#: From this many objects of one type in one namespace on, one list beats many gets.
LIST_THRESHOLD = 3


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class KubernetesBackend(StoreBacked):
    name = "kubernetes"

    def __init__(self, client: KubeClient, app: str, *, namespace: str = "default",
                 state_namespace: str = "gitops-system", take_over: bool = True) -> None:
        self.client = client
        self.app = app
        self.take_over = take_over  # fields git declares are taken from other managers (plan says so)
        self.namespace = namespace
        self.store = ClusterStore(client, app, state_namespace)
        self.warnings: list[Diagnostic] = []  # none yet: the API server's warnings are not collected
        self._types: dict[ResourceKey, ResourceType] = {}
        self._versions: dict[ResourceKey, str] = {}  # resourceVersion last observed, to see a no-op apply
        self._crd_scopes: dict[tuple[str, str], bool] = {}
        self._hook_waves: dict[ResourceKey, int] = {}  # the user waves of the Helm hooks last prepared
        self._api_versions: frozenset[str] | None = None

    def target_id(self) -> str:
        return f"kubernetes:{self.client.server}"

    # -- desired ----------------------------------------------------------------------------

    def _learn_crds(self, resources: list[Resource]) -> None:
        """Kinds defined by CRDs in the same set are known before the CRDs exist on the cluster."""
        for resource in resources:
            if resource.key.kind == "CustomResourceDefinition":
                spec = resource.body.get("spec") or {}
                group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
                self._crd_scopes[(group, kind)] = spec.get("scope", "Namespaced") == "Namespaced"

    def _type(self, api_version: str, kind: str) -> ResourceType | None:
        return self.client.resource_type(api_version, kind)

    def api_versions(self) -> frozenset[str]:
        if self._api_versions is None:
            self._api_versions = self.client.api_versions(MAX_API_VERSIONS)
        return self._api_versions

    def run_once(self, body: Mapping[str, Any]) -> RunOnce | None:
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if not kinds.hook_wave(annotations.get(kinds.HOOK_KEY)):
            return None
        policies = kinds.hook_delete_policies(annotations)
        return RunOnce(recreate=kinds.BEFORE_HOOK_CREATION in policies,
                       delete_on_success=kinds.HOOK_SUCCEEDED in policies,
                       delete_on_failure=kinds.HOOK_FAILED in policies)

    def prepare(self, resources: list[Resource]) -> list[Resource]:
        self._learn_crds(resources)
        prepared: list[Resource] = []
        for resource in resources:
            body = normalize.fold_string_data(dict(resource.body))
            body.pop("status", None)
            metadata = dict(body.get("metadata") or {})
            kind = body.get("kind", resource.key.kind)
            group = group_of(resource.api_version)
            rtype = self._type(resource.api_version, kind)
            if rtype is not None:
                namespaced = rtype.namespaced
            elif (group, kind) in self._crd_scopes:
                namespaced = self._crd_scopes[(group, kind)]
            else:
                raise BackendError(
                    f"{resource.key}: the cluster has no kind {kind} in {resource.api_version} "
                    f"(declared at {resource.origin}); is its CRD installed?"
                )
            if namespaced:
                metadata["namespace"] = metadata.get("namespace") or self.namespace
            else:
                metadata.pop("namespace", None)
            labels = dict(metadata.get("labels") or {})
            labels[APP_LABEL] = self.app
            metadata["labels"] = labels
            body["metadata"] = metadata
            key = ResourceKey(group, kind, metadata.get("namespace", ""), metadata.get("name", ""))
            prepared.append(Resource(key, resource.api_version, body, resource.origin))
        self._hook_waves = kinds.hook_waves((r.key, (r.body.get("metadata") or {}).get("annotations") or {})
                                            for r in prepared)
        return prepared

    # -- live -------------------------------------------------------------------------------

    def _resolve(self, key: ResourceKey, api_version: str | None = None) -> ResourceType | None:
        cached = self._types.get(key)
        if cached is not None:
            return cached
        rtype = self._type(api_version, key.kind) if api_version else self.client.preferred(key.group, key.kind)
        if rtype is not None:
            self._types[key] = rtype
        return rtype

    def observe(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, dict[str, Any] | None]:
        found: dict[ResourceKey, dict[str, Any] | None] = {}
        groups: dict[tuple[ResourceType, str], list[ResourceKey]] = defaultdict(list)
        for key in keys:
            rtype = self._resolve(key)
            if rtype is None:
                found[key] = None  # the kind does not exist (yet): neither does the object
                continue
            groups[(rtype, key.namespace if rtype.namespaced else "")].append(key)

        def read(item: tuple[tuple[ResourceType, str], list[ResourceKey]]) -> dict[ResourceKey, Any]:
            (rtype, namespace), members = item
            if len(members) >= LIST_THRESHOLD:
                listed = {obj["metadata"]["name"]: obj for obj in self.client.list(rtype, namespace)}
                return {key: listed.get(key.name) for key in members}
            return {key: self.client.get(rtype, namespace, key.name) for key in members}

        with ThreadPoolExecutor(max_workers=8) as pool:
            for part in pool.map(read, groups.items()):
                found.update(part)
        for key, obj in found.items():
            if obj is None:
                self._versions.pop(key, None)
            else:
                self._versions[key] = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        return found

    def owned(self, key: ResourceKey, live: dict[str, Any]) -> bool:
        labels = (live.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(APP_LABEL) == self.app)

    def fingerprint(self, live: Live) -> str:
        return base.fingerprint(live, lambda _key, obj: normalize.strip_bookkeeping(obj))

    def wave(self, key: ResourceKey, body: Mapping[str, Any] | None = None) -> int:
        annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
        user = parse_wave(annotations.get(WAVE_KEY))
        if user is None:  # a Helm hook: its wave among the hooks last prepared, else just before or after
            user = self._hook_waves.get(key, kinds.hook_wave(annotations.get(kinds.HOOK_KEY)))
        return WAVE_SPAN * user + kinds.wave(key.group, key.kind)

    # -- compare ----------------------------------------------------------------------------

    def compare(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        if live is None:
            return Comparison(Action.CREATE, "does not exist")
        want, have = normalize.comparable(resource.body, live, MANAGER)
        kind = resource.key.kind
        changes = diff.fields(have, want, normalize.sensitive(kind, resource.body, live))
        if not changes:
            return Comparison(Action.NOOP)
        frozen = kinds.immutable_paths(resource.key.group, kind, live)
        for change in changes:
            for prefix in frozen:
                if kinds.under(change.path, prefix):
                    return Comparison(Action.REPLACE, f"{prefix} cannot change in place", tuple(changes))
        if not self.owned(resource.key, live):
            return Comparison(Action.UPDATE, "exists but was not created by this app: taking it over",
                              tuple(changes))
        return Comparison(Action.UPDATE, self._conflicts(live, changes), tuple(changes))

    def _conflicts(self, live: dict[str, Any], changes: list[FieldChange]) -> str:
        """What the plan says of fields git declares that another field manager now owns (a
        `kubectl edit`, another controller): taken over on apply, or refused with take_over off."""
        owners: dict[str, list[str]] = {}
        for change in changes:
            if change.absent_before:
                continue
            for manager in normalize.other_managers(live, change.path, MANAGER):
                owners.setdefault(manager, []).append(change.path)
        if not owners:
            return ""
        said = "; ".join(f"{', '.join(paths)} from {manager}" for manager, paths in sorted(owners.items()))
        if self.take_over:
            return f"takes over {said}"
        return f"conflict: refused on apply (sync.take_over is off; --force-conflicts takes over) {said}"

    def exact(self, resource: Resource, live: dict[str, Any] | None) -> Comparison:
        """The server's own answer: a dry-run server-side apply, compared with the live object."""
        rtype = self._resolve(resource.key, resource.api_version)
        if rtype is None or live is None:
            return self.compare(resource, live)
        try:
            _, dry = self.client.apply(rtype, resource.body, MANAGER, force=True, dry_run=True)
        except ImmutableFieldError as err:
            return Comparison(Action.REPLACE, f"the server refuses it in place: {err}")
        before = normalize.strip_bookkeeping(live)
        after = normalize.strip_bookkeeping(dry)
        kind = resource.key.kind
        changes = diff.fields(normalize.keyed(before), normalize.keyed(after),
                              normalize.sensitive(kind, resource.body, live, dry))
        return Comparison(Action.UPDATE if changes else Action.NOOP, "server dry-run", tuple(changes))

    # -- write ------------------------------------------------------------------------------

    def apply(self, resource: Resource, *, replace: bool = False, force_conflicts: bool = False) -> Applied:
        rtype = self._resolve(resource.key, resource.api_version)
        if rtype is None:
            self.client.forget_discovery()
            rtype = self._resolve(resource.key, resource.api_version)
        if rtype is None:
            raise BackendError(f"{resource.key}: apply failed: the cluster has no kind "
                               f"{resource.key.kind} in {resource.api_version}")
        replaced = False
        if replace:
            live = self.client.get(rtype, resource.key.namespace, resource.key.name)
            if live is not None:
                self._delete_and_wait(rtype, resource.key, live)
                replaced = True
        created, stored = self.client.apply(rtype, resource.body, MANAGER, force=force_conflicts)
        if resource.key.kind == "CustomResourceDefinition":
            self._wait_established(rtype, resource.key.name)
            self.client.forget_discovery()
        version = str((stored.get("metadata") or {}).get("resourceVersion", ""))
        before = self._versions.pop(resource.key, None)
        if replaced:
            return Applied.REPLACED
        if created:
            return Applied.CREATED
        return Applied.UNCHANGED if before is not None and before == version else Applied.CONFIGURED

    def _delete_and_wait(self, rtype: ResourceType, key: ResourceKey, live: dict[str, Any],
                         timeout: float = 120) -> None:
        uid = live.get("metadata", {}).get("uid")
        self.client.delete(rtype, key.namespace, key.name, propagation="Foreground", uid=uid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.client.get(rtype, key.namespace, key.name)
            if current is None or current.get("metadata", {}).get("uid") != uid:
                return
            time.sleep(0.2)
        raise BackendError(f"{key}: delete failed: still present after {timeout:.0f}s (finalizers?)")

    def _wait_established(self, rtype: ResourceType, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            crd = self.client.get(rtype, "", name) or {}
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                return
            time.sleep(0.2)
        raise BackendError(f"CustomResourceDefinition/{name}: apply failed: not Established after {timeout:.0f}s")

    def delete(self, key: ResourceKey, live: dict[str, Any]) -> None:
        rtype = self._resolve(key, live.get("apiVersion"))
        if rtype is None:
            return
        self.client.delete(rtype, key.namespace, key.name, uid=live.get("metadata", {}).get("uid"))

    def finish_prunes(self, rollout_ok: bool) -> list[ResourceKey]:
        return []  # every delete happened in the prune wave

    # -- prune facts ------------------------------------------------------------------------

    def prune_disabled(self, resource: Resource) -> bool:
        return _prune_disabled(resource.body)

    def prune_facts(self, keys: Iterable[ResourceKey], live: Live,
                    desired: Collection[ResourceKey]) -> dict[ResourceKey, PruneFacts]:
        """Namespaces cascade to every object in them, CRDs to their custom resources (in every
        namespace), any object to the desired objects it owns (``ownerReferences``); a
        StatefulSet leaves its PersistentVolumeClaims (or, with ``whenDeleted: Delete``, takes them)."""
        facts: dict[ResourceKey, PruneFacts] = {}
        extra: dict[ResourceKey, dict[str, Any]] = {}
        owners: dict[str, list[ResourceKey]] = defaultdict(list)  # uid -> desired objects it owns
        for key in desired:
            for ref in ((live.get(key) or {}).get("metadata") or {}).get("ownerReferences") or []:
                owners[str(ref.get("uid", ""))].append(key)
        for key in keys:
            obj = live.get(key) or {}
            cascade: list[ResourceKey] = list(owners.get(str((obj.get("metadata") or {}).get("uid", "")), []))
            leaves: list[ResourceKey] = []
            found: dict[ResourceKey, dict[str, Any]] = {}
            if (key.group, key.kind) == ("", "Namespace"):
                found = self._namespace_contents(key.name)
            elif (key.group, key.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
                found = self._custom_resources(obj)
            elif (key.group, key.kind) == ("apps", "StatefulSet"):
                claims = self._claims_of(key, obj)
                policy = (obj.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
                if policy.get("whenDeleted") == "Delete":
                    found = claims
                else:
                    leaves = sorted(claims)
                    extra.update(claims)
            extra.update(found)
            cascade.extend(k for k in found if k != key)
            facts[key] = PruneFacts(data=_holds_data(key), disabled=_prune_disabled(obj),
                                    cascade=tuple(sorted(set(cascade))), leaves=tuple(leaves))
        for key, obj in extra.items():
            facts.setdefault(key, PruneFacts(data=_holds_data(key), disabled=_prune_disabled(obj)))
        for key in {k for f in list(facts.values()) for k in f.cascade}:
            facts.setdefault(key, PruneFacts(data=_holds_data(key), disabled=_prune_disabled(live.get(key) or {})))
        return facts

    def _key_of(self, obj: dict[str, Any]) -> ResourceKey:
        metadata = obj.get("metadata") or {}
        return ResourceKey(group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")),
                           str(metadata.get("namespace", "")), str(metadata.get("name", "")))

    def _namespace_contents(self, namespace: str) -> dict[ResourceKey, dict[str, Any]]:
        """Every object in a namespace that its delete would take (one list per namespaced kind
        that discovery offers, in parallel), except what Kubernetes itself makes: objects owned by
        another (they go with their owner), events, endpoints, and the per-namespace defaults."""
        types = [t for t in self.client.listable_types() if t.namespaced and (t.group, t.kind) not in kinds.GENERATED]

        def read(rtype: ResourceType) -> list[dict[str, Any]]:
            try:
                return self.client.list(rtype, namespace)
            except ApiError:
                return []  # an aggregated API that is down, or a kind we may not list

        found: dict[ResourceKey, dict[str, Any]] = {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            for items in pool.map(read, types):
                for obj in items:
                    metadata = obj.get("metadata") or {}
                    if metadata.get("ownerReferences"):
                        continue
                    key = self._key_of(obj)
                    if (key.kind, key.name) in kinds.NAMESPACE_DEFAULTS:
                        continue
                    found[key] = obj
        return found

    def _custom_resources(self, crd: dict[str, Any]) -> dict[ResourceKey, dict[str, Any]]:
        spec = crd.get("spec") or {}
        group, kind = str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))
        rtype = self.client.preferred(group, kind)
        if rtype is None:
            return {}
        return {self._key_of(obj): obj for obj in self.client.list(rtype)}

    def _claims_of(self, key: ResourceKey, sts: dict[str, Any]) -> dict[ResourceKey, dict[str, Any]]:
        """The PersistentVolumeClaims the StatefulSet controller made: ``<template>-<set>-<ordinal>``."""
        templates = [str((t.get("metadata") or {}).get("name", ""))
                     for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []]
        rtype = self.client.resource_type("v1", "PersistentVolumeClaim")
        if not templates or rtype is None:
            return {}
        pattern = re.compile(rf"^(?:{'|'.join(re.escape(t) for t in templates)})-{re.escape(key.name)}-[0-9]+$")
        return {self._key_of(obj): obj for obj in self.client.list(rtype, key.namespace)
                if pattern.match(str((obj.get("metadata") or {}).get("name", "")))}

    # -- health -----------------------------------------------------------------------------

    def watch(self, keys: Collection[ResourceKey], changed: Callable[[ResourceKey], None],
              stop: threading.Event) -> None:
        """One watch per kind and namespace of ``keys``, filtered by this app's label; a change of
        one of ``keys`` (edited, scaled, deleted, its label removed) calls ``changed``. Returns when
        ``stop`` is set; a watch that loses the API server retries every 2 s."""
        groups: dict[tuple[ResourceType, str], set[str]] = defaultdict(set)
        for key in keys:
            rtype = self._resolve(key)
            if rtype is not None:
                groups[(rtype, key.namespace if rtype.namespaced else "")].add(key.name)
        selector = f"{APP_LABEL}={self.app}"

        def one(rtype: ResourceType, namespace: str, names: set[str]) -> None:
            def on_event(_kind: str, obj: dict[str, Any]) -> None:
                name = str(obj.get("metadata", {}).get("name", ""))
                if name in names:
                    changed(ResourceKey(rtype.group, rtype.kind, namespace, name))

            while not stop.is_set():
                try:
                    self.client.watch(rtype, namespace, selector, on_event, stop)
                except BackendError:
                    stop.wait(2.0)

        threads = [threading.Thread(target=one, args=(rtype, ns, names), daemon=True,
                                    name=f"watch-{rtype.kind}") for (rtype, ns), names in groups.items()]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join(timeout=1.0)

    def health(self, keys: Iterable[ResourceKey]) -> dict[ResourceKey, Health]:
        """Health per object; workloads also carry the fail-fast failures of their current pods.

        Pods (and, for Deployments, ReplicaSets) are listed once per namespace per poll and
        indexed by their controller, so each workload only looks at its own.
        """
        wanted = list(keys)
        objects = self.observe(wanted)
        pod_type = self.client.resource_type("v1", "Pod")
        rs_type = self.client.resource_type("apps/v1", "ReplicaSet")
        namespaces = {k.namespace for k in wanted if (k.group, k.kind) in kinds.WORKLOADS and objects.get(k)}
        pods: dict[str, list[dict[str, Any]]] = defaultdict(list)  # controller uid -> pods
        replicasets: dict[str, list[dict[str, Any]]] = defaultdict(list)  # deployment uid -> replicasets
        for namespace in sorted(namespaces):
            if pod_type is not None:
                for pod in self.client.list(pod_type, namespace):
                    pods[_controller_uid(pod)].append(pod)
            if rs_type is not None and any(k.kind == "Deployment" for k in wanted if k.namespace == namespace):
                for rs in self.client.list(rs_type, namespace):
                    replicasets[_controller_uid(rs)].append(rs)
        result: dict[ResourceKey, Health] = {}
        for key in wanted:
            obj = objects.get(key)
            if obj is None or (key.group, key.kind) not in kinds.WORKLOADS:
                result[key] = health.assess(obj)
                continue
            uid = obj.get("metadata", {}).get("uid", "")
            if key.kind == "Deployment":
                history = replicasets.get(uid, [])
                own = [p for rs in history for p in pods.get(rs.get("metadata", {}).get("uid", ""), [])]
                result[key] = health.assess_workload(obj, own, history)
            elif key.kind == "Pod":
                result[key] = health.assess_workload(obj, [obj])
            else:
                result[key] = health.assess_workload(obj, pods.get(uid, []))
        return result



def _holds_data(key: ResourceKey) -> bool:
    return (key.group, key.kind) in kinds.DATA


def _prune_disabled(obj: dict[str, Any]) -> bool:
    metadata = obj.get("metadata") or {}
    return any(str((metadata.get(where) or {}).get(PRUNE_KEY, "")) == PRUNE_DISABLED
               for where in ("annotations", "labels"))


def _controller_uid(obj: dict[str, Any]) -> str:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return ""
