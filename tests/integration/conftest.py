"""Fixtures for the real backends: the Kubernetes control plane and the Docker Swarm started by
tests/harness (once per test session), an isolated namespace or stack name per test."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import kube, swarm
from testsupport import LongLived, unavailable


def _unique(request: pytest.FixtureRequest, prefix: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    return f"{prefix}-{base}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def kube_cluster() -> kube.KubeStatus:
    try:
        state = kube.up()
    except Exception as err:  # any failure to start is reported the same way
        unavailable(f"the Kubernetes test control plane could not start: {err}")
        raise
    return state


@pytest.fixture(scope="session")
def kube_api(kube_cluster: kube.KubeStatus) -> Iterator[object]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(kube_api: object, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = _unique(request, "t")[:63].rstrip("-")
    core.create_namespace({"metadata": {"name": name, "labels": {"gitops-test": "true"}}})
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as err:
        if err.status != 404:  # already gone: a test's app may own its namespace and roll it back to nothing
            raise


@pytest.fixture(scope="session")
def swarm_cluster() -> swarm.SwarmStatus:
    try:
        state = swarm.up()
    except Exception as err:
        unavailable(f"the Docker Swarm test engine could not start: {err}")
        raise
    return state


@pytest.fixture(scope="session")
def docker_api(swarm_cluster: swarm.SwarmStatus) -> Iterator[object]:
    import docker

    api = docker.APIClient(base_url=swarm.docker_host(), version="auto")
    yield api
    api.close()


@pytest.fixture
def client(docker_api: Any) -> Any:
    """The project's Swarm client on the test engine."""
    from gitops.backends.swarm.client import SwarmClient

    return SwarmClient(api=docker_api)


@pytest.fixture
def sb(client: Any, stack: str, tmp_path: Path) -> Iterator[Any]:
    """A Swarm backend for app = stack, its compose files under tmp_path; state configs removed after."""
    from swarm_app import backend, remove_state, write_files

    write_files(tmp_path)
    yield backend(client, stack, tmp_path)
    remove_state(client, stack)


@pytest.fixture
def stack(swarm_cluster: swarm.SwarmStatus, request: pytest.FixtureRequest) -> Iterator[str]:
    """A stack name for one test; everything labelled with it is removed afterwards."""
    name = _unique(request, "t").replace("-", "_")[:40]
    yield name
    swarm.remove_stack(name)


# A workload that lives for minutes: created when the session starts, checked by the test below,
# which runs last. Node heartbeats, lease renewals and the node lifecycle controller's grace
# period all happen within that time, so a flapping test control plane shows there.
LONG_LIVED_TEST = "test_a_deployment_created_at_start_up_rolls_out_minutes_later"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name == LONG_LIVED_TEST)  # stable: only moves that one last


@pytest.fixture(scope="session", autouse=True)
def long_lived(request: pytest.FixtureRequest) -> Iterator[LongLived | None]:
    if not any(item.name == LONG_LIVED_TEST for item in request.session.items):
        yield None
        return
    from kubernetes import client

    api = request.getfixturevalue("kube_api")
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    name = f"t-long-lived-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"gitops-test": "true"}}})
    kcm_log = kube.state_dir() / "kube-controller-manager.log"
    workload = LongLived(name, "web", time.monotonic(), datetime.now(UTC),
                         kcm_log.stat().st_size if kcm_log.exists() else 0)
    apps.create_namespaced_deployment(name, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "gitops-test/app:1"}]}},
        },
    })
    yield workload
    core.delete_namespace(name, propagation_policy="Background")
