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

Work per request is bounded: at most :data:`MAX_CONCURRENT` requests are served at once (the
rest get 503), a body over 1 MiB is refused before it is read, and a webhook only sets a flag
that the loop reads: many pushes at once coalesce into one fetch. No body, header value or
secret is ever logged.
"""

from __future__ import annotations

import hmac
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gitops.daemon import webhook
from gitops.daemon.log import Log
from gitops.daemon.loop import Daemon
from gitops.daemon.metrics import Metrics

MAX_CONCURRENT = 16
READ_TIMEOUT_SECONDS = 10


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a burst of webhooks waits in the backlog instead of being reset

    def __init__(self, address: tuple[str, int], daemon: Daemon, *, branch_ref: str | None,
                 webhook_secret: bytes, api_token: str, log: Log, metrics: Metrics) -> None:
        self.gitops = daemon
        self.branch_ref = branch_ref  # refs/heads/<branch> a push must name; None: any branch
        self.webhook_secret = webhook_secret
        self.api_token = api_token
        self.log = log
        self.metrics = metrics
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    _refused_status = 0
    timeout = READ_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        return None  # requests are counted in metrics; bodies and headers are never logged

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, sort_keys=True).encode() + b"\n", headers=headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._refused_status = status  # what the webhook metric counts when the body was refused
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
            "/api/v1/apps": ("GET", lambda: self._json(200, {"apps": daemon.snapshot(),
                                                              "repository_error": daemon.git_error or None,
                                                              "config_error": daemon.config_error or None})),
        }
        if path in routes:
            allowed, handler = routes[path]
            if method != allowed:
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {allowed}", {"Allow": allowed})
                return
            handler()
            return
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:3] == ["api", "v1", "apps"]:
            if method != "GET":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes GET", {"Allow": "GET"})
                return
            detail = daemon.app_detail(parts[3])
            if detail is None:
                self._error(HTTPStatus.NOT_FOUND, f"no app {parts[3]}")
            else:
                self._json(200, detail)
            return
        if len(parts) == 5 and parts[:3] == ["api", "v1", "apps"] and parts[4] == "sync":
            if method != "POST":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "takes POST", {"Allow": "POST"})
                return
            self._sync(parts[3])
            return
        self._error(HTTPStatus.NOT_FOUND, "not found")

    def _readyz(self) -> None:
        if self.server.gitops.ready():
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._send(503, b"not every app has been reconciled yet\n", "text/plain; charset=utf-8")

    def _webhook(self) -> None:
        provider = "unknown"
        status = 500
        try:
            body = self._body()
            if body is None:
                status = self._refused_status
                return
            try:
                event = webhook.parse(dict(self.headers.items()), body, self.server.webhook_secret)
            except webhook.WebhookRejected as rejected:
                status, provider = rejected.status, rejected.provider
                self._error(rejected.status, rejected.reason)
                return
            provider = event.provider
            if event.kind == "ping":
                status = 200
                self._json(200, {"ok": True, "event": "ping"})
                return
            wanted = self.server.branch_ref
            if event.kind != "push" or not event.ref.startswith("refs/heads/") or (wanted and event.ref != wanted):
                status = 202
                self._json(202, {"ok": True, "triggered": False, "reason": "not a push to the watched branch"})
                return
            self.server.gitops.trigger()
            status = 200
            self.server.log("webhook", provider=provider, ref=event.ref, revision=event.revision or None)
            self._json(200, {"ok": True, "triggered": True})
        finally:
            self.server.metrics.webhooks.labels(provider, str(status)).inc()

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
