"""promote_from: which revision a promoted app is applied at, judged from the release history that
the source app (staging) recorded on the fake backend, at a time the test chooses (no waiting)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fakes import FakeBackend, res

from gitops import config, deploy, engine
from gitops.model.releases import AppState
from gitops.promote import ago, choose

FAST = deploy.Options(timeout=2, poll=0.01)
C1, C2, C3, C4 = ("1" * 40, "2" * 40, "3" * 40, "4" * 40)


def objects(image: str) -> list:
    return [res("Deployment", "web", image=image), res("ConfigMap", "cfg", data={"image": image})]


def staging(*steps: tuple[str, str]) -> FakeBackend:
    """Staging after applying each (revision, image); an image "crash:*" crash-loops."""
    fake = FakeBackend(app="web-staging", failing_images={"crash:1", "crash:2"})
    for revision, image in steps:
        deploy.apply_app(fake, objects(image), revision, FAST)
    return fake


def finished(state: AppState, number: int) -> datetime:
    release = next(r for r in state.releases if r.number == number)
    return datetime.strptime(release.finished, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_a_crash_looping_revision_is_never_promoted_and_the_previous_good_one_is() -> None:
    fake = staging((C1, "app:1"), (C2, "crash:1"))  # C2 rolled back in staging, marked bad
    assert fake.state is not None and fake.state.bad_revisions == (C2,)
    found = choose("web-prod", "web-staging", fake.state, [C3, C2, C1], promote_after=0,
                   now=finished(fake.state, 3))
    assert found.revision == C1 and found.ahead_count == 2
    assert [(s.revision, s.verdict.split(":")[0]) for s in found.ahead] == [
        (C3, "not applied in web-staging"), (C2, "failed in web-staging")]
    summary = found.summary()
    assert summary.startswith("promoting 1111111 from web-staging (succeeded ")
    assert "; git is 2 commits ahead: 3333333 (not applied in web-staging), 2222222 (failed in web-staging" in summary
    assert found.waiting == ""


def test_promote_after_is_the_time_the_revision_ran_successfully_in_the_source() -> None:
    fake = staging((C1, "app:1"), (C2, "app:2"))
    assert fake.state is not None
    c2_done = finished(fake.state, 2)
    # Shortly after C2 succeeded it is soaking; C1 ran only until C2 replaced it: nothing is promotable.
    early = choose("web-prod", "web-staging", fake.state, [C2, C1], promote_after=600,
                   now=c2_done + timedelta(seconds=120))
    assert early.revision is None
    assert early.waiting.startswith("waiting for a revision of `web-staging` to succeed (newest: 2222222 "
                                    "succeeded in web-staging 2m ago, promoted after 10m)")
    assert early.recheck_in == pytest.approx(480, abs=2)  # the daemon looks again then
    assert "before it was replaced" in early.ahead[1].verdict
    late = choose("web-prod", "web-staging", fake.state, [C2, C1], promote_after=600,
                  now=c2_done + timedelta(seconds=601))
    assert late.revision == C2 and late.summary().endswith("; it is the newest commit")
    # A revision that ran long enough before it was replaced stays promotable.
    state = replace(fake.state, releases=tuple(
        replace(r, finished=(c2_done - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")) if r.revision == C1 else r
        for r in fake.state.releases))
    older = choose("web-prod", "web-staging", state, [C2, C1], promote_after=600, now=c2_done + timedelta(seconds=5))
    assert older.revision == C1 and older.ahead[0].revision == C2


def test_a_revision_rolled_back_by_hand_in_the_source_is_not_promoted() -> None:
    fake = staging((C1, "app:1"), (C2, "app:2"))
    deploy.rollback_app(fake, FAST)  # back to C1
    assert fake.state is not None
    found = choose("web-prod", "web-staging", fake.state, [C2, C1], promote_after=0, now=finished(fake.state, 3))
    assert found.revision == C1 and found.ahead[0].verdict == "rolled back in web-staging"


def test_a_commit_that_left_the_source_apps_files_alone_is_judged_as_the_release_it_still_runs() -> None:
    fake = staging((C1, "app:1"))
    assert fake.state is not None
    now = finished(fake.state, 1) + timedelta(minutes=5)
    asked: list[tuple[str, str]] = []

    def same(older: str, newer: str) -> bool:
        asked.append((older, newer))
        return newer == C2  # C2 changed only production's overlay; C3 changed staging's files

    found = choose("web-prod", "web-staging", fake.state, [C3, C2, C1], promote_after=0, now=now, unchanged=same)
    assert found.revision == C2 and found.via == C1 and found.ahead[0].verdict == "not applied in web-staging"
    assert asked == [(C1, C3), (C1, C2)]
    assert "ago as 1111111; only web-prod's files changed since)" in found.summary()


@pytest.mark.parametrize(("file", "paths", "inside"), [
    ("shop/production/config.yaml", ["shop/base", "shop/production"], True),
    ("shop/production-old/x.yaml", ["shop/production"], False),
    ("shop/base/deployment.yaml", ["./shop/base/"], True),
    ("README.md", ["k8s"], False),
    ("anything", ["."], True),
])
def test_a_changed_file_belongs_to_an_app_when_it_lies_in_one_of_its_paths(file: str, paths: list[str],
                                                                           inside: bool) -> None:
    assert engine._inside(file, paths) is inside


def test_with_no_good_revision_the_app_waits() -> None:
    empty = choose("web-prod", "web-staging", AppState("web-staging"), [C1], promote_after=0,
                   now=datetime.now(UTC))
    assert empty.revision is None
    assert empty.waiting == "waiting for a revision of `web-staging` to succeed (newest: 1111111 not applied in " \
                            "web-staging)"
    fake = staging((C4, "crash:1"))  # its first release failed: removed, marked bad
    assert fake.state is not None
    bad = choose("web-prod", "web-staging", fake.state, [C4], promote_after=0, now=datetime.now(UTC))
    assert bad.revision is None and bad.ahead[0].verdict.startswith("failed in web-staging")
    assert bad.summary() == bad.waiting


def test_ages_read_like_durations() -> None:
    assert [ago(s) for s in (5, 90, 7200, 90000)] == ["5s", "1m", "2h", "1d"]


def test_promote_from_is_checked_with_depends_on_in_one_graph() -> None:
    line = "  - {{name: {}, backend: swarm, paths: [x.yml], target: {{stack: s}}{}}}\n"
    text = "apps:\n" + "".join(line.format(n, extra) for n, extra in [
        ("a", ", promote_from: b"), ("b", ", depends_on: [a]"), ("c", ", promote_from: c"),
        ("d", ", promote_from: zz"), ("e", ", promote_after: 5m")])
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text)
    messages = [d.message for d in caught.value.diagnostics]
    assert "apps[0].promote_from: a cycle: a -> b -> a" in messages
    assert "apps[2].promote_from: app c cannot be promoted from itself" in messages
    assert "apps[3].promote_from: app d is promoted from 'zz', which is not an app" in messages
    assert "apps[4].promote_after: app e has no promote_from to wait on" in messages
    settings = config.parse("apps:\n" + line.format("prod", ", promote_from: staging, promote_after: 10m")
                            + line.format("staging", ""))
    prod = settings.app("prod")
    assert (prod.promote_from, prod.promote_after) == ("staging", 600.0)
    assert [a.name for a in config.in_dependency_order(list(settings.apps))] == ["staging", "prod"]
