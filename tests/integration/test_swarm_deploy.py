"""Plan, apply, prune, rolling update, rollout watch, whole-stack rollback, state and lock of a Swarm
stack against the real engine, through the same deploy flow as Kubernetes."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from harness import swarm as harness
from swarm_app import FAIL_IMAGE, IMAGE, app_doc, backend, remove_state, resources, write_files

from gitops import deploy
from gitops.backends.swarm.backend import SwarmBackend
from gitops.backends.swarm.client import SwarmClient
from gitops.backends.swarm.health import stamp
from gitops.errors import GitopsError, LockedError, StalePlanError
from gitops.model import ResourceKey
from gitops.model.plans import Action
from gitops.model.releases import Outcome

pytestmark = pytest.mark.swarm

HERE = Path(__file__).resolve().parent


def options(**overrides: Any) -> deploy.Options:
    return deploy.Options(**{"timeout": 90, "poll": 0.3, "lock_ttl": 15, **overrides})


def key(sb: SwarmBackend, kind: str, name: str) -> ResourceKey:
    return sb.key(kind, name)


def service(sb: SwarmBackend, name: str) -> dict[str, Any]:
    return sb.client.inspect_service(f"{sb.stack}_{name}")


def image_of(sb: SwarmBackend, name: str) -> str:
    return str(service(sb, name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])


def running_tasks(sb: SwarmBackend, name: str) -> list[dict[str, Any]]:
    tasks = sb.client.service_tasks(str(service(sb, name)["ID"]))
    return [t for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]


def stack_names(sb: SwarmBackend, kind: str) -> set[str]:
    objects = sb.client.stack_objects(sb.stack)[kind]
    return {str(o["Spec"]["Name"] if kind in ("Service", "Config", "Secret") else o["Name"]) for o in objects}


def config_names(sb: SwarmBackend, prefix: str) -> set[str]:
    return {n for n in stack_names(sb, "Config") if n.startswith(f"{sb.stack}_{prefix}-")}


def secret_names(sb: SwarmBackend, prefix: str) -> set[str]:
    return {n for n in stack_names(sb, "Secret") if n.startswith(f"{sb.stack}_{prefix}-")}


def versions(sb: SwarmBackend) -> dict[str, int]:
    return {s["Spec"]["Name"]: s["Version"]["Index"] for s in sb.client.stack_objects(sb.stack)["Service"]}


def changed(plan: Any) -> dict[str, Action]:
    return {str(c.key): c.action for c in plan.changes if c.action is not Action.NOOP}


# -- first apply, no-op --------------------------------------------------------------------------------


def test_first_apply_then_no_op_plan_and_apply_make_no_writes(sb: SwarmBackend, stack: str) -> None:
    result = deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options())
    assert result.outcome == "applied", result.error
    assert {c.action for c in result.plan.changes} == {Action.CREATE}
    assert changed(result.plan) == {
        f"Network/{stack}/{stack}_default": Action.CREATE,
        **{f"Config/{stack}/{n}": Action.CREATE for n in config_names(sb, "site")},
        **{f"Secret/{stack}/{n}": Action.CREATE for n in secret_names(sb, "token")},
        f"Service/{stack}/{stack}_web": Action.CREATE,
        f"Service/{stack}/{stack}_api": Action.CREATE,
    }
    # Waves: network, then config and secret, then services.
    assert [c.key.kind for c in result.plan.changes] == ["Network", "Config", "Secret", "Service", "Service"]
    assert len(running_tasks(sb, "web")) == 2 and len(running_tasks(sb, "api")) == 1
    state = sb.load_state()
    assert [(r.revision, r.outcome) for r in state.releases] == [("rev1", Outcome.SUCCEEDED)]
    assert state.current is not None and len(state.current.inventory) == 5

    again, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev1")
    assert not again.has_changes, [c.to_json() for c in again.changes if c.action is not Action.NOOP]
    before, writes = versions(sb), sb.client.writes
    second = deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options())
    assert second.outcome == "no-op"
    assert sb.client.writes == writes, "a no-op apply made write requests"
    assert versions(sb) == before, "a no-op apply moved a service version"


# -- changes ---------------------------------------------------------------------------------------


def test_image_change_rolls_start_first(sb: SwarmBackend, stack: str) -> None:
    assert deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options()).outcome == "applied"
    old_tasks = {t["ID"] for t in running_tasks(sb, "web")}
    api_version = service(sb, "api")["Version"]["Index"]

    app_plan, _ = deploy.plan_app(sb, resources(stack, app_doc(web_image=f"{IMAGE}:2")), "rev2")
    assert changed(app_plan) == {f"Service/{stack}/{stack}_web": Action.UPDATE}
    web = next(c for c in app_plan.changes if c.action is Action.UPDATE)
    assert {(f.path, f.before, f.after) for f in web.fields} == {
        ("/TaskTemplate/ContainerSpec/Image", f"{IMAGE}:1", f"{IMAGE}:2"),
        ("/Labels/com.docker.stack.image", f"{IMAGE}:1", f"{IMAGE}:2"),
    }
    events: list[dict[str, Any]] = []
    result = deploy.apply_app(sb, resources(stack, app_doc(web_image=f"{IMAGE}:2")), "rev2", options(),
                              on_event=events.append)
    assert result.outcome == "applied", result.error
    assert result.changeset is not None and result.changeset.configured == [key(sb, "Service", f"{stack}_web")]
    assert any(e["event"] == "progress" and e["pending"] for e in events), "no progress while rolling"

    live = service(sb, "web")
    assert live["Spec"]["UpdateConfig"]["Order"] == "start-first"
    assert live["UpdateStatus"]["State"] == "completed"
    running = running_tasks(sb, "web")
    assert len(running) == 2 and {t["Spec"]["ContainerSpec"]["Image"] for t in running} == {f"{IMAGE}:2"}
    assert not old_tasks & {t["ID"] for t in running}
    # The rollout is done once the old tasks are told to stop (out of the load balancing); they
    # may still be within their stop grace period. start-first: in every slot the new task was
    # running before the old one was shut down.
    tasks = sb.client.service_tasks(str(live["ID"]))
    assert all(t["DesiredState"] != "running" for t in tasks if t["ID"] in old_tasks)
    deadline = time.monotonic() + 60
    while any(t["Status"]["State"] == "running" for t in tasks if t["ID"] in old_tasks) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
        tasks = sb.client.service_tasks(str(live["ID"]))
    for new in running:
        old = [t for t in tasks if t["Slot"] == new["Slot"] and t["ID"] in old_tasks]
        assert old and old[0]["Status"]["State"] in ("shutdown", "complete")
        assert stamp(old[0]["Status"]["Timestamp"]) >= stamp(new["Status"]["Timestamp"]), (old[0], new)
    # The other service was not touched.
    assert service(sb, "api")["Version"]["Index"] == api_version


def test_config_change_makes_a_new_hashed_config_and_prunes_the_old_one_after_the_rollout(
        sb: SwarmBackend, stack: str, tmp_path: Path) -> None:
    assert deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options()).outcome == "applied"
    (old,) = config_names(sb, "site")
    write_files(tmp_path, site="<h1>v2</h1>\n", token="s3cret-token-2\n")
    app_plan, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")
    actions = changed(app_plan)
    assert actions[f"Config/{stack}/{old}"] is Action.DELETE
    assert actions[f"Service/{stack}/{stack}_web"] is Action.UPDATE
    new = next(c.key.name for c in app_plan.changes if c.key.kind == "Config" and c.action is Action.CREATE)
    new_secret = next(c.key.name for c in app_plan.changes if c.key.kind == "Secret" and c.action is Action.CREATE)
    assert new != old and new.startswith(f"{stack}_site-")
    web = next(c for c in app_plan.changes if c.key.name == f"{stack}_web")
    by_path = {f.path: f for f in web.fields}
    assert by_path["/TaskTemplate/ContainerSpec/Configs/~1www~1index.html/ConfigName"].after == new
    dumped = json.dumps(app_plan.to_json())
    assert "s3cret-token" not in dumped and base64.b64encode(b"s3cret-token-2\n").decode() not in dumped

    seen_at_rollout: dict[str, set[str]] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "rollout":
            seen_at_rollout["configs"] = config_names(sb, "site")

    result = deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options(), on_event=on_event)
    assert result.outcome == "applied", result.error
    assert seen_at_rollout["configs"] == {old, new}, "the old config must outlive the rollout"
    assert config_names(sb, "site") == {new}
    assert secret_names(sb, "token") == {new_secret}
    refs = service(sb, "web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert [c["ConfigName"] for c in refs["Configs"]] == [new]
    assert [s["SecretName"] for s in refs["Secrets"]] == [new_secret]
    # The container serves the new content.
    (task, *_) = running_tasks(sb, "web")
    container = task["Status"]["ContainerStatus"]["ContainerID"]
    out = subprocess.run(["docker", "exec", container, "cat", "/www/index.html", "/run/secrets/token"],
                         capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": harness.docker_host()},
                         check=True).stdout
    assert out == "<h1>v2</h1>\ns3cret-token-2\n"
    again, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")
    assert not again.has_changes
    assert sb.load_state().current.inventory == tuple(sorted(  # type: ignore[union-attr]
        r.key for r in sb.prepare(resources(stack, app_doc()))))


def test_scale_change_adds_tasks_without_restarting_the_others(sb: SwarmBackend, stack: str) -> None:
    assert deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options()).outcome == "applied"
    before = {t["ID"] for t in running_tasks(sb, "web")}
    app_plan, _ = deploy.plan_app(sb, resources(stack, app_doc(replicas=3)), "rev2")
    web = next(c for c in app_plan.changes if c.action is not Action.NOOP)
    assert [(f.path, f.before, f.after) for f in web.fields] == [("/Mode/Replicated/Replicas", 2, 3)]
    result = deploy.apply_app(sb, resources(stack, app_doc(replicas=3)), "rev2", options())
    assert result.outcome == "applied", result.error
    after = {t["ID"] for t in running_tasks(sb, "web")}
    assert len(after) == 3 and before < after
    assert deploy.apply_app(sb, resources(stack, app_doc(replicas=1)), "rev3", options()).outcome == "applied"
    assert len(running_tasks(sb, "web")) == 1


def test_removed_service_and_its_objects_are_pruned_but_foreign_ones_are_not(
        sb: SwarmBackend, stack: str, client: SwarmClient) -> None:
    result = deploy.apply_app(sb, resources(stack, app_doc(extra=True)), "rev1", options())
    assert result.outcome == "applied", result.error
    assert f"{stack}_extra" in stack_names(sb, "Service")
    assert {f"{stack}_back", f"{stack}_default"} <= stack_names(sb, "Network")
    assert f"{stack}_data" in stack_names(sb, "Volume")
    assert secret_names(sb, "extra-token")
    # Objects of the stack that gitops did not create: one with the stack label, one without.
    client.create_config({"Name": f"{stack}_foreign", "Labels": {"com.docker.stack.namespace": stack},
                          "Data": base64.b64encode(b"x").decode()})
    foreign = client.create_service({"Name": f"{stack}_foreign", "TaskTemplate": {
        "ContainerSpec": {"Image": f"{IMAGE}:1"}}, "Mode": {"Replicated": {"Replicas": 0}}})
    try:
        prune_and_check(sb, stack, foreign)
    finally:
        client.remove("Service", foreign)


def prune_and_check(sb: SwarmBackend, stack: str, foreign: str) -> None:
    app_plan, _ = deploy.plan_app(sb, resources(stack, app_doc()), "rev2")
    deletes = {c.key for c in app_plan.changes if c.action is Action.DELETE}
    assert deletes == {key(sb, "Service", f"{stack}_extra"), key(sb, "Network", f"{stack}_back"),
                       *(key(sb, "Secret", n) for n in secret_names(sb, "extra-token"))}
    # The named volume holds data: kept (see test_swarm_prune for --prune-data).
    assert [(k.key, k.reason.value) for k in app_plan.kept] == [(key(sb, "Volume", f"{stack}_data"), "data")]
    # Prune runs last, in reverse waves: the service before what it used.
    kinds = [c.key.kind for c in app_plan.changes if c.action is Action.DELETE]
    assert kinds == ["Service", "Secret", "Network"]
    result = deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options())
    assert result.outcome == "applied", result.error
    assert not result.changeset.failed_deletes  # type: ignore[union-attr]
    assert f"{stack}_extra" not in stack_names(sb, "Service")
    assert f"{stack}_back" not in stack_names(sb, "Network")
    assert f"{stack}_data" in stack_names(sb, "Volume")
    assert not secret_names(sb, "extra-token")
    assert f"{stack}_foreign" in stack_names(sb, "Config")
    assert sb.client.inspect_service(foreign)["Spec"]["Name"] == f"{stack}_foreign"


def test_a_stale_plan_is_refused(sb: SwarmBackend, stack: str) -> None:
    assert deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options()).outcome == "applied"
    saved, _ = deploy.plan_app(sb, resources(stack, app_doc(replicas=3)), "rev2")
    live = service(sb, "api")
    spec = live["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = 2
    sb.client.update_service(live["ID"], live["Version"]["Index"], spec)
    with pytest.raises(StalePlanError, match="stale"):
        deploy.apply_app(sb, resources(stack, app_doc(replicas=3)), "rev2", options(), saved=saved)
    fresh, _ = deploy.plan_app(sb, resources(stack, app_doc(replicas=3)), "rev2")
    assert changed(fresh) == {f"Service/{stack}/{stack}_web": Action.UPDATE,
                              f"Service/{stack}/{stack}_api": Action.UPDATE}
    result = deploy.apply_app(sb, resources(stack, app_doc(replicas=3)), "rev2", options(), saved=fresh)
    assert result.outcome == "applied", result.error


# -- failure and rollback --------------------------------------------------------------------------


def raw_state(client: SwarmClient, app: str) -> str:
    configs = client.configs(f"gitops.dev/state={app}")
    return " ".join(gzip.decompress(base64.b64decode(c["Spec"]["Data"])).decode() for c in configs)


def test_failing_image_rolls_the_whole_stack_back(sb: SwarmBackend, stack: str, tmp_path: Path,
                                                  client: SwarmClient) -> None:
    assert deploy.apply_app(sb, resources(stack, app_doc()), "good", options()).outcome == "applied"
    good_versions = versions(sb)
    (good_config,) = config_names(sb, "site")
    (good_secret,) = secret_names(sb, "token")
    # The bad revision changes both services, the config and the secret, and adds a service.
    write_files(tmp_path, site="<h1>bad</h1>\n", token="s3cret-token-bad\n")
    bad = app_doc(web_image=FAIL_IMAGE, api_image=f"{IMAGE}:2", extra=True)
    stamps: dict[str, float] = {}
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        stamps.setdefault(event["event"], time.monotonic())

    result = deploy.apply_app(sb, resources(stack, bad), "bad", options(), on_event=on_event)
    assert result.outcome == "rolled-back", result.error
    assert f"{stack}_web" in result.error and "non-zero exit" in result.error, result.error
    detect = stamps["rollback"] - stamps["rollout"]
    print(f"\nfailing rollout started -> rollback started: {detect:.1f}s; "
          f"whole rollback done {time.monotonic() - stamps['rollback']:.1f}s later")
    assert detect < 30
    assert result.rollback is not None and result.rollback.outcome == "rolled-back"

    # Every service and object changed by the bad revision is back as it was.
    assert image_of(sb, "web") == f"{IMAGE}:1" and image_of(sb, "api") == f"{IMAGE}:1"
    assert {t["Spec"]["ContainerSpec"]["Image"] for t in running_tasks(sb, "web")} == {f"{IMAGE}:1"}
    assert len(running_tasks(sb, "web")) == 2 and len(running_tasks(sb, "api")) == 1
    assert versions(sb).keys() == good_versions.keys()
    assert config_names(sb, "site") == {good_config}
    assert secret_names(sb, "token") == {good_secret}
    assert not secret_names(sb, "extra-token")
    assert f"{stack}_back" not in stack_names(sb, "Network")
    write_files(tmp_path)
    again, _ = deploy.plan_app(sb, resources(stack, app_doc()), "good")
    assert not again.has_changes, changed(again)

    state = sb.load_state()
    assert [(r.revision, r.outcome) for r in state.releases] == [
        ("good", Outcome.SUCCEEDED), ("bad", Outcome.FAILED), ("good", Outcome.ROLLED_BACK)]
    assert state.bad_revisions == ("bad",)
    stored = raw_state(client, stack)
    for release in state.releases:
        for resource in release.resources():
            if resource.key.kind == "Secret":
                assert "Data" not in resource.body
    assert "s3cret" not in stored and "s3cret" not in json.dumps(events)
    write_files(tmp_path, site="<h1>bad</h1>\n", token="s3cret-token-bad\n")
    with pytest.raises(GitopsError, match="marked bad"):
        deploy.apply_app(sb, resources(stack, bad), "bad", options())


def test_native_swarm_rollback_counts_as_a_failure(sb: SwarmBackend, stack: str) -> None:
    """failure_action: rollback makes Swarm roll the service back by itself; that still fails our
    rollout, and the whole stack (here: the other service too) goes back to the last good release."""
    assert deploy.apply_app(sb, resources(stack, app_doc()), "good", options()).outcome == "applied"
    bad = app_doc(web_image=FAIL_IMAGE, api_image=f"{IMAGE}:3")
    bad["services"]["web"]["deploy"]["update_config"]["failure_action"] = "rollback"
    bad["services"]["web"]["deploy"]["restart_policy"] = {"condition": "none"}
    result = deploy.apply_app(sb, resources(stack, bad), "bad", options())
    assert result.outcome == "rolled-back", result.error
    # Usually Swarm's own rollback is seen first; a failed task is the other way the poll can see it.
    assert "update rollback_" in result.error or "task failed" in result.error, result.error
    assert image_of(sb, "web") == f"{IMAGE}:1" and image_of(sb, "api") == f"{IMAGE}:1"
    assert not deploy.plan_app(sb, resources(stack, app_doc()), "good")[0].has_changes


def test_rollback_on_demand_and_to_a_revision_whose_secret_was_pruned(
        sb: SwarmBackend, stack: str, tmp_path: Path, client: SwarmClient) -> None:
    assert deploy.apply_app(sb, resources(stack, app_doc()), "r1", options()).outcome == "applied"
    (r1_secret,) = secret_names(sb, "token")
    assert deploy.apply_app(sb, resources(stack, app_doc(api_image=f"{IMAGE}:2")), "r2",
                            options()).outcome == "applied"
    result = deploy.rollback_app(sb, options())
    assert result.outcome == "rolled-back", result.error
    assert image_of(sb, "api") == f"{IMAGE}:1"
    result = deploy.rollback_app(sb, options(), to_revision="r2")
    assert result.outcome == "rolled-back", result.error
    assert image_of(sb, "api") == f"{IMAGE}:2"

    # r3 changes the secret: r1's secret object is pruned once r3 is rolled out.
    write_files(tmp_path, token="s3cret-token-3\n")
    assert deploy.apply_app(sb, resources(stack, app_doc(api_image=f"{IMAGE}:2")), "r3",
                            options()).outcome == "applied"
    assert r1_secret not in secret_names(sb, "token")
    # Another runner (no secret bytes in memory) cannot bring it back from the release history.
    other = backend(client, stack, tmp_path)
    result = deploy.rollback_app(other, options(), to_revision="r1")
    assert result.outcome == "failed"
    assert f"secret {r1_secret} was pruned; re-apply that revision from git" in result.error
    assert r1_secret not in secret_names(sb, "token")


# -- external objects ------------------------------------------------------------------------------


def test_external_secret_is_referenced_but_never_created_or_pruned(sb: SwarmBackend, stack: str,
                                                                    client: SwarmClient) -> None:
    name = f"{stack}-outside"
    doc = app_doc(external_secret=name)
    # Missing: the apply fails naming it, and the first release is undone (nothing was good yet).
    result = deploy.apply_app(sb, resources(stack, doc), "rev0", options())
    assert result.outcome == "rolled-back"
    assert f"Secret/{stack}/{name}: lookup failed: not found" in result.error
    assert stack_names(sb, "Service") == set()

    from gitops.backends.swarm.objects import SecretData, SecretObject
    secret_id = client.create_secret(SecretObject(key="outside", name=name, external=True,
                                                  spec={"Name": name}, data=SecretData(b"from-outside")))
    try:
        app_plan, prepared = deploy.plan_app(sb, resources(stack, doc), "rev1")
        assert all(r.key.name != name for r in prepared)
        assert all(c.key.name != name for c in app_plan.changes)
        result = deploy.apply_app(sb, resources(stack, doc), "rev1", options())
        assert result.outcome == "applied", result.error
        refs = service(sb, "web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
        assert {r["SecretName"] for r in refs} >= {name}
        assert all(name not in str(k) for k in sb.load_state().current.inventory)  # type: ignore[union-attr]
        # No longer referenced: still not pruned (it is not ours).
        result = deploy.apply_app(sb, resources(stack, app_doc()), "rev2", options())
        assert result.outcome == "applied", result.error
        assert client.inspect_secret(secret_id)["Spec"]["Name"] == name
    finally:
        client.remove("Secret", secret_id)


# -- interrupted apply, lock -----------------------------------------------------------------------


def test_an_apply_killed_midway_is_completed_by_the_next_run(sb: SwarmBackend, stack: str, tmp_path: Path) -> None:
    """SIGKILL an apply of 30 services half-way; its lock expires and a re-run completes the stack."""
    # The child imports gitops from this checkout (not an installed copy), as the test itself does.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1])])}
    args = [sys.executable, str(HERE / "swarm_apply_many.py"), harness.docker_host(), stack, str(tmp_path), "30"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    applied = 0
    for line in process.stdout:
        if line.startswith("change"):
            applied += 1
            if applied == 15:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(30)
    state = sb.load_state()
    assert state.current is not None and state.current.outcome is Outcome.IN_PROGRESS
    assert len(state.current.inventory) == 32 + 3  # every service, network, config, secret
    present = stack_names(sb, "Service")
    assert 8 <= len(present) < 32
    holder = sb.store.entries()
    assert holder and max(holder, key=lambda e: e.epoch).holder.endswith(f":{process.pid}")

    started = time.monotonic()
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    print(f"\nre-run after the kill took {time.monotonic() - started:.1f}s (lock ttl 3s)")
    assert len(stack_names(sb, "Service")) == 32
    state = sb.load_state()
    # The re-run completed the interrupted release (same number), watching the whole app.
    assert [(r.number, r.revision, r.outcome) for r in state.releases] == [(1, "many", Outcome.SUCCEEDED)]
    assert state.current is not None and len(state.current.inventory) == 35
    assert not deploy.plan_app(sb, resources(stack, app_doc(services=30)), "many")[0].has_changes


def test_concurrent_applies_are_serialized(client: SwarmClient, stack: str, tmp_path: Path) -> None:
    """Two runners (own clients, own holders) apply at the same time: one waits for the other."""
    write_files(tmp_path)
    runners = [backend(SwarmClient(harness.docker_host()), stack, tmp_path) for _ in range(2)]
    windows: dict[int, list[float]] = {0: [], 1: []}
    outcomes: dict[int, str] = {}
    errors: list[BaseException] = []
    go = threading.Barrier(2)

    def run(index: int) -> None:
        def on_event(event: dict[str, Any]) -> None:
            if event["event"] in ("apply", "done", "failed"):
                windows[index].append(time.monotonic())

        try:
            go.wait()
            result = deploy.apply_app(runners[index], resources(stack, app_doc(replicas=index + 1)), f"rev{index}",
                                      options(holder=f"runner-{index}", lock_wait=120), on_event=on_event)
            outcomes[index] = result.outcome
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        assert not errors, errors
        assert outcomes == {0: "applied", 1: "applied"}
        (a_start, a_end), (b_start, b_end) = windows[0][:2], windows[1][:2]
        assert a_end <= b_start or b_end <= a_start, f"apply windows overlap: {windows}"
        state = runners[0].load_state()
        assert [r.outcome for r in state.releases] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
        last = 0 if state.releases[-1].revision == "rev0" else 1
        assert len(running_tasks(runners[0], "web")) == last + 1
        # Lock released: the chain is one free entry.
        entries = runners[0].store.entries()
        assert len(entries) == 1 and entries[0].holder == ""
    finally:
        for runner in runners:
            runner.client.close()
        remove_state(client, stack)


def test_a_held_lock_blocks_and_an_expired_one_is_taken_over(sb: SwarmBackend, stack: str) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with sb.lock("other-runner", 30, 5):
            held.set()
            release.wait(20)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        with pytest.raises(LockedError, match="other-runner"):
            deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options(lock_wait=1.0))
        timer = threading.Timer(2.0, release.set)
        timer.start()
        started = time.monotonic()
        result = deploy.apply_app(sb, resources(stack, app_doc()), "rev1", options(lock_wait=30))
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert result.outcome == "applied", result.error
    assert waited >= 1.5, "the apply did not wait for the lock"

    # A runner that died holding the lock (no renewals): its lock expires after its ttl.
    assert sb.store.try_acquire("dead-runner", 2) == (True, "dead-runner")
    with pytest.raises(LockedError, match="dead-runner"):
        deploy.apply_app(sb, resources(stack, app_doc(replicas=1)), "rev2", options(lock_wait=0.5))
    time.sleep(2.5)
    result = deploy.apply_app(sb, resources(stack, app_doc(replicas=1)), "rev2", options(lock_wait=5))
    assert result.outcome == "applied", result.error
    entries = sb.store.entries()
    assert len(entries) == 1 and entries[0].holder == ""
