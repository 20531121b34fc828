"""Prune safety on the real Swarm: named volumes (and their data) are kept, `x-gitops-prune: false`
is honoured and remembered, a network a foreign service still uses is not pruned, and the
mass-delete guard refuses (and, when allowed, records) a revision that removes most of the stack."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest
from harness import swarm as harness
from swarm_app import IMAGE, app_doc, resources

from gitops import deploy, prune
from gitops.backends.swarm.backend import SwarmBackend
from gitops.backends.swarm.client import SwarmClient, SwarmNotFound
from gitops.model import ResourceKey
from gitops.model.plans import Action, BlockReason, Guard, KeepReason

pytestmark = pytest.mark.swarm


def options(**policy: Any) -> deploy.Options:
    return deploy.Options(timeout=90, poll=0.3, lock_ttl=15, policy=prune.Policy(**policy))


def kept(plan: Any) -> dict[str, KeepReason]:
    return {str(k.key): k.reason for k in plan.kept}


def deletes(plan: Any) -> set[str]:
    return {str(c.key) for c in plan.changes if c.action is Action.DELETE}


def sh(command: str) -> list[str]:
    return ["sh", "-c", command]


def service_doc(command: str, volume: str | None = "data") -> dict[str, Any]:
    service: dict[str, Any] = {"image": f"{IMAGE}:1", "command": sh(command), "stop_grace_period": "1s",
                               "deploy": {"replicas": 1, "restart_policy": {"condition": "on-failure"}}}
    if volume:
        service["volumes"] = [f"{volume}:/data"]
    return service


def exec_in(sb: SwarmBackend, service: str, *command: str, timeout: float = 30) -> str:
    """Run a command in the running task of a service (busybox inside the test image)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        live = sb.client.inspect_service(f"{sb.stack}_{service}")
        tasks = [t for t in sb.client.service_tasks(str(live["ID"]))
                 if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
        if tasks:
            container = tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
            run = subprocess.run(["docker", "exec", container, *command], capture_output=True, text=True,
                                 env={**os.environ, "DOCKER_HOST": harness.docker_host()})
            if run.returncode == 0:
                return run.stdout
            last = run.stderr
        time.sleep(0.3)
    raise AssertionError(f"`{' '.join(command)}` did not succeed in {service}: {last}")


def volume_exists(client: SwarmClient, name: str) -> bool:
    try:
        client.inspect_volume(name)
    except SwarmNotFound:
        return False
    return True


def test_a_named_volume_and_its_data_are_kept_when_its_service_leaves_the_compose_file(
        sb: SwarmBackend, stack: str, client: SwarmClient) -> None:
    serve = "exec httpd -f -p 8080 -h /www"
    writer = {"services": {"writer": service_doc(f"echo kept-data > /data/proof.txt; {serve}")},
              "volumes": {"data": {}}}
    result = deploy.apply_app(sb, resources(stack, writer), "rev1", options())
    assert result.outcome == "applied", result.error
    assert exec_in(sb, "writer", "cat", "/data/proof.txt") == "kept-data\n"
    volume = sb.key("Volume", f"{stack}_data")

    # The writer and the volume leave the compose file; another service stays.
    other = {"services": {"other": service_doc(serve, volume=None)}}
    plan, _ = deploy.plan_app(sb, resources(stack, other), "rev2")
    assert plan.ok
    assert deletes(plan) == {f"Service/{stack}/{stack}_writer"}
    assert kept(plan) == {str(volume): KeepReason.DATA}
    result = deploy.apply_app(sb, resources(stack, other), "rev2", options())
    assert result.outcome == "applied", result.error
    assert volume_exists(client, f"{stack}_data")
    state = sb.load_state()
    assert state.current is not None and state.current.kept == (volume,) and volume not in state.current.inventory
    again, _ = deploy.plan_app(sb, resources(stack, other), "rev2")
    assert not again.has_changes and kept(again) == {str(volume): KeepReason.DATA}

    # A new service that mounts the volume reads what the first one wrote.
    reader = {"services": {"other": service_doc(serve, volume=None), "reader": service_doc(serve)},
              "volumes": {"data": {}}}
    plan, _ = deploy.plan_app(sb, resources(stack, reader), "rev3")
    assert next(c for c in plan.changes if c.key == volume).action is Action.NOOP  # adopted again, as it is
    result = deploy.apply_app(sb, resources(stack, reader), "rev3", options())
    assert result.outcome == "applied", result.error
    assert exec_in(sb, "reader", "cat", "/data/proof.txt") == "kept-data\n"
    assert sb.load_state().current.kept == ()  # type: ignore[union-attr]
    # A volume cannot change in place: replacing it would lose the data, so that is refused too.
    relabelled = {**reader, "volumes": {"data": {"labels": {"tier": "db"}}}}
    plan, _ = deploy.plan_app(sb, resources(stack, relabelled), "rev3b")
    assert next(c for c in plan.changes if c.key == volume).action is Action.REPLACE
    assert [(b.reason, b.key) for b in plan.blocked] == [(BlockReason.DATA_REPLACE, volume)]

    # Pruned only when the app says so; the release records it.
    result = deploy.apply_app(sb, resources(stack, other), "rev4", options(prune_data=True))
    assert result.outcome == "applied", result.error
    assert result.changeset is not None and volume in result.changeset.deleted
    assert not volume_exists(client, f"{stack}_data")
    state = sb.load_state()
    assert state.current is not None and state.current.overrides == ("data",)


def test_x_gitops_prune_false_keeps_the_objects_and_later_runs_remember_it(
        sb: SwarmBackend, stack: str, client: SwarmClient) -> None:
    doc = app_doc(extra=True)
    doc["services"]["extra"]["x-gitops-prune"] = False
    doc["networks"]["back"]["x-gitops-prune"] = False
    doc["secrets"]["extra-token"]["x-gitops-prune"] = False
    result = deploy.apply_app(sb, resources(stack, doc), "rev1", options())
    assert result.outcome == "applied", result.error
    secret = next(c.key for c in result.plan.changes if c.key.name.startswith(f"{stack}_extra-token-"))
    extra, back = sb.key("Service", f"{stack}_extra"), sb.key("Network", f"{stack}_back")
    volume = sb.key("Volume", f"{stack}_data")
    state = sb.load_state()
    assert state.current is not None and set(state.current.protected) == {extra, back, secret}

    plan, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")
    assert plan.ok and deletes(plan) == set()
    assert kept(plan) == {str(extra): KeepReason.DISABLED, str(back): KeepReason.DISABLED,
                          str(secret): KeepReason.DISABLED, str(volume): KeepReason.DATA}
    result = deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options())
    assert result.outcome == "applied", result.error
    assert client.inspect_service(f"{stack}_extra")["Spec"]["Name"] == f"{stack}_extra"
    assert client.inspect_network(f"{stack}_back")["Name"] == f"{stack}_back"
    assert client.inspect_secret(secret.name)["Spec"]["Name"] == secret.name
    # The compose file no longer says so, the live objects carry no mark: the release remembers.
    state = sb.load_state()
    assert state.current is not None and set(state.current.kept) == {extra, back, secret, volume}
    assert set(state.current.protected) == {extra, back, secret}
    later, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev3")
    assert deletes(later) == set() and kept(later) == kept(plan) and not later.has_changes


def test_a_network_a_foreign_service_still_uses_is_not_pruned(sb: SwarmBackend, stack: str,
                                                              client: SwarmClient) -> None:
    result = deploy.apply_app(sb, resources(stack, app_doc(extra=True)), "rev1", options())
    assert result.outcome == "applied", result.error
    foreign = client.create_service({"Name": f"{stack}-foreign", "TaskTemplate": {
        "ContainerSpec": {"Image": f"{IMAGE}:1"}, "Networks": [{"Target": f"{stack}_back"}]},
        "Mode": {"Replicated": {"Replicas": 0}}})
    try:
        plan, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")
        (block,) = plan.blocked
        assert block.reason is BlockReason.CASCADE and block.key == sb.key("Network", f"{stack}_back")
        assert block.objects == (ResourceKey("swarm", "Service", "", f"{stack}-foreign"),)
        with pytest.raises(deploy.PlanBlocked, match=f"Network/{stack}/{stack}_back: not pruned"):
            deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options())
        assert f"{stack}_extra" == client.inspect_service(f"{stack}_extra")["Spec"]["Name"]
    finally:
        client.remove("Service", foreign)
    plan, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")
    assert plan.ok and f"Network/{stack}/{stack}_back" in deletes(plan)


def test_the_mass_delete_guard_refuses_most_of_the_stack_going_and_can_be_overridden(
        sb: SwarmBackend, stack: str) -> None:
    result = deploy.apply_app(sb, resources(stack, app_doc(services=6)), "rev1", options())
    assert result.outcome == "applied", result.error
    services = {s["Spec"]["Name"]: s["Version"]["Index"] for s in sb.client.stack_objects(stack)["Service"]}
    assert len(services) == 8

    plan, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")  # 6 of 11 objects
    assert [b.reason for b in plan.blocked] == [BlockReason.MASS_DELETE]
    assert "6 of the app's 11 objects" in plan.blocked[0].message
    writes = sb.client.writes
    with pytest.raises(deploy.PlanBlocked, match="--allow-mass-delete"):
        deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options())
    assert sb.client.writes == writes, "a refused plan made write requests"
    # Nothing rendered at all (an emptied folder) is refused too.
    empty, _ = deploy.plan_app(sb, [], "rev-empty")
    assert [b.reason for b in empty.blocked] == [BlockReason.EMPTY] and len(empty.blocked[0].objects) == 11
    with pytest.raises(deploy.PlanBlocked, match="no objects"):
        deploy.apply_app(sb, [], "rev-empty", options())
    assert {s["Spec"]["Name"]: s["Version"]["Index"] for s in sb.client.stack_objects(stack)["Service"]} == services

    result = deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options(allow_mass_delete=True))
    assert result.outcome == "applied", result.error
    assert result.plan.overrides == (Guard.MASS_DELETE,)
    assert len(sb.client.stack_objects(stack)["Service"]) == 2
    state = sb.load_state()
    assert [r.overrides for r in state.releases] == [(), ("mass-delete",)]
    assert state.current.inventory == tuple(sorted(  # type: ignore[union-attr]
        r.key for r in sb.prepare(resources(stack, app_doc()))))
