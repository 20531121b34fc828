"""Objects that run once per change (Helm hooks, ``Backend.run_once``) in the deploy flow, on the
fake backend: re-created when changed, deleted after success or failure as their policy says, and
not planned again once deleted until they change."""

from __future__ import annotations

from typing import Any

from fakes import FakeBackend, res

from gitops import deploy
from gitops.model.plans import Action

FAST = deploy.Options(timeout=2, poll=0.01)


def hook(name: str, policy: str, **body: Any) -> Any:
    r = res("Job", name, **body)
    r.body["metadata"]["annotations"] = {"fake/run-once": policy, "gitops.dev/wave": "-1"}
    return r


def test_a_changed_hook_is_created_anew_not_updated_in_place() -> None:
    fake = FakeBackend()
    assert deploy.apply_app(fake, [hook("migrate", "recreate", image="m:1"), res("Deployment", "web")], "r1",
                            FAST).outcome == "applied"
    plan, _ = deploy.plan_app(fake, [hook("migrate", "recreate", image="m:2"), res("Deployment", "web")], "r2")
    [change] = [c for c in plan.changes if c.key.name == "migrate"]
    assert change.action is Action.REPLACE and "before-hook-creation" in change.reason
    result = deploy.apply_app(fake, [hook("migrate", "recreate", image="m:2"), res("Deployment", "web")], "r2", FAST)
    assert result.outcome == "applied" and result.changeset is not None
    assert [k.name for k in result.changeset.replaced] == ["migrate"]


def test_a_hook_deleted_after_it_succeeded_is_gone_and_not_planned_again_until_it_changes() -> None:
    fake = FakeBackend()
    events: list[dict[str, Any]] = []
    objects = [hook("migrate", "recreate,succeeded", image="m:1"), res("Deployment", "web", image="w:1")]
    assert deploy.apply_app(fake, objects, "r1", FAST, on_event=events.append).outcome == "applied"
    key = objects[0].key
    assert key not in fake.objects  # ran (healthy), then deleted
    assert {"event": "hook-deleted", "app": "demo", "object": str(key), "policy": "succeeded"} in events
    assert fake.state is not None and key in fake.state.current.inventory  # type: ignore[union-attr]
    plan, _ = deploy.plan_app(fake, objects, "r1")
    assert not plan.has_changes and key not in {c.key for c in plan.changes}
    assert deploy.apply_app(fake, objects, "r1", FAST).outcome == "no-op"
    # Another revision that leaves the hook as it is: it does not run again ...
    newer = [objects[0], res("Deployment", "web", image="w:2")]
    result = deploy.apply_app(fake, newer, "r2", FAST)
    assert result.outcome == "applied" and result.changeset is not None and key not in result.changeset.created
    # ... a changed one does.
    changed = [hook("migrate", "recreate,succeeded", image="m:2"), newer[1]]
    result = deploy.apply_app(fake, changed, "r3", FAST)
    assert result.changeset is not None and key in result.changeset.created and key not in fake.objects


def test_a_hook_deleted_after_it_failed_is_gone_and_the_app_rolled_back() -> None:
    fake = FakeBackend(failing_images={"m:bad"})
    good = [hook("migrate", "failed", image="m:1"), res("Deployment", "web", image="w:1")]
    assert deploy.apply_app(fake, good, "r1", FAST).outcome == "applied"
    key = good[0].key
    assert key in fake.objects  # succeeded: hook-failed keeps it
    events: list[dict[str, Any]] = []
    bad = [hook("migrate", "failed", image="m:bad"), res("Deployment", "web", image="w:2")]
    result = deploy.apply_app(fake, bad, "r2", FAST, on_event=events.append)
    assert result.outcome == "rolled-back"
    deleted = [e for e in events if e["event"] == "hook-deleted"]
    assert deleted == [{"event": "hook-deleted", "app": "demo", "object": str(key), "policy": "failed"}]
    assert fake.objects[res("Deployment", "web").key]["image"] == "w:1"  # web:2 was never written
    assert fake.objects[key]["image"] == "m:1"  # the rollback re-created the good release's hook
