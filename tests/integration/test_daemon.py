"""`gitops daemon` as a user runs it: a real process over a git repository, applying commits to the
real Swarm and Kubernetes control plane, through signed webhooks and through polling."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import kube
from harness.swarm import DOCKER_SOCKET
from proxy import Proxy
from repos import EXAMPLE, Repo, free_port, git, make_repo, swarm_example
from testsupport import wait_for

SECRET = "daemon-test-secret"


class DaemonProcess:
    def __init__(self, repo: Repo, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = repo.root.parent / f"daemon-{self.port}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gitops", "daemon", "--repo", str(repo.root), "--ref", "main",
             "--listen", f"127.0.0.1:{self.port}", "--log-format", "json", *args],
            env={**repo.env, "GITOPS_WEBHOOK_SECRET": SECRET, **(env or {})},
            stdout=subprocess.DEVNULL, stderr=self.log.open("wb"), cwd=repo.root.parent,
        )
        wait_for("the daemon's /healthz", lambda: self.get("/healthz")[0] == 200, timeout=30)

    def request(self, path: str, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except OSError:
            return 0, b""

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request(path)

    def app(self, name: str) -> dict[str, Any]:
        code, body = self.get(f"/api/v1/apps/{name}")
        return json.loads(body) if code == 200 else {}

    def push(self, sha: str, ref: str = "refs/heads/main", secret: str = SECRET) -> tuple[int, bytes]:
        body = json.dumps({"ref": ref, "after": sha, "repository": {"full_name": "t/t"}}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return self.request("/api/webhook", "POST", body, {
            "X-GitHub-Event": "push", "X-Hub-Signature-256": signature, "Content-Type": "application/json"})

    def announce_oversize_body(self) -> int:
        """Send only the headers of a 2 MiB webhook and read the answer: the daemon must refuse it
        without waiting for (or reading) the body."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n")
            status_line = conn.makefile("rb").readline().decode()
        return int(status_line.split()[1])

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def first_sync(self, app: str, timeout: float = 180) -> None:
        wait_for("the first reconcile", lambda: self.app(app).get("result") == "applied", timeout=timeout)


def head(repo: Repo) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo.root, capture_output=True, text=True,
                          check=True).stdout.strip()


def swarm_repo(tmp_path: Path, stack: str, interval: str, host: str = "") -> tuple[Repo, str, int]:
    app = f"demo-{stack[-6:]}"
    port = free_port()
    repo = make_repo(tmp_path, [
        *swarm_example(port),
    ], dict(os.environ))
    (repo.root / "gitops.yaml").write_text(f"""version: 1
apps:
  - name: {app}
    backend: swarm
    paths: [swarm/compose.yaml]
    env_files: [swarm/demo.env]
    target: {{stack: {stack}{f", host: '{host}'" if host else ""}}}
    sync: {{prune: true, self_heal: true, interval: {interval}}}
    rollout: {{timeout: 2m}}
""")
    repo.commit("only the swarm app")
    return repo, app, port


def kube_repo(tmp_path: Path, namespace: str, env: dict[str, str], sync: str) -> tuple[Repo, str]:
    """The example's Kubernetes app alone, in the test namespace, with these sync settings."""
    app = f"web-{namespace[-6:]}"
    repo = make_repo(tmp_path, [
        *((f"k8s/{f.name}", r"namespace: web$", f"namespace: {namespace}") for f in (EXAMPLE / "k8s").iterdir()),
        ("k8s/00-namespace.yaml", r"name: web$", f"name: {namespace}"),
    ], env)
    write_kube_config(repo, app, namespace, sync)
    repo.commit("only the kubernetes app")
    return repo, app


def write_kube_config(repo: Repo, app: str, namespace: str, sync: str) -> None:
    (repo.root / "gitops.yaml").write_text(f"""version: 1
kubernetes_version: "1.35"
apps:
  - name: {app}
    backend: kubernetes
    paths: [k8s]
    target: {{namespace: {namespace}}}
    sync: {{{sync}}}
    rollout: {{timeout: 2m}}
""")


def service_image(docker_api: Any, stack: str) -> str:
    services = docker_api.services(filters={"name": f"{stack}_web"})
    if not services:
        return ""
    return str(services[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]).split("@")[0]


@pytest.mark.swarm
def test_daemon_applies_a_webhook_commit_to_swarm_and_refuses_bad_webhooks(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1h")  # polling never fires: only the webhook
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=120)
        assert daemon.get("/readyz")[0] == 200
        assert daemon.app(app)["sync"] == "Synced" and daemon.app(app)["health"] == "Healthy"
        assert service_image(docker_api, stack) == "gitops-test/app:1"

        # Refused: bad signature, wrong method, oversize, malformed, another branch; ping is fine.
        repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
        repo.commit("v2")
        sha = head(repo)
        assert daemon.push(sha, secret="wrong")[0] == 401
        assert daemon.request("/api/webhook")[0] == 405
        assert daemon.announce_oversize_body() == 413  # answered from the headers, the body never read
        junk = b"{not json"
        signed = "sha256=" + hmac.new(SECRET.encode(), junk, hashlib.sha256).hexdigest()
        assert daemon.request("/api/webhook", "POST", junk,
                              {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed})[0] == 400
        assert daemon.push(sha, ref="refs/heads/other")[0] == 202
        assert daemon.push(sha, ref="refs/tags/v2")[0] == 202
        ping = json.dumps({"zen": "hi"}).encode()
        assert daemon.request("/api/webhook", "POST", ping, {
            "X-GitHub-Event": "ping",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), ping, hashlib.sha256).hexdigest()})[0] == 200
        time.sleep(1)
        assert service_image(docker_api, stack) == "gitops-test/app:1", "a refused webhook triggered a sync"

        started = time.monotonic()
        code, body = daemon.push(sha)
        assert code == 200 and json.loads(body)["triggered"] is True
        wait_for("the webhook commit applied", lambda: daemon.app(app).get("revision") == sha
                 and daemon.app(app).get("result") == "applied", timeout=120)
        print(f"webhook commit -> applied in {time.monotonic() - started:.1f}s")
        assert service_image(docker_api, stack) == "gitops-test/app:2"
        detail = daemon.app(app)
        assert [r["outcome"] for r in detail["releases"]] == ["succeeded", "succeeded"]
        assert detail["sync"] == "Synced"

        metrics = daemon.get("/metrics")[1].decode()
        assert 'gitops_webhook_requests_total{provider="github",status="401"} 1.0' in metrics
        assert 'gitops_webhook_requests_total{provider="github",status="200"}' in metrics
        assert f'gitops_reconcile_total{{app="{app}",result="applied"}} 2.0' in metrics
        assert f'gitops_app_synced{{app="{app}"}} 1.0' in metrics
        assert SECRET not in daemon.log.read_text()

        remote = repo.gitops("status", "--server", daemon.url)
        assert remote.returncode == 0 and app in remote.stdout and "Synced" in remote.stdout, remote.stdout
        [one] = json.loads(repo.gitops("status", app, "--server", daemon.url, "--output", "json").stdout)
        assert one["revision"] == sha and one["health"] == "Healthy"
        missing = repo.gitops("status", "nope", "--server", daemon.url)
        assert missing.returncode == 1 and "no such app" in missing.stderr

        assert daemon.stop() == 0
        assert [e["event"] for e in daemon.events()][-1] == "daemon-stopped"


@pytest.mark.swarm
def test_daemon_polls_applies_holds_a_failing_commit_until_a_new_one(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="2s")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=120)
        repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=3")
        repo.commit("v3 by poll")
        sha = head(repo)
        wait_for("the polled commit applied", lambda: daemon.app(app).get("revision") == sha
                 and daemon.app(app).get("result") == "applied", timeout=120)
        assert service_image(docker_api, stack) == "gitops-test/app:3"

        # A failing image: rolled back once, then held until a newer commit; never retried.
        repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}", "image: gitops-test/fail:1")
        repo.commit("bad")
        bad = head(repo)
        wait_for("the bad commit rolled back", lambda: daemon.app(app).get("result") == "rolled-back", timeout=180)
        assert service_image(docker_api, stack) == "gitops-test/app:3"
        assert daemon.app(app)["held_revision"] == bad
        time.sleep(6)  # three poll intervals
        detail = daemon.app(app)
        assert [r["outcome"] for r in detail["releases"]][-2:] == ["failed", "rolled-back"]
        assert len(detail["releases"]) == 4, "the bad revision was retried"
        assert bad in detail["bad_revisions"]

        repo.edit("swarm/compose.yaml", "image: gitops-test/fail:1", "image: gitops-test/app:${APP_TAG:-1}")
        repo.edit("swarm/demo.env", "APP_TAG=3", "APP_TAG=2")
        repo.commit("fixed")
        fixed = head(repo)
        wait_for("the fix applied", lambda: daemon.app(app).get("revision") == fixed
                 and daemon.app(app).get("result") == "applied", timeout=120)
        assert service_image(docker_api, stack) == "gitops-test/app:2"
        assert daemon.app(app)["held_revision"] == ""
        assert daemon.stop(signal.SIGINT) == 0


@pytest.mark.swarm
def test_sigterm_during_a_failing_rollout_exits_0_and_the_next_run_rolls_it_back(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    """SIGTERM while the daemon watches a failing rollout: it stops at the next poll (exit 0, lock
    released, the release left in progress); the CLI then completes that release: exit 3."""
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1s")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=120)
        repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}", "image: gitops-test/fail:1")
        repo.commit("bad")
        # SIGTERM during the rollout, not before it: once the failing image is written.
        wait_for("the bad revision written", lambda: service_image(docker_api, stack) == "gitops-test/fail:1",
                 timeout=60, poll=0.05)
        assert any(e["event"] == "apply-apply" and e.get("release") == 2 for e in daemon.events())
        started = time.monotonic()
        assert daemon.stop() == 0
        print(f"SIGTERM -> exit in {time.monotonic() - started:.1f}s")
        assert time.monotonic() - started < 15
        assert service_image(docker_api, stack) == "gitops-test/fail:1"
    rerun = repo.gitops("apply", app, "--auto-approve")  # the lock was released: no wait for its expiry
    assert rerun.returncode == 3, rerun.stdout + rerun.stderr
    assert service_image(docker_api, stack) == "gitops-test/app:1"
    history = repo.gitops("history", app, "--output", "json")
    releases = json.loads(history.stdout)["releases"]
    assert [(r["number"], r["outcome"]) for r in releases] == [(1, "succeeded"), (2, "failed"), (3, "rolled-back")]


def service_replicas(docker_api: Any, stack: str) -> int:
    services = docker_api.services(filters={"name": f"{stack}_web"})
    return int(services[0]["Spec"]["Mode"]["Replicated"]["Replicas"]) if services else -1


@pytest.mark.swarm
def test_daemon_heals_drift_on_swarm_within_seconds(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    """`docker service scale` and `docker service rm` of a managed service are seen from the
    engine's event stream and healed, without waiting for the (hour-long) poll."""
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1h")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=120)
        assert service_replicas(docker_api, stack) == 2
        time.sleep(2)  # our own apply's events have passed
        started = time.monotonic()
        subprocess.run(["docker", "service", "scale", "--detach", f"{stack}_web=4"], check=True, capture_output=True)
        wait_for("the scale seen", lambda: any(e["event"] == "change-seen" for e in daemon.events()), timeout=15)
        wait_for("the replicas healed", lambda: service_replicas(docker_api, stack) == 2, timeout=60, poll=0.2)
        healed = time.monotonic() - started
        print(f"swarm scale -> healed in {healed:.1f}s")
        wait_for("the heal recorded", lambda: daemon.app(app).get("result") in ("applied", "synced"), timeout=60)

        time.sleep(3)
        started = time.monotonic()
        docker_api.remove_service(f"{stack}_web")
        wait_for("the removed service re-created", lambda: service_replicas(docker_api, stack) == 2, timeout=90,
                 poll=0.2)
        print(f"swarm service rm -> re-created in {time.monotonic() - started:.1f}s")
        wait_for("the re-creation recorded", lambda: daemon.app(app).get("result") in ("applied", "synced"),
                 timeout=60)
        # docker service update --image: healed back to the image git names.
        time.sleep(3)
        started = time.monotonic()
        subprocess.run(["docker", "service", "update", "--detach", "--image", "gitops-test/app:3", f"{stack}_web"],
                       check=True, capture_output=True)
        wait_for("the image edit healed", lambda: service_image(docker_api, stack) == "gitops-test/app:1",
                 timeout=90, poll=0.2)
        print(f"swarm service update --image -> healed in {time.monotonic() - started:.1f}s")
        metrics = daemon.get("/metrics")[1].decode()
        assert f'gitops_self_heal_total{{app="{app}"}}' in metrics
        assert daemon.stop() == 0


def elect(daemons: list[DaemonProcess], app: str, timeout: float) -> tuple[DaemonProcess, DaemonProcess]:
    """Two daemons over one repository: exactly one leads (and is ready), the other never acts."""
    wait_for("the first reconcile", lambda: any(d.app(app).get("result") == "applied" for d in daemons),
             timeout=timeout)
    leaders = [d for d in daemons if "gitops_leader 1.0" in d.get("/metrics")[1].decode()]
    assert len(leaders) == 1, "not exactly one leader"
    [leader] = leaders
    [standby] = [d for d in daemons if d is not leader]
    assert leader.get("/readyz")[0] == 200 and standby.get("/readyz")[0] == 503
    time.sleep(3)  # a standby never acts: nothing more is applied by either
    assert standby.app(app).get("result", "") == ""
    return leader, standby


def take_over(leader: DaemonProcess, standby: DaemonProcess, repo: Repo, app: str, edit: Callable[[], None]) -> None:
    """kill -9 the leader (its lease is never released: it expires), commit, and the standby
    applies that commit; the history has one release per revision."""
    leader.process.kill()
    leader.process.wait(10)
    edit()
    repo.commit("after the leader died")
    sha = head(repo)
    started = time.monotonic()
    wait_for("the standby applying the commit", lambda: standby.app(app).get("revision") == sha
             and standby.app(app).get("result") == "applied", timeout=120)
    print(f"leader killed -> the standby applied the next commit in {time.monotonic() - started:.1f}s")
    releases = json.loads(repo.gitops("history", app, "--output", "json").stdout)["releases"]
    assert [r["outcome"] for r in releases] == ["succeeded", "succeeded"]  # one release per revision
    assert len({r["revision"] for r in releases}) == 2


@pytest.mark.swarm
def test_two_daemons_one_acts_and_the_standby_takes_over_when_the_leader_is_killed(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1s")
    daemons = [DaemonProcess(repo, "--leader-ttl", "5"), DaemonProcess(repo, "--leader-ttl", "5")]
    try:
        leader, standby = elect(daemons, app, timeout=120)
        take_over(leader, standby, repo, app, lambda: repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2"))
        assert service_image(docker_api, stack) == "gitops-test/app:2"
        assert standby.stop() == 0
    finally:
        for d in daemons:
            d.close()


OUTAGE_SECONDS = 30


def ride_out_an_outage(daemon: DaemonProcess, repo: Repo, app: str, proxy: Proxy, edit: Callable[[], None]) -> str:
    """Cut the target for OUTAGE_SECONDS while a commit waits; the daemon keeps serving, reports
    the error, and applies the commit once the target is back. Returns the commit."""
    proxy.cut()
    edit()
    repo.commit("during the outage")
    sha = head(repo)
    started = time.monotonic()
    wait_for("the outage reported", lambda: daemon.app(app).get("result") == "failed", timeout=OUTAGE_SECONDS)
    assert "reach" in daemon.app(app)["message"], daemon.app(app)["message"]
    assert daemon.get("/healthz")[0] == 200
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    assert daemon.process.poll() is None, "the daemon died during the outage"
    proxy.restore()
    restored = time.monotonic()
    wait_for("the commit applied after the outage", lambda: daemon.app(app).get("revision") == sha
             and daemon.app(app).get("result") == "applied", timeout=180)
    print(f"target back -> commit applied in {time.monotonic() - restored:.1f}s (outage {OUTAGE_SECONDS}s)")
    return sha


@pytest.mark.swarm
def test_daemon_rides_out_a_docker_engine_outage_without_a_restart_or_a_duplicate_release(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    proxy = Proxy.to_unix(DOCKER_SOCKET)
    repo, app, _ = swarm_repo(tmp_path, stack, interval="2s", host=f"tcp://127.0.0.1:{proxy.port}")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=120)
        ride_out_an_outage(daemon, repo, app, proxy,
                           lambda: repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2"))
        assert service_image(docker_api, stack) == "gitops-test/app:2"
        releases = json.loads(repo.gitops("history", app, "--output", "json").stdout)["releases"]
        assert [r["outcome"] for r in releases] == ["succeeded", "succeeded"]
        assert daemon.stop() == 0
        proxy.close()


@pytest.mark.kube
def test_daemon_rides_out_an_api_server_outage_without_a_restart_or_a_duplicate_release(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    proxy = Proxy.to_tcp("127.0.0.1", int(kube.API_PORT))
    config = json.loads(Path(kube_cluster.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env, "prune: true, self_heal: true, interval: 2s")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=180)
        ride_out_an_outage(daemon, repo, app, proxy,
                           lambda: repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn"))
        releases = json.loads(repo.gitops("history", app, "--output", "json").stdout)["releases"]
        assert [r["outcome"] for r in releases] == ["succeeded", "succeeded"]
        assert daemon.stop() == 0
        proxy.close()


@pytest.mark.swarm
def test_an_invalid_gitops_yaml_is_held_not_fetched_again_and_a_fix_applies(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1s")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=120)
        good = (repo.root / "gitops.yaml").read_text()
        (repo.root / "gitops.yaml").write_text(good.replace("backend: swarm", "backend: nomad"))
        repo.commit("broken config")
        broken = head(repo)
        wait_for("the invalid config reported",
                 lambda: json.loads(daemon.get("/api/v1/apps")[1]).get("config_error"), timeout=30)
        time.sleep(4)  # four poll intervals: held, not fetched again and again
        held = [e for e in daemon.events() if e["event"] == "held" and e.get("revision") == broken]
        assert len(held) == 1, held
        assert daemon.app(app)["revision"] != broken and "gitops.yaml" in daemon.app(app)["problems"][0]
        (repo.root / "gitops.yaml").write_text(good)
        repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
        repo.commit("fixed")
        fixed = head(repo)
        wait_for("the fix applied", lambda: daemon.app(app).get("revision") == fixed
                 and daemon.app(app).get("result") == "applied", timeout=120)
        assert json.loads(daemon.get("/api/v1/apps")[1])["config_error"] is None
        assert daemon.stop() == 0


@pytest.mark.swarm
def test_daemon_survives_a_repository_that_goes_away(swarm_cluster: Any, stack: str, tmp_path: Path) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1s")
    daemon = DaemonProcess(repo, "--leader-election", "off")  # a single daemon: acts without a lease
    moved = repo.root.with_name("moved")
    try:
        wait_for("the first reconcile", lambda: daemon.app(app).get("result") == "applied", timeout=120)
        repo.root.rename(moved)
        wait_for("the git error reported", lambda: json.loads(daemon.get("/api/v1/apps")[1]).get("repository_error"),
                 timeout=30)
        assert daemon.get("/healthz")[0] == 200
        moved.rename(repo.root)
        repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
        repo.commit("after the outage")
        sha = head(repo)
        wait_for("the commit applied after the outage", lambda: daemon.app(app).get("revision") == sha, timeout=120)
        assert json.loads(daemon.get("/api/v1/apps")[1])["repository_error"] is None
        assert daemon.stop() == 0
    finally:
        if moved.exists():
            moved.rename(repo.root)
        daemon.close()


@pytest.mark.kube
def test_daemon_applies_a_commit_to_kubernetes_and_reports_only_when_auto_is_off(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    sync = "prune: true, self_heal: true, interval: 1h, auto: {}"
    repo, app = kube_repo(tmp_path, namespace, env, sync.format("true"))
    with DaemonProcess(repo, env={"GITOPS_API_TOKEN": "t0ken"}) as daemon:
        daemon.first_sync(app, timeout=180)
        assert daemon.app(app)["health"] == "Healthy"

        repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn")
        repo.commit("log level")
        sha = head(repo)
        assert daemon.push(sha)[0] == 200
        wait_for("the webhook commit applied", lambda: daemon.app(app).get("revision") == sha
                 and daemon.app(app).get("result") == "applied", timeout=120)
        from gitops.backends.kubernetes.client import KubeClient

        client = KubeClient(str(kube_cluster.kubeconfig))
        cm = client.resource_type("v1", "ConfigMap")
        assert cm is not None
        assert client.get(cm, namespace, "web-config")["data"]["LOG_LEVEL"] == "warn"  # type: ignore[index]

        # sync.auto off: a new commit is reported OutOfSync and not applied.
        write_kube_config(repo, app, namespace, sync.format("false"))
        repo.edit("k8s/10-config.yaml", "LOG_LEVEL: warn", "LOG_LEVEL: debug")
        repo.commit("auto off")
        off = head(repo)
        # A manual sync needs the bearer token; with it, it is queued.
        assert daemon.request(f"/api/v1/apps/{app}/sync", "POST", b"")[0] == 401
        assert daemon.request(f"/api/v1/apps/{app}/sync", "POST", b"", {"Authorization": "Bearer t0ken"})[0] == 202
        assert daemon.push(off)[0] == 200
        wait_for("the commit reported, not applied", lambda: daemon.app(app).get("revision") == off
                 and daemon.app(app).get("result") == "out-of-sync", timeout=60)
        assert daemon.app(app)["sync"] == "OutOfSync"
        assert client.get(cm, namespace, "web-config")["data"]["LOG_LEVEL"] == "warn"  # type: ignore[index]
        assert daemon.stop() == 0
        client.close()


@pytest.mark.kube
def test_two_daemons_on_kubernetes_elect_by_lease_and_the_standby_takes_over_when_the_leader_is_killed(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """The leader's lock is a coordination.k8s.io Lease: one daemon acts, kill -9 it, the other
    takes the Lease once it expires and applies the next commit; one release per revision."""
    from gitops.backends.kubernetes.client import KubeClient

    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env, "prune: true, self_heal: true, interval: 1s")
    client = KubeClient(str(kube_cluster.kubeconfig))
    leases = client.resource_type("coordination.k8s.io/v1", "Lease")
    assert leases is not None
    daemons = [DaemonProcess(repo, "--leader-ttl", "5", "--leader-election", "kubernetes"),
               DaemonProcess(repo, "--leader-ttl", "5", "--leader-election", "kubernetes")]
    try:
        leader, standby = elect(daemons, app, timeout=180)
        [elected] = [e for e in leader.events() if e["event"] == "leader"]
        name, holder = elected["lease"], elected["holder"]
        lease = client.get(leases, "gitops-system", f"gitops-lock-{name}")
        assert lease is not None and lease["spec"]["holderIdentity"] == holder
        take_over(leader, standby, repo, app, lambda: repo.edit("k8s/10-config.yaml", "LOG_LEVEL: info",
                                                                "LOG_LEVEL: warn"))
        taken = client.get(leases, "gitops-system", f"gitops-lock-{name}")
        assert taken is not None and taken["spec"]["holderIdentity"] not in ("", holder)
        assert standby.stop() == 0
        released = client.get(leases, "gitops-system", f"gitops-lock-{name}") or {}
        assert released.get("spec", {}).get("holderIdentity") in (None, "")  # SIGTERM lets go of it
    finally:
        for d in daemons:
            d.close()
        client.close()


def deployment_image(kube_cluster: Any, namespace: str) -> str:
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    try:
        rtype = client.resource_type("apps/v1", "Deployment")
        assert rtype is not None
        live = client.get(rtype, namespace, "web")
        return str(live["spec"]["template"]["spec"]["containers"][0]["image"]) if live else ""
    finally:
        client.close()


@pytest.mark.kube
def test_a_daemon_killed_during_a_crashing_rollout_is_rolled_back_by_the_next_daemon(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env, "prune: true, self_heal: true, interval: 2s")
    with DaemonProcess(repo, "--leader-ttl", "5") as first:
        first.first_sync(app)
        repo.edit("k8s/20-deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/crash:1")
        repo.commit("crashing image")
        # kill -9 during the rollout, not before it: once the crashing image is written.
        wait_for("the crashing revision written",
                 lambda: deployment_image(kube_cluster, namespace) == "gitops-test/crash:1", timeout=60, poll=0.1)
        first.process.kill()  # kill -9 during the rollout: the release stays in progress, the locks expire
        first.process.wait(10)
    assert deployment_image(kube_cluster, namespace) == "gitops-test/crash:1"
    with DaemonProcess(repo, "--leader-ttl", "5") as second:
        wait_for("the next daemon rolling it back", lambda: second.app(app).get("result") == "rolled-back",
                 timeout=240)
        assert deployment_image(kube_cluster, namespace) == "ghcr.io/stefanprodan/podinfo:6.7.1"
        releases = json.loads(repo.gitops("history", app, "--output", "json").stdout)
        assert [(r["number"], r["outcome"]) for r in releases["releases"]] == [
            (1, "succeeded"), (2, "failed"), (3, "rolled-back")]
        assert releases["bad_revisions"] == [head(repo)]
        assert second.stop() == 0


@pytest.mark.kube
def test_a_newer_commit_abandons_the_older_revisions_rollout_and_is_applied(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """Flux's behaviour: a revision whose rollout is still being watched (here: pods that never
    become Ready) is superseded by a newer commit, which is applied at once, never two at a time."""
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env, "prune: true, self_heal: true, interval: 1h")
    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app)
        repo.edit("k8s/20-deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/unready:1")
        repo.commit("never ready")
        assert daemon.push(head(repo))[0] == 200
        wait_for("the slow rollout being watched",
                 lambda: any(e["event"] == "apply-apply" and e.get("release") == 2 for e in daemon.events()),
                 timeout=60, poll=0.05)
        time.sleep(2)
        repo.edit("k8s/20-deployment.yaml", "gitops-test/unready:1", "gitops-test/app:2")
        repo.commit("the fix")
        fixed = head(repo)
        started = time.monotonic()
        assert daemon.push(fixed)[0] == 200
        wait_for("the newer commit applied", lambda: daemon.app(app).get("revision") == fixed
                 and daemon.app(app).get("result") == "applied", timeout=120)
        print(f"newer commit applied {time.monotonic() - started:.1f}s after its webhook")
        assert deployment_image(kube_cluster, namespace) == "gitops-test/app:2"
        assert any(e["event"] == "reconciled" and e.get("result") == "interrupted" for e in daemon.events())
        releases = json.loads(repo.gitops("history", app, "--output", "json").stdout)
        assert [(r["number"], r["outcome"]) for r in releases["releases"]] == [
            (1, "succeeded"), (2, "failed"), (3, "succeeded")]
        assert "superseded" in releases["releases"][1]["message"] and releases["bad_revisions"] == []
        assert daemon.stop() == 0


@pytest.mark.kube
def test_daemon_heals_kubernetes_drift_and_leaves_an_hpa_owned_replica_count_alone(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    repo, app = kube_repo(tmp_path, namespace, env, "prune: true, self_heal: true, interval: 1h")
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    deployment, cm = client.resource_type("apps/v1", "Deployment"), client.resource_type("v1", "ConfigMap")
    assert deployment is not None and cm is not None

    def replicas() -> int:
        live = client.get(deployment, namespace, "web")
        return int(live["spec"]["replicas"]) if live else -1

    with DaemonProcess(repo) as daemon:
        daemon.first_sync(app, timeout=180)
        time.sleep(2)
        # kubectl scale: healed back to what git says.
        started = time.monotonic()
        client.request("PATCH", deployment.path(namespace, "web") + "?fieldManager=kubectl-scale",
                       body={"spec": {"replicas": 5}}, content_type="application/merge-patch+json")
        wait_for("the scale healed", lambda: replicas() == 2, timeout=60, poll=0.2)
        print(f"kubernetes scale -> healed in {time.monotonic() - started:.1f}s")
        # kubectl delete of a managed object: re-created.
        time.sleep(3)
        started = time.monotonic()
        client.request("DELETE", cm.path(namespace, "web-config"))
        wait_for("the ConfigMap re-created", lambda: client.get(cm, namespace, "web-config") is not None,
                 timeout=60, poll=0.2)
        print(f"kubernetes delete -> re-created in {time.monotonic() - started:.1f}s")
        # kubectl set image: git declares the image, so it is ours and taken back.
        time.sleep(3)
        declared = deployment_image(kube_cluster, namespace)
        started = time.monotonic()
        client.request("PATCH", deployment.path(namespace, "web") + "?fieldManager=kubectl-set",
                       body={"spec": {"template": {"spec": {"containers": [
                           {"name": "web", "image": "gitops-test/app:3"}]}}}},
                       content_type="application/strategic-merge-patch+json")
        assert deployment_image(kube_cluster, namespace) == "gitops-test/app:3"
        wait_for("the image edit healed", lambda: deployment_image(kube_cluster, namespace) == declared,
                 timeout=60, poll=0.2)
        print(f"kubernetes set image -> healed in {time.monotonic() - started:.1f}s")

        # An HPA owns spec.replicas once git stops declaring it: its value is left alone.
        repo.edit("k8s/20-deployment.yaml", "  replicas: 2\n", "")
        repo.commit("replicas owned by an HPA")
        assert daemon.push(head(repo))[0] == 200
        wait_for("the commit applied", lambda: daemon.app(app).get("revision") == head(repo)
                 and daemon.app(app).get("result") == "applied", timeout=120)
        client.request("PATCH", deployment.path(namespace, "web") + "?fieldManager=horizontal-pod-autoscaler",
                       body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
        time.sleep(8)  # several drift delays and heal backoffs
        assert replicas() == 3
        assert daemon.app(app)["sync"] == "Synced"
        assert daemon.stop() == 0
        client.close()


def test_daemon_refuses_to_start_without_a_repository(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gitops", "daemon"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--repo URL" in done.stderr
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "commit", "-qm", "x")
    done = subprocess.run([sys.executable, "-m", "gitops", "daemon", "-C", str(tmp_path), "--ref", "main"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--ref goes with --repo" in done.stderr


@pytest.mark.swarm
def test_the_daemon_applies_an_app_only_once_the_app_it_depends_on_is_healthy(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    """Two stacks, `front` depends on `back`: while back's revision fails (rolled back, held),
    front waits and says so; once back is fixed and healthy, front is applied."""
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1h")
    front = f"front-{stack[-6:]}"
    port = free_port()
    (repo.root / "front").mkdir()
    (repo.root / "front" / "compose.yaml").write_text(f"""version: "3.8"
services:
  web:
    image: gitops-test/app:1
    ports: ["{port}:8080"]
    deploy:
      replicas: 1
      update_config: {{parallelism: 1, delay: 1s, monitor: 2s, order: start-first}}
""")
    text = (repo.root / "gitops.yaml").read_text()
    (repo.root / "gitops.yaml").write_text(text + f"""  - name: {front}
    backend: swarm
    paths: [front/compose.yaml]
    target: {{stack: {stack}f}}
    depends_on: [{app}]
    sync: {{prune: true, self_heal: true, interval: 1h}}
    rollout: {{timeout: 2m}}
""")
    repo.edit("swarm/compose.yaml", "image: gitops-test/app:${APP_TAG:-1}\n    ports",
              "image: gitops-test/fail:1\n    ports")
    repo.commit("back broken, front depends on it")
    try:
        with DaemonProcess(repo) as daemon:
            wait_for("back rolled back", lambda: daemon.app(app).get("result") == "rolled-back", timeout=180)
            wait_for("front waiting", lambda: daemon.app(front).get("result") == "waiting", timeout=60)
            assert f"waiting for `{app}`" in daemon.app(front)["message"], daemon.app(front)
            assert daemon.app(front)["waiting"].startswith(f"waiting for `{app}`")  # the API, and the page:
            assert f"waiting for `{app}`" in daemon.get("/")[1].decode()
            assert f"waiting for `{app}`" in daemon.get(f"/apps/{front}")[1].decode()
            assert not docker_api.services(filters={"name": f"{stack}f_web"})  # nothing of front applied
            repo.edit("swarm/compose.yaml", "image: gitops-test/fail:1\n    ports",
                      "image: gitops-test/app:${APP_TAG:-1}\n    ports")
            repo.commit("back fixed")
            assert daemon.push(head(repo))[0] == 200
            wait_for("front applied after back", lambda: daemon.app(front).get("result") == "applied", timeout=240)
            assert daemon.app(app)["result"] in ("applied", "synced")
            assert docker_api.services(filters={"name": f"{stack}f_web"})
            assert daemon.stop() == 0
    finally:
        subprocess.run(["docker", "stack", "rm", f"{stack}f"], capture_output=True)


def prod_compose(port: int, extra: str = "") -> str:
    return f"""version: "3.8"
services:
  web:
    image: gitops-test/app:1
    ports: ["{port}:8080"]{extra}
    deploy:
      replicas: 1
      update_config: {{parallelism: 1, delay: 1s, monitor: 2s, order: start-first, failure_action: rollback}}
"""


@pytest.mark.swarm
def test_the_daemon_promotes_to_production_only_what_succeeded_in_staging(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path
) -> None:
    """`prod` (its own stack) is promoted from the staging app: it waits while nothing succeeded
    there for promote_after, then takes the revision that did; a commit that crash-loops in staging
    is rolled back there and never reaches prod, which keeps the revision before it; the next good
    commit is promoted."""
    repo, staging, _ = swarm_repo(tmp_path, stack, interval="1h")
    prod = f"prod-{stack[-6:]}"
    port = free_port()
    (repo.root / "prod").mkdir()
    (repo.root / "prod" / "compose.yaml").write_text(prod_compose(port))
    base = (repo.root / "gitops.yaml").read_text()

    def config(after: str) -> None:
        (repo.root / "gitops.yaml").write_text(base + f"""  - name: {prod}
    backend: swarm
    paths: [prod/compose.yaml]
    target: {{stack: {stack}p}}
    promote_from: {staging}
    promote_after: {after}
    sync: {{prune: true, self_heal: true, interval: 1h}}
    rollout: {{timeout: 2m}}
""")

    config("1h")
    repo.commit("prod promoted from staging after an hour")
    try:
        with DaemonProcess(repo) as daemon:
            daemon.first_sync(staging)
            # Once staging's release is recorded, prod looks again and waits out promote_after.
            wait_for("prod waiting", lambda: "promoted after 1h" in daemon.app(prod).get("waiting", ""), timeout=60)
            waiting = daemon.app(prod)["waiting"]
            assert waiting.startswith(f"waiting for a revision of `{staging}` to succeed (newest: "), waiting
            assert daemon.app(prod)["result"] == "waiting"
            assert f"waiting for a revision of `{staging}`" in daemon.get("/")[1].decode()
            assert not docker_api.services(filters={"name": f"{stack}p_web"})

            config("0s")  # gitops.yaml only: staging's files and definition are the same, so it vouches for it
            repo.commit("promote at once")
            good = head(repo)
            assert daemon.push(good)[0] == 200
            wait_for("prod promoted", lambda: daemon.app(prod).get("applied") == good, timeout=180)
            assert daemon.app(prod)["promotion"].startswith(f"promoting {good[:7]} from {staging}")

            for path in ("swarm/compose.yaml", "prod/compose.yaml"):
                text = (repo.root / path).read_text()
                (repo.root / path).write_text(text.replace("image: gitops-test/app:${APP_TAG:-1}\n    ports",
                                                           "image: gitops-test/fail:1\n    ports")
                                              .replace("image: gitops-test/app:1", "image: gitops-test/fail:1"))
            repo.commit("crash-loops")
            bad = head(repo)
            assert daemon.push(bad)[0] == 200
            wait_for("staging rolled back", lambda: daemon.app(staging).get("result") == "rolled-back", timeout=240)
            wait_for("prod told", lambda: f"{bad[:7]} (failed in {staging}" in daemon.app(prod).get("promotion", ""),
                     timeout=60)
            detail = daemon.app(prod)
            assert detail["applied"] == good and detail["revision"] == good, detail
            assert {r["revision"] for r in detail["releases"]} == {good}  # the crash never reached prod
            assert service_image(docker_api, f"{stack}p") == "gitops-test/app:1"

            repo.edit("swarm/compose.yaml", "image: gitops-test/fail:1\n    ports",
                      "image: gitops-test/app:${APP_TAG:-1}\n    ports")
            (repo.root / "prod" / "compose.yaml").write_text(prod_compose(port, "\n    environment: {RELEASE: fixed}"))
            repo.commit("fixed")
            fixed = head(repo)
            assert daemon.push(fixed)[0] == 200
            wait_for("the fix promoted", lambda: daemon.app(prod).get("applied") == fixed, timeout=240)
            assert daemon.app(staging)["applied"] == fixed
            assert [r["revision"] for r in daemon.app(prod)["releases"]] == [good, fixed]
            assert daemon.stop() == 0
    finally:
        subprocess.run(["docker", "stack", "rm", f"{stack}p"], capture_output=True)


@pytest.mark.kube
def test_the_daemon_renders_helm_charts_with_the_helm_it_was_given(
    kube_cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """`gitops daemon --helm PATH`: a helm that is not there holds the app with how to install it;
    the one given renders the chart (helm is not on the daemon's PATH)."""
    from harness import build

    app = f"chart-{namespace[-6:]}"
    root = tmp_path / "repo"
    (root / "charts" / "app" / "templates").mkdir(parents=True)
    (root / "charts" / "app" / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 1.0.0\n")
    (root / "charts" / "app" / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {release: {{ .Release.Name | quote }}}\n")
    (root / "gitops.yaml").write_text(
        "version: 1\nkubernetes_version: \"1.35\"\napps:\n"
        f"  - name: {app}\n    backend: kubernetes\n    helm: {{chart: charts/app, release: app}}\n"
        f"    target: {{namespace: {namespace}}}\n    sync: {{interval: 1s}}\n    rollout: {{timeout: 1m}}\n")
    git(root, "init", "-q", "-b", "main")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if not (Path(p) / "helm").exists())
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_HELM"}
    repo = Repo(root, {**env, "KUBECONFIG": str(kube_cluster.kubeconfig), "PATH": path})
    repo.commit("a chart")
    with DaemonProcess(repo, "--helm", str(tmp_path / "no-helm"), "--leader-election", "off") as daemon:
        wait_for("the app held", lambda: daemon.app(app).get("result") == "held", timeout=60)
        message = daemon.app(app)["message"]
        assert f"the helm binary {tmp_path / 'no-helm'} does not exist" in message and "get-helm-3" in message
        assert daemon.stop() == 0
    with DaemonProcess(repo, "--helm", str(build.helm()), "--leader-election", "off") as daemon:
        daemon.first_sync(app, timeout=120)
        assert daemon.stop() == 0
