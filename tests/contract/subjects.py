"""Subjects of the Backend contract tests: the same small app on the in-memory fake, on the real
Kubernetes control plane and on the real Docker Swarm (started by tests/harness, like the
integration tests: locally they skip when a cluster cannot start, with CI=true they fail).

Each subject deploys an app of three objects, expressed in its own backend's source format:

* ``workload``: a Deployment (Kubernetes, the fake) or a service (Swarm) whose image is "good",
  "new" or "failing" (``gitops-test/crash:1`` on Kubernetes, ``gitops-test/fail:1`` on Swarm);
* ``frozen``: an object whose ``frozen`` variant can only change by a replace (an immutable
  ConfigMap's data; a Swarm config's labels);
* ``extra``: an object present only with ``extra=True`` (pruned when it goes away, unless it lost
  its ownership label).

A subject also knows the few things a test needs from outside the protocol: how many writes the
backend sent, how to take the ownership label off a live object (as a person would by hand), and
how to take the lock as a runner that then dies (it never renews).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from testsupport import TESTS

sys.path.insert(0, str(TESTS / "unit"))  # the fake
sys.path.insert(0, str(TESTS / "integration"))  # the example apps of the integration tests

from fakes import LABEL, FakeBackend, res

from gitops.backends.base import Backend
from gitops.model import Origin, Resource, ResourceKey

IMAGES = {
    "fake": {"good": "app:1", "new": "app:2", "failing": "crash:1"},
    "kubernetes": {"good": "gitops-test/app:1", "new": "gitops-test/app:2", "failing": "gitops-test/crash:1"},
    "swarm": {"good": "gitops-test/app:1", "new": "gitops-test/app:2", "failing": "gitops-test/fail:1"},
}


class Subject:
    """One backend under test, with the app in its format (see the module doc)."""

    kind: str
    backend: Backend
    workload: ResourceKey
    frozen: ResourceKey
    extra: ResourceKey

    def app(self, *, image: str = "good", frozen: str = "a", extra: bool = False) -> list[Resource]:
        raise NotImplementedError

    def writes(self) -> int:
        raise NotImplementedError

    def disown(self, key: ResourceKey) -> None:
        raise NotImplementedError

    def abandon_lock(self, holder: str, ttl: int) -> None:
        raise NotImplementedError

    def steal_lock(self, holder: str) -> None:
        """Another runner takes the lock over while its holder still renews it (as after a pause
        longer than the TTL, seen from the other side)."""
        raise NotImplementedError


# -- the fake ----------------------------------------------------------------------------------------


class FakeSubject(Subject):
    kind = "fake"

    def __init__(self) -> None:
        self.fake = FakeBackend(failing_images={IMAGES["fake"]["failing"]})
        self.backend = self.fake
        self.workload = res("Deployment", "web").key
        self.frozen = res("ConfigMap", "frozen").key
        self.extra = res("ConfigMap", "extra").key

    def app(self, *, image: str = "good", frozen: str = "a", extra: bool = False) -> list[Resource]:
        items = [res("ConfigMap", "frozen", immutable=True, data={"v": frozen}),
                 res("Deployment", "web", image=IMAGES["fake"][image])]
        if extra:
            items.append(res("ConfigMap", "extra", data={"k": "v"}))
        return items

    def writes(self) -> int:
        return self.fake.writes

    def disown(self, key: ResourceKey) -> None:
        del self.fake.objects[key]["metadata"]["labels"][LABEL]
        self.fake.touch(key)  # what the real targets' watches see

    def abandon_lock(self, holder: str, ttl: int) -> None:
        assert self.fake.try_acquire(holder, ttl) == (True, holder)

    def steal_lock(self, holder: str) -> None:
        self.fake.lock_holder, self.fake.lock_expires = holder, self.fake.clock() + 30


# -- Kubernetes -------------------------------------------------------------------------------------


class KubeSubject(Subject):
    kind = "kubernetes"

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        from kube_app import backend

        self.namespace = namespace
        self.kb = backend(kubeconfig, f"c-{namespace}"[:50], namespace, state_namespace=namespace)
        self.backend = self.kb
        self.workload = ResourceKey("apps", "Deployment", namespace, "web")
        self.frozen = ResourceKey("", "ConfigMap", namespace, "frozen")
        self.extra = ResourceKey("", "ConfigMap", namespace, "extra")

    def app(self, *, image: str = "good", frozen: str = "a", extra: bool = False) -> list[Resource]:
        from kube_app import resources

        ns = self.namespace
        labels = {"app": "web"}
        docs: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen", "namespace": ns},
             "immutable": True, "data": {"v": frozen}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
             "spec": {"replicas": 1, "progressDeadlineSeconds": 60, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                          "name": "app", "image": IMAGES["kubernetes"][image],
                          "resources": {"requests": {"cpu": 0.1, "memory": "64Mi"}}}]}}}},
        ]
        if extra:
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra", "namespace": ns},
                         "data": {"k": "v"}})
        return resources(docs)

    def writes(self) -> int:
        return self.kb.client.writes

    def disown(self, key: ResourceKey) -> None:
        from gitops.backends.kubernetes.backend import APP_LABEL

        rtype = self.kb.client.resource_type("v1", key.kind)
        assert rtype is not None
        self.kb.client.request("PATCH", rtype.path(key.namespace, key.name),
                               body={"metadata": {"labels": {APP_LABEL: None}}},
                               content_type="application/merge-patch+json")

    def abandon_lock(self, holder: str, ttl: int) -> None:
        assert self.kb.store.try_acquire(holder, ttl) == (True, holder)

    def steal_lock(self, holder: str) -> None:
        from gitops.errors import StateConflictError

        store = self.kb.store
        leases = self.kb.client.resource_type("coordination.k8s.io/v1", "Lease")
        assert leases is not None
        for _ in range(20):  # the holder's renewals move the resourceVersion: retry
            current = self.kb.client.get(leases, store.namespace, store.lease_name)
            assert current is not None
            try:
                self.kb.client.replace(leases, store._lease_body(holder, 30, current["metadata"]["resourceVersion"]))
                return
            except StateConflictError:
                continue
        raise AssertionError("could not take the lease over")


# -- Docker Swarm -----------------------------------------------------------------------------------


class SwarmSubject(Subject):
    kind = "swarm"

    def __init__(self, stack: str, root: Path) -> None:
        from harness import swarm
        from swarm_app import FAST_UPDATE, reader

        from gitops.backends.swarm.backend import SwarmBackend
        from gitops.backends.swarm.client import SwarmClient

        self.stack = stack
        self.update = FAST_UPDATE
        (root / "deploy").mkdir(parents=True, exist_ok=True)
        (root / "deploy" / "frozen.txt").write_text("frozen\n")
        self.client = SwarmClient(swarm.docker_host())
        self.sb = SwarmBackend(self.client, stack, read_file=reader(root), delete_wait=60)
        self.backend = self.sb
        self.workload = ResourceKey("swarm", "Service", stack, f"{stack}_web")
        self.extra = ResourceKey("swarm", "Service", stack, f"{stack}_extra")
        (self.frozen,) = [r.key for r in self.sb.prepare(self.app()) if r.key.kind == "Config"]

    def app(self, *, image: str = "good", frozen: str = "a", extra: bool = False) -> list[Resource]:
        from gitops.backends.swarm.backend import compose_resource

        service = {"stop_grace_period": "1s",
                   "deploy": {"replicas": 1, "update_config": self.update,
                              "restart_policy": {"condition": "on-failure", "delay": "1s"}}}
        doc: dict[str, Any] = {
            "services": {"web": {"image": IMAGES["swarm"][image], **service}},
            "configs": {"frozen": {"file": "./frozen.txt", "labels": {"v": frozen}}},
        }
        if extra:
            doc["services"]["extra"] = {"image": IMAGES["swarm"]["good"], **service}
        return [compose_resource(self.stack, "deploy/compose.yaml", doc, Origin("deploy/compose.yaml", 0, 1))]

    def writes(self) -> int:
        return self.client.writes

    def disown(self, key: ResourceKey) -> None:
        from gitops.backends.swarm.translate import STACK_LABEL

        live = self.client.inspect_service(key.name)
        spec = live["Spec"]
        spec["Labels"] = {k: v for k, v in (spec.get("Labels") or {}).items() if k != STACK_LABEL}
        self.client.update_service(str(live["ID"]), int(live["Version"]["Index"]), spec)

    def abandon_lock(self, holder: str, ttl: int) -> None:
        assert self.sb.store.try_acquire(holder, ttl) == (True, holder)

    def steal_lock(self, holder: str) -> None:
        from gitops.backends.swarm.store import newest

        store = self.sb.store
        for _ in range(20):  # the holder's renewals add links to the chain: retry
            top = newest(store.entries())
            assert top is not None
            if store._create_entry(top.epoch + 1, holder, 30):
                return
        raise AssertionError("could not take the lock over")

    def cleanup(self) -> None:
        from harness import swarm
        from swarm_app import remove_state

        self.client.remove("Service", self.extra.name)  # it may have lost its stack label
        swarm.remove_stack(self.stack)
        remove_state(self.client, self.stack)
        self.client.close()
