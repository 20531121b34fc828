"""Round trip against the real engine: translate a compose document, create what it describes
through the Engine API, read it back, and the normalized diff is empty; change one thing and the
diff names exactly that field. And ``docker stack deploy`` of the same file gives service specs
that diff empty against our translation (same names, labels and payloads as the CLI)."""

from __future__ import annotations

import copy
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import swarm

from gitops.backends.swarm.client import SwarmClient
from gitops.backends.swarm.normalize import (
    diff_config,
    diff_network,
    diff_secret,
    diff_service,
    normalize_service,
)
from gitops.backends.swarm.translate import Translation, translate
from gitops.model.plans import FieldChange
from gitops.views.plans import field_line

pytestmark = pytest.mark.swarm

IMAGE = "gitops-test/app"


def _ports() -> tuple[int, int, int]:
    base = random.randrange(21000, 29000, 10)
    return base, base + 1, base + 2


def web_compose(port: int) -> dict[str, Any]:
    """A typical web service: command, env, port, health check, rolling update, config, secret."""
    return {
        "services": {
            "web": {
                "image": f"{IMAGE}:1",
                "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                "environment": {"MODE": "production", "WORKERS": 4, "EMPTY": ""},
                "labels": {"com.example.container": "yes"},
                "ports": [f"{port}:8080"],
                "healthcheck": {"test": ["CMD", "wget", "-q", "-O-", "http://localhost:8080/"],
                                "interval": "5s", "timeout": "2s", "retries": 3, "start_period": "1s"},
                "stop_grace_period": "5s",
                "configs": [{"source": "site", "target": "/www/index.html", "mode": 0o444}],
                "secrets": ["token"],
                "deploy": {
                    "replicas": 2,
                    "labels": {"com.example.service": "web"},
                    "resources": {"limits": {"cpus": "0.5", "memory": "64M"},
                                  "reservations": {"cpus": "0.1", "memory": "16M"}},
                    "restart_policy": {"condition": "on-failure", "delay": "2s", "max_attempts": 3},
                    "update_config": {"parallelism": 1, "delay": "1s", "order": "start-first",
                                      "failure_action": "rollback", "monitor": "5s"},
                    "placement": {"constraints": ["node.role == manager"]},
                },
            },
        },
        "configs": {"site": {"file": "./index.html"}},
        "secrets": {"token": {"file": "./token.txt"}},
    }


def multi_compose(udp: int, host: int) -> dict[str, Any]:
    """Two services on custom networks, volumes of every kind, global mode, long-form ports."""
    return {
        "services": {
            "api": {
                "image": f"{IMAGE}:2",
                "entrypoint": "httpd -f",
                "command": "-p 8080",
                "environment": ["A=1", "B=two words", "C"],
                "hostname": "api-host",
                "user": "0:0",
                "working_dir": "/",
                "init": True,
                "cap_add": ["NET_ADMIN"],
                "cap_drop": ["MKNOD"],
                "dns": ["10.0.0.53"],
                "dns_search": ["example.internal"],
                "extra_hosts": ["db.local:10.0.0.5"],
                "stop_signal": "SIGTERM",
                "read_only": True,
                "networks": {"front": {"aliases": ["api-front"]}, "back": None},
                "volumes": [
                    "data:/data",
                    "/tmp:/host-tmp:ro",
                    {"type": "tmpfs", "target": "/scratch", "tmpfs": {"size": 16 * 1024 * 1024}},
                    {"type": "volume", "source": "cache", "target": "/cache", "volume": {"nocopy": True}},
                ],
                "ports": [
                    {"target": 8080, "published": udp, "protocol": "udp"},
                    {"target": 8081, "published": host, "mode": "host"},
                ],
                "deploy": {
                    "replicas": 1,
                    "rollback_config": {"parallelism": 2, "delay": "1s", "failure_action": "continue",
                                        "monitor": "3s", "max_failure_ratio": 0.25, "order": "stop-first"},
                    "placement": {"max_replicas_per_node": 2,
                                  "preferences": [{"spread": "node.labels.zone"}]},
                },
            },
            "worker": {
                "image": f"{IMAGE}:3",
                "command": ["sleep", "3600"],
                "networks": ["back"],
                "healthcheck": {"disable": True},
                "deploy": {"mode": "global", "endpoint_mode": "dnsrr"},
            },
        },
        "networks": {
            "front": {"driver": "overlay", "attachable": True, "labels": {"tier": "front"}},
            "back": {"driver": "overlay", "internal": True},
        },
        "volumes": {"data": {"labels": {"keep": "yes"}}, "cache": {}},
    }


def write_files(directory: Path) -> None:
    (directory / "index.html").write_text("<h1>v1</h1>\n")
    (directory / "token.txt").write_text("s3cret-token\n")


def do_translate(doc: dict[str, Any], stack: str, directory: Path, **kwargs: Any) -> Translation:
    def read(path: str) -> bytes:
        return (directory / path).read_bytes()

    result = translate(doc, stack, read_file=read, **kwargs)
    assert not result.diagnostics.has_errors, [str(d) for d in result.diagnostics]
    return result


def create(client: SwarmClient, tr: Translation) -> None:
    for network in tr.networks.values():
        if not network.external and network.spec is not None:
            client.create_network(network.spec)
    for config in tr.configs.values():
        if not config.external and config.spec is not None:
            client.create_config(config.spec)
    for secret in tr.secrets.values():
        if not secret.external:
            client.create_secret(secret)
    for service in tr.services.values():
        client.create_service(service.spec)


def service_diffs(client: SwarmClient, tr: Translation) -> dict[str, list[FieldChange]]:
    ids = client.network_ids()
    result = {}
    for name, service in tr.services.items():
        live = client.inspect_service(name)
        result[name] = diff_service(service.spec, live["Spec"], network_ids=ids)
    return result


def object_diffs(client: SwarmClient, tr: Translation) -> list[FieldChange]:
    found: list[FieldChange] = []
    for name, network in tr.networks.items():
        if network.spec is not None:
            found += diff_network(network.spec, client.inspect_network(name))
    for name, config in tr.configs.items():
        if config.spec is not None:
            found += diff_config(config.spec, client.inspect_config(name))
    for name, secret in tr.secrets.items():
        if secret.spec is not None:
            found += diff_secret(secret.spec, client.inspect_secret(name))
    return found


def paths(diffs: list[FieldChange]) -> list[str]:
    return [d.path for d in diffs]


def test_typical_service_round_trips_with_an_empty_diff(client: SwarmClient, stack: str, tmp_path: Path) -> None:
    port, _, _ = _ports()
    write_files(tmp_path)
    doc = web_compose(port)
    tr = do_translate(doc, stack, tmp_path)
    create(client, tr)

    assert service_diffs(client, tr) == {f"{stack}_web": []}
    assert object_diffs(client, tr) == []
    live = client.inspect_service(f"{stack}_web")["Spec"]
    assert live["Labels"]["com.docker.stack.namespace"] == stack
    assert live["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"].startswith(f"{stack}_site-")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d, p: d["services"]["web"].__setitem__("image", f"{IMAGE}:2"),
         {"/Labels/com.docker.stack.image", "/TaskTemplate/ContainerSpec/Image"}),
        (lambda d, p: d["services"]["web"]["deploy"].__setitem__("replicas", 3),
         {"/Mode/Replicated/Replicas"}),
        (lambda d, p: d["services"]["web"]["environment"].__setitem__("MODE", "debug"),
         {"/TaskTemplate/ContainerSpec/Env/MODE"}),
        (lambda d, p: d["services"]["web"].__setitem__("ports", [f"{p}:8080"]),
         {"/EndpointSpec/Ports/tcp:8080/PublishedPort"}),
        (lambda d, p: d["configs"]["site"].__setitem__("file", "./index-v2.html"),
         {"/TaskTemplate/ContainerSpec/Configs/~1www~1index.html/ConfigName"}),
    ],
    ids=["image", "replicas", "env", "port", "config-content"],
)
def test_one_change_gives_exactly_one_field(client: SwarmClient, stack: str, tmp_path: Path,
                                            change: Any, expected: set[str]) -> None:
    port, other, _ = _ports()
    write_files(tmp_path)
    (tmp_path / "index-v2.html").write_text("<h1>v2</h1>\n")
    doc = web_compose(port)
    tr = do_translate(doc, stack, tmp_path)
    create(client, tr)

    changed = copy.deepcopy(doc)
    change(changed, other)
    tr2 = do_translate(changed, stack, tmp_path)
    diffs = service_diffs(client, tr2)[f"{stack}_web"]
    assert set(paths(diffs)) == expected, diffs
    for entry in diffs:
        assert not entry.absent_before and not entry.absent_after, entry

    # Applying the change makes the diff empty again (the new config is a new object).
    for name, config in tr2.configs.items():
        if name not in tr.configs and config.spec is not None:
            client.create_config(config.spec)
    live = client.inspect_service(f"{stack}_web")
    client.update_service(live["ID"], live["Version"]["Index"], tr2.services[f"{stack}_web"].spec)
    assert service_diffs(client, tr2) == {f"{stack}_web": []}


def test_networks_volumes_global_mode_and_long_ports_round_trip(client: SwarmClient, stack: str,
                                                                tmp_path: Path) -> None:
    _, udp, host = _ports()
    tr = do_translate(multi_compose(udp, host), stack, tmp_path)
    create(client, tr)
    assert service_diffs(client, tr) == {f"{stack}_api": [], f"{stack}_worker": []}
    assert object_diffs(client, tr) == []

    ids = client.network_ids()
    live = client.inspect_service(f"{stack}_api")["Spec"]
    # The daemon stores network IDs; normalization reads them back as names.
    assert {n["Target"] for n in live["TaskTemplate"]["Networks"]} <= set(ids.values())
    canonical = normalize_service(live, network_ids=ids)
    assert set(canonical["TaskTemplate"]["Networks"]) == {f"{stack}_back", f"{stack}_front"}


def test_secret_values_never_show_in_a_diff(client: SwarmClient, stack: str, tmp_path: Path) -> None:
    port, _, _ = _ports()
    write_files(tmp_path)
    tr = do_translate(web_compose(port), stack, tmp_path)
    create(client, tr)
    (tmp_path / "token.txt").write_text("another-s3cret\n")
    tr2 = do_translate(web_compose(port), stack, tmp_path)
    diffs = service_diffs(client, tr2)[f"{stack}_web"]
    assert paths(diffs) == ["/TaskTemplate/ContainerSpec/Secrets/token/SecretName"]
    text = " ".join(field_line(d) for d in diffs) + repr(tr2.secrets)
    assert "s3cret" not in text


# -- docker stack deploy parity --------------------------------------------------------------------


def stack_deploy(directory: Path, doc: dict[str, Any], stack: str) -> None:
    compose = directory / "compose.yaml"
    with compose.open("w") as handle:
        yaml.safe_dump(doc, handle, default_flow_style=False)
    docker = shutil.which("docker")
    assert docker, "the docker CLI is needed for the parity test"
    result = subprocess.run(
        [docker, "stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", str(compose), stack],
        capture_output=True, text=True, cwd=directory, env={**os.environ, "DOCKER_HOST": swarm.docker_host()},
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("scenario", ["web", "multi"])
def test_docker_stack_deploy_gives_the_same_specs(client: SwarmClient, stack: str, tmp_path: Path,
                                                  scenario: str) -> None:
    port, udp, host = _ports()
    write_files(tmp_path)
    doc = web_compose(port) if scenario == "web" else multi_compose(udp, host)
    stack_deploy(tmp_path, doc, stack)
    # The CLI names configs and secrets without a content hash; everything else must match.
    tr = do_translate(doc, stack, tmp_path, hash_names=False)
    assert service_diffs(client, tr) == {key: [] for key in tr.services}
    assert object_diffs(client, tr) == []


# -- docker stack deploy parity over the awesome-compose corpus ------------------------------------

# Image-only files that `docker stack config` accepts (corpora/README.md).
IMAGE_ONLY = [
    "elasticsearch-logstash-kibana", "gitea-postgres", "minecraft", "nextcloud-postgres",
    "nextcloud-redis-mariadb", "pihole-cloudflared-DoH", "portainer", "postgresql-pgadmin",
    "prometheus-grafana", "wireguard", "wordpress-mysql",
]


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any) -> Any:
    """What `docker stack config` does with no variables set: ${VAR} -> "", ${VAR:-x} -> x."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: m.group(2) or "", value.replace("$$", "\0")).replace("\0", "$")
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def _offline(doc: dict[str, Any], base: int) -> dict[str, Any]:
    """The same document with local test images (nothing is pulled) and published ports moved to
    a free range (nothing collides with other stacks). Everything else is left as written."""
    doc = copy.deepcopy(doc)
    counter = iter(range(base, base + 100))
    moved: dict[str, int] = {}
    for service in doc.get("services", {}).values():
        service["image"] = f"{IMAGE}:1"
        ports = []
        for port in service.get("ports", []):
            if isinstance(port, dict):
                port = {**port, "published": moved.setdefault(str(port.get("published")), next(counter))}
            else:
                text, _, protocol = str(port).partition("/")
                parts = text.split(":")
                if len(parts) >= 2:
                    published = moved.setdefault(parts[-2], next(counter))
                    text = f"{published}:{parts[-1]}"
                port = text + (f"/{protocol}" if protocol else "")
            ports.append(port)
        if ports:
            service["ports"] = ports
    return doc


@pytest.mark.parametrize("sample", IMAGE_ONLY)
def test_awesome_compose_matches_docker_stack_deploy(client: SwarmClient, stack: str, tmp_path: Path,
                                                     corpora: Path, sample: str) -> None:
    folder = tmp_path / sample
    shutil.copytree(corpora / "awesome-compose" / sample, folder)
    source = next(folder.glob("compose.y*ml"))
    doc = _offline(interpolate(yaml.safe_load(source.read_text())), random.randrange(30000, 32000, 100))
    if sample == "elasticsearch-logstash-kibana":
        # driver: bridge gives a node-local network that Swarm refuses for services (we warn).
        doc["networks"]["elastic"]["driver"] = "overlay"
    stack_deploy(folder, doc, stack)

    def read(path: str) -> bytes:
        return (folder / path).read_bytes()

    result = translate(doc, stack, read_file=read, project_dir=str(folder), home_dir=os.path.expanduser("~"),
                       hash_names=False)
    assert not result.diagnostics.has_errors, [str(d) for d in result.diagnostics.errors]
    assert service_diffs(client, result) == {name: [] for name in result.services}
    assert object_diffs(client, result) == []
