"""The deploy flow on an in-memory backend: ordering, no-op, stale plans, prune, rollback."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from fakes import FakeBackend, res

from gitops import deploy
from gitops.errors import BackendError, GitopsError, LockedError, LockLostError, StalePlanError
from gitops.model import Failure, Health, HealthStatus
from gitops.model.plans import Action, AppPlan, Plan
from gitops.model.releases import Outcome

FAST = deploy.Options(timeout=2, poll=0.01)


def app(image: str = "app:1", mode: str = "a", extra: bool = False, password: str = "pw1") -> list:
    items = [
        res("Deployment", "web", image=image),
        res("ConfigMap", "cfg", data={"mode": mode}),
        res("Secret", "sec", data={"password": password}),
        res("Namespace", "ns"),
    ]
    if extra:
        items.append(res("ConfigMap", "extra", data={"k": "v"}))
    return items


def test_first_apply_creates_in_wave_order_and_records_a_release() -> None:
    fake = FakeBackend()
    result = deploy.apply_app(fake, app(), "r1", FAST)
    assert result.outcome == "applied"
    assert [k.kind for k in fake.applied] == ["Namespace", "ConfigMap", "Secret", "Deployment"]
    assert fake.state is not None
    assert [(r.revision, r.outcome) for r in fake.state.releases] == [("r1", Outcome.SUCCEEDED)]
    assert len(fake.state.current.inventory) == 4  # type: ignore[union-attr]


def test_no_op_apply_makes_no_write() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "r1", FAST)
    writes = fake.writes
    result = deploy.apply_app(fake, app(), "r1", FAST)
    assert result.outcome == "no-op"
    assert fake.writes == writes


def test_prune_deletes_only_objects_this_app_owns_in_reverse_wave_order() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(extra=True), "r1", FAST)
    foreign = res("ConfigMap", "foreign", data={})
    fake.objects[foreign.key] = foreign.body  # someone else's object, never in our inventory
    taken = res("ConfigMap", "extra").key
    plan, _ = deploy.plan_app(fake, app(), "r2")
    assert [(c.action, c.key.name) for c in plan.changes if c.action is Action.DELETE] == [(Action.DELETE, "extra")]
    fake.objects[taken]["metadata"]["labels"] = {}  # ownership label removed by hand: left alone
    plan, _ = deploy.plan_app(fake, app(), "r2")
    assert not any(c.action is Action.DELETE for c in plan.changes)
    assert foreign.key in fake.objects


def test_secret_values_never_reach_the_saved_plan() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(password="hunter2"), "r1", FAST)
    plan, _ = deploy.plan_app(fake, app(password="swordfish"), "r2")
    text = json.dumps(Plan((plan,)).to_json())
    assert "hunter2" not in text and "swordfish" not in text
    change = next(c for c in plan.changes if c.key.kind == "Secret")
    assert change.action is Action.UPDATE and change.fields[0].sensitive
    assert AppPlan.from_json(plan.to_json()) == plan


def test_stale_plans_are_refused() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "r1", FAST)
    saved, _ = deploy.plan_app(fake, app(mode="b"), "r2")
    fake.objects[res("ConfigMap", "cfg").key]["data"] = {"mode": "edited by hand"}
    with pytest.raises(StalePlanError, match="live objects"):
        deploy.apply_app(fake, app(mode="b"), "r2", FAST, saved=saved)
    with pytest.raises(StalePlanError, match="manifests"):
        deploy.apply_app(fake, app(mode="c"), "r3", FAST, saved=saved)


def test_failed_rollout_rolls_every_object_back_and_marks_the_revision_bad() -> None:
    fake = FakeBackend(failing_images={"crash:1"})
    deploy.apply_app(fake, app(), "good", FAST)
    before = {k: v for k, v in fake.objects.items()}
    result = deploy.apply_app(fake, app(image="crash:1", mode="b", extra=True), "bad", FAST)
    assert result.outcome == "rolled-back"
    assert "CrashLoopBackOff" in result.error and "p-1" in result.error
    assert fake.objects == before
    assert fake.state is not None
    assert [(r.revision, r.outcome) for r in fake.state.releases] == [
        ("good", Outcome.SUCCEEDED), ("bad", Outcome.FAILED), ("good", Outcome.ROLLED_BACK)]
    assert fake.state.bad_revisions == ("bad",)
    with pytest.raises(GitopsError, match="marked bad"):
        deploy.apply_app(fake, app(image="crash:1"), "bad", FAST)


def test_a_failed_apply_midway_is_rolled_back_too() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "good", FAST)
    before = dict(fake.objects)
    fake.fail_apply_of = {res("Deployment", "web").key}
    result = deploy.apply_app(fake, app(image="app:2", mode="b"), "bad", FAST)
    # The ConfigMap (an earlier wave) was changed before the Deployment failed; the rollback
    # restores it, and the Deployment, never changed, needs nothing.
    assert result.outcome == "rolled-back"
    assert "injected" in result.error
    assert fake.objects == before


def test_failed_first_install_is_removed_entirely_like_an_atomic_install() -> None:
    fake = FakeBackend(failing_images={"crash:1"})
    result = deploy.apply_app(fake, app(image="crash:1"), "r1", FAST)
    assert result.outcome == "rolled-back"
    assert fake.objects == {}


def test_rollout_timeout_is_a_failure() -> None:
    fake = FakeBackend()
    fake.health = lambda keys: {k: Health(HealthStatus.PROGRESSING, "waiting") for k in keys}  # type: ignore
    result = deploy.apply_app(fake, app(), "r1", deploy.Options(timeout=0.05, poll=0.01, auto_rollback=False))
    assert result.outcome == "failed" and "timed out" in result.error


def test_interrupted_apply_leaves_an_in_progress_release_whose_inventory_is_complete() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "r1", FAST)
    fake.fail_apply_of = {res("ConfigMap", "extra").key}
    deploy.apply_app(fake, app(extra=True), "r2", deploy.Options(timeout=1, poll=0.01, auto_rollback=False))
    state = fake.load_state()
    assert res("ConfigMap", "extra").key in state.inventory()
    fake.fail_apply_of = set()
    result = deploy.apply_app(fake, app(extra=True), "r2", deploy.Options(timeout=1, poll=0.01,
                                                                         allow_bad_revision=True))
    assert result.outcome == "applied"
    assert res("ConfigMap", "extra").key in fake.objects


def test_a_held_lock_is_reported() -> None:
    fake = FakeBackend(lock_holder="runner-2")
    with pytest.raises(LockedError, match="runner-2"):
        deploy.apply_app(fake, app(), "r1", deploy.Options(timeout=2, poll=0.01, lock_wait=0))


def test_rollback_on_demand() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(mode="one"), "r1", FAST)
    deploy.apply_app(fake, app(mode="two", extra=True), "r2", FAST)
    result = deploy.rollback_app(fake, FAST)
    assert result.outcome == "rolled-back"
    assert fake.objects[res("ConfigMap", "cfg").key]["data"] == {"mode": "one"}
    assert res("ConfigMap", "extra").key not in fake.objects
    with pytest.raises(GitopsError, match="no recorded release"):
        deploy.rollback_app(fake, FAST, to_revision="nope")


def test_a_cronjob_whose_earlier_run_failed_does_not_fail_the_rollout() -> None:
    fake = FakeBackend()
    fake.health = lambda keys: {k: Health(HealthStatus.DEGRADED, "earlier run failed",  # type: ignore[method-assign]
                                          (Failure(k, reason="LastScheduledRunFailed"),)) for k in keys}
    assert deploy.apply_app(fake, app(), "r1", FAST).outcome == "applied"
    fake.health = lambda keys: {k: Health(HealthStatus.DEGRADED, "crash",  # type: ignore[method-assign]
                                          (Failure(k, reason="LastScheduledRunFailed"),
                                           Failure(k, reason="CrashLoopBackOff"))) for k in keys}
    assert deploy.apply_app(fake, app(image="x"), "r2", deploy.Options(timeout=1, poll=0.01,
                                                                       auto_rollback=False)).outcome == "failed"


class Killed(BaseException):
    """The runner dies (kill -9): nothing after this point of the flow runs."""


def die_at(moment: str) -> deploy.Event:
    def on_event(event: dict[str, object]) -> None:
        if event["event"] == moment:
            raise Killed
    return on_event


def test_a_runner_killed_during_the_rollout_is_rolled_back_by_the_next_run() -> None:
    """The dead runner wrote the crash-looping Deployment and died watching it. The re-run plans
    no change, but must watch the whole app, see the crash and roll back: never record it good."""
    fake = FakeBackend(failing_images={"crash:1"})
    deploy.apply_app(fake, app(), "good", FAST)
    before = dict(fake.objects)
    with pytest.raises(Killed):
        deploy.apply_app(fake, app(image="crash:1"), "bad", FAST, on_event=die_at("rollout"))
    assert fake.state is not None and fake.state.current is not None
    assert fake.state.current.outcome is Outcome.IN_PROGRESS
    assert not deploy.plan_app(fake, app(image="crash:1"), "bad")[0].has_changes

    events: list[dict[str, object]] = []
    result = deploy.apply_app(fake, app(image="crash:1"), "bad", FAST, on_event=events.append)
    assert result.outcome == "rolled-back" and "CrashLoopBackOff" in result.error
    assert {"event": "resume", "app": fake.app, "release": 2, "revision": "bad"} in events
    assert fake.objects == before
    assert [(r.number, r.revision, r.outcome) for r in fake.state.releases] == [
        (1, "good", Outcome.SUCCEEDED), (2, "bad", Outcome.FAILED), (3, "good", Outcome.ROLLED_BACK)]
    assert fake.state.bad_revisions == ("bad",)


def test_an_interrupted_release_superseded_by_a_newer_revision_is_not_marked_bad() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "r1", FAST)
    with pytest.raises(Killed):
        deploy.apply_app(fake, app(image="app:2"), "r2", FAST, on_event=die_at("rollout"))
    result = deploy.apply_app(fake, app(image="app:3"), "r3", FAST)
    assert result.outcome == "applied"
    assert fake.state is not None
    assert [(r.revision, r.outcome) for r in fake.state.releases] == [
        ("r1", Outcome.SUCCEEDED), ("r2", Outcome.FAILED), ("r3", Outcome.SUCCEEDED)]
    assert "interrupted" in fake.state.releases[1].message and fake.state.bad_revisions == ()


def test_a_runner_that_waited_for_the_lock_and_finds_the_revision_applied_records_nothing() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "r1", FAST)
    real_lock = fake.lock

    def lock_taken_by_another_runner_first(holder: str, ttl_seconds: int, wait: float,  # type: ignore[no-untyped-def]
                                           **waits: Any):
        # While we wait for the lock, another runner applies the same revision to the end.
        fake.lock = real_lock  # type: ignore[method-assign]
        deploy.apply_app(fake, app(image="app:2"), "r2", deploy.Options(timeout=2, poll=0.01, holder="other"))
        return real_lock(holder, ttl_seconds, wait, **waits)

    fake.lock = lock_taken_by_another_runner_first  # type: ignore[method-assign]
    result = deploy.apply_app(fake, app(image="app:2"), "r2", FAST)
    assert result.outcome == "no-op"
    assert fake.state is not None
    assert [(r.revision, r.outcome) for r in fake.state.releases] == [
        ("r1", Outcome.SUCCEEDED), ("r2", Outcome.SUCCEEDED)]


# -- a lost lock stops the writer --------------------------------------------------------------------


def _steal_lock_at(fake: FakeBackend, write: int) -> None:
    """Before write number ``write``, another runner takes the lock over (as after an expiry); the
    hook returns once the holder's renewer has seen it."""
    count = 0

    def hook() -> None:
        nonlocal count
        count += 1
        if count == write:
            fake.lock_holder, fake.lock_expires = "runner-2", float("inf")
            assert fake.renewal_refused.wait(5), "the renewer never noticed"
            # The renewer marks the lease lost right after its refused renewal: wait for that too.
            deadline = time.monotonic() + 5
            while fake.lease is not None and not fake.lease.lost and time.monotonic() < deadline:
                time.sleep(0.001)
            assert fake.lease is not None and fake.lease.lost

    fake.on_write = hook


def test_an_apply_that_lost_its_lock_stops_writing_and_reports_lock_lost() -> None:
    fake = FakeBackend()
    _steal_lock_at(fake, 1)  # during the in-progress state write
    with pytest.raises(LockLostError, match="lock was lost"):
        deploy.apply_app(fake, app(), "r1", deploy.Options(timeout=2, poll=0.01, lock_ttl=1))
    assert fake.objects == {}, "objects were written after the lock was lost"
    assert fake.state is not None
    assert [(r.revision, r.outcome) for r in fake.state.releases] == [("r1", Outcome.IN_PROGRESS)]
    assert fake.lock_holder == "runner-2", "the new holder's lock was released by the old one"


def test_a_lock_lost_between_waves_stops_before_the_next_wave_and_does_not_roll_back() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "r1", FAST)
    before = copy.deepcopy(fake.objects)
    _steal_lock_at(fake, 3)  # state, Namespace's wave... then the ConfigMap/Secret wave
    with pytest.raises(LockLostError):
        deploy.apply_app(fake, app(image="app:2", mode="b", password="pw2"), "r2",
                         deploy.Options(timeout=2, poll=0.01, lock_ttl=1))
    web = res("Deployment", "web").key
    assert fake.objects[web] == before[web], "a later wave was written after the lock was lost"
    assert fake.state is not None and fake.state.current is not None
    assert fake.state.current.outcome is Outcome.IN_PROGRESS  # no failure recorded, no rollback written


def test_a_lock_that_cannot_be_renewed_for_a_ttl_is_lost() -> None:
    from gitops.backends import locking

    def renew() -> bool:
        raise BackendError("cannot reach the target")

    with locking.held(app="demo", ttl=0.3, wait=0, acquire=lambda: (True, "me"), renew=renew,
                      release=lambda: None, where="test") as lease:
        deadline = time.monotonic() + 5
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lease.lost
        with pytest.raises(LockLostError, match="not renewed"):
            lease.check()


def test_a_lock_lost_during_the_rollout_wait_stops_the_wait() -> None:
    fake = FakeBackend()
    polls = 0

    def health(keys: object) -> dict:
        nonlocal polls
        polls += 1
        if polls == 2:
            fake.lock_holder, fake.lock_expires = "runner-2", float("inf")
            assert fake.renewal_refused.wait(5)
        return {k: Health(HealthStatus.PROGRESSING, "waiting") for k in keys}  # type: ignore[attr-defined]

    fake.health = health  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(LockLostError):
        deploy.apply_app(fake, app(), "r1", deploy.Options(timeout=60, poll=0.01, lock_ttl=1))
    assert time.monotonic() - started < 10, "the rollout wait went on after the lock was lost"
    assert fake.state is not None and fake.state.current is not None
    assert fake.state.current.outcome is Outcome.IN_PROGRESS


def test_an_apply_the_target_refused_is_rolled_back_but_never_marks_the_revision_bad() -> None:
    """A conflict or an admission denial is not the revision's workloads failing: once the cause is
    gone, the same revision applies (no --allow-bad-revision needed)."""
    fake = FakeBackend()
    deploy.apply_app(fake, app(), "good", FAST)
    fake.fail_apply_of = {res("Deployment", "web").key}
    refused = deploy.apply_app(fake, app(image="app:2", mode="b"), "r2", FAST)
    assert refused.outcome == "rolled-back" and "injected" in refused.error
    assert fake.state is not None and fake.state.bad_revisions == ()
    fake.fail_apply_of = set()
    assert deploy.apply_app(fake, app(image="app:2", mode="b"), "r2", FAST).outcome == "applied"


class _StepClock:
    """A clock that moves only when waited on: a 600 s wait takes no real time."""

    def __init__(self) -> None:
        self.t = 0.0
        self.waited = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> Any:
        from datetime import UTC, datetime
        return datetime.fromtimestamp(self.t, UTC)

    def wait(self, stop: Any, seconds: float) -> bool:
        self.t += seconds
        self.waited += seconds
        return bool(stop.is_set())


def test_an_apply_waiting_for_a_held_lock_stops_at_once_when_asked_and_the_wait_runs_on_its_clock() -> None:
    from gitops.errors import StoppedError

    clock = _StepClock()
    fake = FakeBackend(lock_holder="ci-runner")
    asked = {"n": 0}

    def stopping() -> bool:  # the daemon's SIGTERM arrives after 30 s of waiting
        asked["n"] += 1
        return clock.t >= 30

    with pytest.raises(StoppedError, match="waiting for its lock"):
        deploy.apply_app(fake, [res("ConfigMap", "a", data={"k": "v"})], "rev-1",
                         deploy.Options(lock_wait=600, stopping=stopping, clock=clock))
    assert 30 <= clock.t < 31  # stopped within one check (0.2 s) of being asked, not after 600 s
    assert fake.objects == {} and fake.state is None  # nothing written
    # Without a stop, the same wait gives up after lock_wait on that clock, naming the holder.
    clock2 = _StepClock()
    with pytest.raises(LockedError, match="ci-runner"):
        deploy.apply_app(fake, [res("ConfigMap", "a", data={"k": "v"})], "rev-1",
                         deploy.Options(lock_wait=600, clock=clock2))
    assert 600 <= clock2.t < 603


def waved(name: str, kind: str, wave: int | None, **body: Any) -> Any:
    r = res(kind, name, **body)
    if wave is not None:
        r.body["metadata"]["annotations"] = {"gitops.dev/wave": str(wave)}
    return r


def test_user_waves_are_applied_in_order_each_healthy_before_the_next_and_pruned_in_reverse() -> None:
    fake = FakeBackend()
    health_polls: list[list[str]] = []
    real_health = fake.health

    def health(keys: Any) -> Any:
        wanted = list(keys)
        health_polls.append(sorted(k.name for k in wanted))
        return real_health(wanted)

    fake.health = health  # type: ignore[method-assign]
    resources = [waved("db", "Deployment", -1, image="db:1"), waved("migrate", "ConfigMap", 0, data={"a": "1"}),
                 waved("web", "Deployment", 2, image="web:1"), waved("web-config", "ConfigMap", 2, data={})]
    plan, _ = deploy.plan_app(fake, resources, "r1")
    assert [c.key.name for c in plan.changes] == ["db", "migrate", "web-config", "web"]  # wave, then kind
    events: list[dict[str, Any]] = []
    result = deploy.apply_app(fake, resources, "r1", FAST, on_event=events.append)
    assert result.outcome == "applied", result.error
    assert [e["wave"] for e in events if e["event"] == "wave"] == [-1, 0, 2]
    assert [k.name for k in fake.applied] == ["db", "migrate", "web-config", "web"]
    # The wave -1 Deployment was watched on its own, before wave 0 was written.
    assert health_polls[0] == ["db"]
    # Pruned in reverse: the later wave goes first.
    plan, _ = deploy.plan_app(fake, [], "r2", policy=deploy.prune_stage.Policy(allow_mass_delete=True))
    deletes = [c.key.name for c in plan.changes if c.action is Action.DELETE]
    assert deletes.index("web") < deletes.index("migrate") < deletes.index("db")


def test_a_wave_that_fails_its_rollout_stops_the_later_waves_and_rolls_back() -> None:
    fake = FakeBackend(failing_images={"db:2"})
    resources = [waved("db", "Deployment", 0, image="db:1"), waved("web", "Deployment", 1, image="web:1")]
    assert deploy.apply_app(fake, resources, "r1", FAST).outcome == "applied"
    fake.applied.clear()
    bad = [waved("db", "Deployment", 0, image="db:2"), waved("web", "Deployment", 1, image="web:2")]
    result = deploy.apply_app(fake, bad, "r2", FAST)
    assert result.outcome == "rolled-back"
    assert [k.name for k in fake.applied] == ["db", "db"]  # db:2, its rollout failed, db:1 back; web:2 never
    assert fake.objects[res("Deployment", "web").key]["image"] == "web:1"
    assert fake.objects[res("Deployment", "db").key]["image"] == "db:1"
    assert not any(k.name == "web" and fake.objects[k].get("image") == "web:2" for k in fake.objects)


def test_the_plan_text_shows_the_user_waves_in_order() -> None:
    from gitops.views.plans import app_plan_text

    fake = FakeBackend()
    resources = [waved("db", "Deployment", -1, image="db:1"), waved("web", "Deployment", 2, image="web:1"),
                 waved("plain", "ConfigMap", None, data={})]
    plan, _ = deploy.plan_app(fake, resources, "r1")
    text = app_plan_text(plan)
    assert text.index("wave -1:") < text.index("Deployment/ns/db") < text.index("wave 0:") \
        < text.index("ConfigMap/ns/plain") < text.index("wave 2:") < text.index("Deployment/ns/web")
    one_wave, _ = deploy.plan_app(FakeBackend(), [waved("plain", "ConfigMap", None, data={})], "r1")
    assert "wave" not in app_plan_text(one_wave)
