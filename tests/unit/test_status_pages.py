"""The status pages without a target: the HTML views (escaping, forge links, the masked plan,
what a viewer may do) and the listener's page routes (sign-in, CSRF and Origin checks), served for
real on loopback in front of a stand-in for the reconcile loop."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from gitops import diff
from gitops.daemon.http import Server, serve
from gitops.daemon.log import Log
from gitops.daemon.metrics import Metrics
from gitops.daemon.pages import Sessions, same_origin
from gitops.model import Failure, Health, HealthStatus, ResourceKey
from gitops.model.plans import MASK, Action, AppPlan, Change
from gitops.model.releases import AppState, Outcome, Release
from gitops.views import pages
from gitops.views.plans import app_plan_text

SHA = "0123456789abcdef0123456789abcdef01234567"
SECRET_VALUE = "hunter2-do-not-show"


@pytest.mark.parametrize(("repo", "url"), [
    ("https://github.com/acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
    ("git@github.com:acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
    ("https://gitlab.com/acme/team/shop", f"https://gitlab.com/acme/team/shop/-/commit/{SHA}"),
    ("ssh://git@gitlab.example.org:2222/acme/shop.git", f"https://gitlab.example.org/acme/shop/-/commit/{SHA}"),
    ("https://codeberg.org/acme/shop.git", f"https://codeberg.org/acme/shop/commit/{SHA}"),
    ("https://gitea.example.org/acme/shop", f"https://gitea.example.org/acme/shop/commit/{SHA}"),
    ("git@bitbucket.org:acme/shop.git", f"https://bitbucket.org/acme/shop/commits/{SHA}"),
    ("https://github.example.com/acme/shop", f"https://github.example.com/acme/shop/commit/{SHA}"),
    ("/srv/git/shop", None),
    ("file:///srv/git/shop", None),
    ("https://git.example.org/acme/shop.git", None),
    ("https://github.com/acme", None),
])
def test_commit_links_on_known_forges_only(repo: str, url: str | None) -> None:
    assert pages.commit_url(repo, SHA) == url


def test_a_revision_that_is_not_a_commit_gets_no_link() -> None:
    assert pages.commit_url("https://github.com/a/b", "local-0123abcd") is None
    assert pages.commit_url("https://github.com/a/b", f"{SHA}+dirty-abc").endswith(f"/commit/{SHA}")  # type: ignore[union-attr]


def app_json(**changes: Any) -> dict[str, Any]:
    base = {"app": "web", "backend": "kubernetes", "target": "https://kube:6443 ns/web", "sync": "Synced",
            "health": "Healthy", "revision": SHA, "applied": SHA, "result": "applied", "message": "",
            "last_reconcile": "2026-12-02T03:00:00Z", "next_in_seconds": 42.0, "held_revision": "", "problems": []}
    return {**base, **changes}


def test_the_list_escapes_what_users_wrote_and_shows_the_error_line() -> None:
    evil = "<script>alert(1)</script>"
    apps = [pages.api_app(app_json(), "https://github.com/acme/shop"),
            pages.api_app(app_json(app=f"x{evil}", result="failed", message=f"boom {evil}", health="Degraded",
                                   sync="OutOfSync"), "https://github.com/acme/shop")]
    html = pages.index_html(apps, repo="https://github.com/acme/shop", access=pages.Access()).decode()
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'href="https://github.com/acme/shop/commit/{SHA}"' in html and f"<code>{SHA[:12]}</code>" in html
    assert "boom &lt;script&gt;" in html  # the failed reconcile's message, on its own line
    assert "in 42 s" in html and 'datetime="2026-12-02T03:00:00Z"' in html
    assert re.sub(r"<[^>]+>", "", html.split('class="summary">')[1].split("</p>")[0]) == (
        "2 app(s): 1 synced, 1 out of sync, 1 healthy")
    assert "<form" not in html and "sign in" not in html  # no token: read-only, no write action offered
    assert apps[1]["notes"] == [f"boom {evil}"] and apps[0]["notes"] == []


def secret_plan() -> AppPlan:
    key = ResourceKey("", "Secret", "web", "web-secret")
    fields = diff.fields({"data": {"token": "b2xk"}, "metadata": {"labels": {"a": "1"}}},
                         {"data": {"token": SECRET_VALUE}, "metadata": {"labels": {"a": "2"}}},
                         diff.under("/data"))
    deploy = ResourceKey("apps", "Deployment", "web", "web")
    return AppPlan("web", "kubernetes", "kube ns/web", SHA, "d", "b", (
        Change(key, Action.UPDATE, fields=tuple(fields)), Change(deploy, Action.NOOP)))


def test_the_app_page_shows_the_plan_as_gitops_plan_does_with_secrets_masked() -> None:
    plan = secret_plan()
    objects = {ResourceKey("apps", "Deployment", "web", "web"): Health(
        HealthStatus.DEGRADED, "1 of 2 replicas unavailable",
        (Failure(ResourceKey("", "Pod", "web", "web-1"), reason="ImagePullBackOff", message="no <image>"),))}
    state = AppState("web", (
        Release(1, "a" * 40, "d1", Outcome.SUCCEEDED, "2026-12-01T10:00:00Z", "2026-12-01T10:01:00Z",
                manifests="x"),
        Release(2, SHA, "d2", Outcome.FAILED, "2026-12-02T03:00:00Z", "2026-12-02T03:02:00Z",
                message="rollout failed: <b>ImagePullBackOff</b>"),
        Release(3, "a" * 40, "d1", Outcome.ROLLED_BACK, "2026-12-02T03:02:00Z", "2026-12-02T03:03:00Z",
                manifests="x")), bad_revisions=(SHA,))
    html = pages.app_html(app_json(applied="a" * 40), repo="/srv/git/shop", access=pages.Access(), objects=objects,
                          plan=plan, history=state).decode()
    assert SECRET_VALUE not in html and "b2xk" not in html
    assert f"~ /data/token: {MASK} changed" in html
    for line in app_plan_text(plan).splitlines():  # the one rendering of `gitops plan`, escaped
        assert pages._e(line) in html
    assert "1 of 2 replicas unavailable" in html and "ImagePullBackOff: no &lt;image&gt;" in html
    assert "<b>ImagePullBackOff</b>" not in html and "&lt;b&gt;ImagePullBackOff&lt;/b&gt;" in html
    assert f'<code title="{SHA}">{SHA[:12]}</code> <span class="badge b-degraded">bad</span>' in html
    assert "<form" not in html


def test_forms_appear_only_for_a_signed_in_viewer_and_carry_the_csrf_token() -> None:
    state = AppState("web", (
        Release(1, "a" * 40, "d1", Outcome.SUCCEEDED, "t", manifests="x"),
        Release(2, SHA, "d2", Outcome.SUCCEEDED, "t", manifests="x")))
    signed_in = pages.Access(writes=True, signed_in=True, csrf="c5rf")
    html = pages.app_html(app_json(), repo="", access=signed_in, objects={}, plan=None, history=state).decode()
    assert 'action="/apps/web/sync"' in html and 'action="/apps/web/rollback"' in html
    assert html.count('name="csrf" value="c5rf"') == 3  # sync, one roll back (not to the current), sign out
    assert f'name="revision" value="{"a" * 40}"' in html and f'name="revision" value="{SHA}"' not in html
    anonymous = pages.app_html(app_json(), repo="", access=pages.Access(writes=True), objects={}, plan=None,
                               history=state).decode()
    assert "<form" not in anonymous and 'href="/login?next=/apps/web"' in anonymous


class Clock:
    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.at = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0

    def now(self) -> Any:
        return self.at

    def wait(self, stop: Any, seconds: float) -> bool:
        return False


def test_sessions_expire_and_a_new_token_ends_them() -> None:
    from datetime import timedelta

    clock = Clock()
    sessions = Sessions("t0ken", clock)
    cookie = sessions.new()
    assert sessions.valid(cookie) and sessions.check_csrf(cookie, sessions.csrf(cookie))
    assert not sessions.check_csrf(cookie, "") and not sessions.check_csrf(cookie, "x" * 40)
    assert not sessions.valid(cookie.replace(".", ".0", 1)) and not sessions.valid("junk")
    assert not Sessions("other", clock).valid(cookie) and not Sessions("", clock).valid(cookie)
    clock.at += timedelta(hours=13)
    assert not sessions.valid(cookie) and sessions.csrf(cookie) == ""


def test_same_origin() -> None:
    assert same_origin("127.0.0.1:8080", "http://127.0.0.1:8080", None)
    assert same_origin("127.0.0.1:8080", None, "http://127.0.0.1:8080/apps/web")
    assert not same_origin("127.0.0.1:8080", "https://evil.example", "http://127.0.0.1:8080/")
    assert not same_origin("127.0.0.1:8080", None, None) and not same_origin("127.0.0.1:8080", "null", None)


# -- the listener ---------------------------------------------------------------------------------


@dataclass
class Runtime:
    name: str
    status: Any = None
    last_reconcile: str = ""
    problems: list[str] = field(default_factory=list)

    def to_json(self, _clock: Any) -> dict[str, Any]:
        return app_json(app=self.name)


class StandIn:
    git_error = ""
    config_error = ""
    signature_error = ""
    clock = Clock()

    def __init__(self) -> None:
        self.triggered: list[str | None] = []
        self.rollbacks: list[tuple[str, str]] = []

    def trigger(self, app: str | None = None) -> None:
        self.triggered.append(app)

    def request_rollback(self, app: str, revision: str) -> None:
        self.rollbacks.append((app, revision))

    def snapshot(self) -> list[dict[str, Any]]:
        return [app_json(app="web"), app_json(app="<api>")]

    def view(self, name: str) -> tuple[Runtime, None] | None:
        return (Runtime(name), None) if name in ("web", "<api>") else None


@pytest.fixture
def listener() -> Iterator[tuple[Server, StandIn]]:
    stand_in = StandIn()
    server = Server(("127.0.0.1", 0), stand_in, branch_ref=None, webhook_secret=b"", api_token="t0ken",  # type: ignore[arg-type]
                    log=Log("json", stream=open("/dev/null", "w")), metrics=Metrics(),  # noqa: SIM115
                    repo="https://user:pa55@github.com/acme/shop.git")
    thread = serve(server)
    yield server, stand_in
    server.shutdown()
    server.server_close()
    thread.join(5)


def call(server: Server, method: str, path: str, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    body = urlencode(form).encode() if form is not None else None
    sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})} if body is not None else headers
    conn.request(method, path, body=body, headers=sent or {})
    response = conn.getresponse()
    data = response.read().decode()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def origin(server: Server) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{server.server_address[1]}"}


def sign_in(server: Server) -> tuple[str, str]:
    status, headers, _ = call(server, "POST", "/login", {"token": "t0ken", "next": "/apps/web"}, origin(server))
    assert status == 303 and headers["location"] == "/apps/web"
    cookie = headers["set-cookie"].split(";", 1)[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    _, _, page = call(server, "GET", "/apps/web", headers={"Cookie": cookie})
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    return cookie, csrf.group(1)


def test_pages_static_files_and_their_headers(listener: tuple[Server, StandIn]) -> None:
    server, _ = listener
    status, headers, page = call(server, "GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    assert "pa55" not in page and "https://github.com/acme/shop.git" in page  # credentials never shown
    assert "&lt;api&gt;" in page and 'href="/apps/%3Capi%3E"' in page
    assert call(server, "GET", "/apps/%3Capi%3E")[0] == 200
    assert call(server, "GET", "/apps/nope")[0] == 404
    for name in ("status.css", "status.js"):
        status, headers, body = call(server, "GET", f"/static/{name}")
        assert status == 200 and body and headers["content-type"].startswith(("text/css", "text/javascript"))
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        conn.request("GET", f"/static/{name}")
        sent = [v for k, v in conn.getresponse().getheaders() if k.lower() == "cache-control"]
        conn.close()
        assert sent == ["public, max-age=300"]
    assert call(server, "GET", "/static/../http.py")[0] == 404
    assert call(server, "POST", "/", {})[0] == 405


def test_write_actions_need_a_session_csrf_token_and_origin(listener: tuple[Server, StandIn]) -> None:
    server, stand_in = listener
    assert call(server, "POST", "/login", {"token": "wrong"}, origin(server))[0] == 401
    assert call(server, "POST", "/login", {"token": "t0ken"}, {"Origin": "https://evil.example"})[0] == 403
    assert call(server, "POST", "/apps/web/sync", {})[0] == 401  # no session
    cookie, csrf = sign_in(server)
    assert call(server, "POST", "/apps/web/sync", {"csrf": csrf}, {"Cookie": cookie})[0] == 403  # no Origin
    assert call(server, "POST", "/apps/web/sync", {"csrf": "0" * 40}, {"Cookie": cookie, **origin(server)})[0] == 403
    assert call(server, "POST", "/apps/web/sync", {"csrf": csrf},
                {"Cookie": cookie, "Origin": "https://evil.example"})[0] == 403
    assert call(server, "GET", "/apps/web/sync")[0] == 405
    assert stand_in.triggered == [] and stand_in.rollbacks == []

    status, headers, _ = call(server, "POST", "/apps/web/sync", {"csrf": csrf}, {"Cookie": cookie, **origin(server)})
    assert status == 303 and headers["location"] == "/apps/web" and stand_in.triggered == ["web"]
    assert call(server, "POST", "/apps/web/rollback", {"csrf": csrf, "revision": "a" * 40},
                {"Cookie": cookie, **origin(server)})[0] == 303
    assert stand_in.rollbacks == [("web", "a" * 40)]
    assert call(server, "POST", "/apps/nope/sync", {"csrf": csrf}, {"Cookie": cookie, **origin(server)})[0] == 404
    # The bearer token alone works too (a script; a browser cannot forge the header).
    assert call(server, "POST", "/apps/web/sync", {}, {"Authorization": "Bearer t0ken"})[0] == 303

    server.api_token = ""  # no token: every write is off and no page offers one; old sessions end
    assert call(server, "POST", "/apps/web/sync", {"csrf": csrf}, {"Cookie": cookie, **origin(server)})[0] == 403
    assert call(server, "GET", "/login")[0] == 404
    assert "<form" not in call(server, "GET", "/apps/web", headers={"Cookie": cookie})[2]
    assert stand_in.triggered == ["web", "web"]


def test_a_failing_rollout_is_reported_degraded_until_its_reconcile_ends() -> None:
    from gitops.daemon.loop import AppRuntime

    runtime = AppRuntime("web", health="Healthy", result="applied", message="",
                         failing="rollout of revision 0123456789ab failed: CrashLoopBackOff")
    shown = runtime.to_json(Clock())
    assert (shown["health"], shown["result"]) == ("Degraded", "failed")
    assert pages.api_app(shown, "")["notes"] == ["rollout of revision 0123456789ab failed: CrashLoopBackOff"]
    runtime.failing = ""
    assert (runtime.to_json(Clock())["health"], runtime.to_json(Clock())["result"]) == ("Healthy", "applied")
