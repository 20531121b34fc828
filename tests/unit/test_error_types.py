"""Failures get their types once, at each client's edge; everything above tests types, not text."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests
import yaml

from gitops import errors
from gitops.backends.kubernetes.client import ApiError, KubeClient
from gitops.backends.swarm.client import SwarmClient, _errors


def status(code: int, reason: str = "", message: str = "boom", causes: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {"kind": "Status", "code": code, "reason": reason, "message": message}
    if causes is not None:
        body["details"] = {"causes": causes}
    return json.dumps(body).encode()


@pytest.mark.parametrize(("code", "body", "apply", "expected"), [
    (404, status(404, "NotFound"), False, errors.NotFoundError),
    (409, status(409, "AlreadyExists"), False, errors.AlreadyExistsError),
    (409, status(409, "Conflict", "Apply failed with 1 conflict"), True, errors.ConflictError),
    (409, status(409, "Conflict", "the object has been modified"), False, errors.StateConflictError),
    (422, status(422, "Invalid", causes=[{"reason": "FieldValueInvalid", "field": "spec.selector",
                                          "message": "Invalid value: ...: field is immutable"}]),
     True, errors.ImmutableFieldError),
    (422, status(422, "Invalid", causes=[{"reason": "FieldValueRequired", "message": "Required value"}]),
     True, ApiError),
    (500, b"not json", False, ApiError),
])
def test_kubernetes_responses_map_to_error_types(code: int, body: bytes, apply: bool, expected: type) -> None:
    error = KubeClient.translate(code, body, "ConfigMap/ns/x", "apply", apply=apply)
    assert type(error) is expected
    assert isinstance(error, errors.BackendError)
    assert str(error).startswith("ConfigMap/ns/x: apply failed: ")


def test_kubernetes_conflict_says_how_to_take_the_fields_over() -> None:
    error = KubeClient.translate(409, status(409, "Conflict"), "Deployment/ns/web", "apply", apply=True)
    assert "--force-conflicts" in str(error)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_kubernetes_api_is_an_unreachable_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    client = KubeClient(str(path))
    with pytest.raises(errors.UnreachableError, match="cannot reach"):
        client.request("GET", "/api", verb="discover")


def test_an_unreachable_docker_engine_is_an_unreachable_error(tmp_path: Path) -> None:
    client = SwarmClient(f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(errors.UnreachableError, match="cannot reach"):
        client.info()


def _api_error(code: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = code
    return docker.errors.APIError("failed", response=response, explanation=explanation)


@pytest.mark.parametrize(("raised", "expected"), [
    (docker.errors.NotFound("nope"), errors.NotFoundError),
    (_api_error(409, "config x already exists"), errors.AlreadyExistsError),
    (_api_error(500, "rpc error: code = Unknown desc = update out of sequence"), errors.StateConflictError),
    (_api_error(500, "something else"), errors.BackendError),
    (requests.exceptions.ConnectionError("refused"), errors.UnreachableError),
])
def test_docker_errors_map_to_error_types(raised: Exception, expected: type) -> None:
    with pytest.raises(expected) as caught, _errors("Service", "web", "update", "demo"):
        raise raised
    assert str(caught.value).startswith("Service/demo/web: update failed: ")
