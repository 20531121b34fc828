"""Normalization of Swarm specs: daemon defaults vanish, real changes stay, secrets are masked.

The fixtures in data/swarm/ were recorded from Docker 20.10 (API 1.41): each holds the compose
document, our translation (``desired``), and what the daemon returned after the objects were created
through the API (``*-api.json``) or by ``docker stack deploy`` (``*-cli.json``), raw and with
``insertDefaults``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gitops.backends.swarm import normalize as n
from gitops.backends.swarm.translate import translate
from gitops.model.plans import MASK
from gitops.views.plans import field_line

DATA = Path(__file__).parent / "data" / "swarm"
FIXTURES = sorted(p.name for p in DATA.glob("*.json"))
S = 1_000_000_000


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / name).read_text()))


# -- recorded from the real engine -----------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES)
def test_recorded_services_diff_empty(fixture: str) -> None:
    record = load(fixture)
    assert record["services"]
    for name, service in record["services"].items():
        for live in ("live", "live_insert_defaults"):
            found = n.diff_service(service["desired"], service[live], network_ids=record["network_ids"])
            assert found == [], (name, live, [field_line(d) for d in found])


@pytest.mark.parametrize("fixture", FIXTURES)
def test_recorded_objects_diff_empty(fixture: str) -> None:
    record = load(fixture)
    for kind, differ in (("networks", n.diff_network), ("configs", n.diff_config), ("secrets", n.diff_secret)):
        for name, obj in record.get(kind, {}).items():
            assert differ(obj["desired"], obj["live"]) == [], (kind, name)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_recorded_translation_is_reproduced(fixture: str) -> None:
    """The recorded desired specs are what translate() gives today (the fixtures do not rot)."""
    record = load(fixture)
    files = {"./index.html": b"<h1>v1</h1>\n", "./token.txt": b"s3cret-token\n"}
    result = translate(record["compose"], record["stack"], secret_key="plain", read_file=files.__getitem__,
                       hash_names=fixture.endswith("-api.json"))
    assert {k: v.spec for k, v in result.services.items()} == {
        k: v["desired"] for k, v in record["services"].items()}


def test_live_specs_really_differ_before_normalization() -> None:
    """Guard: the fixtures do carry the daemon's noise the rules remove."""
    service = next(iter(load("web-cli.json")["services"].values()))
    assert service["live"] != service["desired"]
    assert service["live"]["TaskTemplate"]["ContainerSpec"]["Isolation"] == "default"
    assert service["live"]["TaskTemplate"]["ForceUpdate"] == 0


# -- rule table: pairs that mean the same ---------------------------------------------------------


def base() -> dict[str, Any]:
    return {
        "Name": "st_web",
        "Labels": {"com.docker.stack.namespace": "st"},
        "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}},
    }


def with_(path: str, value: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = copy.deepcopy(spec if spec is not None else base())
    parts = path.strip("/").split("/")
    node = spec
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return spec


SAME: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("isolation default", base(), with_("/TaskTemplate/ContainerSpec/Isolation", "default")),
    ("runtime container", base(), with_("/TaskTemplate/Runtime", "container")),
    ("force update counter", base(), with_("/TaskTemplate/ForceUpdate", 3)),
    ("CLI's empty privileges", base(),
     with_("/TaskTemplate/ContainerSpec/Privileges", {"CredentialSpec": None, "SELinuxContext": None,
                                                      "NoNewPrivileges": False})),
    ("empty placement/resources/dns", base(), with_("/TaskTemplate/Placement", {}, with_(
        "/TaskTemplate/Resources", {}, with_("/TaskTemplate/ContainerSpec/DNSConfig", {})))),
    ("registry platforms", base(), with_("/TaskTemplate/Placement/Platforms", [{"Architecture": "amd64"}])),
    ("mode absent = 1 replica", base(), with_("/Mode", {"Replicated": {"Replicas": 1}})),
    ("replicated without replicas", with_("/Mode", {"Replicated": {}}),
     with_("/Mode", {"Replicated": {"Replicas": 1}})),
    ("absent update config = swarmkit default", base(), with_("/UpdateConfig", {
        "Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * S, "MaxFailureRatio": 0,
        "Order": "stop-first"})),
    ("absent rollback config = swarmkit default", base(), with_("/RollbackConfig", {
        "Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * S, "MaxFailureRatio": 0,
        "Order": "stop-first"})),
    ("empty failure action is pause", with_("/UpdateConfig", {"Parallelism": 2}),
     with_("/UpdateConfig", {"Parallelism": 2, "FailureAction": "pause", "MaxFailureRatio": 0})),
    ("absent restart policy", base(), with_("/TaskTemplate/RestartPolicy",
                                            {"Condition": "any", "Delay": 5 * S, "MaxAttempts": 0})),
    ("restart policy without delay", with_("/TaskTemplate/RestartPolicy", {"Condition": "on-failure"}),
     with_("/TaskTemplate/RestartPolicy", {"Condition": "on-failure", "Delay": 5 * S})),
    ("stop grace period 10s", base(), with_("/TaskTemplate/ContainerSpec/StopGracePeriod", 10 * S)),
    ("endpoint vip", with_("/EndpointSpec", {"Ports": [{"TargetPort": 80}]}),
     with_("/EndpointSpec", {"Mode": "vip", "Ports": [{"TargetPort": 80, "Protocol": "tcp",
                                                        "PublishMode": "ingress"}]})),
    ("image digest pinned by the CLI", base(),
     with_("/TaskTemplate/ContainerSpec/Image", "app:1@sha256:" + "a" * 64)),
    ("familiar image name and :latest", with_("/TaskTemplate/ContainerSpec/Image", "nginx"),
     with_("/TaskTemplate/ContainerSpec/Image", "docker.io/library/nginx:latest@sha256:" + "b" * 64)),
    ("network target by id", with_("/TaskTemplate/Networks", [{"Target": "st_default"}]),
     with_("/TaskTemplate/Networks", [{"Target": "abc123"}])),
    ("legacy top-level networks", with_("/TaskTemplate/Networks", [{"Target": "st_default"}]),
     with_("/Networks", [{"Target": "st_default"}])),
    ("secret ids", with_("/TaskTemplate/ContainerSpec/Secrets", [
        {"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": "st_pw"}]),
     with_("/TaskTemplate/ContainerSpec/Secrets", [
         {"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": "st_pw",
          "SecretID": "xyz"}])),
    ("config ids and default uid/gid", with_("/TaskTemplate/ContainerSpec/Configs", [
        {"File": {"Name": "/c", "Mode": 0o444}, "ConfigName": "st_c"}]),
     with_("/TaskTemplate/ContainerSpec/Configs", [
         {"File": {"Name": "/c", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigName": "st_c", "ConfigID": "q"}])),
    ("env order", with_("/TaskTemplate/ContainerSpec/Env", ["A=1", "B=2"]),
     with_("/TaskTemplate/ContainerSpec/Env", ["B=2", "A=1"])),
    ("port order", with_("/EndpointSpec/Ports", [{"TargetPort": 80}, {"TargetPort": 81}]),
     with_("/EndpointSpec/Ports", [{"TargetPort": 81}, {"TargetPort": 80}])),
    ("mount order", with_("/TaskTemplate/ContainerSpec/Mounts", [{"Type": "tmpfs", "Target": "/a"},
                                                                 {"Type": "tmpfs", "Target": "/b"}]),
     with_("/TaskTemplate/ContainerSpec/Mounts", [{"Type": "tmpfs", "Target": "/b"},
                                                  {"Type": "tmpfs", "Target": "/a", "ReadOnly": False}])),
    ("constraint and alias order", with_("/TaskTemplate/Placement/Constraints", ["a", "b"], with_(
        "/TaskTemplate/Networks", [{"Target": "n", "Aliases": ["x", "y"]}])),
     with_("/TaskTemplate/Placement/Constraints", ["b", "a"], with_(
         "/TaskTemplate/Networks", [{"Target": "n", "Aliases": ["y", "x"]}]))),
    ("healthcheck zero values", with_("/TaskTemplate/ContainerSpec/Healthcheck", {"Test": ["CMD", "true"]}),
     with_("/TaskTemplate/ContainerSpec/Healthcheck", {"Test": ["CMD", "true"], "Interval": 0, "Timeout": 0,
                                                       "Retries": 0, "StartPeriod": 0})),
    ("empty lists and maps", base(), with_("/TaskTemplate/ContainerSpec/Env", [], with_(
        "/TaskTemplate/ContainerSpec/Args", [], with_("/TaskTemplate/ContainerSpec/Labels", {})))),
    ("swarmkit-reserved labels", base(), with_("/Labels", {"com.docker.stack.namespace": "st",
                                                          "com.docker.swarm.task": "x"})),
]


@pytest.mark.parametrize(("desired", "live"), [(c[1], c[2]) for c in SAME], ids=[c[0] for c in SAME])
def test_same_meaning_diffs_empty(desired: dict[str, Any], live: dict[str, Any]) -> None:
    ids = {"st_default": "abc123"}
    assert n.diff_service(desired, live, network_ids=ids) == []
    assert n.normalize_service(desired, network_ids=ids) == n.normalize_service(live, network_ids=ids)


# -- and pairs that differ: values that look empty or default but are not -------------------------

DIFFERENT: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("zero replicas", with_("/Mode", {"Replicated": {"Replicas": 0}}), base(), "/Mode/Replicated/Replicas"),
    ("global vs replicated", with_("/Mode", {"Global": {}}), base(), "/Mode/Global /Mode/Replicated"),
    ("parallelism 0 = all at once", with_("/UpdateConfig", {"Parallelism": 0, "Monitor": 5 * S}), base(),
     "/UpdateConfig/Parallelism"),
    ("a present update config without monitor has monitor 0", with_("/UpdateConfig", {"Parallelism": 1}),
     base(), "/UpdateConfig/Monitor"),
    ("init false overrides the daemon default", with_("/TaskTemplate/ContainerSpec/Init", False), base(),
     "/TaskTemplate/ContainerSpec/Init"),
    ("restart delay 0", with_("/TaskTemplate/RestartPolicy", {"Condition": "any", "Delay": 0}), base(),
     "/TaskTemplate/RestartPolicy/Delay"),
    ("stop grace period 0", with_("/TaskTemplate/ContainerSpec/StopGracePeriod", 0), base(),
     "/TaskTemplate/ContainerSpec/StopGracePeriod"),
    ("empty env value vs unset", with_("/TaskTemplate/ContainerSpec/Env", ["A="]),
     with_("/TaskTemplate/ContainerSpec/Env", ["A"]), "/TaskTemplate/ContainerSpec/Env/A"),
    ("empty label value", with_("/Labels", {"com.docker.stack.namespace": "st", "x": ""}), base(), "/Labels/x"),
    ("pinned digest changed", with_("/TaskTemplate/ContainerSpec/Image", "app:1@sha256:" + "a" * 64),
     with_("/TaskTemplate/ContainerSpec/Image", "app:1@sha256:" + "b" * 64), "/TaskTemplate/ContainerSpec/Image"),
    ("secret mode 0", with_("/TaskTemplate/ContainerSpec/Secrets", [{"File": {"Name": "s", "Mode": 0},
                                                                    "SecretName": "x"}]),
     with_("/TaskTemplate/ContainerSpec/Secrets", [{"File": {"Name": "s", "Mode": 0o444}, "SecretName": "x"}]),
     "/TaskTemplate/ContainerSpec/Secrets/s/File/Mode"),
    ("published port", with_("/EndpointSpec/Ports", [{"TargetPort": 80, "PublishedPort": 8080}]),
     with_("/EndpointSpec/Ports", [{"TargetPort": 80, "PublishedPort": 8081}]),
     "/EndpointSpec/Ports/tcp:80/PublishedPort"),
    ("mount target with slashes", with_("/TaskTemplate/ContainerSpec/Mounts", [
        {"Type": "bind", "Source": "/a", "Target": "/etc/app"}]),
     with_("/TaskTemplate/ContainerSpec/Mounts", [{"Type": "bind", "Source": "/b", "Target": "/etc/app"}]),
     "/TaskTemplate/ContainerSpec/Mounts/~1etc~1app/Source"),
]


@pytest.mark.parametrize(("desired", "live", "path"), [c[1:] for c in DIFFERENT], ids=[c[0] for c in DIFFERENT])
def test_meaningful_values_are_kept(desired: dict[str, Any], live: dict[str, Any], path: str) -> None:
    found = n.diff_service(desired, live)
    assert [d.path for d in found] == path.split(), [field_line(d) for d in found]


def test_insert_defaults_is_lossy_for_a_present_update_config() -> None:
    """``GET /services/{id}?insertDefaults=true`` turns a stored monitor of 0 into 5s, so such a
    spec diffs as a change: observe must read services without insertDefaults."""
    desired = with_("/UpdateConfig", {"Parallelism": 1, "Order": "start-first"})
    raw = with_("/UpdateConfig", {"Parallelism": 1, "FailureAction": "pause", "MaxFailureRatio": 0,
                                  "Order": "start-first"})
    inserted = with_("/UpdateConfig", {**raw["UpdateConfig"], "Monitor": 5 * S})
    assert n.diff_service(desired, raw) == []
    assert [d.path for d in n.diff_service(desired, inserted)] == ["/UpdateConfig/Monitor"]


# -- diff output -----------------------------------------------------------------------------------


def test_diff_ops_and_values() -> None:
    live = with_("/TaskTemplate/ContainerSpec/Env", ["KEEP=1", "OLD=x", "CHANGED=a"])
    desired = with_("/TaskTemplate/ContainerSpec/Env", ["KEEP=1", "NEW=y", "CHANGED=b"])
    found = n.diff_service(desired, live)
    assert [(d.path, d.absent_before, d.absent_after, d.before, d.after) for d in found] == [
        ("/TaskTemplate/ContainerSpec/Env/CHANGED", False, False, "a", "b"),
        ("/TaskTemplate/ContainerSpec/Env/NEW", True, False, None, "y"),
        ("/TaskTemplate/ContainerSpec/Env/OLD", False, True, "x", None),
    ]
    assert field_line(found[0]) == '~ /TaskTemplate/ContainerSpec/Env/CHANGED: "a" → "b"'


def test_env_values_named_like_a_secret_are_masked() -> None:
    live = with_("/TaskTemplate/ContainerSpec/Env", ["DB_PASSWORD=old-pw", "LEVEL=info"])
    desired = with_("/TaskTemplate/ContainerSpec/Env", ["DB_PASSWORD=new-pw", "LEVEL=debug"])
    found = n.diff_service(desired, live)
    by_path = {d.path: d for d in found}
    secret = by_path["/TaskTemplate/ContainerSpec/Env/DB_PASSWORD"]
    assert (secret.before, secret.after, secret.sensitive) == (MASK, MASK, True)
    assert by_path["/TaskTemplate/ContainerSpec/Env/LEVEL"].after == "debug"
    assert "pw" not in " ".join(field_line(d) for d in found).replace("DB_PASSWORD", "")


def test_a_whole_new_env_holding_a_sensitive_value_is_masked() -> None:
    desired = with_("/TaskTemplate/ContainerSpec/Env", ["TOKEN=abc"])
    (found,) = n.diff_service(desired, base())
    assert found.path == "/TaskTemplate/ContainerSpec/Env" and found.after == MASK and found.sensitive


def test_secret_objects_never_show_data() -> None:
    desired = {"Name": "st_pw-1", "Labels": {"a": "1"}, "Data": "c2VjcmV0"}
    live = {"ID": "x", "Spec": {"Name": "st_pw-1", "Labels": {"a": "2"}}}
    found = n.diff_secret(desired, live)
    assert [(d.path, d.before, d.after) for d in found] == [("/Labels/a", "2", "1")]


def test_config_data_change_is_a_diff() -> None:
    found = n.diff_config({"Name": "c", "Data": "YQ=="}, {"Spec": {"Name": "c", "Data": "Yg=="}})
    assert [d.path for d in found] == ["/Data"]


# -- networks and volumes -------------------------------------------------------------------------


def test_network_allocations_are_not_diffs() -> None:
    desired = {"Name": "st_front", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "st"},
               "Attachable": True, "IPAM": {"Config": [{"Subnet": "10.9.0.0/24"}]}}
    live = {"Name": "st_front", "Id": "abc", "Created": "now", "Scope": "swarm", "Driver": "overlay",
            "EnableIPv6": False, "Internal": False, "Attachable": True, "Ingress": False,
            "IPAM": {"Driver": "default", "Options": None,
                     "Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]},
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": None,
            "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
            "Labels": {"com.docker.stack.namespace": "st"}}
    assert n.diff_network(desired, live) == []
    changed = {**desired, "Internal": True}
    assert [d.path for d in n.diff_network(changed, live)] == ["/Internal"]


def test_auto_subnet_is_not_a_diff() -> None:
    desired = {"Name": "st_default", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "st"}}
    live = {"Name": "st_default", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "st"},
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.5.0/24", "Gateway": "10.0.5.1"}]}}
    assert n.diff_network(desired, live) == []


def test_volumes() -> None:
    desired = {"Name": "st_data", "Driver": "local", "Labels": {"com.docker.stack.namespace": "st"}}
    live = {"Name": "st_data", "Driver": "local", "Labels": {"com.docker.stack.namespace": "st"},
            "Mountpoint": "/var/lib/docker/volumes/st_data/_data", "Options": None, "Scope": "local",
            "CreatedAt": "now"}
    assert n.diff_volume(desired, live) == []
    assert [d.path for d in n.diff_volume({**desired, "DriverOpts": {"o": "bind"}}, live)] == ["/Options"]


# -- the table itself ------------------------------------------------------------------------------


def test_every_rule_is_documented() -> None:
    assert all(rule.why for rule in n.SERVICE_RULES)
    assert all(why for _, why in n.KEEP)


def test_normalization_does_not_mutate_its_input() -> None:
    spec = with_("/TaskTemplate/ContainerSpec/Env", ["B=1", "A=2"])
    before = copy.deepcopy(spec)
    n.normalize_service(spec)
    assert spec == before


@pytest.mark.parametrize(("image", "canonical"), [
    ("nginx", "nginx:latest"),
    ("nginx:1.25", "nginx:1.25"),
    ("docker.io/library/nginx:1.25", "nginx:1.25"),
    ("docker.io/bitnami/redis", "bitnami/redis:latest"),
    ("registry.local:5000/team/app", "registry.local:5000/team/app:latest"),
    ("registry.local:5000/team/app:2@sha256:" + "c" * 64, "registry.local:5000/team/app:2"),
])
def test_canonical_image(image: str, canonical: str) -> None:
    assert n.canonical_image(image) == canonical


def test_canonical_image_keeps_a_pinned_digest() -> None:
    assert n.canonical_image("nginx@sha256:" + "d" * 64, keep_digest=True) == "nginx:latest@sha256:" + "d" * 64
