"""Pieces of the daemon that need no target: shards, leader names, backoff, and the HTTP listener's
answers (served for real on loopback, in front of a stand-in for the reconcile loop)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gitops.daemon.http import Server, serve
from gitops.daemon.log import Log
from gitops.daemon.loop import BACKOFF_MAX, Options, _backoff, in_shard, leader_name
from gitops.daemon.metrics import Metrics


def test_every_app_falls_in_exactly_one_shard_and_the_split_is_stable() -> None:
    apps = [f"app-{i}" for i in range(60)]
    shards = [[a for a in apps if in_shard(a, i, 3)] for i in range(3)]
    assert sorted(a for shard in shards for a in shard) == sorted(apps)
    assert all(len(s) >= 10 for s in shards)  # spread, not all in one
    assert shards == [[a for a in apps if in_shard(a, i, 3)] for i in range(3)]
    assert all(in_shard(a, 0, 1) for a in apps)


def test_leader_names_are_per_repository_branch_and_shard_and_ignore_credentials() -> None:
    base = Options(repo="https://git.example/org/repo.git", ref="main")
    assert leader_name(base) == leader_name(Options(repo="https://user:token@git.example/org/repo.git", ref="main"))
    assert leader_name(base) != leader_name(Options(repo=base.repo, ref="other"))
    assert leader_name(base) != leader_name(Options(repo=base.repo, ref="main", shard=1, shards=2))
    assert leader_name(base).startswith("daemon-") and leader_name(base).endswith("-0of1")


def test_backoff_doubles_from_5s_and_stops_at_5_minutes() -> None:
    assert [_backoff(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert _backoff(30) == BACKOFF_MAX == 300.0


class StandIn:
    """What the listener asks of the loop."""

    def __init__(self) -> None:
        self.triggered: list[str | None] = []
        self.is_ready = False
        self.git_error = ""
        self.config_error = ""
        self.signature_error = ""

    def trigger(self, app: str | None = None) -> None:
        self.triggered.append(app)

    def ready(self) -> bool:
        return self.is_ready

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"app": "web", "sync": "Synced"}]

    def app_detail(self, name: str) -> dict[str, Any] | None:
        return {"app": "web"} if name == "web" else None


SECRET = b"s3cret"


@pytest.fixture
def listener() -> Iterator[tuple[Server, StandIn]]:
    stand_in = StandIn()
    server = Server(("127.0.0.1", 0), stand_in, branch_ref="refs/heads/main", webhook_secret=SECRET,  # type: ignore[arg-type]
                    api_token="t0ken", log=Log("json", stream=open("/dev/null", "w")), metrics=Metrics())  # noqa: SIM115
    thread = serve(server)
    yield server, stand_in
    server.shutdown()
    server.server_close()
    thread.join(5)


def call(server: Server, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-GitHub-Event": "push",
                  "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()}


def test_probes_metrics_and_methods(listener: tuple[Server, StandIn]) -> None:
    server, stand_in = listener
    assert call(server, "GET", "/healthz") == (200, b"ok\n")
    assert call(server, "GET", "/readyz")[0] == 503
    stand_in.is_ready = True
    assert call(server, "GET", "/readyz")[0] == 200
    assert b"# TYPE gitops_reconcile_total counter" in call(server, "GET", "/metrics")[1]
    assert call(server, "POST", "/healthz", b"")[0] == 405
    assert call(server, "GET", "/api/webhook")[0] == 405
    assert call(server, "GET", "/nope")[0] == 404
    assert json.loads(call(server, "GET", "/api/v1/apps")[1])["apps"] == [
        {"app": "web", "sync": "Synced", "revision_url": None, "notes": []}]
    assert call(server, "GET", "/api/v1/apps/web")[0] == 200 and call(server, "GET", "/api/v1/apps/x")[0] == 404


def test_webhooks_trigger_only_for_a_signed_push_to_the_branch(listener: tuple[Server, StandIn]) -> None:
    server, stand_in = listener
    body, headers = signed({"ref": "refs/heads/main", "after": "a" * 40})
    assert call(server, "POST", "/api/webhook", body, headers)[0] == 200
    other, other_headers = signed({"ref": "refs/heads/dev"})
    assert call(server, "POST", "/api/webhook", other, other_headers)[0] == 202
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert call(server, "POST", "/api/webhook", body, forged)[0] == 401
    assert stand_in.triggered == [None]
    metrics = call(server, "GET", "/metrics")[1].decode()
    assert 'gitops_webhook_requests_total{provider="github",status="401"} 1.0' in metrics
    assert 'gitops_webhook_requests_total{provider="github",status="202"} 1.0' in metrics


def test_many_webhooks_at_once_are_bounded_and_coalesce(listener: tuple[Server, StandIn]) -> None:
    server, stand_in = listener
    body, headers = signed({"ref": "refs/heads/main"})
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(call(server, "POST", "/api/webhook", body, headers)[0]))
               for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(codes) == 40 and set(codes) <= {200, 503}
    assert codes.count(200) == len(stand_in.triggered)  # each only sets the flag the loop reads once


def test_manual_sync_needs_the_bearer_token(listener: tuple[Server, StandIn]) -> None:
    server, stand_in = listener
    assert call(server, "POST", "/api/v1/apps/web/sync", b"")[0] == 401
    assert call(server, "POST", "/api/v1/apps/web/sync", b"", {"Authorization": "Bearer wrong"})[0] == 401
    assert call(server, "POST", "/api/v1/apps/web/sync", b"", {"Authorization": "Bearer t0ken"})[0] == 202
    assert call(server, "POST", "/api/v1/apps/x/sync", b"", {"Authorization": "Bearer t0ken"})[0] == 404
    assert stand_in.triggered == ["web"]
    server.api_token = ""
    assert call(server, "POST", "/api/v1/apps/web/sync", b"", {"Authorization": "Bearer t0ken"})[0] == 403


class _Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> Any:
        from datetime import UTC, datetime
        return datetime.fromtimestamp(self.t, UTC)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.t += seconds
        return stop.is_set()


def test_a_change_seen_while_the_app_reconciles_is_looked_at_when_it_ends_not_at_the_next_interval() -> None:
    from gitops.daemon.loop import DRIFT_DELAY, AppRuntime, Daemon
    from gitops.model import ResourceKey

    clock = _Clock()
    daemon = Daemon(Options(repo="unused"), log=Log(stream=io.StringIO()), clock=clock)
    key = ResourceKey("", "ConfigMap", "ns", "web-config")
    daemon.apps["web"] = AppRuntime("web", next_due=clock.t + 3600)
    # Outside a reconcile: due after the drift delay.
    daemon._changed("web", key)
    assert daemon.apps["web"].next_due == clock.t + DRIFT_DELAY
    daemon.apps["web"].next_due = clock.t + 3600
    # While it reconciles (its plan already read the target): kept, not dropped...
    daemon._running.add("web")
    daemon._changed("web", key)
    assert daemon.apps["web"].next_due == clock.t + 3600
    # ...and due shortly once the reconcile ends (which had set the next interval).
    clock.t += 5
    daemon._done_running("web")
    assert daemon.apps["web"].next_due == clock.t + DRIFT_DELAY
    # A reconcile that saw no change keeps its interval.
    daemon.apps["web"].next_due = clock.t + 3600
    daemon._running.add("web")
    daemon._done_running("web")
    assert daemon.apps["web"].next_due == clock.t + 3600
    # A self-heal backoff still holds: no earlier than not_before.
    daemon.apps["web"].not_before = clock.t + 30
    daemon._running.add("web")
    daemon._changed("web", key)
    daemon._done_running("web")
    assert daemon.apps["web"].next_due == clock.t + 30


def test_a_drift_heals_at_the_revision_the_app_has_and_only_its_interval_looks_at_git(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A change seen on the target brings the app's reconcile forward, not a repository check: a
    commit pushed meanwhile is applied at the next poll or webhook, never because of a drift."""
    from types import SimpleNamespace

    from gitops import engine
    from gitops.daemon.loop import DRIFT_DELAY, AppRuntime, Daemon
    from gitops.model import ResourceKey

    clock = _Clock()
    daemon = Daemon(Options(repo="unused"), log=Log(stream=io.StringIO()), clock=clock)
    checks: list[str] = []
    monkeypatch.setattr(engine, "remote_revision", lambda repo, ref: checks.append(repo) or "a" * 40)
    daemon.workspace = SimpleNamespace(revision="a" * 40, settings=SimpleNamespace(apps=[]))  # type: ignore[assignment]
    daemon.leading.set()
    daemon._fetch_due = clock.t + 3600
    daemon.apps["web"] = AppRuntime("web", next_due=clock.t + 3600)
    submitted: list[str] = []

    def submit(fn: Any, name: str, *args: Any) -> None:
        submitted.append(name)

    daemon._changed("web", ResourceKey("", "Service", "", "web"))
    clock.t += DRIFT_DELAY
    daemon._tick(submit)
    assert submitted == ["web"] and checks == []
    # Its interval (the reconcile ended and set it) does look at the repository first.
    daemon._running.discard("web")
    daemon.apps["web"].next_due = clock.t
    daemon._tick(submit)
    assert submitted == ["web", "web"] and checks == ["unused"]


def test_debug_events_are_written_only_at_the_debug_level() -> None:
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, level in ((quiet, "info"), (loud, "debug")):
        log = Log("json", stream=stream, level=level)
        log("reconcile", app="web")
        log.debug("plan-change", app="web", kind="Secret", fields=[{"path": "/data/k", "after": "(sensitive value)"}])
    assert [json.loads(line)["event"] for line in quiet.getvalue().splitlines()] == ["reconcile"]
    lines = [json.loads(line) for line in loud.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["reconcile", "plan-change"]
    assert lines[1]["level"] == "debug" and lines[1]["fields"][0]["path"] == "/data/k"
    with pytest.raises(ValueError, match="log level 'trace'"):
        Log(level="trace")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_log_hides_the_credentials_of_any_url_an_event_holds(fmt: str) -> None:
    stream = io.StringIO()
    log = Log(fmt, stream)
    log("daemon-start", repo="https://deployer:s3cr3t-pw@git.example/app.git", why="fetch http://a:b@h failed")
    assert "s3cr3t-pw" not in stream.getvalue() and ":b@" not in stream.getvalue()
    assert "https://***@git.example/app.git" in stream.getvalue()
