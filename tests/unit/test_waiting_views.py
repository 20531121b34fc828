"""An app that waits (for an app it depends on, or for a revision to promote) says so in every
view: `gitops status` text and JSON, the daemon's API objects and its status pages; a promoted
app's plan names the revision it is promoted to."""

from __future__ import annotations

import json

from gitops.daemon.loop import AppRuntime
from gitops.engine import AppStatus
from gitops.model import HealthStatus
from gitops.model.plans import AppPlan
from gitops.views import pages
from gitops.views.plans import app_plan_text, daemon_status_text, status_text

WAITING = "waiting for `db` (Progressing)"
PROMOTING = ("promoting 3f2a1c0 from web-staging (succeeded 12m ago); git is 1 commit ahead: abcd123 "
             "(failed in web-staging)")


def test_status_text_and_json_say_what_an_app_waits_for_and_what_it_promotes() -> None:
    statuses = [AppStatus("web", "kubernetes", "k", "r", None, "OutOfSync", HealthStatus.MISSING, waiting=WAITING),
                AppStatus("web-prod", "kubernetes", "k", "r", None, "Synced", HealthStatus.HEALTHY,
                          promotion=PROMOTING)]
    text = status_text(statuses)
    assert f"  web: {WAITING}" in text and f"  web-prod: {PROMOTING}" in text
    data = json.loads(json.dumps([s.to_json() for s in statuses], default=str))
    assert (data[0]["waiting"], data[0]["promotion"], data[1]["waiting"]) == (WAITING, "", "")
    assert data[1]["promotion"] == PROMOTING


class Clock:
    def monotonic(self) -> float:
        return 0.0


def test_the_api_and_the_pages_show_a_waiting_app_and_a_promotion() -> None:
    runtime = AppRuntime("web", result="waiting", message=WAITING, promotion=PROMOTING)
    app = runtime.to_json(Clock())  # type: ignore[arg-type]
    assert app["waiting"] == WAITING and app["promotion"] == PROMOTING
    assert AppRuntime("web", result="applied", message="x").to_json(Clock())["waiting"] == ""  # type: ignore[arg-type]
    assert pages.api_app(app, "/repo")["notes"] == [WAITING]
    assert f"  web: {WAITING}" in daemon_status_text([app]) and f"  web: {PROMOTING}" in daemon_status_text([app])
    listing = pages.index_html([app], repo="/repo", access=pages.Access()).decode()
    assert "waiting for `db` (Progressing)" in listing.replace("&#x60;", "`")
    detail = pages.app_html(app, repo="/repo", access=pages.Access(), objects={}, plan=None, history=None).decode()
    assert 'data-field="promotion">promoting 3f2a1c0 from web-staging' in detail
    assert "waiting for" in detail


def test_a_promoted_plan_names_its_revision_and_survives_a_saved_plan() -> None:
    plan = AppPlan("web-prod", "kubernetes", "k", "3f2a1c0" * 5, "d", "b", promotion=PROMOTING)
    assert app_plan_text(plan).splitlines()[1] == f"  {PROMOTING}"
    assert AppPlan.from_json(plan.to_json()) == plan
    assert "promotion" not in AppPlan("a", "kubernetes", "k", "r", "d", "b").to_json()
