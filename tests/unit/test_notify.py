"""Notifications delivered to a real HTTP receiver on loopback: the payload each provider documents
(a signed webhook, a Slack message, GitHub and GitLab commit statuses), retries with backoff on a
clock of the test's own, drops counted, secrets masked in every log line."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from receiver import Receiver, receiving
from testsupport import wait_for

from gitops import config
from gitops.daemon.log import Log
from gitops.daemon.metrics import Metrics
from gitops.daemon.notify import SIGNATURE_HEADER, Event, Notifier, Secrets, Urllib3Send
from gitops.model.plans import MASK

SHA = "0123456789abcdef0123456789abcdef01234567"
HOOK_KEY = "hmac-key-that-must-not-leak"
TOKEN = "ghp_token-that-must-not-leak"


class FakeClock:
    """Waits return at once and move the clock on; the test reads what was waited."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.waits: list[float] = []
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        with self.lock:
            return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        with self.lock:
            self.waits.append(round(seconds, 3))
            self.t += seconds
        return stop.is_set()


def settings(providers: str, subscriptions: str, page_url: str = "https://gitops.example.com") -> config.Notifications:
    text = (f"apps:\n  - {{name: web, backend: kubernetes, paths: k8s}}\n  - {{name: api, backend: kubernetes, "
            f"paths: api}}\nnotifications:\n  page_url: {page_url}\n  providers:\n{providers}\n"
            f"  subscriptions:\n{subscriptions}\n")
    return config.parse(text).notifications


def event(trigger: str = "deployed", app: str = "web", **fields: str) -> Event:
    return Event(trigger, app, SHA, fields.get("result", "applied"), fields.get("message", ""), "Synced",
                 fields.get("health", "Healthy"), "kubernetes", "ctx/web", "2026-01-02T03:04:05Z")


class Rig:
    def __init__(self, receiver: Receiver, **options: float) -> None:
        self.receiver = receiver
        self.clock = FakeClock()
        self.out = io.StringIO()
        self.metrics = Metrics()
        env = {"GITOPS_NOTIFY_HOOK_URL": receiver.url + "/hook/url-secret-path", "GITOPS_NOTIFY_KEY": HOOK_KEY,
               "GITOPS_NOTIFY_TOKEN": TOKEN, "HOME": "/root"}
        self.notifier = Notifier(log=Log("json", self.out), metrics=self.metrics, clock=self.clock,
                                 secrets=Secrets(env), send=Urllib3Send(read_timeout=options.pop("timeout", 5.0)),
                                 **options)  # type: ignore[arg-type]

    def log(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def metric(self, text: str) -> float:
        for line in self.metrics.text().decode().splitlines():
            if line.startswith(text + " "):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture
def rig() -> Iterator[Rig]:
    with receiving() as receiver:
        rig = Rig(receiver)
        rig.notifier.start()
        yield rig
        rig.notifier.close()


def test_webhook_posts_the_event_as_json_signed_with_hmac_sha256_and_custom_headers(rig: Rig) -> None:
    rig.notifier.configure(settings(
        f"    - {{name: hook, type: webhook, url: '{rig.receiver.url}/hook', secret: {{env: GITOPS_NOTIFY_KEY}},\n"
        "       headers: {X-Team: platform, Authorization: {env: GITOPS_NOTIFY_TOKEN}}}",
        "    - {provider: hook}"))
    rig.notifier.emit(event("deployed", message="2 change(s)"))
    [got] = wait_for("the webhook", lambda: rig.receiver.requests("/hook"), timeout=10)
    assert got.headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(HOOK_KEY.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers[SIGNATURE_HEADER], expected)
    assert got.headers["X-Team"] == "platform" and got.headers["Authorization"] == TOKEN
    assert got.headers["X-Gitops-Event"] == "deployed" and got.headers["X-Gitops-Delivery"]
    assert got.json() == {"trigger": "deployed", "app": "web", "revision": SHA, "result": "applied",
                          "message": "2 change(s)", "sync": "Synced", "health": "Healthy", "backend": "kubernetes",
                          "target": "ctx/web", "time": "2026-01-02T03:04:05Z",
                          "link": "https://gitops.example.com/apps/web"}
    wait_for("counted", lambda: rig.metric('gitops_notification_delivered_total{provider="hook",trigger="deployed"}'))


def test_slack_gets_text_and_blocks_with_app_revision_result_and_link(rig: Rig) -> None:
    rig.notifier.configure(settings("    - {name: chat, type: slack, url: {env: GITOPS_NOTIFY_HOOK_URL}}",
                                    "    - {provider: chat, triggers: [rolled-back]}"))
    rig.notifier.emit(event("deployed"))  # not subscribed
    rig.notifier.emit(event("rolled-back", result="rolled-back", health="Healthy", message="web: <crash> & burn"))
    [got] = wait_for("the slack message", lambda: rig.receiver.requests("/hook/"), timeout=10)
    body = got.json()
    assert body["text"] == f"web rolled back at {SHA[:12]}"
    section, fields, context, link = body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "rolled back" in section["text"]["text"]
    texts = [f["text"] for f in fields["fields"]]
    assert texts == ["*App*\nweb", f"*Revision*\n`{SHA[:12]}`", "*Result*\nrolled-back", "*Health*\nHealthy"]
    assert context["elements"][0]["text"] == "web: &lt;crash&gt; &amp; burn"  # mrkdwn escaped
    assert link["text"]["text"] == "<https://gitops.example.com/apps/web|Open web>"
    assert len(rig.receiver.requests()) == 1


def test_github_commit_status_pending_success_failure_on_the_commit_with_a_configurable_api(rig: Rig) -> None:
    rig.notifier.configure(settings(
        f"    - {{name: gh, type: github, api_url: '{rig.receiver.url}/api/v3', repository: org/repo,\n"
        "       token: {env: GITOPS_NOTIFY_TOKEN}}",
        "    - {provider: gh}"))
    for trigger in ("sync-started", "deployed", "rolled-back", "drift-detected"):
        rig.notifier.emit(event(trigger))
    got = wait_for("three statuses", lambda: len(rig.receiver.requests()) >= 3 and rig.receiver.requests(),
                   timeout=10)
    assert {r.path for r in got} == {f"/api/v3/repos/org/repo/statuses/{SHA}"}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in got)
    assert got[0].headers["Accept"] == "application/vnd.github+json"
    bodies = [r.json() for r in got]
    assert [b["state"] for b in bodies] == ["pending", "success", "failure"]  # drift is no commit status
    assert set(bodies[0]) == {"state", "target_url", "description", "context"}
    assert bodies[1]["context"] == "gitops/web" and bodies[1]["target_url"] == "https://gitops.example.com/apps/web"
    assert bodies[1]["description"] == f"web deployed at {SHA[:12]}"


def test_gitlab_commit_status_on_a_self_hosted_gitlab(rig: Rig) -> None:
    rig.notifier.configure(settings(
        f"    - {{name: gl, type: gitlab, api_url: '{rig.receiver.url}/api/v4', repository: group/sub/project,\n"
        "       token: {env: GITOPS_NOTIFY_TOKEN}, context: 'deploy/{app}'}",
        "    - {provider: gl, apps: [web]}"))
    long = "x" * 500
    for trigger in ("sync-started", "deployed", "sync-failed"):
        rig.notifier.emit(event(trigger, message=long if trigger == "sync-failed" else ""))
    rig.notifier.emit(event("deployed", app="api"))  # not subscribed
    got = wait_for("three statuses", lambda: len(rig.receiver.requests()) >= 3 and rig.receiver.requests(),
                   timeout=10)
    assert {r.path for r in got} == {f"/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}"}
    assert all(r.headers["PRIVATE-TOKEN"] == TOKEN for r in got)
    bodies = [r.json() for r in got]
    assert [b["state"] for b in bodies] == ["running", "success", "failed"]
    assert set(bodies[2]) == {"state", "name", "target_url", "description"} and bodies[2]["name"] == "deploy/web"
    assert len(bodies[2]["description"]) <= 140
    assert len(rig.receiver.requests()) == 3


def test_a_failing_receiver_is_retried_with_doubling_backoff_then_delivered() -> None:
    with receiving() as receiver:
        rig = Rig(receiver, backoff_first=2.0)
        receiver.statuses = [500, 503, 429]
        rig.notifier.configure(settings(f"    - {{name: hook, type: webhook, url: '{receiver.url}/h'}}",
                                        "    - {provider: hook}"))
        rig.notifier.start()
        rig.notifier.emit(event())
        wait_for("delivered", lambda: rig.metric('gitops_notification_delivered_total{provider="hook",'
                                                 'trigger="deployed"}'), timeout=10)
        rig.notifier.close()
    assert len(receiver.requests()) == 4
    assert len({r.headers["X-Gitops-Delivery"] for r in receiver.requests()}) == 1  # one delivery, retried
    assert rig.clock.waits == [2.0, 4.0, 8.0]
    assert rig.metric('gitops_notification_failed_attempts_total{provider="hook"}') == 3
    assert [e["attempt"] for e in rig.log() if e["event"] == "notify-retry"] == [1, 2, 3]


def test_a_receiver_that_keeps_failing_is_dropped_and_counted_and_a_4xx_is_not_retried() -> None:
    with receiving() as receiver:
        rig = Rig(receiver, attempts=3)
        receiver.status = 500
        rig.notifier.configure(settings(
            f"    - {{name: down, type: webhook, url: '{receiver.url}/down'}}\n"
            f"    - {{name: gone, type: github, api_url: '{receiver.url}/gh', repository: o/r,"
            " token: {env: GITOPS_NOTIFY_TOKEN}}",
            "    - {provider: down}\n    - {provider: gone}"))
        rig.notifier.start()
        rig.notifier.emit(event())
        wait_for("both dropped", lambda: all(rig.metric(f'gitops_notification_dropped_total{{provider="{p}",'
                                                        'reason="retries-exhausted"}') for p in ("down", "gone")),
                 timeout=10)
        receiver.status = 404
        rig.notifier.emit(event("sync-failed"))
        wait_for("rejected", lambda: rig.metric('gitops_notification_dropped_total{provider="gone",'
                                                'reason="rejected"}'), timeout=10)
        rig.notifier.close()
    assert [r.json()["trigger"] for r in receiver.requests("/down")] == ["deployed"] * 3 + ["sync-failed"]
    gone = receiver.requests("/gh")
    assert [r.json()["state"] for r in gone] == ["success", "success", "success", "failure"]  # 500 x3, then 404 once
    dropped = [e for e in rig.log() if e["event"] == "notify-dropped"]
    assert sorted((e["provider"], e["reason"]) for e in dropped) == [
        ("down", "rejected"), ("down", "retries-exhausted"), ("gone", "rejected"), ("gone", "retries-exhausted")]


def test_emit_never_waits_for_a_hanging_receiver_and_a_full_queue_drops_and_counts() -> None:
    with receiving() as receiver:
        receiver.hang = True
        rig = Rig(receiver, capacity=5, timeout=30.0, grace=0.0)
        rig.notifier.configure(settings(f"    - {{name: slow, type: webhook, url: '{receiver.url}/slow'}}",
                                        "    - {provider: slow}"))
        rig.notifier.start()
        rig.notifier.emit(event())
        wait_for("the first delivery held by the receiver", lambda: receiver.in_flight == 1, timeout=10, poll=0.01)
        for _ in range(10):
            rig.notifier.emit(event("sync-failed"))  # returns while the delivery thread is stuck
        assert receiver.in_flight == 1 and rig.notifier.pending() == 5
        assert rig.metric('gitops_notification_dropped_total{provider="slow",reason="queue-full"}') == 5
        assert rig.metric("gitops_notification_queue") == 5
        receiver.release.set()
        wait_for("the queue drained", lambda: len(receiver.requests()) == 6, timeout=10)
        rig.notifier.close()


def test_secrets_never_appear_in_log_lines(tmp_path: Path) -> None:
    with receiving() as receiver:
        closed = f"http://127.0.0.1:{receiver.server_address[1]}"
    # The receiver is closed: every attempt fails with urllib3's own error text, which names the URL.
    (tmp_path / "slack-url").write_text(closed + "/services/T000/B000/slack-secret-part\n")
    out = io.StringIO()
    metrics = Metrics()
    clock = FakeClock()
    notifier = Notifier(log=Log("text", out), metrics=metrics, clock=clock, attempts=2,
                        secrets=Secrets({"GITOPS_NOTIFY_KEY": HOOK_KEY, "GITOPS_NOTIFY_TOKEN": TOKEN,
                                         "GITOPS_NOTIFY_URL": closed + "/hook/url-secret-path"}, tmp_path))
    problems = notifier.configure(settings(
        "    - {name: hook, type: webhook, url: {env: GITOPS_NOTIFY_URL}, secret: {env: GITOPS_NOTIFY_KEY},\n"
        "       headers: {Authorization: {env: GITOPS_NOTIFY_TOKEN}}}\n"
        "    - {name: chat, type: slack, url: {file: slack-url}}\n"
        f"    - {{name: gh, type: github, api_url: '{closed}', repository: o/r, token: {{env: GITOPS_NOTIFY_TOKEN}}}}\n"
        "    - {name: missing, type: slack, url: {env: GITOPS_NOTIFY_UNSET}}",
        "    - {provider: hook}\n    - {provider: chat}\n    - {provider: gh}\n    - {provider: missing}"))
    assert problems == ["notifications provider 'missing' url: environment variable GITOPS_NOTIFY_UNSET is not set"]
    notifier.start()
    notifier.emit(event("deployed"))
    wait_for("all dropped", lambda: sum(
        metrics.notify_dropped.labels(p, "retries-exhausted")._value.get() for p in ("hook", "chat", "gh")) == 3,
        timeout=20)
    notifier.close()
    text = out.getvalue()
    assert "notify-retry" in text and "notify-dropped" in text and MASK in text
    for secret in ("url-secret-path", "slack-secret-part", "T000", HOOK_KEY, TOKEN):
        assert secret not in text, f"{secret} leaked into: {text}"
    assert "http://127.0.0.1" in text  # where it went is still said (scheme and host)


def test_a_secret_file_needs_the_secrets_directory_and_env_names_need_the_prefix() -> None:
    notifier = Notifier(log=Log("json", io.StringIO()), secrets=Secrets({"GITOPS_NOTIFY_X": "x"}))
    problems = notifier.configure(settings("    - {name: chat, type: slack, url: {file: slack-url}}",
                                           "    - {provider: chat}"))
    assert problems == ["notifications provider 'chat' url: file 'slack-url' named, but the daemon has no "
                        "--notify-secrets directory"]
    problems = notifier.configure(settings("    - {name: chat, type: slack, url: {env: GITOPS_NOTIFY_X}}",
                                           "    - {provider: chat}"))
    assert problems == ["notifications provider 'chat' url: $GITOPS_NOTIFY_X does not hold an http(s) URL"]
    assert Secrets({"HOME": "/root", "GITOPS_API_TOKEN": "t", "GITOPS_NOTIFY_X": "x"}).env == {"GITOPS_NOTIFY_X": "x"}
    with pytest.raises(config.ConfigError) as caught:
        settings("    - {name: chat, type: slack, url: {env: GITOPS_API_TOKEN}}", "    - {provider: chat}")
    [problem] = caught.value.diagnostics
    assert problem.message.startswith("notifications.providers[0].url.env: 'GITOPS_API_TOKEN' cannot be read")
    assert problem.line == 7


@pytest.mark.parametrize(
    ("providers", "subscriptions", "message", "line"),
    [
        ("    - {name: chat, type: slack, url: 'https://hooks.slack.com/services/x'}", "    - {provider: chat}",
         "notifications.providers[0].url: a Slack webhook URL is a secret", 7),
        ("    - {name: gh, type: github, repository: o/r}", "    - {provider: gh}",
         "notifications.providers[0]: 'token' is required", 7),
        ("    - {name: gh, type: github, repository: o/r, token: {env: GITOPS_NOTIFY_T}}",
         "    - {provider: gh, triggers: [drift-healed]}",
         "notifications.subscriptions[0].triggers: a github commit status has no drift-healed", 9),
        ("    - {name: h, type: webhook, url: 'http://x'}", "    - {provider: nope}",
         "notifications.subscriptions[0].provider: no provider named 'nope' (providers: h)", 9),
        ("    - {name: h, type: webhook, url: 'http://x'}", "    - {provider: h, apps: [web, nope]}",
         "notifications.subscriptions[0].apps[1]: no app named 'nope'", 9),
        ("    - {name: h, type: webhook, url: 'http://x'}", "    - {provider: h, triggers: [deploy]}",
         'notifications.subscriptions[0].triggers[0]: must be one of "sync-started", "deployed"', 9),
        ("    - {name: h, type: webhook, url: 'http://x', token: {env: GITOPS_NOTIFY_T}}", "    - {provider: h}",
         "notifications.providers[0]: unknown field 'token'", 7),
    ],
)
def test_wrong_notifications_name_the_file_and_field(providers: str, subscriptions: str, message: str,
                                                     line: int) -> None:
    with pytest.raises(config.ConfigError) as caught:
        settings(providers, subscriptions)
    [problem] = caught.value.diagnostics
    assert problem.message.startswith(message), problem.message
    assert problem.file == "gitops.yaml" and problem.line == line


# -- which triggers the reconcile loop emits, and how often (an in-memory backend) ---------------


class Recorder:
    """Stands in for the Notifier: what the loop emits."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def configure(self, _settings: config.Notifications) -> list[str]:
        return []

    def take(self) -> list[str]:
        out, self.events = [e.trigger for e in self.events], []
        return out


def test_the_loop_emits_each_trigger_once_where_its_outcome_is_known(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from fakes import FakeBackend, res

    from gitops import engine
    from gitops.daemon.loop import Daemon, Options

    fake = FakeBackend(app="web", failing_images={"crash:1"})
    images = {"a" * 40: "app:1", "b" * 40: "crash:1"}

    def render(ws: engine.Workspace, app: config.App, *_: object, **__: object) -> tuple[list[object], list[object]]:
        if ws.revision not in images:
            raise engine.ValidationFailed(app.name, [])
        return [res("Deployment", "web", image=images[ws.revision])], []

    monkeypatch.setattr(engine, "render_app", render)
    monkeypatch.setattr(engine, "backend_for", lambda *_a, **_k: fake)
    monkeypatch.setattr(engine, "revision_of", lambda ws, *_a: ws.revision)
    settings = config.parse("apps:\n  - {name: web, backend: kubernetes, paths: k8s, sync: {self_heal: true},"
                            " rollout: {timeout: 5s}}\n")
    recorder = Recorder()
    daemon = Daemon(Options(repo=str(tmp_path), leader_election="off"), log=Log("json", io.StringIO()),
                    notifier=recorder)  # type: ignore[arg-type]
    daemon.leading.set()

    def reconcile(revision: str) -> list[str]:
        ws = engine.Workspace(tmp_path, revision, settings)
        if daemon.workspace is None or daemon.workspace.revision != revision:
            daemon._adopt(ws)
        daemon._reconcile("web", ws)
        return recorder.take()

    a, b, c = "a" * 40, "b" * 40, "c" * 40
    ws = engine.Workspace(tmp_path, a, settings)
    daemon._adopt(ws)
    daemon._reconcile("web", ws)
    started, deployed = recorder.events
    assert (started.trigger, started.revision, started.app) == ("sync-started", a, "web")
    assert (deployed.trigger, deployed.revision, deployed.result, deployed.sync, deployed.health, deployed.target) == (
        "deployed", a, "applied", "Synced", "Healthy", "fake:memory")
    recorder.take()
    assert reconcile(a) == []  # synced: nothing to tell; deployed was told once for this revision
    fake.objects[res("Deployment", "web").key]["image"] = "app:2"  # a hand edit
    assert reconcile(a) == ["drift-detected", "drift-healed"]
    assert reconcile(a) == []
    fake.failing_images.add("app:1")  # the running app crashes
    assert reconcile(a) == ["health-degraded"]
    assert reconcile(a) == []  # still degraded: told once per transition
    fake.failing_images.discard("app:1")
    assert reconcile(a) == []
    assert reconcile(b) == ["sync-started", "rolled-back"]
    assert reconcile(c) == ["sync-failed"]  # does not validate: held
    assert reconcile(c) == []  # held: not reconciled again, not told again

    # A restarted daemon finds the app synced at the revision it runs: it announces nothing it did not do.
    restarted = Daemon(Options(repo=str(tmp_path), leader_election="off"), log=Log("json", io.StringIO()),
                       notifier=recorder)  # type: ignore[arg-type]
    restarted.leading.set()
    ws = engine.Workspace(tmp_path, a, settings)
    restarted._adopt(ws)
    restarted._reconcile("web", ws)
    assert restarted.apps["web"].result == "synced" and recorder.take() == []


def test_urls_in_logs_lose_credentials_queries_and_when_secret_their_path() -> None:
    from gitops.daemon.notify import shown_url

    assert shown_url("https://user:pw@hooks.example.com:8443/x/y?token=t", secret=False) == \
        "https://hooks.example.com:8443/x/y"
    assert shown_url("https://hooks.slack.com/services/T0/B0/XYZ", secret=True) == f"https://hooks.slack.com/{MASK}"
