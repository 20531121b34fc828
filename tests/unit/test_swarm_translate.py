"""compose -> Swarm payloads: table-driven cases, and every Swarm-ready file of awesome-compose."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from testsupport import CORPORA, unavailable

from gitops.backends.swarm import translate as tr
from gitops.model import Severity
from gitops.validate.units import duration_ns, nano_cpus, size_bytes

STACK = "st"
NAMING_KEY = bytes(range(32))


def run(doc: dict[str, Any], files: dict[str, bytes] | None = None, **kwargs: Any) -> tr.Translation:
    store = files or {}

    def read(path: str) -> bytes:
        if path not in store:
            raise FileNotFoundError(2, "No such file or directory", path)
        return store[path]

    return tr.translate(doc, STACK, read_file=read, **{"secret_key": NAMING_KEY, **kwargs})


def service(fragment: dict[str, Any], **top: Any) -> tuple[dict[str, Any], tr.Translation]:
    doc = {"services": {"web": {"image": "app:1", **fragment}}, **top}
    result = run(doc)
    spec = result.services["st_web"].spec if "st_web" in result.services else {}
    return dict(spec), result


def get(value: Any, path: str) -> Any:
    for part in path.strip("/").split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part.replace("~1", "/")]
    return value


def messages(result: tr.Translation, severity: Severity | None = None) -> list[tuple[str, str]]:
    return [(d.pointer, d.message) for d in result.diagnostics if severity is None or d.severity is severity]


# -- units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ns"), [
    ("10s", 10 * 10**9), ("1m30s", 90 * 10**9), ("250ms", 250 * 10**6), ("1.5s", 1_500_000_000),
    ("2h", 7200 * 10**9), ("10us", 10_000), ("0", 0), ("1h2m3s4ms", 3_723_004_000_000),
])
def test_durations(text: str, ns: int) -> None:
    assert duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["10", "s", "", 10, "1x", True])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        duration_ns(bad)


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 << 20), ("64M", 64 << 20), ("1g", 1 << 30), ("1.5G", 3 << 29), ("100", 100), (2048, 2048),
    ("10kb", 10 << 10), ("1GiB", 1 << 30), ("12 m", 12 << 20),
])
def test_sizes(text: Any, size: int) -> None:
    assert size_bytes(text) == size


@pytest.mark.parametrize(("cpus", "nanos"), [("0.5", 500_000_000), (0.25, 250_000_000), ("2", 2 * 10**9),
                                             ("0.000000001", 1)])
def test_cpus(cpus: Any, nanos: int) -> None:
    assert nano_cpus(cpus) == nanos


@pytest.mark.parametrize("bad", ["0.0000000001", "-1", "half", True])
def test_bad_cpus(bad: Any) -> None:
    with pytest.raises(ValueError):
        nano_cpus(bad)


# -- services: (compose fragment, {path in ServiceSpec: expected value}) ---------------------------

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("minimal", {}, {
        "/Name": "st_web",
        "/Labels": {"com.docker.stack.namespace": "st", "com.docker.stack.image": "app:1"},
        "/TaskTemplate/ContainerSpec": {"Image": "app:1", "Labels": {"com.docker.stack.namespace": "st"}},
        "/TaskTemplate/Networks": [{"Target": "st_default", "Aliases": ["web"]}],
        "/Mode": {"Replicated": {"Replicas": 1}},
    }),
    ("command string is split like a shell", {"command": "sh -c 'echo hi there'"},
     {"/TaskTemplate/ContainerSpec/Args": ["sh", "-c", "echo hi there"]}),
    ("entrypoint list", {"entrypoint": ["/bin/app", 1]},
     {"/TaskTemplate/ContainerSpec/Command": ["/bin/app", "1"]}),
    ("environment map, sorted, typed values", {"environment": {"B": 2, "A": "x", "C": None, "D": True, "E": ""}},
     {"/TaskTemplate/ContainerSpec/Env": ["A=x", "B=2", "C", "D=true", "E="]}),
    ("environment list", {"environment": ["Z=1", "A=b=c", "BARE"]},
     {"/TaskTemplate/ContainerSpec/Env": ["A=b=c", "BARE", "Z=1"]}),
    ("labels: deploy.labels on the service, labels on the container",
     {"labels": ["c=1"], "deploy": {"labels": {"s": "2"}}},
     {"/Labels": {"s": "2", "com.docker.stack.namespace": "st", "com.docker.stack.image": "app:1"},
      "/TaskTemplate/ContainerSpec/Labels": {"c": "1", "com.docker.stack.namespace": "st"}}),
    ("short ports", {"ports": ["80", "8080:81", "9000-9001:90-91/udp"]}, {
        "/EndpointSpec/Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 90, "PublishedPort": 9000, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 91, "PublishedPort": 9001, "PublishMode": "ingress"},
        ]}),
    ("published range to one target", {"ports": ["7000-7001:80"]}, {
        "/EndpointSpec/Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 7000, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 7001, "PublishMode": "ingress"},
        ]}),
    ("target range only", {"ports": ["3000-3001"]}, {
        "/EndpointSpec/Ports": [
            {"Protocol": "tcp", "TargetPort": 3000, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 3001, "PublishMode": "ingress"},
        ]}),
    ("long ports, host mode, published as string", {"ports": [
        {"target": 80, "published": "8080", "mode": "host", "protocol": "udp"}, {"target": 443}]}, {
        "/EndpointSpec/Ports": [
            {"Protocol": "tcp", "TargetPort": 443, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"},
        ]}),
    ("endpoint mode dnsrr", {"deploy": {"endpoint_mode": "DNSRR"}}, {"/EndpointSpec": {"Mode": "dnsrr"}}),
    ("named, bind, anonymous and read-only volumes",
     {"volumes": ["data:/data", "/srv:/srv:ro", "/anon", "/x:/y:rshared"]}, {
         "/TaskTemplate/ContainerSpec/Mounts": [
             {"Type": "volume", "Target": "/data", "Source": "st_data",
              "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "st"}}},
             {"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": True},
             {"Type": "volume", "Target": "/anon"},
             {"Type": "bind", "Source": "/x", "Target": "/y", "BindOptions": {"Propagation": "rshared"}},
         ]}),
    ("long volumes: tmpfs size, nocopy, named with name: and driver",
     {"volumes": [{"type": "tmpfs", "target": "/t", "tmpfs": {"size": "1m"}},
                  {"type": "volume", "source": "named", "target": "/n", "read_only": True,
                   "volume": {"nocopy": True}}]}, {
         "/TaskTemplate/ContainerSpec/Mounts": [
             {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}},
             {"Type": "volume", "Target": "/n", "ReadOnly": True, "Source": "shared-data",
              "VolumeOptions": {"NoCopy": True, "Labels": {"com.docker.stack.namespace": "st", "k": "v"},
                                "DriverConfig": {"Name": "local", "Options": {"type": "none"}}}},
         ]}),
    ("external volume gets no labels", {"volumes": ["ext:/e"]}, {
        "/TaskTemplate/ContainerSpec/Mounts": [{"Type": "volume", "Target": "/e", "Source": "ext",
                                               "VolumeOptions": {}}]}),
    ("networks: list, aliases, external and name:", {"networks": {"front": {"aliases": ["www"]}, "ext": None,
                                                                  "named": None}}, {
        "/TaskTemplate/Networks": [
            {"Target": "outside", "Aliases": ["web"]},
            {"Target": "pinned-net", "Aliases": ["web"]},
            {"Target": "st_front", "Aliases": ["www", "web"]},
        ]}),
    ("host network gets no alias", {"networks": ["hostnet"]},
     {"/TaskTemplate/Networks": [{"Target": "host"}]}),
    ("healthcheck string test and durations", {"healthcheck": {
        "test": "wget -q localhost", "interval": "30s", "timeout": "5s", "retries": 3, "start_period": "1m"}},
     {"/TaskTemplate/ContainerSpec/Healthcheck": {
         "Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 30 * 10**9, "Timeout": 5 * 10**9,
         "StartPeriod": 60 * 10**9, "Retries": 3}}),
    ("healthcheck disabled", {"healthcheck": {"disable": True}},
     {"/TaskTemplate/ContainerSpec/Healthcheck": {"Test": ["NONE"]}}),
    ("global mode", {"deploy": {"mode": "global"}}, {"/Mode": {"Global": {}}}),
    ("replicated job", {"deploy": {"mode": "replicated-job", "replicas": 3}},
     {"/Mode": {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}}}),
    ("replicas 0", {"deploy": {"replicas": 0}}, {"/Mode": {"Replicated": {"Replicas": 0}}}),
    ("resources", {"deploy": {"resources": {"limits": {"cpus": "1.5", "memory": "256M", "pids": 100},
                                            "reservations": {"cpus": 0.25, "memory": "64m"}}}},
     {"/TaskTemplate/Resources": {
         "Limits": {"NanoCPUs": 1_500_000_000, "MemoryBytes": 256 << 20, "Pids": 100},
         "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 64 << 20}}}),
    ("generic resources", {"deploy": {"resources": {"reservations": {"generic_resources": [
        {"discrete_resource_spec": {"kind": "gpu", "value": 2}}]}}}},
     {"/TaskTemplate/Resources/Reservations/GenericResources": [
         {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}]}),
    ("restart policy", {"deploy": {"restart_policy": {"condition": "on-failure", "delay": "5s",
                                                      "max_attempts": 3, "window": "2m"}}},
     {"/TaskTemplate/RestartPolicy": {"Condition": "on-failure", "Delay": 5 * 10**9, "MaxAttempts": 3,
                                      "Window": 120 * 10**9}}),
    ("legacy restart always, as docker stack deploy", {"restart": "always"},
     {"/TaskTemplate/RestartPolicy": {"Condition": "any"}}),
    ("legacy restart on-failure:5", {"restart": "on-failure:5"},
     {"/TaskTemplate/RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 5}}),
    ("placement", {"deploy": {"placement": {"constraints": ["node.role==manager"],
                                            "preferences": [{"spread": "node.labels.zone"}],
                                            "max_replicas_per_node": 2}}},
     {"/TaskTemplate/Placement": {"Constraints": ["node.role==manager"],
                                  "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                                  "MaxReplicas": 2}}),
    ("update and rollback config", {"deploy": {
        "update_config": {"parallelism": 2, "delay": "10s", "failure_action": "rollback", "monitor": "1m",
                          "max_failure_ratio": 0.1, "order": "start-first"},
        "rollback_config": {"order": "stop-first"}}},
     {"/UpdateConfig": {"Parallelism": 2, "Delay": 10 * 10**9, "FailureAction": "rollback",
                        "Monitor": 60 * 10**9, "MaxFailureRatio": 0.1, "Order": "start-first"},
      "/RollbackConfig": {"Parallelism": 1, "Order": "stop-first"}}),
    ("update config parallelism 0 stays 0", {"deploy": {"update_config": {"parallelism": 0}}},
     {"/UpdateConfig": {"Parallelism": 0}}),
    ("container options", {
        "stop_grace_period": "1m30s", "user": "1000:1000", "working_dir": "/app", "hostname": "h",
        "init": False, "stop_signal": "SIGINT", "tty": True, "stdin_open": True, "read_only": True,
        "cap_add": ["net_admin", "CAP_SYS_TIME"], "cap_drop": ["ALL"], "dns": "1.1.1.1",
        "dns_search": ["a.example"], "extra_hosts": ["db:10.0.0.1", "v6:::1"],
        "sysctls": ["net.core.somaxconn=1024"], "ulimits": {"nproc": 65535, "nofile": {"soft": 1, "hard": 2}},
        "logging": {"driver": "json-file", "options": {"max-size": "10m"}}, "isolation": "default"}, {
        "/TaskTemplate/ContainerSpec/StopGracePeriod": 90 * 10**9,
        "/TaskTemplate/ContainerSpec/User": "1000:1000",
        "/TaskTemplate/ContainerSpec/Dir": "/app",
        "/TaskTemplate/ContainerSpec/Hostname": "h",
        "/TaskTemplate/ContainerSpec/Init": False,
        "/TaskTemplate/ContainerSpec/StopSignal": "SIGINT",
        "/TaskTemplate/ContainerSpec/TTY": True,
        "/TaskTemplate/ContainerSpec/OpenStdin": True,
        "/TaskTemplate/ContainerSpec/ReadOnly": True,
        "/TaskTemplate/ContainerSpec/CapabilityAdd": ["CAP_NET_ADMIN", "CAP_SYS_TIME"],
        "/TaskTemplate/ContainerSpec/CapabilityDrop": ["ALL"],
        "/TaskTemplate/ContainerSpec/DNSConfig": {"Nameservers": ["1.1.1.1"], "Search": ["a.example"]},
        "/TaskTemplate/ContainerSpec/Hosts": ["10.0.0.1 db", "::1 v6"],
        "/TaskTemplate/ContainerSpec/Sysctls": {"net.core.somaxconn": "1024"},
        "/TaskTemplate/ContainerSpec/Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2},
                                                {"Name": "nproc", "Soft": 65535, "Hard": 65535}],
        "/TaskTemplate/LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
        "/TaskTemplate/ContainerSpec/Isolation": "default",
    }),
    ("extra_hosts map form", {"extra_hosts": {"db": "10.0.0.2"}},
     {"/TaskTemplate/ContainerSpec/Hosts": ["10.0.0.2 db"]}),
]

TOP = {
    "volumes": {"data": None, "named": {"name": "shared-data", "driver": "local", "driver_opts": {"type": "none"},
                                        "labels": {"k": "v"}},
                "ext": {"external": True}},
    "networks": {"front": None, "ext": {"external": True, "name": "outside"}, "named": {"name": "pinned-net"},
                 "hostnet": {"external": True, "name": "host"}},
}


@pytest.mark.parametrize(("fragment", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_service_translation(fragment: dict[str, Any], expected: dict[str, Any]) -> None:
    spec, result = service(fragment, **TOP)
    assert not result.diagnostics.has_errors, messages(result)
    for path, value in expected.items():
        assert get(spec, path) == value, path


# -- configs and secrets ---------------------------------------------------------------------------

FILES = {"./site.conf": b"server {}\n", "./pw.txt": b"hunter2-very-secret\n"}


def _objects_doc(**service_extra: Any) -> dict[str, Any]:
    return {
        "services": {"web": {"image": "app:1", "configs": [
            {"source": "site", "target": "/etc/nginx/site.conf", "uid": "101", "gid": 101, "mode": "0440"},
            "ext_conf"], "secrets": ["pw", {"source": "ext_pw", "target": "api_key", "mode": 0o400}],
            **service_extra}},
        "configs": {"site": {"file": "./site.conf", "labels": {"role": "web"}},
                    "ext_conf": {"external": True}},
        "secrets": {"pw": {"file": "./pw.txt"}, "ext_pw": {"external": True, "name": "prod_api_key"}},
    }


def test_configs_and_secrets_are_content_hashed_and_referenced() -> None:
    result = run(_objects_doc(), FILES)
    assert not result.diagnostics.has_errors, messages(result)
    import hashlib
    import hmac

    site_hash = hashlib.sha256(FILES["./site.conf"]).hexdigest()[:10]
    pw_hash = hmac.new(NAMING_KEY, FILES["./pw.txt"], hashlib.sha256).hexdigest()[:10]
    assert set(result.configs) == {f"st_site-{site_hash}", "ext_conf"}
    assert set(result.secrets) == {f"st_pw-{pw_hash}", "prod_api_key"}
    site = result.configs[f"st_site-{site_hash}"]
    assert site.spec == {"Name": f"st_site-{site_hash}", "Data": "c2VydmVyIHt9Cg==",
                         "Labels": {"role": "web", "com.docker.stack.namespace": "st"}}
    assert result.configs["ext_conf"].external and result.configs["ext_conf"].spec is None
    pw = result.secrets[f"st_pw-{pw_hash}"]
    assert pw.payload()["Data"] == "aHVudGVyMi12ZXJ5LXNlY3JldAo="
    assert "Data" not in (pw.spec or {})
    container = result.services["st_web"].spec["TaskTemplate"]["ContainerSpec"]
    assert container["Configs"] == [
        {"File": {"Name": "ext_conf", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigName": "ext_conf"},
        {"File": {"Name": "/etc/nginx/site.conf", "UID": "101", "GID": "101", "Mode": 0o440},
         "ConfigName": f"st_site-{site_hash}"},
    ]
    assert container["Secrets"] == [
        {"File": {"Name": "api_key", "UID": "0", "GID": "0", "Mode": 0o400}, "SecretName": "prod_api_key"},
        {"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": f"st_pw-{pw_hash}"},
    ]


def test_changed_content_gives_a_new_name_and_the_same_labels() -> None:
    first = run(_objects_doc(), FILES)
    second = run(_objects_doc(), {**FILES, "./site.conf": b"server { listen 81; }\n"})
    (a,), (b,) = ([n for n in r.configs if n != "ext_conf"] for r in (first, second))
    assert a != b and a.startswith("st_site-") and b.startswith("st_site-")
    assert first.configs[a].spec["Labels"] == second.configs[b].spec["Labels"]  # type: ignore[index]


def test_a_secret_name_is_keyed_and_a_config_name_is_the_plain_content_hash() -> None:
    import hashlib

    plain = hashlib.sha256(FILES["./pw.txt"]).hexdigest()[:10]
    keyed = {key: run(_objects_doc(), FILES, secret_key=key) for key in (NAMING_KEY, b"\x01" * 32)}
    names = {key: {n for n in r.secrets if n.startswith("st_pw-")} for key, r in keyed.items()}
    (ours,), (theirs,) = names.values()
    assert ours != theirs, "another key (another app) must give another name for the same content"
    assert plain not in ours and plain not in theirs
    assert re.fullmatch(r"st_pw-[0-9a-f]{10}", ours)
    # The same key and content: the same name (plan, apply and later runs agree).
    assert {n for n in run(_objects_doc(), FILES).secrets if n.startswith("st_pw-")} == {ours}
    # A config's content is shown by plans anyway: its suffix stays the plain hash, whatever the key.
    site = hashlib.sha256(FILES["./site.conf"]).hexdigest()[:10]
    assert all(f"st_site-{site}" in r.configs for r in keyed.values())
    # "plain" is the naming of stacks deployed before keyed names; no key: the process's random key.
    assert f"st_pw-{plain}" in run(_objects_doc(), FILES, secret_key="plain").secrets
    unkeyed = [{n for n in tr.translate(_objects_doc(), STACK, read_file=FILES.__getitem__).secrets
                if n.startswith("st_pw-")} for _ in range(2)]
    assert unkeyed[0] == unkeyed[1] and f"st_pw-{plain}" not in unkeyed[0]


def test_the_naming_functions() -> None:
    import hashlib
    import hmac

    from gitops.backends.swarm.compose import PROCESS_KEY, content_hash, keyed_hash, naming_key, object_suffix

    data, key = b"hunter2\n", bytes(range(32))
    assert keyed_hash(data, key) == hmac.new(key, data, hashlib.sha256).hexdigest()[:10]
    assert keyed_hash(data, key) != content_hash(data) == hashlib.sha256(data).hexdigest()[:10]
    assert keyed_hash(data, key) != keyed_hash(data, bytes(32)) and keyed_hash(data, key) != keyed_hash(b"x", key)
    assert object_suffix("secrets", data, key) == keyed_hash(data, key)
    assert object_suffix("configs", data, key) == content_hash(data)
    assert object_suffix("secrets", data, None) == content_hash(data)
    assert naming_key(key) == key and naming_key("plain") is None
    assert naming_key(None) == PROCESS_KEY and len(PROCESS_KEY) == 32


def test_without_hashing_names_are_the_clis() -> None:
    result = run(_objects_doc(), FILES, hash_names=False)
    assert set(result.configs) == {"st_site", "ext_conf"}
    assert set(result.secrets) == {"st_pw", "prod_api_key"}


def test_secret_values_never_show() -> None:
    result = run(_objects_doc(), FILES)
    text = repr(result) + str(result) + "".join(str(d) for d in result.diagnostics)
    assert "hunter2" not in text
    assert "aHVudGVy" not in text  # nor its base64
    (secret,) = [s for s in result.secrets.values() if not s.external]
    assert "redacted" in repr(secret.data)


def test_unreadable_file_is_an_error_naming_the_path_only() -> None:
    result = run(_objects_doc(), {"./site.conf": b"x"})
    assert ("/secrets/pw/file", "cannot read './pw.txt': No such file or directory") in messages(result)


def test_object_names_over_64_characters_are_errors() -> None:
    doc = {"services": {}, "configs": {"c" * 60: {"file": "./site.conf"}}}
    result = run(doc, FILES)
    assert any("longer than 64" in m for _, m in messages(result, Severity.ERROR))


# -- top-level objects -----------------------------------------------------------------------------


def test_networks_created_are_those_services_use() -> None:
    doc = {
        "services": {"a": {"image": "x"}, "b": {"image": "x", "networks": ["front", "ext"]}},
        "networks": {"front": {"attachable": True, "internal": True, "labels": ["tier=front"],
                               "driver_opts": {"encrypted": ""},
                               "ipam": {"config": [{"subnet": "10.9.0.0/24"}]}},
                     "ext": {"external": True}, "unused": None},
    }
    result = run(doc)
    assert set(result.networks) == {"st_default", "st_front", "ext"}
    assert result.networks["st_default"].spec == {
        "Name": "st_default", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "st"}}
    assert result.networks["st_front"].spec == {
        "Name": "st_front", "Driver": "overlay", "Attachable": True, "Internal": True,
        "Labels": {"tier": "front", "com.docker.stack.namespace": "st"}, "Options": {"encrypted": ""},
        "IPAM": {"Config": [{"Subnet": "10.9.0.0/24"}]}}
    assert result.networks["ext"].external
    assert [(d.pointer, d.code) for d in result.diagnostics.warnings] == [("/networks/unused", "swarm-ignored")]


def test_volume_objects() -> None:
    doc = {"services": {"a": {"image": "x", "volumes": ["data:/d", "ext:/e"]}},
           "volumes": {"data": {"driver_opts": {"o": "bind"}}, "ext": {"external": True}, "unused": None}}
    result = run(doc)
    assert result.volumes["st_data"].spec == {"Name": "st_data", "Driver": "local", "DriverOpts": {"o": "bind"},
                                              "Labels": {"com.docker.stack.namespace": "st"}}
    assert result.volumes["ext"].external
    assert "st_unused" not in result.volumes


# -- diagnostics -----------------------------------------------------------------------------------

DIAGNOSTICS: list[tuple[str, dict[str, Any], Severity, str, str]] = [
    ("build", {"build": "."}, Severity.WARNING, "/services/web/build", "ignored by docker stack deploy"),
    ("container_name", {"container_name": "x"}, Severity.WARNING, "/services/web/container_name", "ignored"),
    ("depends_on", {"depends_on": ["db"]}, Severity.WARNING, "/services/web/depends_on", "ignored"),
    ("links", {"links": ["db"]}, Severity.WARNING, "/services/web/links", "ignored"),
    ("expose", {"expose": [80]}, Severity.WARNING, "/services/web/expose", "ignored"),
    ("unknown key", {"frobnicate": 1}, Severity.ERROR, "/services/web/frobnicate", "Additional property frobnicate"),
    ("restart no", {"restart": "no"}, Severity.WARNING, "/services/web/restart", "restart by default"),
    ("host ip", {"ports": ["127.0.0.1:80:80"]}, Severity.WARNING, "/services/web/ports/0", "every interface"),
    ("start_interval", {"healthcheck": {"test": "true", "start_interval": "1s"}}, Severity.WARNING,
     "/services/web/healthcheck/start_interval", "1.44"),
    ("ipv4_address", {"networks": {"front": {"ipv4_address": "10.0.0.9"}}}, Severity.WARNING,
     "/services/web/networks/front/ipv4_address", "ignored"),
    ("undefined network", {"networks": ["nope"]}, Severity.ERROR, "/services/web/networks/nope", "undefined network"),
    ("undefined volume", {"volumes": ["nope:/x"]}, Severity.ERROR, "/services/web/volumes/0", "undefined volume"),
    ("undefined secret", {"secrets": ["nope"]}, Severity.ERROR, "/services/web/secrets/0", "undefined secret"),
    ("relative bind", {"volumes": ["./data:/data"]}, Severity.ERROR, "/services/web/volumes/0", "relative bind"),
    ("bad port", {"ports": ["80-81:90-92"]}, Severity.ERROR, "/services/web/ports/0", "Invalid ranges"),
    ("bad duration", {"stop_grace_period": "10"}, Severity.ERROR, "/services/web/stop_grace_period", "duration"),
    ("replicas with global", {"deploy": {"mode": "global", "replicas": 2}}, Severity.ERROR,
     "/services/web/deploy/replicas", "replicas can only"),
    ("test with disable", {"healthcheck": {"test": "x", "disable": True}}, Severity.ERROR,
     "/services/web/healthcheck", "cannot both"),
    ("dnsrr with ingress port", {"ports": ["80:80"], "deploy": {"endpoint_mode": "dnsrr"}}, Severity.ERROR,
     "/services/web/ports/0", "dnsrr"),
    ("bad cpus", {"deploy": {"resources": {"limits": {"cpus": "lots"}}}}, Severity.ERROR,
     "/services/web/deploy/resources/limits/cpus", "invalid cpus"),
]


@pytest.mark.parametrize(("fragment", "severity", "pointer", "text"), [d[1:] for d in DIAGNOSTICS],
                         ids=[d[0] for d in DIAGNOSTICS])
def test_diagnostics(fragment: dict[str, Any], severity: Severity, pointer: str, text: str) -> None:
    _, result = service(fragment, networks={"front": None})
    found = [(p, m) for p, m in messages(result, severity) if p == pointer]
    assert found and any(text in m for _, m in found), messages(result)


def test_missing_image_is_an_error_and_the_service_is_left_out() -> None:
    result = run({"services": {"web": {"build": "."}}})
    assert "st_web" not in result.services
    assert ("/services/web", "a Swarm service needs image: (Swarm does not build images)") in messages(result)


def test_relative_bind_resolves_against_the_project_dir_when_given() -> None:
    result = run({"services": {"web": {"image": "x", "volumes": ["./conf:/etc/conf:ro"]}}}, project_dir="/srv/app")
    mount = result.services["st_web"].spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    assert mount == {"Type": "bind", "Source": "/srv/app/conf", "Target": "/etc/conf", "ReadOnly": True}
    assert not result.diagnostics.has_errors


def test_pointer_escapes() -> None:
    assert tr.pointer("services", "a/b", "c~d", 0) == "/services/a~1b/c~0d/0"


# -- the awesome-compose corpus --------------------------------------------------------------------

# The files `docker stack config` accepts (corpora/README.md, "Swarm loader" table).
SWARM_ACCEPTED = [
    "angular/compose.yaml", "apache-php/compose.yaml", "aspnet-mssql/compose.yaml", "django/compose.yaml",
    "elasticsearch-logstash-kibana/compose.yaml", "fastapi/compose.yaml", "flask-redis/compose.yaml",
    "flask/compose.yaml", "gitea-postgres/compose.yaml", "minecraft/compose.yaml",
    "nextcloud-postgres/compose.yaml", "nextcloud-redis-mariadb/compose.yaml", "nginx-flask-mongo/compose.yaml",
    "nginx-golang/compose.yaml", "nginx-nodejs-redis/compose.yaml", "nginx-wsgi-flask/compose.yaml",
    "pihole-cloudflared-DoH/compose.yaml", "portainer/compose.yaml", "postgresql-pgadmin/compose.yaml",
    "prometheus-grafana/compose.yaml", "react-express-mongodb/compose.yaml", "react-express-mysql/compose.yaml",
    "react-nginx/compose.yaml", "sparkjava-mysql/compose.yaml", "sparkjava/compose.yaml",
    "spring-postgres/compose.yaml", "traefik-golang/compose.yaml", "vuejs/compose.yaml",
    "wireguard/compose.yaml", "wordpress-mysql/compose.yaml",
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


def load_corpus_file(relative: str) -> tuple[dict[str, Any], Path]:
    if not CORPORA.is_dir():
        unavailable(f"test corpora not found at {CORPORA}")
    path = CORPORA / "awesome-compose" / relative
    return interpolate(yaml.safe_load(path.read_text())), path.parent


@pytest.mark.parametrize("relative", SWARM_ACCEPTED)
def test_awesome_compose_translates(relative: str) -> None:
    doc, folder = load_corpus_file(relative)
    services = doc.get("services") or {}
    # Build-only services cannot run on Swarm: the only errors allowed are theirs, and the rest of
    # the file still translates.
    build_only = {name for name, s in services.items() if "image" not in s}

    def read(path: str) -> bytes:
        return (folder / path).read_bytes()

    result = tr.translate(doc, "corpus", secret_key=NAMING_KEY, read_file=read, project_dir=str(folder),
                          home_dir="/home/deploy",
                          file=relative)
    errors = [(d.pointer, d.message) for d in result.diagnostics.errors]
    assert errors == [(f"/services/{name}", "a Swarm service needs image: (Swarm does not build images)")
                      for name in sorted(build_only)]
    assert set(result.services) == {f"corpus_{name}" for name in set(services) - build_only}
    for name, obj in result.services.items():
        spec = obj.spec
        assert spec["Name"] == name
        assert spec["Labels"]["com.docker.stack.namespace"] == "corpus"
        assert spec["Labels"]["com.docker.stack.image"] == spec["TaskTemplate"]["ContainerSpec"]["Image"]
        for attachment in spec["TaskTemplate"]["Networks"]:
            target = attachment["Target"]
            assert target in result.networks, target
    for warning in result.diagnostics.warnings:
        assert warning.pointer.startswith(("/services/", "/networks/", "/volumes/", "/name")), warning
        assert warning.file == relative
    for network in result.networks.values():
        if network.spec is not None:
            assert network.spec["Labels"]["com.docker.stack.namespace"] == "corpus"


def test_corpus_warnings_name_the_keys_swarm_ignores() -> None:
    doc, folder = load_corpus_file("elasticsearch-logstash-kibana/compose.yaml")
    result = tr.translate(doc, "corpus", secret_key=NAMING_KEY, project_dir=str(folder))
    pointers = {d.pointer for d in result.diagnostics.warnings}
    assert {"/services/elasticsearch/container_name", "/services/logstash/depends_on",
            "/networks/elastic/driver"} <= pointers
    logstash = result.services["corpus_logstash"].spec
    assert logstash["TaskTemplate"]["ContainerSpec"]["Args"] == [
        "logstash", "-f", "/usr/share/logstash/pipeline/logstash-nginx.config"]
    ports = {(p["Protocol"], p["TargetPort"]) for p in logstash["EndpointSpec"]["Ports"]}
    assert ports == {("tcp", 5000), ("udp", 5000), ("tcp", 5044), ("tcp", 9600)}


def test_iter_objects_lists_dependencies_before_services() -> None:
    result = run(_objects_doc(), FILES)
    kinds = [kind for kind, _, _ in tr.iter_objects(result)]
    assert kinds.index("Service") > max(i for i, k in enumerate(kinds) if k != "Service")
    assert ("Config", "ext_conf", True) in list(tr.iter_objects(result))
