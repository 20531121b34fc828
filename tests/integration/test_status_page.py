"""The status page in a real browser (headless Chromium through Selenium), served by a real daemon
that deploys to the real Swarm and Kubernetes control plane: the page lists the daemon's apps, a
commit turns an app OutOfSync then Synced without a reload, a failed rollout shows as rolled back
with its reason, the write actions work only after signing in, and no secret value ever reaches
a page. Screenshots of each state are kept in tests/artifacts/status-page/ (and, with
GITOPS_DOCS_SCREENSHOTS=1, the README's pictures in docs/)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, click_and_wait, screenshot, wait_page
from test_daemon import DaemonProcess, head, kube_repo, service_image, swarm_repo, write_kube_config

TOKEN = "page-test-token"
DOCS = os.environ.get("GITOPS_DOCS_SCREENSHOTS", "") == "1"
DONE = ("applied", "synced")  # applied, then (a poll later) found in sync


def row(driver: Any, app: str, field: str) -> str:
    element = driver.find_element("css selector", f'tr[data-app="{app}"] [data-field="{field}"]')
    return str(element.text)


def notes(driver: Any, app: str) -> str:
    return str(driver.find_element("css selector", f'tr[data-notes="{app}"]').get_attribute("textContent"))


class Pages:
    """Every page source (and API answer) seen, to check no secret value reached any of them."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.seen: list[str] = []

    def keep(self, driver: Any) -> None:
        self.seen.append(driver.page_source)
        for path in ("/", "/api/v1/apps"):
            self.seen.append(self.daemon.get(path)[1].decode())

    def assert_absent(self, *values: str) -> None:
        assert self.seen
        for value in values:
            leaked = [i for i, page in enumerate(self.seen) if value in page]
            assert not leaked, f"secret value {value!r} in page(s) {leaked}"


@pytest.mark.swarm
def test_status_page_follows_a_swarm_app_through_a_commit_a_failed_rollout_and_a_roll_back(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="2s")
    first_secret, second_secret = (f"s3cret-{secrets.token_hex(8)}" for _ in range(2))
    (repo.root / "swarm" / "api-token.txt").write_text(first_secret + "\n")
    repo.commit("a secret of our own")
    with DaemonProcess(repo, env={"GITOPS_API_TOKEN": TOKEN}) as daemon, chromium() as driver:
        pages = Pages(daemon)
        driver.get(daemon.url + "/")
        assert driver.find_element("css selector", f'tr[data-app="{app}"] a').text == app
        driver.execute_script("window.notReloaded = true")
        wait_page(driver, "the first sync on the page", lambda: row(driver, app, "sync") == "Synced"
                  and row(driver, app, "health") == "Healthy" and row(driver, app, "result") in DONE)
        assert row(driver, app, "backend") == "swarm" and row(driver, app, "revision") == head(repo)[:12]
        assert row(driver, app, "next_in_seconds").startswith("in ")
        assert driver.find_element("css selector", f'tr[data-app="{app}"] time').text.endswith("ago")
        pages.keep(driver)
        screenshot(driver, "1-synced")

        # A commit: OutOfSync while it is applied, then Synced at the new revision, all without a reload.
        repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
        repo.edit("swarm/compose.yaml", "delay: 1s", "delay: 4s")  # a rollout long enough to be seen (polls: 2 s)
        repo.commit("v2")
        v2 = head(repo)
        wait_page(driver, "OutOfSync on the page", lambda: row(driver, app, "sync") == "OutOfSync", timeout=60)
        pages.keep(driver)
        screenshot(driver, "2-out-of-sync")
        wait_page(driver, "Synced at the new revision", lambda: row(driver, app, "sync") == "Synced"
                  and row(driver, app, "revision") == v2[:12] and row(driver, app, "result") in DONE)
        assert service_image(docker_api, stack) == "gitops-test/app:2"
        assert driver.find_element("css selector", ".summary").text == "1 app(s): 1 synced, 0 out of sync, 1 healthy"
        pages.keep(driver)
        screenshot(driver, "3-synced-again", "status-page" if DOCS else None)

        # A failing image: rolled back, with its reason on the page; the app page shows the history.
        # (A new secret with it: a roll back to release 1 later needs the first secret kept, since
        # secret values are never stored in the release history.)
        repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}", "image: gitops-test/fail:1")
        (repo.root / "swarm" / "api-token.txt").write_text(second_secret + "\n")
        repo.commit("bad, with a new secret")
        bad = head(repo)
        wait_page(driver, "Degraded while it is rolled back", lambda: row(driver, app, "health") == "Degraded",
                  timeout=180)
        assert f"rollout of revision {bad[:12]} failed: " in notes(driver, app)
        assert row(driver, app, "result") == "failed"
        pages.keep(driver)
        screenshot(driver, "4-degraded")
        wait_page(driver, "the rolled-back commit on the page", lambda: row(driver, app, "result") == "rolled-back",
                  timeout=180)
        reason = notes(driver, app)
        assert f"revision {bad[:12]} rolled-back" in reason and "waiting for a newer commit" in reason
        assert driver.find_element("css selector", f'tr[data-notes="{app}"]').is_displayed()
        assert driver.execute_script("return window.notReloaded") is True, "the page was reloaded"
        pages.keep(driver)
        screenshot(driver, "5-rolled-back")

        click_and_wait(driver, driver.find_element("link text", app))
        assert driver.current_url == f"{daemon.url}/apps/{app}"
        history = driver.find_element("css selector", "table.history").text
        assert "failed" in history and "rolled-back" in history and "bad" in history
        bad_row = driver.find_element("xpath", f'//table[@class="history"]//tr[.//code[@title="{bad}"]]')
        assert "bad" in bad_row.text and "failed" in bad_row.text
        objects = driver.find_element("css selector", "table.objects").text
        assert "Service" in objects and f"{stack}_web" in objects
        assert "Plan" in driver.page_source and driver.find_element("css selector", "pre.plan").text
        assert not driver.find_elements("css selector", "form[action$='/sync']"), "a write action before sign-in"
        pages.keep(driver)
        screenshot(driver, "6-app-page", "status-page-app" if DOCS else None, scroll_to="#plan", high=470)

        # Signing in offers the write actions; "sync now" and "roll back" go through the page's forms.
        click_and_wait(driver, driver.find_element("link text", "sign in"))
        driver.find_element("name", "token").send_keys("wrong")
        click_and_wait(driver, driver.find_element("css selector", "form.login button"))
        assert "wrong token" in driver.page_source
        driver.find_element("name", "token").send_keys(TOKEN)
        click_and_wait(driver, driver.find_element("css selector", "form.login button"))
        assert driver.current_url == f"{daemon.url}/apps/{app}"
        click_and_wait(driver, driver.find_element("css selector", "form[action$='/sync'] button"))
        assert driver.current_url == f"{daemon.url}/apps/{app}"
        wait_page(driver, "the manual sync in the log", lambda: any(
            e["event"] == "manual-sync" and e.get("via") == "page" for e in daemon.events()), timeout=10)
        first = driver.find_element("xpath", '//table[@class="history"]//tr[td[1]="1"]')
        first_revision = first.find_element("css selector", "code").get_attribute("title")
        click_and_wait(driver, first.find_element("css selector", "form[action$='/rollback'] button"))
        wait_page(driver, "the roll back done", lambda: daemon.app(app).get("message", "").startswith(
            f"rolled back by hand to revision {first_revision[:12]}"), timeout=180)
        assert daemon.app(app)["result"] == "rolled-back", daemon.app(app)["message"]
        assert service_image(docker_api, stack) == "gitops-test/app:1"
        time.sleep(5)  # polls at 2 s: the held revision is not applied again
        assert service_image(docker_api, stack) == "gitops-test/app:1"
        assert daemon.app(app)["held_revision"] == bad
        driver.refresh()
        pages.keep(driver)
        screenshot(driver, "7-rolled-back-by-hand")

        # The phone: the list is readable (no sideways scrolling), the JS still refreshes it.
        driver.set_window_size(390, 844)
        driver.get(daemon.url + "/")
        wait_page(driver, "the list on a phone", lambda: row(driver, app, "sync") in ("Synced", "OutOfSync"))
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        pages.keep(driver)
        screenshot(driver, "8-phone", "status-page-phone" if DOCS else None)

        with chromium(javascript=False) as plain:  # the basics without JavaScript
            plain.get(daemon.url + "/")
            assert plain.find_element("css selector", f'tr[data-app="{app}"] a').text == app
            assert plain.find_element("css selector", f'tr[data-app="{app}"] [data-field="result"]').text
            click_and_wait(plain, plain.find_element("link text", app))
            assert plain.find_element("tag name", "h1").text.startswith(app)
            assert plain.find_element("css selector", "table.history").text
            pages.keep(plain)
            screenshot(plain, "9-no-javascript")
        pages.assert_absent(first_secret, second_secret, TOKEN)


@pytest.mark.kube
def test_status_page_masks_a_kubernetes_secret_in_the_plan_and_shows_a_degraded_rollout(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    env = {**os.environ}
    repo, app = kube_repo(tmp_path, namespace, env, sync="prune: true, self_heal: true, interval: 2s")
    first_secret, second_secret = (f"s3cret-{secrets.token_hex(8)}" for _ in range(2))
    repo.edit("k8s/10-config.yaml", "API_TOKEN: change-me", f"API_TOKEN: {first_secret}")
    repo.commit("a secret of our own")
    with DaemonProcess(repo, "--leader-election", "off") as daemon, chromium() as driver:
        pages = Pages(daemon)
        daemon.first_sync(app, timeout=180)

        # Reported only (auto off): the plan on the app page names the changed Secret key, masked.
        write_kube_config(repo, app, namespace, "auto: false, prune: true, interval: 2s")
        repo.edit("k8s/10-config.yaml", f"API_TOKEN: {first_secret}", f"API_TOKEN: {second_secret}")
        repo.commit("a new secret, not applied")
        driver.get(daemon.url + "/")
        wait_page(driver, "OutOfSync on the page", lambda: row(driver, app, "sync") == "OutOfSync")
        pages.keep(driver)
        driver.get(f"{daemon.url}/apps/{app}")
        plan = driver.find_element("css selector", "pre.plan").text
        assert "Secret" in plan and "(sensitive value)" in plan, plan
        objects = driver.find_element("css selector", "table.objects").text
        assert "Deployment" in objects and "Healthy" in objects
        pages.keep(driver)
        screenshot(driver, "kube-1-plan")

        # An image that never gets ready: the rollout fails, Degraded, rolled back, with the reason.
        write_kube_config(repo, app, namespace, "prune: true, self_heal: true, interval: 2s")
        repo.edit("k8s/20-deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/crash:1")
        repo.commit("a crashing image")
        driver.get(daemon.url + "/")
        wait_page(driver, "the rolled-back commit on the page", lambda: row(driver, app, "result") == "rolled-back",
                  timeout=240)
        assert "rolled-back" in notes(driver, app) and "CrashLoopBackOff" in notes(driver, app)
        pages.keep(driver)
        screenshot(driver, "kube-2-rolled-back")
        driver.get(f"{daemon.url}/apps/{app}")
        history = driver.find_element("css selector", "table.history").text
        assert "failed" in history and "rolled-back" in history and "bad" in history
        pages.keep(driver)
        pages.assert_absent(first_secret, second_secret)
