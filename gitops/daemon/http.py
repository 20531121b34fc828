"""The daemon's HTTP listener: probes, metrics, webhooks, and the JSON API.

| route | method | what |
|---|---|---|
| ``/healthz`` | GET | 200 while the process runs |
| ``/readyz`` | GET | 200 once every app was reconciled at least once (or reported failing), else 503 |
| ``/metrics`` | GET | Prometheus text format |
| ``/api/webhook`` | POST | a signed push from a forge (see :mod:`gitops.daemon.webhook`) |
| ``/api/v1/apps`` | GET | every app's status |
| ``/api/v1/apps/{name}`` | GET | one app's status, releases and bad revisions |
| ``/api/v1/apps/{name}/sync`` | POST | reconcile now; needs ``Authorization: Bearer <token>``, off without a token |
| ``/`` | GET | the status page: every app (HTML; refreshed from ``/api/v1/apps`` by a little JS) |
| ``/apps/{name}`` | GET | one app's page: objects and health, the plan, the release history |
| ``/apps/{name}/sync``, ``/apps/{name}/rollback`` | POST | the page's write actions (see :mod:`.pages`) |
| ``/login``, ``/logout`` | GET, POST | sign in with the API token for the write actions |
| ``/static/{file}`` | GET | the page's CSS and JS |

Work per request is bounded: at most :data:`MAX_CONCURRENT` requests are served at once (the
rest get 503), a body over 1 MiB is refused before it is read, and a webhook only sets a flag
that the loop reads: many pushes at once coalesce into one fetch. No body, header value or
secret is ever logged.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from gitops import engine
from gitops.clock import SYSTEM, Clock
from gitops.daemon import pages, webhook
from gitops.daemon.log import Log
from gitops.daemon.loop import Daemon
from gitops.daemon.metrics import Metrics
from gitops.model import Health, ResourceKey
from gitops.model.releases import AppState
from gitops.views import pages as views

MAX_CONCURRENT = 16
READ_TIMEOUT_SECONDS = 10


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a burst of webhooks waits in the backlog instead of being reset

    def __init__(self, address: tuple[str, int], daemon: Daemon, *, branch_ref: str | None,
                 webhook_secret: bytes, api_token: str, log: Log, metrics: Metrics, repo: str = "",
                 clock: Clock = SYSTEM) -> None:
        self.gitops = daemon
        self.repo = engine.repository_identity(repo) if repo else ""  # shown and linked: no credentials
        self.clock = clock
        self.live = pages.Live()
        self.static = pages.static_files()
        self.branch_ref = branch_ref  # refs/heads/<branch> a push must name; None: any branch
        self.webhook_secret = webhook_secret
        self.api_token = api_token
        self.log = log
        self.metrics = metrics
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        super().__init__(address, Handler)

    @property
    def api_token(self) -> str:
        return self._api_token

    @api_token.setter
    def api_token(self, token: str) -> None:
        """The bearer token of the write endpoints; a new one ends every page session."""
        self._api_token = token
        self.sessions = pages.Sessions(token, self.clock)

    def server_close(self) -> None:
        self.live.close()
        super().server_close()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    _count: Callable[[int], None] | None = None  # the request's metric, counted as it is answered
    timeout = READ_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        return None  # requests are counted in metrics; bodies and headers are never logged

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        if self._count is not None:
            self._count(status)
            self._count = None
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, sort_keys=True).encode() + b"\n", headers=headers)

    def _html(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._send(status, body, "text/html; charset=utf-8", {
            "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                       "base-uri 'none'",
            "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", **(headers or {})})

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message, "status": status}, headers)

    def _body(self) -> bytes | None:
        """The request body, or None after answering 411/413 (the body is never read past the limit)."""
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return None
        try:
            length = int(length_header)
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
            return None
        if length > webhook.MAX_BODY_BYTES:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {webhook.MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        if not self.server.slots.acquire(blocking=False):
            self.close_connection = True
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "busy", {"Retry-After": "1"})
            return
        try:
            self._route(method, self.path.split("?", 1)[0])
        finally:
            self.server.slots.release()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- routes --------------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> None:
        daemon = self.server.gitops
        routes: dict[str, tuple[str, Any]] = {
            "/healthz": ("GET", lambda: self._send(200, b"ok\n", "text/plain; charset=utf-8")),
            "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", lambda: self._send(200, self.server.metrics.text(),
                                                   "text/plain; version=0.0.4; charset=utf-8")),
            "/api/webhook": ("POST", self._webhook),
            "/api/v1/apps": ("GET", lambda: self._json(200, {
                "apps": [views.api_app(a, self.server.repo) for a in daemon.snapshot()],
                "repository_error": daemon.git_error or None, "config_error": daemon.config_error or None,
                "signature_error": daemon.signature_error or None})),
            "/": ("GET", self._index),
            "/logout": ("POST", self._logout),
        }
        if path == "/login":
            self._login(method)
            return
        if path.startswith("/static/") and method == "GET" and path[len("/static/"):] in self.server.static:
            body, content_type = self.server.static[path[len("/static/"):]]
            self._send(200, body, content_type, {"Cache-Control": "public, max-age=300"})
            return
        if path in routes:
            allowed, handler = routes[path]
            if method != allowed:
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {allowed}", {"Allow": allowed})
                return
            handler()
            return
        parts = path.strip("/").split("/")
        if len(parts) in (2, 3) and parts[0] == "apps":
            name = unquote(parts[1])
            if len(parts) == 2:
                if method != "GET":
                    self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes GET", {"Allow": "GET"})
                    return
                self._app_page(name)
                return
            if parts[2] in ("sync", "rollback"):
                if method != "POST":
                    self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes POST", {"Allow": "POST"})
                    return
                self._page_write(name, parts[2])
                return
        if len(parts) == 4 and parts[:3] == ["api", "v1", "apps"]:
            if method != "GET":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes GET", {"Allow": "GET"})
                return
            detail = daemon.app_detail(parts[3])
            if detail is None:
                self._error(HTTPStatus.NOT_FOUND, f"no app {parts[3]}")
            else:
                self._json(200, views.api_app(detail, self.server.repo))
            return
        if len(parts) == 5 and parts[:3] == ["api", "v1", "apps"] and parts[4] == "sync":
            if method != "POST":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes POST", {"Allow": "POST"})
                return
            self._sync(parts[3])
            return
        self._error(HTTPStatus.NOT_FOUND, "not found")

    # -- the status pages ------------------------------------------------------------------------

    def _cookie(self) -> str:
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return ""
        morsel = jar.get(pages.SESSION_COOKIE)
        return morsel.value if morsel is not None else ""

    def _access(self) -> views.Access:
        sessions = self.server.sessions
        cookie = self._cookie()
        signed_in = sessions.valid(cookie)
        return views.Access(writes=sessions.enabled, signed_in=signed_in, csrf=sessions.csrf(cookie))

    def _bearer_ok(self) -> bool:
        token = self.server.api_token
        given = self.headers.get("Authorization", "")
        return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _form(self) -> dict[str, str] | None:
        body = self._body()
        if body is None:
            return None
        try:
            fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
        except (UnicodeError, ValueError):
            self._error(HTTPStatus.BAD_REQUEST, "bad form")
            return None
        return {k: v[0] for k, v in fields.items()}

    def _same_origin(self) -> bool:
        return pages.same_origin(self.headers.get("Host", ""), self.headers.get("Origin"), self.headers.get("Referer"))

    def _index(self) -> None:
        daemon = self.server.gitops
        apps = [views.api_app(a, self.server.repo) for a in daemon.snapshot()]
        self._html(200, views.index_html(apps, repo=self.server.repo, access=self._access(),
                                         repository_error=daemon.git_error or None,
                                         config_error=daemon.config_error or None,
                                         signature_error=daemon.signature_error or None))

    def _app_page(self, name: str) -> None:
        daemon = self.server.gitops
        seen = daemon.view(name)
        if seen is None:
            self._html(404, views.message_html("Not found", f"no app {name}", repo=self.server.repo))
            return
        runtime, ws = seen
        status = runtime.status
        plan = status.plan if status is not None else None
        objects: dict[ResourceKey, Health] = dict(status.objects) if status is not None else {}
        history: AppState | None = None
        notes: list[str] = []
        if ws is not None and name in {a.name for a in ws.settings.apps}:
            keys = list(objects) or pages.object_keys(plan)
            workspace = ws

            def read() -> tuple[AppState, dict[ResourceKey, Health]]:
                backend = engine.backend_for(workspace, workspace.settings.app(name), daemon.session)
                return backend.load_state(), (backend.health(keys) if keys else {})

            live, why = self.server.live.run(read)
            if live is not None:
                history, objects = live[0], live[1] or objects
            else:
                notes.append(f"live state not read ({why}): objects as of the last reconcile"
                             f" ({runtime.last_reconcile or 'never'})")
        if plan is not None:
            notes.append(f"plan of the last reconcile ({runtime.last_reconcile}), at revision {plan.revision[:12]}")
        detail = views.api_app(runtime.to_json(daemon.clock), self.server.repo)
        self._html(200, views.app_html(detail, repo=self.server.repo, access=self._access(), objects=objects,
                                       plan=plan, history=history, notes=notes))

    def _refuse_page(self, status: int, message: str, back: str = "/") -> None:
        self._html(status, views.message_html("Refused", message, repo=self.server.repo, back=back))

    def _page_write(self, name: str, action: str) -> None:
        sessions = self.server.sessions
        back = f"/apps/{quote(name, safe='')}"
        if not sessions.enabled:
            self._refuse_page(HTTPStatus.FORBIDDEN, "write actions are off: start the daemon with GITOPS_API_TOKEN set",
                              back)
            return
        form = self._form()
        if form is None:
            return
        if not self._bearer_ok():
            cookie = self._cookie()
            if not sessions.valid(cookie):
                self._refuse_page(HTTPStatus.UNAUTHORIZED, "sign in first (your session is missing or expired)", back)
                return
            if not self._same_origin() or not sessions.check_csrf(cookie, form.get("csrf", "")):
                self._refuse_page(HTTPStatus.FORBIDDEN, "refused: the request did not come from this page "
                                  "(CSRF token or origin mismatch); reload the page and try again", back)
                return
        daemon = self.server.gitops
        if daemon.view(name) is None:
            self._refuse_page(HTTPStatus.NOT_FOUND, f"no app {name}")
            return
        if action == "sync":
            daemon.trigger(name)
            self.server.log("manual-sync", app=name, via="page")
        else:
            revision = form.get("revision", "")
            if not revision or len(revision) > 200:
                self._refuse_page(HTTPStatus.BAD_REQUEST, "which revision? (the form names one)", back)
                return
            daemon.request_rollback(name, revision)
            self.server.log("manual-rollback-requested", app=name, to=revision)
        self._send(303, b"", "text/plain; charset=utf-8", {"Location": back})

    def _login(self, method: str) -> None:
        sessions = self.server.sessions
        if not sessions.enabled:
            self._refuse_page(HTTPStatus.NOT_FOUND, "write actions are off: start the daemon with GITOPS_API_TOKEN set")
            return
        if method == "GET":
            query = parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
            self._html(200, views.login_html(repo=self.server.repo, next_path=_local_path(query.get("next", ["/"])[0])))
            return
        if method != "POST":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes GET or POST", {"Allow": "GET, POST"})
            return
        form = self._form()
        if form is None:
            return
        next_path = _local_path(form.get("next", "/"))
        if not self._same_origin():
            self._refuse_page(HTTPStatus.FORBIDDEN, "refused: the sign-in did not come from this daemon's page")
            return
        if not sessions.check_token(form.get("token", "")):
            self.server.log("sign-in-refused")
            self._html(401, views.login_html(repo=self.server.repo, next_path=next_path, message="wrong token"))
            return
        secure = "; Secure" if self.headers.get("X-Forwarded-Proto", "") == "https" else ""
        cookie = (f"{pages.SESSION_COOKIE}={sessions.new()}; Path=/; HttpOnly; SameSite=Strict; "
                  f"Max-Age={pages.SESSION_SECONDS}{secure}")
        self.server.log("signed-in")
        self._send(303, b"", "text/plain; charset=utf-8", {"Location": next_path, "Set-Cookie": cookie})

    def _logout(self) -> None:
        form = self._form()
        if form is None:
            return
        cookie = self._cookie()
        if self._same_origin() and self.server.sessions.check_csrf(cookie, form.get("csrf", "")):
            gone = f"{pages.SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
            self._send(303, b"", "text/plain; charset=utf-8", {"Location": "/", "Set-Cookie": gone})
            return
        self._refuse_page(HTTPStatus.FORBIDDEN, "refused: the request did not come from this page")

    def _readyz(self) -> None:
        if self.server.gitops.ready():
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._send(503, b"not every app has been reconciled yet\n", "text/plain; charset=utf-8")

    def _count_as_webhook(self, provider: str) -> None:
        """This request's answer is counted as a webhook of ``provider``, when it is sent and before
        its client can read it (a client that reads /metrics after the answer sees the count)."""
        self._count = lambda status: self.server.metrics.webhooks.labels(provider, str(int(status))).inc()

    def _webhook(self) -> None:
        self._count_as_webhook("unknown")
        try:
            body = self._body()
            if body is None:
                return
            try:
                event = webhook.parse(dict(self.headers.items()), body, self.server.webhook_secret)
            except webhook.WebhookRejected as rejected:
                self._count_as_webhook(rejected.provider)
                self._error(rejected.status, rejected.reason)
                return
            self._count_as_webhook(event.provider)
            if event.kind == "ping":
                self._json(200, {"ok": True, "event": "ping"})
                return
            wanted = self.server.branch_ref
            if event.kind != "push" or not event.ref.startswith("refs/heads/") or (wanted and event.ref != wanted):
                self._json(202, {"ok": True, "triggered": False, "reason": "not a push to the watched branch"})
                return
            self.server.gitops.trigger()
            self.server.log("webhook", provider=event.provider, ref=event.ref, revision=event.revision or None)
            self._json(200, {"ok": True, "triggered": True})
        finally:
            if self._count is not None:  # it raised before answering (the connection is dropped): a 500
                self._count(500)
                self._count = None

    def _sync(self, name: str) -> None:
        token = self.server.api_token
        if not token:
            self._error(HTTPStatus.FORBIDDEN, "write endpoints are off: start the daemon with GITOPS_API_TOKEN set")
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self._error(HTTPStatus.UNAUTHORIZED, "bearer token required", {"WWW-Authenticate": "Bearer"})
            return
        body = self._body()
        if body is None:
            return
        if self.server.gitops.app_detail(name) is None:
            self._error(HTTPStatus.NOT_FOUND, f"no app {name}")
            return
        self.server.gitops.trigger(name)
        self.server.log("manual-sync", app=name)
        self._json(202, {"ok": True, "app": name, "queued": True})


def serve(server: Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
    thread.start()
    return thread


def _local_path(path: str) -> str:
    """Where to go after signing in: a path of this daemon only (never another site)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"
