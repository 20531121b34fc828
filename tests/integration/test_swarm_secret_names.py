"""Keyed secret names on the real swarm: a stack deployed with the plain-hash names of the code
before keyed names moves to HMAC names in one ordinary rolling update, and two apps with the same
secret content get different names."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import swarm as harness
from repos import free_port, make_repo, swarm_example
from swarm_app import COMPOSE_PATH, app_doc, backend, remove_state, resources, write_files

from gitops import deploy
from gitops.backends.swarm.backend import API_VERSION, SwarmBackend
from gitops.backends.swarm.client import SwarmClient
from gitops.backends.swarm.compose import keyed_hash
from gitops.backends.swarm.translate import translate
from gitops.errors import StalePlanError
from gitops.model import Origin, Resource, ResourceKey
from gitops.model.plans import Action
from gitops.model.releases import Outcome

pytestmark = pytest.mark.swarm

TOKEN = b"s3cret-token-1\n"  # what swarm_app.write_files writes by default


def options(**overrides: Any) -> deploy.Options:
    return deploy.Options(**{"timeout": 90, "poll": 0.3, "lock_ttl": 15, **overrides})


def plain(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:10]


def state_payload(client: SwarmClient, app: str) -> dict[str, Any]:
    configs = client.configs(f"gitops.dev/state={app}")
    newest = max(configs, key=lambda c: int(c["Spec"]["Labels"]["gitops.dev/seq"]))
    return dict(json.loads(gzip.decompress(base64.b64decode(newest["Spec"]["Data"]))))


def stored_key(client: SwarmClient, app: str) -> bytes | None:
    key = state_payload(client, app).get("secret_naming_key")
    return base64.b64decode(key) if key else None


def names(client: SwarmClient, stack: str, kind: str, prefix: str) -> set[str]:
    return {str(o["Spec"]["Name"]) for o in client.stack_objects(stack)[kind]
            if str(o["Spec"]["Name"]).startswith(f"{stack}_{prefix}-")}


def web_secrets(client: SwarmClient, stack: str) -> list[str]:
    spec = client.inspect_service(f"{stack}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    return [s["SecretName"] for s in spec["Secrets"]]


def legacy_objects(stack: str, doc: dict[str, Any], root: Path) -> list[Resource]:
    """What the code before keyed names deployed for ``doc``: the same translation with the plain
    SHA-256 secret names (``secret_key="plain"``), handed to the deploy flow as ``swarm/v1`` objects
    (the form of release manifests; the secret's bytes in ``Data``, as the backend takes them).
    Applying these writes what that code wrote: those objects, and a state with no naming key."""
    folder = root / Path(COMPOSE_PATH).parent
    result = translate(doc, stack, secret_key="plain", read_file=lambda path: (folder / path).read_bytes())
    assert not result.diagnostics.has_errors, [str(d) for d in result.diagnostics]
    origin = Origin(COMPOSE_PATH)

    def make(kind: str, name: str, body: Any) -> Resource:
        return Resource(ResourceKey("swarm", kind, stack, name), API_VERSION, dict(body), origin)

    return [
        *(make("Network", n, o.spec) for n, o in result.networks.items() if not o.external),
        *(make("Config", n, o.spec) for n, o in result.configs.items() if not o.external),
        *(make("Secret", n, o.payload()) for n, o in result.secrets.items() if not o.external),
        *(make("Service", n, o.spec) for n, o in result.services.items()),
    ]


def secret_in_container(client: SwarmClient, stack: str) -> str:
    tasks = client.service_tasks(str(client.inspect_service(f"{stack}_web")["ID"]))
    running = [t for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
    container = running[0]["Status"]["ContainerStatus"]["ContainerID"]
    return subprocess.run(["docker", "exec", container, "cat", "/run/secrets/token"], capture_output=True,
                          text=True, env={**os.environ, "DOCKER_HOST": harness.docker_host()}, check=True).stdout


def test_plain_hash_names_move_to_keyed_names_in_one_rolling_update(
        sb: SwarmBackend, stack: str, tmp_path: Path, client: SwarmClient) -> None:
    doc = app_doc()
    old = deploy.apply_app(sb, legacy_objects(stack, doc, tmp_path), "old", options())
    assert old.outcome == "applied", old.error
    legacy_name = f"{stack}_token-{plain(TOKEN)}"
    assert names(client, stack, "Secret", "token") == {legacy_name} and web_secrets(client, stack) == [legacy_name]
    assert stored_key(client, stack) is None, "the old code path stores no naming key"
    (config,) = names(client, stack, "Config", "site")
    versions = {s["Spec"]["Name"]: s["Version"]["Index"] for s in client.stack_objects(stack)["Service"]}

    # A plan of the new code (another runner): the keyed secret is new, the old one goes, web follows.
    planner = backend(client, stack, tmp_path)
    planned, _ = deploy.plan_app(planner, resources(stack, doc), "new")
    actions = {(c.key.kind, c.key.name): c.action for c in planned.changes if c.action is not Action.NOOP}
    assert actions.pop(("Secret", legacy_name)) is Action.DELETE
    ((created, action),) = [(k, a) for k, a in actions.items() if k[0] == "Secret"]
    assert action is Action.CREATE and created[1] != legacy_name
    assert actions == {created: Action.CREATE, ("Service", f"{stack}_web"): Action.UPDATE}  # config, api: as they are
    assert any("provisional" in d.message for d in planner.warnings)
    # That plan's names came from a key nobody stored: applied as a saved plan, it is refused, unwritten.
    writes = client.writes
    with pytest.raises(StalePlanError, match="stale"):
        deploy.apply_app(backend(client, stack, tmp_path), resources(stack, doc), "new", options(), saved=planned)
    assert client.writes == writes and stored_key(client, stack) is None

    runner = backend(client, stack, tmp_path)  # the apply: a runner of its own
    at_rollout: dict[str, set[str]] = {}
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        if event["event"] == "rollout":
            at_rollout["secrets"] = names(client, stack, "Secret", "token")

    result = deploy.apply_app(runner, resources(stack, doc), "new", options(), on_event=on_event)
    assert result.outcome == "applied", result.error
    assert result.rollback is None and not any(e["event"] in ("failed", "rollback") for e in events)
    key = stored_key(client, stack)
    assert key is not None and len(key) == 32
    keyed = f"{stack}_token-{keyed_hash(TOKEN, key)}"
    assert keyed != legacy_name and not keyed.endswith(plain(TOKEN))
    assert at_rollout["secrets"] == {legacy_name, keyed}, "the old secret must outlive the rollout"
    assert web_secrets(client, stack) == [keyed]
    assert names(client, stack, "Secret", "token") == {keyed}, "the old secret is pruned after the rollout"
    web = client.inspect_service(f"{stack}_web")
    assert web["UpdateStatus"]["State"] == "completed" and web["Version"]["Index"] > versions[f"{stack}_web"]
    api = client.inspect_service(f"{stack}_api")
    assert api["Version"]["Index"] == versions[f"{stack}_api"], "a service without secrets was not touched"
    assert names(client, stack, "Config", "site") == {config}, "configs keep their plain content-hash names"
    assert secret_in_container(client, stack) == TOKEN.decode()
    state = runner.load_state()
    assert [(r.revision, r.outcome) for r in state.releases] == [("old", Outcome.SUCCEEDED),
                                                                 ("new", Outcome.SUCCEEDED)]
    assert not state.bad_revisions
    # The key is never shown: not in the plan, the result, the events, the state as a value.
    shown = json.dumps([planned.to_json(), result.plan.to_json(), result.to_json(), events, state.to_json()])
    assert key.hex() not in shown and base64.b64encode(key).decode() not in shown

    # From now on every runner names the secret the same: no changes; a saved plan stays good.
    fresh = backend(client, stack, tmp_path)
    assert not deploy.plan_app(fresh, resources(stack, doc), "new")[0].has_changes
    saved, _ = deploy.plan_app(backend(client, stack, tmp_path), resources(stack, app_doc(replicas=3)), "more")
    assert not any("provisional" in d.message for d in fresh.warnings)
    later = deploy.apply_app(backend(client, stack, tmp_path), resources(stack, app_doc(replicas=3)), "more",
                             options(), saved=saved)
    assert later.outcome == "applied", later.error
    assert web_secrets(client, stack) == [keyed] and stored_key(client, stack) == key


def test_two_apps_with_the_same_secret_get_different_names(
        sb: SwarmBackend, stack: str, tmp_path: Path, client: SwarmClient) -> None:
    other_stack = f"{stack}_b"
    other_root = tmp_path / "other"
    write_files(other_root)  # the same file contents
    other = backend(client, other_stack, other_root)
    try:
        for runner, name in ((sb, stack), (other, other_stack)):
            result = deploy.apply_app(runner, resources(name, app_doc()), "rev1", options())
            assert result.outcome == "applied", result.error
        (ours,), (theirs,) = names(client, stack, "Secret", "token"), names(client, other_stack, "Secret", "token")
        suffixes = {ours.rsplit("-", 1)[1], theirs.rsplit("-", 1)[1]}
        assert len(suffixes) == 2, "two apps' keys give the same content two names"
        assert plain(TOKEN) not in suffixes
        assert stored_key(client, stack) != stored_key(client, other_stack)
    finally:
        harness.remove_stack(other_stack)
        remove_state(client, other_stack)


def test_the_key_is_never_in_the_cli_output_and_a_plan_is_saved_only_once_the_key_exists(
        swarm_cluster: Any, stack: str, tmp_path: Path, client: SwarmClient) -> None:
    app = f"demo-{stack[-6:]}"
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"^  - name: demo$", f"  - name: {app}"),
        ("gitops.yaml", r"stack: demo$", f"stack: {stack}"),
        *swarm_example(free_port()),
    ], dict(os.environ))
    try:
        # Before the first apply the names are provisional: the plan is not saved, and the hint
        # printed instead works when pasted (with --auto-approve, as there is no terminal here).
        first = repo.gitops("plan", app, "--out", "first.json")
        assert first.returncode == 1, first.stdout + first.stderr
        assert "provisional" in first.stderr and not (repo.root / "first.json").exists(), first.stderr
        hint = shlex.split(first.stderr.split("apply without a saved plan: ")[1].strip())
        assert hint == ["gitops", "apply", app], hint
        assert not client.configs(f"gitops.dev/state={app}"), "a plan wrote the state"
        applied = repo.gitops(*hint[1:], "--auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        key = stored_key(client, app)
        assert key is not None

        # With the key stored, a saved plan keeps its names until it is applied.
        repo.edit("swarm/api-token.txt", (repo.root / "swarm/api-token.txt").read_text(), "rotated-token\n")
        repo.commit("rotate the token")
        saved = repo.gitops("plan", app, "--out", "plan.json")
        assert "provisional" not in saved.stderr and f"{stack}_api_token-" in saved.stdout, saved.stdout
        done = repo.gitops("apply", "plan.json")
        assert done.returncode == 0, done.stdout + done.stderr
        [name] = names(client, stack, "Secret", "api_token")
        assert name == f"{stack}_api_token-{keyed_hash(b'rotated-token' + bytes([10]), key)}" and name in saved.stdout
        assert stored_key(client, app) == key

        shown = [first.stdout, first.stderr, applied.stdout, applied.stderr, saved.stdout, saved.stderr,
                 done.stdout, done.stderr, *((repo.root / f).read_text() for f in ("plan.json",))]
        for command in (["status", app], ["status", app, "--output", "json"], ["history", app],
                        ["history", app, "--output", "json"], ["plan", app, "--output", "json"]):
            run = repo.gitops(*command)
            assert run.returncode == 0, (command, run.stdout + run.stderr)
            shown += [run.stdout, run.stderr]
        for text in shown:
            assert key.hex() not in text and base64.b64encode(key).decode() not in text
            assert "secret_naming_key" not in text and "rotated-token" not in text
    finally:
        remove_state(client, app)
