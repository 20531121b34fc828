"""Pure parts of the Swarm backend: service health from task lists, state encoding, the config-chain
lock and state store (on an in-memory stand-in for the config API), prepare, compare and the
deferred prune of configs and secrets. The same behaviour runs on the real engine in
tests/integration/test_swarm_deploy.py."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gitops.backends.swarm import health as h
from gitops.backends.swarm.backend import (
    API_VERSION,
    SwarmBackend,
    compose_resource,
    offline_objects,
)
from gitops.backends.swarm.client import SwarmAPIError, SwarmConflict, SwarmNotFound
from gitops.backends.swarm.compose import PROCESS_KEY, keyed_hash
from gitops.backends.swarm.store import (
    LockEntry,
    SwarmStore,
    decode_state,
    encode_state,
    engine_time,
    object_name,
)
from gitops.errors import GitopsError, LockedError, StateConflictError
from gitops.model import HealthStatus, Origin, Resource, ResourceKey
from gitops.model.plans import Action
from gitops.model.releases import AppState, Outcome, Release, pack_resources

S = 1_000_000_000
KEY = ResourceKey("swarm", "Service", "demo", "demo_web")


# -- an in-memory config API -------------------------------------------------------------------------


class FakeConfigs:
    """The slice of SwarmClient the store uses: configs (atomic create by name), remove, info."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.clock = 1_000_000.0
        self.counter = 0
        self.writes = 0
        self.refuse_delete: set[str] = set()
        self.removed: list[str] = []

    def stamp(self) -> str:
        moment = datetime.fromtimestamp(self.clock, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(self.clock % 1 * 1e9):09d}Z"

    def create_config(self, spec: dict[str, Any]) -> str:
        self.writes += 1
        if any(c["Spec"]["Name"] == spec["Name"] for c in self.items.values()):
            raise SwarmConflict(f"Config/{spec['Name']}: create failed: already exists")
        self.counter += 1
        ident = f"id{self.counter}"
        self.items[ident] = {"ID": ident, "CreatedAt": self.stamp(), "Spec": copy.deepcopy(spec)}
        return ident

    def configs(self, label: str) -> list[dict[str, Any]]:
        name, _, value = label.partition("=")
        return [copy.deepcopy(c) for c in self.items.values()
                if name in c["Spec"].get("Labels", {}) and (not value or c["Spec"]["Labels"][name] == value)]

    def remove(self, kind: str, ident: str) -> None:
        self.writes += 1
        if ident in self.refuse_delete:
            raise SwarmAPIError(f"{kind}/{ident}: delete failed: in use")
        self.removed.append(ident)
        self.items.pop(ident, None)

    def info(self) -> dict[str, Any]:
        return {"SystemTime": self.stamp(), "Swarm": {"Cluster": {"ID": "cluster1"}}}

    def names(self) -> list[str]:
        return sorted(c["Spec"]["Name"] for c in self.items.values())


# -- service health ----------------------------------------------------------------------------------

TEMPLATE = {"ContainerSpec": {"Image": "app:2", "Isolation": "default"}, "ForceUpdate": 0, "Runtime": "container"}
OLD = {"ContainerSpec": {"Image": "app:1", "Isolation": "default"}, "ForceUpdate": 0}


def svc(replicas: int | None = 2, update: dict[str, Any] | None = None, mode: dict[str, Any] | None = None,
        template: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"Name": "demo_web", "TaskTemplate": copy.deepcopy(template or TEMPLATE),
                            "Mode": mode or {"Replicated": {} if replicas is None else {"Replicas": replicas}}}
    service: dict[str, Any] = {"ID": "svc1", "Spec": spec}
    if update is not None:
        service["UpdateStatus"] = update
    return service


def task(ident: str, state: str, *, desired: str = "running", spec: dict[str, Any] | None = None, slot: int = 1,
         created: str = "2024-01-01T00:00:10.5Z", err: str = "", node: str = "node1") -> dict[str, Any]:
    task_spec = copy.deepcopy(spec if spec is not None else TEMPLATE)
    task_spec.pop("Runtime", None)  # the daemon leaves it out of the task's copy
    status: dict[str, Any] = {"State": state, "Message": state, "ContainerStatus": {"ContainerID": "c" * 64}}
    if err:
        status["Err"] = err
    return {"ID": ident, "Slot": slot, "NodeID": node, "DesiredState": desired, "CreatedAt": created,
            "Spec": task_spec, "Status": status}


UPDATING = {"State": "updating", "StartedAt": "2024-01-01T00:00:10Z", "Message": "update in progress"}
COMPLETED = {"State": "completed", "StartedAt": "2024-01-01T00:00:10Z", "Message": "update completed"}

HEALTH_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], HealthStatus, str]] = [
    ("created and running", svc(), [task("a", "running"), task("b", "running", slot=2)],
     HealthStatus.HEALTHY, "2/2 tasks running"),
    ("replicas default to 1", svc(replicas=None), [task("a", "running")], HealthStatus.HEALTHY, "1/1"),
    ("starting", svc(), [task("a", "running"), task("b", "starting", slot=2)], HealthStatus.PROGRESSING, "1/2"),
    ("updating, old tasks still run", svc(update=UPDATING),
     [task("o1", "running", spec=OLD), task("o2", "running", spec=OLD, slot=2), task("n1", "running")],
     HealthStatus.PROGRESSING, "update updating"),
    ("update completed", svc(update=COMPLETED),
     [task("o1", "shutdown", desired="shutdown", spec=OLD), task("n1", "running"), task("n2", "running", slot=2)],
     HealthStatus.HEALTHY, "2/2"),
    ("all new running, an old one told to stop and not yet exited", svc(update=COMPLETED),
     [task("o1", "running", desired="shutdown", spec=OLD), task("n1", "running"), task("n2", "running", slot=2)],
     HealthStatus.HEALTHY, "1 old task(s) stopping"),
    ("all new running, an old one still meant to run", svc(update=COMPLETED),
     [task("o1", "running", spec=OLD), task("n1", "running"), task("n2", "running", slot=2)],
     HealthStatus.PROGRESSING, "1 old task(s) still running"),
    ("update just sent: no current task yet", svc(),
     [task("o1", "running", spec=OLD), task("o2", "running", spec=OLD, slot=2)],
     HealthStatus.PROGRESSING, "0/2"),
    ("scaled to zero", svc(replicas=0), [task("o1", "shutdown", desired="shutdown")], HealthStatus.HEALTHY, "0/0"),
    ("global: one per node", svc(mode={"Global": {}}),
     [task("a", "running", node="n1"), task("b", "running", node="n2")], HealthStatus.HEALTHY, "2/2"),
    ("global: one node pending", svc(mode={"Global": {}}),
     [task("a", "running", node="n1"), task("b", "pending", node="n2")], HealthStatus.PROGRESSING, "1/2"),
    ("job done", svc(mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 2}}),
     [task("a", "complete", desired="complete"), task("b", "complete", desired="complete", slot=2)],
     HealthStatus.HEALTHY, "2/2 completions"),
    ("job running", svc(mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 2}}),
     [task("a", "complete", desired="complete"), task("b", "running", slot=2)],
     HealthStatus.PROGRESSING, "1/2 completions"),
]


@pytest.mark.parametrize(("service", "tasks", "status", "message"),
                         [c[1:] for c in HEALTH_CASES], ids=[c[0] for c in HEALTH_CASES])
def test_service_health(service: dict[str, Any], tasks: list[dict[str, Any]], status: HealthStatus,
                        message: str) -> None:
    found = h.service_health(KEY, service, tasks)
    assert found.status is status, found
    assert message in found.message
    assert not found.failures


def test_a_failed_task_of_the_current_spec_fails_fast_and_names_the_task() -> None:
    tasks = [task("o1", "running", spec=OLD), task("n1abcdefghijklmnop", "failed", desired="shutdown",
                                                    err="task: non-zero exit (1)")]
    found = h.service_health(KEY, svc(update=UPDATING), tasks)
    assert found.status is HealthStatus.DEGRADED
    (failure,) = found.failures
    assert failure.object == KEY and failure.pod == "demo_web.1.n1abcdefghij"
    assert failure.reason == "task failed" and failure.message == "task: non-zero exit (1)"
    assert failure.container == "c" * 12
    assert "task failed: task: non-zero exit (1)" in found.message


def test_rejected_task_fails_fast_even_before_the_update_status_appears() -> None:
    found = h.service_health(KEY, svc(), [task("n1", "rejected", desired="shutdown", err="No such image: app:2")])
    assert found.status is HealthStatus.DEGRADED
    assert found.failures[0].reason == "task rejected" and "No such image" in found.failures[0].message


def test_failures_before_the_update_started_and_of_other_specs_are_not_counted() -> None:
    tasks = [task("old-fail", "failed", desired="shutdown", created="2024-01-01T00:00:09.999999999Z"),
             task("other-spec", "failed", desired="shutdown", spec=OLD),
             task("n1", "running"), task("n2", "running", slot=2)]
    assert h.service_health(KEY, svc(update=COMPLETED), tasks).status is HealthStatus.HEALTHY


@pytest.mark.parametrize("state", ["paused", "rollback_started", "rollback_paused", "rollback_completed"])
def test_paused_or_natively_rolled_back_updates_are_failures(state: str) -> None:
    update = {"State": state, "StartedAt": "2024-01-01T00:00:10Z", "Message": f"update {state} because"}
    found = h.service_health(KEY, svc(update=update, template=OLD), [task("o1", "running", spec=OLD)])
    assert found.status is HealthStatus.DEGRADED
    assert state in found.message


def test_engine_timestamps_sort_by_time_not_by_text() -> None:
    # As text, "10.54094702Z" < "10.539935312Z" is wrong: the daemon trims trailing zeros.
    assert h.stamp("2024-01-01T00:00:10.54094702Z") > h.stamp("2024-01-01T00:00:10.539935312Z")
    assert h.stamp("2024-01-01T00:00:10Z") < h.stamp("2024-01-01T00:00:10.000000001Z")
    assert engine_time("1970-01-01T00:00:01.5Z") == 1.5
    assert engine_time("garbage") is None


def test_other_kinds_are_healthy_when_they_exist() -> None:
    assert h.exists_health({"ID": "x"}).status is HealthStatus.HEALTHY
    assert h.exists_health(None).status is HealthStatus.MISSING


# -- state -------------------------------------------------------------------------------------------


def release(number: int, outcome: Outcome = Outcome.SUCCEEDED, manifests: str = "") -> Release:
    return Release(number=number, revision=f"r{number}", digest="d", outcome=outcome, started="t",
                   inventory=(KEY,), manifests=manifests)


def test_state_round_trips_through_its_encoding() -> None:
    state = AppState(app="demo", releases=(release(1), release(2, Outcome.FAILED)), bad_revisions=("r2",))
    back = decode_state(encode_state(state), "7")
    assert back == replace(state, version="7")


def test_state_is_a_chain_of_configs_and_a_stale_writer_is_refused() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    assert store.load() == AppState(app="demo")
    first = store.save(AppState(app="demo").with_release(release(1)))
    assert first.version == "1"
    second = store.save(first.with_release(release(2)))
    third = store.save(second.with_release(release(3)))
    assert store.load() == third and third.version == "3"
    assert api.names() == ["gitops-state-demo-2", "gitops-state-demo-3"]  # the newest two are kept
    # A runner that read version 2 writes after version 3 exists: its create of 3 collides.
    with pytest.raises(StateConflictError, match="another runner"):
        store.save(second.with_release(release(9)))
    # One that read nothing at all while the chain moved on: its write lands below, is withdrawn.
    with pytest.raises(StateConflictError, match="newer state"):
        store.save(AppState(app="demo").with_release(release(9)))
    assert api.names() == ["gitops-state-demo-2", "gitops-state-demo-3"]
    assert store.load() == third


def test_state_keeps_manifests_within_the_config_size() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    big = base64.b64encode(bytes(range(256)) * 800).decode()  # ~270 KB each, incompressible
    state = AppState(app="demo", releases=tuple(release(n, manifests=big) for n in (1, 2, 3)))
    saved = store.save(state)
    assert [bool(r.manifests) for r in saved.releases] == [False, False, True]
    assert len(base64.b64decode(next(iter(api.items.values()))["Spec"]["Data"])) <= 500 * 1024


# -- lock ----------------------------------------------------------------------------------------------


def entry(epoch: int, holder: str, ttl: int, created: float) -> LockEntry:
    return LockEntry(id=f"id{epoch}", epoch=epoch, holder=holder, ttl=ttl, created=created)


def test_lock_entry_expiry_and_who_may_take_it() -> None:
    held = entry(3, "a", 30, 100.0)
    assert not held.expired(129.9) and held.expired(130.1)
    assert held.free_for("a", 110) and not held.free_for("b", 110) and held.free_for("b", 131)
    assert entry(4, "", 0, 100.0).free_for("b", 100)
    parsed = LockEntry.from_config({"ID": "x", "CreatedAt": "1970-01-01T00:01:40Z", "Spec": {"Labels": {
        "gitops.dev/epoch": "5", "gitops.dev/holder": "ci:12", "gitops.dev/ttl": "30"}}})
    assert parsed == LockEntry("x", 5, "ci:12", 30, 100.0)
    assert LockEntry.from_config({"Spec": {"Labels": {"gitops.dev/epoch": "x"}}}) is None


def test_lock_transitions_create_the_next_epoch_and_leave_one_entry() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    assert store.try_acquire("a", 30) == (True, "a")
    assert store.try_acquire("b", 30) == (False, "a")
    assert store.renew("a", 30)
    assert [(e.epoch, e.holder) for e in store.entries()] == [(2, "a")]
    store.release("a")
    assert [(e.epoch, e.holder) for e in store.entries()] == [(3, "")]
    assert store.try_acquire("b", 30) == (True, "b")
    assert api.names() == ["gitops-lock-demo-4"]


def test_an_expired_lock_is_taken_over_and_its_old_holder_cannot_renew() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    assert store.try_acquire("a", 10)[0]
    api.clock += 9
    assert store.try_acquire("b", 10) == (False, "a")
    api.clock += 2  # the manager's clock says a's lease ran out
    assert store.try_acquire("b", 10) == (True, "b")
    assert not store.renew("a", 10)
    store.release("a")  # not a's any more: nothing happens
    assert [(e.epoch, e.holder) for e in store.entries()] == [(2, "b")]


def test_two_runners_racing_for_the_same_transition_only_one_wins() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    real_entries = store.entries
    stale = real_entries()  # both read "no lock" ...
    store.entries = lambda: stale  # type: ignore[method-assign]
    assert store._create_entry(1, "a", 30)  # ... a creates epoch 1 first
    taken, _ = store.transition("b", "b", 30)  # b acts on its stale read: epoch 1 exists
    assert not taken
    store.entries = real_entries  # type: ignore[method-assign]
    assert [(e.epoch, e.holder) for e in store.entries()] == [(1, "a")]


def test_long_app_names_still_make_valid_config_names() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "a" * 60)  # type: ignore[arg-type]
    store.save(AppState(app="a" * 60).with_release(release(1)))
    assert store.try_acquire("me", 30)[0]
    assert all(len(name) <= 64 for name in api.names()) and len(api.names()) == 2
    assert store.load().current == release(1)
    assert object_name("gitops-lock", "short", 3) == "gitops-lock-short-3"


def test_a_runner_recreating_a_deleted_epoch_from_a_stale_read_does_not_get_the_lock() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    assert store.try_acquire("a", 10)[0]  # epoch 1
    api.clock += 11  # a expired: b takes over (epoch 2) and renews (epoch 3); lower epochs are deleted
    assert store.try_acquire("b", 10)[0] and store.renew("b", 10)
    assert api.names() == ["gitops-lock-demo-3"]
    # d read epoch 1 long ago and only now creates epoch 2, which no longer exists: it must lose.
    assert not store._create_entry(2, "d", 10)
    assert [(e.epoch, e.holder) for e in store.entries()] == [(3, "b")]


def test_lock_context_times_out_naming_the_holder() -> None:
    api = FakeConfigs()
    store = SwarmStore(api, "demo")  # type: ignore[arg-type]
    assert store.try_acquire("ci-runner-7", 60)[0]
    with pytest.raises(LockedError, match="ci-runner-7"), store.lock("me", 60, wait=0.3):
        pass


# -- prepare, compare ------------------------------------------------------------------------------

FILES = {"deploy/site.html": b"<h1>hi</h1>", "deploy/token.txt": b"hunter2-secret"}


def compose_doc() -> dict[str, Any]:
    return {
        "services": {"web": {"image": "app:1", "configs": [{"source": "site", "target": "/www/index.html"}],
                             "secrets": ["token", "outside"], "container_name": "x"}},
        "configs": {"site": {"file": "./site.html"}},
        "secrets": {"token": {"file": "token.txt"}, "outside": {"external": True}},
    }


def read_file(path: str) -> bytes:
    if path not in FILES:
        raise FileNotFoundError(2, "No such file or directory", path)
    return FILES[path]


def make_backend(api: Any = None) -> SwarmBackend:
    return SwarmBackend(api or FakeConfigs(), "demo", read_file=read_file)


def test_prepare_translates_compose_files_and_keeps_secret_bytes_out_of_the_bodies() -> None:
    sb = make_backend()
    prepared = sb.prepare([compose_resource("demo", "deploy/compose.yaml", compose_doc())])
    by_kind = {r.key.kind: r for r in prepared}
    assert sorted(by_kind) == ["Config", "Network", "Secret", "Service"]  # the external secret is not ours
    assert all(r.api_version == API_VERSION and r.key.namespace == "demo" for r in prepared)
    assert by_kind["Network"].key.name == "demo_default"
    assert by_kind["Config"].key.name.startswith("demo_site-")
    assert by_kind["Config"].body["Data"] == base64.b64encode(FILES["deploy/site.html"]).decode()
    secret = by_kind["Secret"]
    assert "Data" not in secret.body
    packed = pack_resources(prepared)
    assert "hunter2" not in json.dumps([r.body for r in prepared]) + packed
    assert base64.b64encode(FILES["deploy/token.txt"]).decode() not in json.dumps([r.body for r in prepared])
    assert str(sb._secret_data[secret.key.name]).startswith("SecretData(<redacted")
    assert any("container_name" in d.pointer for d in sb.warnings)
    # Release manifests go through prepare again on rollback: unchanged.
    assert sb.prepare(prepared) == prepared and [r.body for r in sb.prepare(prepared)] == [r.body for r in prepared]


def test_prepare_reports_every_translation_error_with_file_and_field() -> None:
    doc = compose_doc()
    doc["services"]["web"].pop("image")
    doc["configs"]["site"]["file"] = "missing.html"
    with pytest.raises(GitopsError) as info:
        make_backend().prepare([compose_resource("demo", "deploy/compose.yaml", doc)])
    text = str(info.value)
    assert "deploy/compose.yaml" in text and "/services/web" in text and "/configs/site/file" in text


def test_prepare_refuses_other_stacks_kinds_and_conflicting_duplicates() -> None:
    sb = make_backend()
    with pytest.raises(GitopsError, match="stack other"):
        sb.prepare([compose_resource("other", "c.yaml", compose_doc())])
    with pytest.raises(GitopsError, match="takes compose files"):
        sb.prepare([Resource(ResourceKey("apps", "Deployment", "demo", "x"), "apps/v1", {}, Origin("k.yaml"))])
    second = compose_doc()
    second["services"]["web"]["image"] = "app:2"
    with pytest.raises(GitopsError, match="declared twice"):
        sb.prepare([compose_resource("demo", "deploy/base.yaml", compose_doc()),
                    compose_resource("demo", "deploy/compose.yaml", second)])


def test_a_secret_whose_bytes_are_unknown_cannot_be_recreated() -> None:
    runner = make_backend()
    prepared = runner.prepare([compose_resource("demo", "deploy/compose.yaml", compose_doc())])
    secret = next(r for r in prepared if r.key.kind == "Secret")
    other = make_backend()  # another runner, re-preparing release manifests
    (again,) = other.prepare([secret])
    comparison = other.compare(again, None)
    assert comparison.action is Action.CREATE and f"secret {secret.key.name} was pruned" in comparison.reason
    with pytest.raises(GitopsError, match="re-apply that revision from git"):
        other.apply(again)
    assert runner.compare(secret, None).reason == "does not exist"


# -- the secret naming key ---------------------------------------------------------------------------


def secret_name(sb: SwarmBackend) -> str:
    prepared = sb.prepare([compose_resource("demo", "deploy/compose.yaml", compose_doc())])
    (name,) = [r.key.name for r in prepared if r.key.kind == "Secret"]
    return name


def payload(api: FakeConfigs) -> dict[str, Any]:
    """The newest state config's payload, as stored."""
    newest = max(api.configs("gitops.dev/state=demo"), key=lambda c: int(c["Spec"]["Labels"]["gitops.dev/seq"]))
    return dict(json.loads(gzip.decompress(base64.b64decode(newest["Spec"]["Data"]))))


def test_the_naming_key_is_made_by_a_read_and_stored_by_the_first_save() -> None:
    api = FakeConfigs()
    runner = make_backend(api)
    state = runner.load_state()
    name = secret_name(runner)  # a plan: reading the state and preparing write nothing
    assert api.writes == 0 and api.items == {}
    key = runner.store.naming_key()
    assert len(key) == 32 and not runner.store.naming_key_stored
    assert name == f"demo_token-{keyed_hash(FILES['deploy/token.txt'], key)}"
    assert name != f"demo_token-{hashlib.sha256(FILES['deploy/token.txt']).hexdigest()[:10]}"
    assert any("provisional" in d.message for d in runner.warnings)
    assert secret_name(runner) == name  # the same run: the same (provisional) key

    saved = runner.save_state(state.with_release(release(1)))  # an apply's first write
    assert runner.store.naming_key_stored and base64.b64decode(payload(api)["secret_naming_key"]) == key
    # The key is not part of the state value: no view of it (status, history, JSON) can show it.
    for shown in (json.dumps(saved.to_json()), repr(saved), str(runner.load_state())):
        assert key.hex() not in shown and base64.b64encode(key).decode() not in shown
    assert "secret_naming_key" not in saved.to_json()

    # Another runner (another process) reads the key: the same names, no warning; its saves keep it.
    other = make_backend(api)
    assert secret_name(other) == name and other.store.naming_key_stored
    assert not any("provisional" in d.message for d in other.warnings)
    other.save_state(other.load_state().with_release(release(2)))
    third = make_backend(api)
    assert secret_name(third) == name
    assert base64.b64decode(payload(api)["secret_naming_key"]) == key


def test_a_save_without_a_read_keeps_the_stored_key() -> None:
    api = FakeConfigs()
    first = make_backend(api)
    name = secret_name(first)
    first.save_state(first.load_state().with_release(release(1)))
    blind = make_backend(api)  # never read the state (nor prepared anything) before its save
    blind.save_state(replace(AppState(app="demo"), version="1").with_release(release(2)))
    assert secret_name(make_backend(api)) == name


def test_the_key_a_runner_stored_first_wins_over_one_made_for_a_save_that_did_not_happen() -> None:
    api = FakeConfigs()
    a, b = make_backend(api), make_backend(api)
    a_name, b_name = secret_name(a), secret_name(b)  # both plan the app's first apply
    assert a_name != b_name, "two new random keys"
    a.save_state(a.load_state().with_release(release(1)))  # a gets the lock first
    b.load_state()  # b, once it holds the lock, reads the state again and prepares again
    assert secret_name(b) == a_name and b.store.naming_key_stored


def test_a_state_written_before_keyed_names_gets_a_key_on_its_next_save() -> None:
    api = FakeConfigs()
    legacy = SwarmStore(api, "demo")  # type: ignore[arg-type]
    legacy.save(AppState(app="demo").with_release(release(1)))  # no key was ever made: none is stored
    assert "secret_naming_key" not in payload(api)
    sb = make_backend(api)
    name = secret_name(sb)
    assert not sb.store.naming_key_stored
    sb.save_state(sb.load_state().with_release(release(2)))
    assert "secret_naming_key" in payload(api) and secret_name(make_backend(api)) == name


def test_two_apps_with_the_same_secret_get_different_names() -> None:
    api = FakeConfigs()
    names = []
    for app in ("one", "two"):
        sb = SwarmBackend(api, app, stack="demo", read_file=read_file)  # type: ignore[arg-type]
        names.append(secret_name(sb))
        sb.save_state(sb.load_state().with_release(release(1)))
    assert names[0] != names[1]
    plain = hashlib.sha256(FILES["deploy/token.txt"]).hexdigest()[:10]
    assert all(not n.endswith(plain) for n in names)


def test_views_without_a_target_use_one_random_key_per_run() -> None:
    resources = [compose_resource("demo", "deploy/compose.yaml", compose_doc())]
    base, head = (offline_objects(resources, "demo", "demo", read_file) for _ in range(2))
    (name,) = {r.key.name for r in base if r.key.kind == "Secret"}
    assert name in {r.key.name for r in head}  # equal content, equal names (base and head of a diff)
    assert name == f"demo_token-{keyed_hash(FILES['deploy/token.txt'], PROCESS_KEY)}"
    assert not name.endswith(hashlib.sha256(FILES["deploy/token.txt"]).hexdigest()[:10])


def test_compare_services_and_immutable_objects() -> None:
    sb = make_backend()
    prepared = {r.key.kind: r for r in sb.prepare([compose_resource("demo", "deploy/compose.yaml", compose_doc())])}
    web = prepared["Service"]
    live = {"ID": "s1", "Version": {"Index": 5}, "Spec": copy.deepcopy(web.body)}
    live["Spec"]["TaskTemplate"]["ForceUpdate"] = 0
    live["Spec"]["TaskTemplate"]["Runtime"] = "container"
    assert sb.compare(web, live).action is Action.NOOP
    live["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "app:0"
    update = sb.compare(web, live)
    assert update.action is Action.UPDATE
    assert [(f.path, f.before, f.after) for f in update.fields] == [
        ("/TaskTemplate/ContainerSpec/Image", "app:0", "app:1")]
    live["Spec"]["Labels"] = {}
    assert "taking it over" in sb.compare(web, live).reason
    config = prepared["Config"]
    relabelled = {"ID": "c1", "Spec": {**config.body, "Labels": {"other": "x"}}}
    assert sb.compare(config, relabelled).action is Action.REPLACE
    secret = prepared["Secret"]
    assert sb.compare(secret, {"ID": "x", "Spec": dict(secret.body)}).action is Action.NOOP
    assert sb.owned(web.key, {"Spec": web.body}) and not sb.owned(web.key, {"Spec": {"Labels": {}}})
    assert sb.wave(config.key) == 1 and sb.wave(web.key) == 3
    assert sb.wave(prepared["Network"].key) == 0


# -- deferred prune of configs and secrets ---------------------------------------------------------


def test_config_and_secret_prunes_wait_for_a_successful_rollout() -> None:
    api = FakeConfigs()
    sb = make_backend(api)
    old_config = ResourceKey("swarm", "Config", "demo", "demo_site-old")
    old_secret = ResourceKey("swarm", "Secret", "demo", "demo_token-old")
    sb.delete(old_config, {"ID": "cfg-old"})
    sb.delete(old_secret, {"ID": "sec-old"})
    assert api.removed == [] and sb.pending_prunes() == [old_config, old_secret]
    # Saving state deletes nothing: the prune step is its own call.
    sb.save_state(AppState(app="demo").with_release(release(1, Outcome.SUCCEEDED)))
    assert api.removed == [] and sb.pending_prunes() == [old_config, old_secret]

    assert sb.finish_prunes(rollout_ok=False) == []  # the old objects are what the rollback needs
    assert api.removed == [] and sb.pending_prunes() == []

    sb.delete(old_config, {"ID": "cfg-old"})
    sb.delete(old_secret, {"ID": "sec-old"})
    api.refuse_delete.add("sec-old")
    # The one that could not be deleted is returned: the deploy flow keeps it in the inventory.
    assert sb.finish_prunes(rollout_ok=True) == [old_secret]
    assert api.removed[-1] == "cfg-old" and sb.pending_prunes() == []


def test_a_deferred_prune_of_an_object_applied_again_is_dropped() -> None:
    api = FakeConfigs()
    sb = make_backend(api)
    config = next(r for r in sb.prepare([compose_resource("demo", "deploy/compose.yaml", compose_doc())])
                  if r.key.kind == "Config")
    sb.delete(config.key, {"ID": "cfg"})
    sb.apply(config)  # e.g. the rollback wants it back: FakeConfigs creates it
    assert sb.pending_prunes() == []


def test_errors_from_the_engine_keep_their_kind() -> None:
    assert issubclass(SwarmConflict, SwarmAPIError) and issubclass(SwarmNotFound, SwarmAPIError)


def test_x_gitops_prune_false_opts_objects_out_of_pruning() -> None:
    doc = compose_doc()
    doc["services"]["web"]["volumes"] = ["data:/data"]
    doc["volumes"] = {"data": {"x-gitops-prune": False}}
    doc["configs"]["site"]["x-gitops-prune"] = False
    doc["services"]["web"]["x-gitops-prune"] = False
    sb = make_backend()
    prepared = {r.key.kind: r for r in sb.prepare([compose_resource("demo", "deploy/compose.yaml", doc)])}
    assert {k for k, r in prepared.items() if sb.prune_disabled(r)} == {"Volume", "Config", "Service"}
    assert "x-gitops-prune" not in json.dumps([r.body for r in prepared.values()])  # never sent to the engine
    assert not any("x-gitops-prune" in d.pointer for d in sb.warnings)
    doc["volumes"]["data"]["x-gitops-prune"] = "nope"
    with pytest.raises(GitopsError, match="x-gitops-prune: must be true or false"):
        sb.prepare([compose_resource("demo", "deploy/compose.yaml", doc)])
    assert not any(sb.prune_disabled(r) for r in sb.prepare([compose_resource("demo", "deploy/compose.yaml",
                                                                              compose_doc())]))
