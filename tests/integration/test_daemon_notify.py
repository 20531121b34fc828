"""A real daemon on the real Swarm tells a loopback receiver what it does (a signed webhook and a
GitHub commit status): deployed, drift-detected, drift-healed, sync-failed, rolled-back; and a
receiver that hangs or answers 500 does not slow its reconciles (the figures are printed)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from receiver import Received, Receiver, receiving
from test_daemon import DaemonProcess, head, service_replicas, swarm_repo
from testsupport import wait_for

KEY = "notify-test-hmac-key"
TOKEN = "notify-test-forge-token"


def notifications(receiver: Receiver) -> str:
    return f"""notifications:
  page_url: http://gitops.invalid
  providers:
    - name: hook
      type: webhook
      url: {receiver.url}/hook
      secret: {{env: GITOPS_NOTIFY_KEY}}
      headers: {{X-Team: platform}}
    - name: forge
      type: github
      api_url: {receiver.url}/api/v3
      repository: org/repo
      token: {{env: GITOPS_NOTIFY_TOKEN}}
  subscriptions:
    - provider: hook
    - provider: forge
"""


def hooks(receiver: Receiver, trigger: str, revision: str | None = None) -> list[dict[str, Any]]:
    out = []
    for request in receiver.requests("/hook"):
        body = request.json()
        if body["trigger"] == trigger and (revision is None or body["revision"] == revision):
            out.append(body)
    return out


def check_signed(request: Received) -> None:
    expected = "sha256=" + hmac.new(KEY.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Gitops-Signature-256"], expected)
    assert request.headers["X-Team"] == "platform" and request.headers["Content-Type"] == "application/json"


def reconcile_seconds(daemon: DaemonProcess, revision: str) -> float:
    """From the daemon's log: the start of the reconcile that applied ``revision`` to its end."""
    def at(event: dict[str, Any]) -> float:
        return datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    events = daemon.events()
    start = next(e for e in events if e["event"] == "reconcile" and e.get("revision") == revision)
    end = next(e for e in events if e["event"] == "reconciled" and e.get("revision") == revision
               and e.get("result") == "applied")
    return at(end) - at(start)


def commit_and_apply(daemon: DaemonProcess, repo: Any, app: str, tag: str) -> tuple[str, float]:
    old = next(line for line in (repo.root / "swarm/demo.env").read_text().splitlines() if line.startswith("APP_TAG"))
    repo.edit("swarm/demo.env", old, f"APP_TAG={tag}")
    repo.commit(f"tag {tag}")
    sha = head(repo)
    assert daemon.push(sha)[0] == 200  # the poll is hourly: the push webhook
    wait_for(f"commit {tag} applied", lambda: daemon.app(app).get("revision") == sha
             and daemon.app(app).get("result") == "applied", timeout=180)
    return sha, reconcile_seconds(daemon, sha)


@pytest.mark.swarm
def test_daemon_notifies_each_outcome_and_a_failing_receiver_never_slows_a_reconcile(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    with receiving() as receiver:
        repo, app, _ = swarm_repo(tmp_path, stack, interval="1h")
        with (repo.root / "gitops.yaml").open("a") as config:
            config.write(notifications(receiver))
        repo.commit("notifications")
        first = head(repo)
        env = {"GITOPS_NOTIFY_KEY": KEY, "GITOPS_NOTIFY_TOKEN": TOKEN}
        with DaemonProcess(repo, "--leader-election", "off", env=env) as daemon:
            daemon.first_sync(app, timeout=120)

            # deployed: the webhook (signed, with the event's fields) and the commit status.
            [deployed] = wait_for("deployed", lambda: hooks(receiver, "deployed", first), timeout=30)
            assert {k: deployed[k] for k in ("app", "revision", "result", "sync", "health", "backend", "link")} == {
                "app": app, "revision": first, "result": "applied", "sync": "Synced", "health": "Healthy",
                "backend": "swarm", "link": f"http://gitops.invalid/apps/{app}"}
            assert hooks(receiver, "sync-started", first)
            for request in receiver.requests("/hook"):
                check_signed(request)
            statuses = wait_for("two commit statuses", lambda: len(receiver.requests("/api/v3")) >= 2
                                and receiver.requests("/api/v3"), timeout=30)
            assert {r.path for r in statuses} == {f"/api/v3/repos/org/repo/statuses/{first}"}
            assert [r.json()["state"] for r in statuses] == ["pending", "success"]
            assert set(statuses[1].json()) == {"state", "target_url", "description", "context"}
            assert statuses[1].json()["context"] == f"gitops/{app}"
            assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in statuses)

            # drift-detected, then drift-healed; no second "deployed" for the same revision.
            time.sleep(2)  # our own apply's events have passed
            subprocess.run(["docker", "service", "scale", "--detach", f"{stack}_web=4"], check=True,
                           capture_output=True)
            [detected] = wait_for("drift-detected", lambda: hooks(receiver, "drift-detected", first), timeout=60)
            assert detected["app"] == app and detected["message"].endswith("change(s)")
            wait_for("drift-healed", lambda: hooks(receiver, "drift-healed", first), timeout=90)
            assert service_replicas(docker_api, stack) == 2
            assert len(hooks(receiver, "deployed", first)) == 1
            assert len(receiver.requests("/api/v3")) == 2  # drift is no commit status

            # The same app's next commits: the receiver answering, hanging, answering 500.
            ok_sha, ok = commit_and_apply(daemon, repo, app, "2")
            wait_for("deployed again", lambda: hooks(receiver, "deployed", ok_sha), timeout=30)
            receiver.release.clear()
            receiver.hang = True
            _, hung = commit_and_apply(daemon, repo, app, "3")
            assert receiver.in_flight >= 1, "the receiver was never asked"
            receiver.hang, receiver.status = False, 500
            receiver.release.set()
            fail_sha, failing = commit_and_apply(daemon, repo, app, "1")
            print(f"reconcile that applied a commit: receiver ok {ok:.2f}s, hanging {hung:.2f}s, "
                  f"answering 500 {failing:.2f}s")
            # A delivery on the reconcile's path would add at least one read timeout (5 s) per
            # attempt (hang), or the 1+2+4+8 s backoff (500), for each of its two notifications.
            assert hung < ok + 10 and failing < ok + 10

            def retried() -> bool:
                ids = [r.headers["X-Gitops-Delivery"] for r in receiver.requests("/hook")
                       if r.json()["revision"] == fail_sha]
                return len(set(ids)) < len(ids)  # one delivery, sent again

            wait_for("a retry of a delivery the receiver refused", retried, timeout=30)
            metrics = daemon.get("/metrics")[1].decode()
            assert 'gitops_notification_failed_attempts_total{provider="hook"}' in metrics

            # sync-failed (a revision that does not validate, held), rolled-back (a crashing image).
            receiver.status = 200
            repo.edit("swarm/compose.yaml", "replicas: 2", "replicas: lots")
            repo.commit("invalid")
            invalid = head(repo)
            assert daemon.push(invalid)[0] == 200
            [failed] = wait_for("sync-failed", lambda: hooks(receiver, "sync-failed", invalid), timeout=60)
            assert failed["result"] == "held" and "does not validate" in failed["message"]
            repo.edit("swarm/compose.yaml", "replicas: lots", "replicas: 2")
            repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}", "image: gitops-test/fail:1")
            repo.commit("crashing image")
            bad = head(repo)
            assert daemon.push(bad)[0] == 200
            [rolled] = wait_for("rolled-back", lambda: hooks(receiver, "rolled-back", bad), timeout=240)
            assert rolled["result"] == "rolled-back" and rolled["message"]
            assert not hooks(receiver, "deployed", bad)

            def states(sha: str) -> list[str]:
                return [r.json()["state"] for r in receiver.requests(f"/api/v3/repos/org/repo/statuses/{sha}")]

            wait_for("the failures on the commits", lambda: states(invalid) == ["failure"]
                     and states(bad) == ["pending", "failure"], timeout=60)
            for request in receiver.requests("/hook"):
                check_signed(request)
            assert daemon.stop() == 0
            log = daemon.log.read_text()
            assert KEY not in log and TOKEN not in log
            assert any(e["event"] == "notify-retry" for e in daemon.events())
