"""Building blocks for the Swarm deploy tests: an example stack as a compose document, its files,
and a backend bound to a stack whose configs and secrets are read from a directory."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gitops.backends.swarm.backend import SwarmBackend, compose_resource
from gitops.backends.swarm.client import SwarmClient
from gitops.model import Resource

COMPOSE_PATH = "deploy/compose.yaml"
IMAGE = "gitops-test/app"
FAIL_IMAGE = "gitops-test/fail:1"

# Short waits keep the tests fast; they are still real rolling updates with a monitor period.
FAST_UPDATE = {"parallelism": 1, "delay": "200ms", "order": "start-first", "monitor": "1s",
               "failure_action": "pause"}


def write_files(root: Path, *, site: str = "<h1>v1</h1>\n", token: str = "s3cret-token-1\n") -> None:
    """The files the compose document names, under ``root/deploy``."""
    folder = root / "deploy"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(site)
    (folder / "token.txt").write_text(token)
    (folder / "extra-token.txt").write_text("extra-s3cret\n")


def reader(root: Path) -> Any:
    def read(path: str) -> bytes:
        return (root / path).read_bytes()

    return read


def app_doc(*, web_image: str = f"{IMAGE}:1", api_image: str = f"{IMAGE}:1", replicas: int = 2,
            extra: bool = False, external_secret: str | None = None, web_order: str = "start-first",
            services: int = 0) -> dict[str, Any]:
    """``web`` (config + secret, start-first), ``api`` (stop-first); ``extra`` adds a service with its
    own network, volume and secret (to be pruned); ``services`` adds that many small workers."""
    web: dict[str, Any] = {
        "image": web_image,
        "environment": {"MODE": "production"},
        "configs": [{"source": "site", "target": "/www/index.html"}],
        "secrets": ["token"],
        "stop_grace_period": "1s",
        "deploy": {
            "replicas": replicas,
            "update_config": {**FAST_UPDATE, "order": web_order},
            "restart_policy": {"condition": "on-failure", "delay": "1s"},
        },
    }
    if external_secret:
        web["secrets"] = ["token", {"source": "outside", "target": "outside.txt"}]
    doc: dict[str, Any] = {
        "services": {
            "web": web,
            "api": {
                "image": api_image,
                "stop_grace_period": "1s",
                "deploy": {"replicas": 1, "update_config": {**FAST_UPDATE, "order": "stop-first"},
                           "restart_policy": {"condition": "on-failure", "delay": "1s"}},
            },
        },
        "configs": {"site": {"file": "./index.html"}},
        "secrets": {"token": {"file": "./token.txt"}},
    }
    if external_secret:
        doc["secrets"]["outside"] = {"external": True, "name": external_secret}
    if extra:
        doc["services"]["extra"] = {
            "image": f"{IMAGE}:1",
            "stop_grace_period": "1s",
            "networks": ["back"],
            "volumes": ["data:/data"],
            "secrets": ["extra-token"],
            "deploy": {"replicas": 1},
        }
        doc["networks"] = {"back": {"driver": "overlay"}}
        doc["volumes"] = {"data": {"labels": {"keep": "no"}}}
        doc["secrets"]["extra-token"] = {"file": "./extra-token.txt"}
    for index in range(services):
        doc["services"][f"worker{index:02d}"] = {
            "image": f"{IMAGE}:1", "stop_grace_period": "1s", "deploy": {"replicas": 0},
            "environment": {"INDEX": str(index)},
        }
    return copy.deepcopy(doc)


def resources(stack: str, doc: dict[str, Any]) -> list[Resource]:
    return [compose_resource(stack, COMPOSE_PATH, doc)]


def backend(client: SwarmClient, stack: str, root: Path) -> SwarmBackend:
    return SwarmBackend(client, stack, read_file=reader(root), delete_wait=60)


def remove_state(client: SwarmClient, app: str) -> None:
    """Delete the state and lock configs of an app (tests only: they are not stack objects)."""
    for config in client.configs(f"gitops.dev/app={app}"):
        client.remove("Config", str(config["ID"]))
