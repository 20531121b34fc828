"""Prune safety on the in-memory backend: cascades refused and shown, data kept, opt-outs honoured,
mass deletes and empty revisions refused, overrides recorded in the release."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import FakeBackend, res

from gitops import deploy, prune
from gitops.model import Origin, Resource, ResourceKey
from gitops.model.plans import Action, AppPlan, BlockReason, Guard, KeepReason, Plan
from gitops.model.releases import Outcome

FAST = deploy.Options(timeout=2, poll=0.01)


def options(**policy: Any) -> deploy.Options:
    return deploy.Options(timeout=2, poll=0.01, policy=prune.Policy(**policy))


def in_ns(kind: str, name: str, namespace: str, **body: Any) -> Resource:
    key = ResourceKey("", kind, namespace, name)
    return Resource(key, "v1", {"kind": kind, "metadata": {"name": name, "namespace": namespace}, **body},
                    Origin("app.yaml", 0, 1))


def shop(namespace: bool = True, pvc: bool = False) -> list[Resource]:
    """The issue's example: a Namespace `shop` and the app's objects in it."""
    items = [in_ns("ConfigMap", f"cm{i}", "shop", data={"i": str(i)}) for i in range(3)]
    items += [in_ns("Deployment", "web", "shop", image="app:1"), in_ns("Service", "web", "shop")]
    if pvc:
        items.append(in_ns("PersistentVolumeClaim", "db", "shop", spec={"size": "1Gi"}))
    if namespace:
        items.append(Resource(ResourceKey("", "Namespace", "", "shop"), "v1",
                              {"kind": "Namespace", "metadata": {"name": "shop"}}, Origin("ns.yaml", 0, 1)))
    return items


NS = ResourceKey("", "Namespace", "", "shop")
FOREIGN = ResourceKey("", "ConfigMap", "shop", "someone-elses")
PVC = ResourceKey("", "PersistentVolumeClaim", "shop", "db")


def deletes(plan: AppPlan) -> list[ResourceKey]:
    return [c.key for c in plan.changes if c.action is Action.DELETE]


def kept(plan: AppPlan) -> dict[ResourceKey, KeepReason]:
    return {k.key: k.reason for k in plan.kept}


# -- cascades ------------------------------------------------------------------------------------


def test_a_namespace_removed_from_git_is_not_pruned_while_it_holds_desired_and_foreign_objects() -> None:
    fake = FakeBackend()
    assert deploy.apply_app(fake, shop(), "r1", FAST).outcome == "applied"
    fake.objects[FOREIGN] = {"kind": "ConfigMap", "metadata": {"name": "someone-elses"}}  # not ours

    plan, _ = deploy.plan_app(fake, shop(namespace=False), "r2")
    assert NS not in deletes(plan)
    assert not plan.ok
    (block,) = plan.blocked
    assert block.reason is BlockReason.CASCADE and block.guard is Guard.CASCADE and block.key == NS
    # Everything the delete would take: the five objects still in git and the foreign one.
    assert set(block.objects) == {r.key for r in shop(namespace=False)} | {FOREIGN}
    assert "Namespace/shop" in block.message and "--allow-cascade" in block.message
    assert "5 still in the repository" in block.message
    assert kept(plan) == {NS: KeepReason.BLOCKED}

    writes = fake.writes
    with pytest.raises(deploy.PlanBlocked) as refused:
        deploy.apply_app(fake, shop(namespace=False), "r2", FAST)
    assert refused.value.blocks == plan.blocked
    assert fake.writes == writes, "a refused plan wrote something (the lock counts)"
    assert NS in fake.objects and FOREIGN in fake.objects


def test_allow_cascade_deletes_the_namespace_shows_what_it_takes_and_records_the_override() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, shop(), "r1", FAST)
    fake.objects[FOREIGN] = {"kind": "ConfigMap", "metadata": {"name": "someone-elses"}}
    # Only the namespace and the foreign object remain when everything else leaves git too ...
    plan, _ = deploy.plan_app(fake, [res("ConfigMap", "elsewhere")], "r2",
                              policy=prune.Policy(allow_cascade=True, allow_mass_delete=True))
    assert plan.ok
    ns_change = next(c for c in plan.changes if c.key == NS)
    assert ns_change.action is Action.DELETE and ns_change.cascade == (FOREIGN,)
    assert plan.overrides == (Guard.CASCADE, Guard.MASS_DELETE)
    result = deploy.apply_app(fake, [res("ConfigMap", "elsewhere")], "r2",
                              options(allow_cascade=True, allow_mass_delete=True))
    assert result.outcome == "applied"
    assert NS not in fake.objects and FOREIGN not in fake.objects
    assert fake.state is not None and fake.state.current is not None
    assert fake.state.current.overrides == ("cascade", "mass-delete")


def test_a_namespace_whose_objects_are_all_pruned_with_it_needs_no_override() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, [*shop(), res("ConfigMap", "stays")], "r1", FAST)
    plan, _ = deploy.plan_app(fake, [res("ConfigMap", "stays")], "r2", policy=prune.Policy(allow_mass_delete=True))
    assert plan.ok and plan.overrides == (Guard.MASS_DELETE,)
    assert NS in deletes(plan)
    assert next(c for c in plan.changes if c.key == NS).cascade == ()
    # Prune runs in reverse waves: the namespace after what is in it.
    assert deletes(plan)[-1] == NS


def test_a_namespace_holding_data_needs_prune_data_as_well_as_allow_cascade() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, shop(pvc=True), "r1", FAST)
    # The whole app leaves git: the PVC is kept (data), so the namespace would cascade onto it.
    plan, _ = deploy.plan_app(fake, [res("ConfigMap", "x")], "r2",
                              policy=prune.Policy(allow_cascade=True, allow_mass_delete=True))
    assert kept(plan)[PVC] is KeepReason.DATA and kept(plan)[NS] is KeepReason.BLOCKED
    (block,) = plan.blocked
    assert block.guard is Guard.DATA and block.objects == (PVC,) and "--prune-data" in block.message
    both, _ = deploy.plan_app(fake, [res("ConfigMap", "x")], "r2",
                              policy=prune.Policy(allow_cascade=True, prune_data=True, allow_mass_delete=True))
    assert both.ok and {NS, PVC} <= set(deletes(both))
    assert set(both.overrides) == {Guard.DATA, Guard.MASS_DELETE}


def test_a_crd_is_not_pruned_while_its_custom_resources_exist() -> None:
    crd = Resource(ResourceKey("apiextensions.k8s.io", "CustomResourceDefinition", "", "widgets.example.com"),
                   "apiextensions.k8s.io/v1", {"kind": "CustomResourceDefinition",
                                               "metadata": {"name": "widgets.example.com"}}, Origin("crd.yaml"))
    widget = ResourceKey("example.com", "Widget", "other", "w1")
    fake = FakeBackend(cascade_of={crd.key: (widget,)})
    deploy.apply_app(fake, [crd, *shop(namespace=False)], "r1", FAST)
    fake.objects[widget] = {"kind": "Widget", "metadata": {"name": "w1"}}
    plan, _ = deploy.plan_app(fake, shop(namespace=False), "r2")
    assert [b.key for b in plan.blocked] == [crd.key] and plan.blocked[0].objects == (widget,)
    del fake.objects[widget]
    plan, _ = deploy.plan_app(fake, shop(namespace=False), "r2")
    assert plan.ok and deletes(plan) == [crd.key]


def test_an_object_protected_from_pruning_is_never_cascaded_onto() -> None:
    fake = FakeBackend()
    items = shop()
    items[0].body["metadata"]["annotations"] = {"gitops.dev/prune": "disabled"}
    deploy.apply_app(fake, [*items, res("ConfigMap", "x")], "r1", FAST)
    plan, _ = deploy.plan_app(fake, [res("ConfigMap", "x")], "r2",
                              policy=prune.Policy(allow_cascade=True, prune_data=True, allow_mass_delete=True))
    assert kept(plan)[items[0].key] is KeepReason.DISABLED
    (block,) = plan.blocked
    assert block.key == NS and block.guard is None and block.objects == (items[0].key,)


# -- data ----------------------------------------------------------------------------------------


def test_a_pvc_is_kept_after_its_workload_leaves_git_and_pruned_only_with_prune_data() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, shop(pvc=True), "r1", FAST)
    without = [r for r in shop() if r.key.kind != "Deployment"]
    plan, _ = deploy.plan_app(fake, without, "r2")
    assert deletes(plan) == [ResourceKey("", "Deployment", "shop", "web")]
    assert kept(plan) == {PVC: KeepReason.DATA}
    assert plan.ok and plan.overrides == ()
    result = deploy.apply_app(fake, without, "r2", FAST)
    assert result.outcome == "applied" and PVC in fake.objects
    state = fake.load_state()
    assert state.current is not None and state.current.kept == (PVC,) and PVC not in state.current.inventory
    # A later run still knows it: kept again (and a no-op), then pruned when the app says so.
    again, _ = deploy.plan_app(fake, without, "r2")
    assert kept(again) == {PVC: KeepReason.DATA} and not again.has_changes
    assert deploy.apply_app(fake, without, "r2", FAST).outcome == "no-op"
    result = deploy.apply_app(fake, without, "r3", options(prune_data=True))
    assert result.outcome == "applied" and PVC not in fake.objects
    state = fake.load_state()
    assert state.current is not None and state.current.overrides == ("data",) and state.current.kept == ()


def test_data_a_pruned_object_leaves_behind_is_remembered_as_orphaned() -> None:
    sts = in_ns("StatefulSet", "db", "shop")
    claim = ResourceKey("", "PersistentVolumeClaim", "shop", "data-db-0")
    fake = FakeBackend(leaves_of={sts.key: (claim,)})
    deploy.apply_app(fake, [*shop(), sts], "r1", FAST)
    fake.objects[claim] = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data-db-0"}}  # the controller's
    plan, _ = deploy.plan_app(fake, shop(), "r2")
    assert deletes(plan) == [sts.key]
    assert kept(plan) == {claim: KeepReason.LEFT_BEHIND}
    deploy.apply_app(fake, shop(), "r2", FAST)
    assert claim in fake.objects
    later, _ = deploy.plan_app(fake, shop(), "r2")
    assert kept(later) == {claim: KeepReason.LEFT_BEHIND}  # not ours to prune, still shown
    del fake.objects[claim]
    assert kept(deploy.plan_app(fake, shop(), "r2")[0]) == {}


# -- opt-out -------------------------------------------------------------------------------------


def test_the_prune_disabled_opt_out_keeps_the_object_and_is_remembered() -> None:
    fake = FakeBackend()
    items = shop()
    items[1].body["metadata"]["labels"] = {"gitops.dev/prune": "disabled"}
    deploy.apply_app(fake, items, "r1", FAST)
    assert fake.state is not None and fake.state.current is not None
    assert fake.state.current.protected == (items[1].key,)
    # The live object lost the label (e.g. a backend that cannot store it): the release remembers.
    fake.objects[items[1].key]["metadata"]["labels"] = {"fake/app": "demo"}
    remaining = [r for r in items if r.key != items[1].key]
    plan, _ = deploy.plan_app(fake, remaining, "r2")
    assert deletes(plan) == [] and kept(plan) == {items[1].key: KeepReason.DISABLED}
    deploy.apply_app(fake, remaining, "r2", FAST)
    assert items[1].key in fake.objects
    state = fake.load_state()
    assert state.current is not None and state.current.kept == (items[1].key,)
    assert state.current.protected == (items[1].key,)
    assert kept(deploy.plan_app(fake, remaining, "r3")[0]) == {items[1].key: KeepReason.DISABLED}


def test_removing_the_opt_out_in_git_makes_the_object_prunable_again() -> None:
    fake = FakeBackend()
    items = shop()
    items[1].body["metadata"]["annotations"] = {"gitops.dev/prune": "disabled"}
    deploy.apply_app(fake, items, "r1", FAST)
    plain = shop()
    deploy.apply_app(fake, plain, "r2", FAST)  # the annotation is gone from git (and from the object)
    assert fake.load_state().current.protected == ()  # type: ignore[union-attr]
    remaining = [r for r in plain if r.key != plain[1].key]
    assert deletes(deploy.plan_app(fake, remaining, "r3")[0]) == [plain[1].key]


# -- mass delete and empty revisions -------------------------------------------------------------


def many(n: int) -> list[Resource]:
    return [res("ConfigMap", f"cm{i:02d}", data={"i": str(i)}) for i in range(n)]


def test_deleting_more_than_half_and_at_least_five_is_refused_unless_allowed() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, many(10), "r1", FAST)
    plan, _ = deploy.plan_app(fake, many(4), "r2")  # 6 of 10
    assert [b.reason for b in plan.blocked] == [BlockReason.MASS_DELETE]
    assert plan.blocked[0].guard is Guard.MASS_DELETE and len(plan.blocked[0].objects) == 6
    assert "6 of the app's 10" in plan.blocked[0].message
    assert len(deletes(plan)) == 6  # shown, not applied
    writes = fake.writes
    with pytest.raises(deploy.PlanBlocked):
        deploy.apply_app(fake, many(4), "r2", FAST)
    assert fake.writes == writes and len(fake.objects) == 10
    # Half exactly, or four of six (fewer than five), are fine.
    assert deploy.plan_app(fake, many(5), "r2")[0].ok
    result = deploy.apply_app(fake, many(4), "r2", options(allow_mass_delete=True))
    assert result.outcome == "applied" and len(fake.objects) == 4
    assert fake.load_state().current.overrides == ("mass-delete",)  # type: ignore[union-attr]


def test_the_thresholds_are_settings() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, many(6), "r1", FAST)
    assert deploy.plan_app(fake, many(2), "r2")[0].ok  # 4 of 6: fewer than 5
    strict = prune.Policy(max_delete_ratio=0.25, mass_delete_min=2)
    assert not deploy.plan_app(fake, many(4), "r2", policy=strict)[0].ok  # 2 of 6 > 25%
    assert deploy.plan_app(fake, many(5), "r2", policy=strict)[0].ok  # 1 deletion < 2


def test_a_revision_that_renders_nothing_is_refused_even_when_small() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, many(2), "r1", FAST)
    plan, _ = deploy.plan_app(fake, [], "r2")
    assert [b.reason for b in plan.blocked] == [BlockReason.EMPTY]
    assert "no objects" in plan.blocked[0].message
    with pytest.raises(deploy.PlanBlocked):
        deploy.apply_app(fake, [], "r2", FAST)
    assert len(fake.objects) == 2
    assert deploy.apply_app(fake, [], "r2", options(allow_mass_delete=True)).outcome == "applied"
    assert fake.objects == {}
    deploy.apply_app(fake, many(8), "r3", FAST)
    assert [b.reason for b in deploy.plan_app(fake, [], "r4")[0].blocked] == [BlockReason.EMPTY]  # one reason


def test_a_rollback_is_not_held_by_the_mass_delete_guard() -> None:
    fake = FakeBackend(failing_images={"crash:1"})
    first = [*many(6), res("Deployment", "web", image="crash:1")]
    result = deploy.apply_app(fake, first, "r1", FAST)
    assert result.outcome == "rolled-back"  # back to nothing: all 7 deleted
    assert fake.objects == {}


# -- plans as values, overrides, the prune step after the rollout --------------------------------


def test_a_blocked_plan_round_trips_through_json() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, shop(pvc=True), "r1", FAST)
    fake.objects[FOREIGN] = {"kind": "ConfigMap", "metadata": {"name": "someone-elses"}}
    plan, _ = deploy.plan_app(fake, [r for r in shop() if r.key not in (NS,)], "r2")
    assert plan.blocked and plan.kept
    data = json.loads(json.dumps(Plan((plan,)).to_json()))
    assert Plan.from_json(data).apps[0] == plan
    assert data["apps"][0]["blocked"][0]["reason"] == "cascade"


def test_a_saved_plan_keeps_the_overrides_it_was_made_with() -> None:
    fake = FakeBackend()
    deploy.apply_app(fake, many(10), "r1", FAST)
    saved, _ = deploy.plan_app(fake, many(2), "r2", policy=prune.Policy(allow_mass_delete=True))
    assert saved.ok and saved.overrides == (Guard.MASS_DELETE,)
    result = deploy.apply_app(fake, many(2), "r2", FAST, saved=saved)  # no flag this time
    assert result.outcome == "applied" and len(fake.objects) == 2


def test_the_prune_step_after_the_rollout_runs_only_when_it_succeeded() -> None:
    fake = FakeBackend(failing_images={"crash:1"})
    deploy.apply_app(fake, shop(), "r1", FAST)
    assert fake.finished == [True]
    deploy.apply_app(fake, [*shop(), res("Deployment", "bad", image="crash:1")], "r2", FAST)
    assert fake.finished == [True, False, True]  # the failed rollout, then the rollback's
    state = fake.load_state()
    assert [r.outcome for r in state.releases] == [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.ROLLED_BACK]


def test_replacing_an_object_that_holds_data_is_refused_unless_the_app_prunes_data() -> None:
    fake = FakeBackend()
    claim = in_ns("PersistentVolumeClaim", "db", "shop", spec={"selector": {"tier": "a"}})
    deploy.apply_app(fake, [*shop(), claim], "r1", FAST)
    changed = in_ns("PersistentVolumeClaim", "db", "shop", spec={"selector": {"tier": "b"}})
    plan, _ = deploy.plan_app(fake, [*shop(), changed], "r2")
    assert next(c for c in plan.changes if c.key == PVC).action is Action.REPLACE
    (block,) = plan.blocked
    assert block.reason is BlockReason.DATA_REPLACE and block.key == PVC and block.guard is Guard.DATA
    with pytest.raises(deploy.PlanBlocked, match="would lose its data"):
        deploy.apply_app(fake, [*shop(), changed], "r2", FAST)
    assert fake.objects[PVC]["spec"] == {"selector": {"tier": "a"}}
    result = deploy.apply_app(fake, [*shop(), changed], "r2", options(prune_data=True))
    assert result.outcome == "applied" and fake.objects[PVC]["spec"] == {"selector": {"tier": "b"}}
    assert fake.load_state().current.overrides == ("data",)  # type: ignore[union-attr]
    # Rolling back to r1 would replace it again: a rollback leaves it as it is instead of stopping.
    back = deploy.rollback_app(fake, FAST)
    assert back.outcome == "rolled-back" and fake.objects[PVC]["spec"] == {"selector": {"tier": "b"}}
    assert next(c for c in back.plan.changes if c.key == PVC).action is Action.NOOP


def test_objects_replaced_by_new_ones_are_no_mass_delete() -> None:
    """Like Swarm's content-hashed configs: six old names go, six new ones take their place."""
    fake = FakeBackend()
    deploy.apply_app(fake, many(10), "r1", FAST)
    rotated = [*many(4), *(res("ConfigMap", f"cm{i:02d}-v2") for i in range(4, 10))]
    plan, _ = deploy.plan_app(fake, rotated, "r2")
    assert len(deletes(plan)) == 6 and plan.ok
    assert not deploy.plan_app(fake, many(4), "r2")[0].ok  # the same deletes without replacements
