"""Fixtures for the real backends: the Kubernetes control plane and the Docker Swarm started by
tests/harness (once per test session), an isolated namespace or stack name per test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from harness import kube, swarm
from testsupport import unavailable


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
    core.delete_namespace(name, propagation_policy="Background")


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
def stack(swarm_cluster: swarm.SwarmStatus, request: pytest.FixtureRequest) -> Iterator[str]:
    """A stack name for one test; everything labelled with it is removed afterwards."""
    name = _unique(request, "t").replace("-", "_")[:40]
    yield name
    swarm.remove_stack(name)
