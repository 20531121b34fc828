"""Fixtures of the Backend contract tests: the ``subject`` parameter runs each test on the fake,
on the real Kubernetes control plane and on the real Docker Swarm (see subjects.py). The clusters
come from tests/harness, as for the integration tests: locally a test skips when its cluster cannot
start, with CI=true it fails."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from subjects import FakeSubject, KubeSubject, Subject, SwarmSubject
from testsupport import unavailable


def _unique(request: pytest.FixtureRequest, prefix: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:24].strip("-")
    return f"{prefix}-{base}-{uuid.uuid4().hex[:6]}"


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_cluster() -> Any:
    from harness import kube

    try:
        return kube.up()
    except Exception as err:  # any failure to start is reported the same way
        unavailable(f"the Kubernetes test control plane could not start: {err}")
        raise


@pytest.fixture(scope="session")
def swarm_cluster() -> Any:
    from harness import swarm

    try:
        return swarm.up()
    except Exception as err:
        unavailable(f"the Docker Swarm test engine could not start: {err}")
        raise


@pytest.fixture
def kube_subject(kube_cluster: Any, request: pytest.FixtureRequest) -> Iterator[Subject]:
    """A fresh namespace (objects, state and lock of the app live in it), deleted afterwards."""
    from gitops.backends.kubernetes.client import KubeClient

    admin = KubeClient(str(kube_cluster.kubeconfig))
    namespaces = admin.resource_type("v1", "Namespace")
    assert namespaces is not None
    name = _unique(request, "c")[:63].rstrip("-")
    admin.create(namespaces, {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": name, "labels": {"gitops-test": "true"}}})
    subject = KubeSubject(str(kube_cluster.kubeconfig), name)
    try:
        yield subject
    finally:
        subject.kb.client.close()
        admin.delete(namespaces, "", name)
        admin.close()


@pytest.fixture
def swarm_subject(swarm_cluster: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    subject = SwarmSubject(_unique(request, "c").replace("-", "_")[:40], tmp_path)
    try:
        yield subject
    finally:
        subject.cleanup()


@pytest.fixture(params=[
    pytest.param("fake"),
    pytest.param("kubernetes", marks=pytest.mark.kube),
    pytest.param("swarm", marks=pytest.mark.swarm),
])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "fake":
        return FakeSubject()
    fixture = "kube_subject" if request.param == "kubernetes" else "swarm_subject"
    found: Subject = request.getfixturevalue(fixture)
    return found
