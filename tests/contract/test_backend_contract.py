"""The Backend contract: every test runs on the in-memory fake, the real Kubernetes backend and
the real Swarm backend (the ``subject`` fixture, tests/contract/conftest.py), so the fake the unit
tests rely on cannot drift from the real backends, nor the real backends from each other."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from subjects import Subject
from testsupport import wait_for

from gitops import deploy
from gitops.errors import ImmutableFieldError, LockedError, LockLostError, StateConflictError
from gitops.model import Diagnostic, Failure, HealthStatus
from gitops.model.plans import Action
from gitops.model.releases import AppState, Outcome, Release


def options(**overrides: Any) -> deploy.Options:
    return deploy.Options(**{"timeout": 120, "poll": 0.3, "lock_wait": 30, **overrides})


def changes(plan: Any) -> dict[str, Action]:
    return {str(c.key): c.action for c in plan.changes if c.action is not Action.NOOP}


def present(subject: Subject, key: Any) -> bool:
    return subject.backend.observe([key])[key] is not None


def test_create_applies_every_object_and_records_a_versioned_release(subject: Subject) -> None:
    backend = subject.backend
    desired = {r.key for r in backend.prepare(subject.app())}
    assert isinstance(backend.warnings, list) and all(isinstance(w, Diagnostic) for w in backend.warnings)
    result = deploy.apply_app(backend, subject.app(), "r1", options())
    assert result.outcome == "applied", result.error
    assert result.changeset is not None
    assert set(result.changeset.created) == desired
    assert not result.changeset.configured and not result.changeset.replaced and not result.changeset.deleted
    assert all(present(subject, key) for key in desired)
    state = backend.load_state()
    assert state.version, "a stored state has a version"
    assert [(r.revision, r.outcome) for r in state.releases] == [("r1", Outcome.SUCCEEDED)]
    assert state.current is not None and set(state.current.inventory) == desired


def test_no_op_second_plan_is_empty_and_apply_makes_zero_writes(subject: Subject) -> None:
    backend = subject.backend
    assert deploy.apply_app(backend, subject.app(), "r1", options()).outcome == "applied"
    again, _ = deploy.plan_app(backend, subject.app(), "r1")
    assert not again.has_changes, changes(again)
    exact, _ = deploy.plan_app(backend, subject.app(), "r1", exact=True)
    assert not exact.has_changes, changes(exact)
    writes = subject.writes()
    result = deploy.apply_app(backend, subject.app(), "r1", options())
    assert result.outcome == "no-op"
    assert subject.writes() == writes, "a no-op apply made write requests"


def test_update_configures_the_workload_in_place(subject: Subject) -> None:
    backend = subject.backend
    assert deploy.apply_app(backend, subject.app(), "r1", options()).outcome == "applied"
    planned, _ = deploy.plan_app(backend, subject.app(image="new"), "r2")
    assert changes(planned) == {str(subject.workload): Action.UPDATE}
    exact, _ = deploy.plan_app(backend, subject.app(image="new"), "r2", exact=True)
    assert changes(exact) == {str(subject.workload): Action.UPDATE}
    result = deploy.apply_app(backend, subject.app(image="new"), "r2", options())
    assert result.outcome == "applied", result.error
    assert result.changeset is not None and result.changeset.configured == [subject.workload]
    assert not result.changeset.created and not result.changeset.replaced
    after, _ = deploy.plan_app(backend, subject.app(image="new"), "r2")
    assert not after.has_changes, changes(after)


def test_an_immutable_change_is_planned_as_a_replace_and_refused_in_place(subject: Subject) -> None:
    backend = subject.backend
    assert deploy.apply_app(backend, subject.app(frozen="a"), "r1", options()).outcome == "applied"
    planned, _ = deploy.plan_app(backend, subject.app(frozen="b"), "r2")
    assert changes(planned) == {str(subject.frozen): Action.REPLACE}
    (changed,) = [r for r in backend.prepare(subject.app(frozen="b")) if r.key == subject.frozen]
    with pytest.raises(ImmutableFieldError):
        backend.apply(changed)  # without replace: the target refuses it
    result = deploy.apply_app(backend, subject.app(frozen="b"), "r2", options())
    assert result.outcome == "applied", result.error
    assert result.changeset is not None and result.changeset.replaced == [subject.frozen]
    after, _ = deploy.plan_app(backend, subject.app(frozen="b"), "r2")
    assert not after.has_changes, changes(after)


def test_prune_deletes_owned_objects_and_never_one_without_our_ownership_label(subject: Subject) -> None:
    backend = subject.backend
    assert deploy.apply_app(backend, subject.app(extra=True), "r1", options()).outcome == "applied"
    result = deploy.apply_app(backend, subject.app(), "r2", options())
    assert result.outcome == "applied", result.error
    assert result.changeset is not None and result.changeset.deleted == [subject.extra]
    assert not present(subject, subject.extra)

    assert deploy.apply_app(backend, subject.app(extra=True), "r3", options()).outcome == "applied"
    subject.disown(subject.extra)  # someone took the ownership label off by hand
    planned, _ = deploy.plan_app(backend, subject.app(), "r4")
    assert subject.extra not in {c.key for c in planned.changes if c.action is Action.DELETE}
    result = deploy.apply_app(backend, subject.app(), "r4", options())
    assert result.outcome == "applied", result.error
    assert present(subject, subject.extra), "an object without our ownership label was deleted"


def test_state_versions_move_on_every_save_and_a_stale_save_is_a_state_conflict(subject: Subject) -> None:
    backend = subject.backend
    empty = backend.load_state()
    assert empty == AppState(app=backend.app), "no state yet: empty, without a version"
    release = Release(1, "r1", "digest", Outcome.SUCCEEDED, started="2026-01-01T00:00:00Z")
    first = backend.save_state(empty.with_release(release))
    assert first.version
    loaded = backend.load_state()
    assert loaded.version == first.version and loaded.releases == first.releases
    second = backend.save_state(first.with_release(replace(release, number=2, revision="r2")))
    assert second.version not in ("", first.version)
    with pytest.raises(StateConflictError):
        backend.save_state(first.with_release(replace(release, number=3, revision="stale")))
    with pytest.raises(StateConflictError):
        backend.save_state(empty.with_release(replace(release, number=3, revision="stale")))
    current = backend.load_state()
    assert current.version == second.version
    assert [r.revision for r in current.releases] == ["r1", "r2"]


def test_a_held_lock_refuses_and_an_unrenewed_one_expires_for_the_next_holder(subject: Subject) -> None:
    backend = subject.backend
    subject.abandon_lock("crashed-runner", 1)  # took the lock, then died: never renews it
    with pytest.raises(LockedError, match="crashed-runner"), backend.lock("runner-2", 5, 0.3):
        pass
    time.sleep(1.6)
    with backend.lock("runner-2", 5, 10) as lease:
        assert not lease.lost
        with pytest.raises(LockedError, match="runner-2"), backend.lock("runner-3", 5, 0.5):
            pass
        time.sleep(2)  # renewals by the holder keep it
        with pytest.raises(LockedError, match="runner-2"), backend.lock("runner-3", 5, 0.3):
            pass
        assert not lease.lost
    with backend.lock("runner-3", 5, 2) as lease:  # released at the end of the block: free at once
        lease.check()


def test_a_lock_taken_over_while_held_marks_the_lease_lost(subject: Subject) -> None:
    backend = subject.backend
    with backend.lock("runner-1", 1, 5) as lease:
        lease.check()
        subject.steal_lock("runner-2")
        wait_for("the holder to see its lock lost", lambda: lease.lost, timeout=10)
        with pytest.raises(LockLostError, match="lock was lost"):
            lease.check()
    # Leaving the block did not release the new holder's lock.
    with pytest.raises(LockedError, match="runner-2"), backend.lock("runner-3", 5, 0.3):
        pass


def test_an_apply_whose_lock_was_taken_over_stops_before_its_next_write(subject: Subject) -> None:
    backend = subject.backend

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "apply":  # the in-progress release is recorded; no object written yet
            subject.steal_lock("runner-2")
            time.sleep(1.5)  # the holder renews every ttl / 3 and finds the lock taken

    with pytest.raises(LockLostError):
        deploy.apply_app(backend, subject.app(), "r1", options(lock_ttl=1), on_event=on_event)
    assert not present(subject, subject.workload), "an object was written after the lock was lost"
    state = backend.load_state()
    assert [(r.revision, r.outcome) for r in state.releases] == [("r1", Outcome.IN_PROGRESS)]


def test_health_a_good_workload_becomes_healthy_and_a_failing_one_reports_its_failure(subject: Subject) -> None:
    backend = subject.backend
    assert backend.health([subject.extra])[subject.extra].status is HealthStatus.MISSING
    result = deploy.apply_app(backend, subject.app(), "good", options())
    assert result.outcome == "applied", result.error
    health = backend.health([subject.workload])[subject.workload]
    assert health.status is HealthStatus.HEALTHY and health.done and not health.failures

    failed = deploy.apply_app(backend, subject.app(image="failing"), "bad", options(auto_rollback=False))
    assert failed.outcome == "failed"
    assert failed.rollout is not None and not failed.rollout.timed_out, failed.error
    assert set(failed.rollout.failed) == {subject.workload}
    health = failed.rollout.failed[subject.workload]
    assert health.status is HealthStatus.DEGRADED and not health.done
    assert health.failures and all(isinstance(f, Failure) and f.reason for f in health.failures)


def test_watch_reports_a_change_made_by_another_hand_and_stops_when_asked(subject: Subject) -> None:
    """Drift detection: the daemon's watch of an app's objects (Kubernetes watches, the Docker event
    stream) sees an edit made outside gitops within seconds, and returns once told to stop."""
    assert deploy.apply_app(subject.backend, subject.app(extra=True), "r1", options()).outcome == "applied"
    seen: list[Any] = []
    stop = threading.Event()
    watcher = threading.Thread(target=subject.backend.watch, args=([subject.extra], seen.append, stop), daemon=True)
    watcher.start()
    time.sleep(1.5)  # the watch is established
    seen.clear()  # (our own apply may still be echoing)
    started = time.monotonic()
    subject.disown(subject.extra)
    wait_for("the edit reported", lambda: subject.extra in seen, timeout=15, poll=0.05)
    print(f"{subject.kind}: edit seen after {time.monotonic() - started:.2f}s")
    stop.set()
    watcher.join(30)
    assert not watcher.is_alive()


def test_api_versions_name_what_the_target_serves_in_both_of_helms_forms(subject: Subject) -> None:
    """What ``helm template --api-versions`` gets: every group/version and group/version/Kind of the
    app's objects on a target that has API versions; nothing on one that has none (Swarm)."""
    served = subject.backend.api_versions()
    assert isinstance(served, frozenset) and all(isinstance(v, str) for v in served)
    assert subject.backend.api_versions() == served  # read once per backend
    if subject.kind == "swarm":
        assert served == frozenset()
        return
    for resource in subject.app():
        assert resource.api_version in served and f"{resource.api_version}/{resource.key.kind}" in served
