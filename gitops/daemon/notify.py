"""Notifications: the daemon's outcomes (``deployed``, ``sync-failed``, ...) sent to the providers of
``notifications:`` in gitops.yaml, off the reconcile path.

The loop calls :meth:`Notifier.emit` with an :class:`Event`; emit only matches subscriptions and
queues (it never waits, never does I/O). One delivery thread sends: a provider turns the event
into one HTTP request (:class:`Request`); a network error, a timeout, 408, 429 or a 5xx is retried
with doubling backoff up to ``attempts`` times, then dropped; any other 4xx is dropped at once.
The queue is bounded: an event that finds it full is dropped. Every drop is counted
(``gitops_notification_dropped_total{provider,reason}``) and logged.

Secrets (URLs given as references, tokens, HMAC keys, header values) are resolved once, when the
daemon adopts a revision's gitops.yaml, from the environment snapshot and the secrets directory
given at startup (:class:`Secrets`); they never appear in a log line: URLs are shown as
``scheme://host/(sensitive value)`` and any secret text inside an error is replaced by the mask.
"""

from __future__ import annotations

import heapq
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import urllib3

from gitops import __version__, config
from gitops.clock import SYSTEM, Clock
from gitops.daemon.log import Log
from gitops.daemon.metrics import Metrics
from gitops.errors import GitopsError
from gitops.model.plans import MASK

SIGNATURE_HEADER = "X-Gitops-Signature-256"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DESCRIPTION_MAX = 140  # GitHub refuses a longer commit status description


@dataclass(frozen=True)
class Event:
    """One outcome of one app, as the loop knows it."""

    trigger: str  # one of config.TRIGGERS
    app: str
    revision: str  # the git commit the daemon reconciled
    result: str = ""
    message: str = ""
    sync: str = ""
    health: str = ""
    backend: str = ""
    target: str = ""
    time: str = ""  # ISO, UTC

    def to_json(self, link: str) -> dict[str, Any]:
        return {"trigger": self.trigger, "app": self.app, "revision": self.revision, "result": self.result,
                "message": self.message, "sync": self.sync, "health": self.health, "backend": self.backend,
                "target": self.target, "time": self.time, "link": link}


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class Secrets:
    """Where secret references are resolved: the ``GITOPS_NOTIFY_*`` part of the daemon's
    environment (copied at startup) and the ``--notify-secrets`` directory (files read when a
    revision's gitops.yaml is adopted, so a rotated file is used from the next revision on)."""

    def __init__(self, env: Mapping[str, str] | None = None, directory: Path | None = None) -> None:
        self.env = environment(env or {})
        self.directory = directory

    def resolve(self, ref: config.SecretRef, where: str) -> str:
        if ref.literal is not None:
            return ref.literal
        if ref.env is not None:
            value = self.env.get(ref.env, "")
            if not value:
                raise GitopsError(f"{where}: environment variable {ref.env} is not set")
            return value
        assert ref.file is not None
        if self.directory is None:
            raise GitopsError(f"{where}: file {ref.file!r} named, but the daemon has no --notify-secrets directory")
        try:
            value = (self.directory / ref.file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise GitopsError(f"{where}: cannot read {ref.file!r} in {self.directory}: {exc.strerror}") from None
        if not value:
            raise GitopsError(f"{where}: {self.directory / ref.file} is empty")
        return value


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of an environment that notifications may read: ``GITOPS_NOTIFY_*`` only."""
    return {k: v for k, v in environ.items() if k.startswith(config.NOTIFY_ENV_PREFIX)}


def shown_url(url: str, secret: bool) -> str:
    """A URL as a log line may show it: never its user info or query; a secret one keeps only its
    scheme and host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if secret:
        return f"{parts.scheme}://{host}/{MASK}"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


class Provider(Protocol):
    name: str
    shown: str  # where it delivers, as logs show it
    secrets: tuple[str, ...]  # every secret value it holds (scrubbed from error text)

    def request(self, event: Event, link: str) -> Request | None:
        """The request that tells ``event``; None when this provider says nothing of it."""
        ...


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _summary(event: Event) -> str:
    words = {"sync-started": "is being deployed", "deployed": "deployed", "sync-failed": "failed to sync",
             "rolled-back": "rolled back", "health-degraded": "is degraded", "drift-detected": "drifted from git",
             "drift-healed": "drift healed"}
    return f"{event.app} {words.get(event.trigger, event.trigger)} at {event.revision[:12]}"


def _describe(event: Event) -> str:
    text = _summary(event) + (f": {event.message}" if event.message else "")
    return text if len(text) <= DESCRIPTION_MAX else text[:DESCRIPTION_MAX - 1] + "…"


class Webhook:
    """A JSON POST of the event; with a secret, ``X-Gitops-Signature-256: sha256=HEX`` is the
    HMAC-SHA256 of the body (verify it over the raw body, as for GitHub's webhooks)."""

    def __init__(self, name: str, url: str, url_secret: bool, key: str, headers: dict[str, str],
                 header_secrets: tuple[str, ...]) -> None:
        self.name, self.url, self.key, self.headers = name, url, key, headers
        self.shown = shown_url(url, url_secret)
        self.secrets = tuple(s for s in (url if url_secret else "", key, *header_secrets) if s)

    def request(self, event: Event, link: str) -> Request:
        body = _json(event.to_json(link))
        headers = {**self.headers, "Content-Type": "application/json", "User-Agent": f"gitops/{__version__}",
                   "X-Gitops-Event": event.trigger, "X-Gitops-Delivery": str(uuid.uuid4())}
        if self.key:
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(self.key.encode(), body, sha256).hexdigest()
        return Request("POST", self.url, headers, body)


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Slack:
    """An incoming webhook message: ``text`` (the fallback shown in notifications) and ``blocks``
    (a section with the summary, fields app / revision / result / health, the message, a link)."""

    ICONS = {"deployed": ":white_check_mark:", "drift-healed": ":white_check_mark:",
             "sync-started": ":arrows_clockwise:", "sync-failed": ":x:", "rolled-back": ":rewind:",
             "health-degraded": ":warning:", "drift-detected": ":mag:"}  # fmt: skip

    def __init__(self, name: str, url: str, url_secret: bool) -> None:
        self.name, self.url = name, url
        self.shown = shown_url(url, url_secret)
        self.secrets: tuple[str, ...] = (url,) if url_secret else ()

    def request(self, event: Event, link: str) -> Request:
        summary = _summary(event)
        title = f"{self.ICONS.get(event.trigger, '')} *{_mrkdwn(summary)}*".strip()
        fields = [{"type": "mrkdwn", "text": f"*App*\n{_mrkdwn(event.app)}"},
                  {"type": "mrkdwn", "text": f"*Revision*\n`{event.revision[:12]}`"},
                  {"type": "mrkdwn", "text": f"*Result*\n{_mrkdwn(event.result or event.trigger)}"},
                  {"type": "mrkdwn", "text": f"*Health*\n{_mrkdwn(event.health or 'Unknown')}"}]
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": title}},
                                        {"type": "section", "fields": fields}]
        if event.message:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(event.message[:2900])}]})
        if link:
            opened = f"<{link}|Open {_mrkdwn(event.app)}>"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": opened}})
        return Request("POST", self.url, {"Content-Type": "application/json", "User-Agent": f"gitops/{__version__}"},
                       _json({"text": summary, "blocks": blocks}))


class CommitStatus:
    """A commit status on the reconciled commit: GitHub ``POST /repos/{owner}/{repo}/statuses/{sha}``
    (state pending / success / failure, target_url, description, context) or GitLab
    ``POST /projects/:id/statuses/:sha`` (state running / success / failed, name, target_url,
    description)."""

    STATES = {
        "github": {"sync-started": "pending", "deployed": "success", "sync-failed": "failure",
                   "rolled-back": "failure", "health-degraded": "failure"},
        "gitlab": {"sync-started": "running", "deployed": "success", "sync-failed": "failed",
                   "rolled-back": "failed", "health-degraded": "failed"},
    }  # fmt: skip

    def __init__(self, name: str, forge: str, api_url: str, repository: str, token: str, context: str) -> None:
        self.name, self.forge, self.api_url, self.repository = name, forge, api_url, repository
        self.token, self.context = token, context
        self.shown = f"{api_url} ({repository})"
        self.secrets: tuple[str, ...] = (token,)

    def request(self, event: Event, link: str) -> Request | None:
        state = self.STATES[self.forge].get(event.trigger)
        if state is None or not event.revision:
            return None
        name = self.context.replace("{app}", event.app)
        headers = {"Content-Type": "application/json", "User-Agent": f"gitops/{__version__}"}
        body: dict[str, Any] = {"state": state, "description": _describe(event)}
        if link:
            body["target_url"] = link
        if self.forge == "github":
            url = f"{self.api_url}/repos/{self.repository}/statuses/{event.revision}"
            headers |= {"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                        "X-GitHub-Api-Version": "2022-11-28"}
            body["context"] = name
        else:
            url = f"{self.api_url}/projects/{quote(self.repository, safe='')}/statuses/{event.revision}"
            headers["PRIVATE-TOKEN"] = self.token
            body["name"] = name
        return Request("POST", url, headers, _json(body))


def build(spec: config.Provider, secrets: Secrets) -> Provider:
    """The provider a gitops.yaml entry declares, its secrets resolved (GitopsError names what is missing)."""
    where = f"notifications provider {spec.name!r}"

    def get(ref: config.SecretRef | None, what: str) -> str:
        return "" if ref is None else secrets.resolve(ref, f"{where} {what}")

    def url(ref: config.SecretRef) -> str:
        value = get(ref, "url")
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise GitopsError(f"{where} url: {ref} does not hold an http(s) URL")
        return value

    if spec.type == "webhook":
        assert spec.url is not None
        headers = {key: get(ref, f"header {key}") for key, ref in spec.headers}
        hidden = tuple(headers[key] for key, ref in spec.headers if ref.secret)
        return Webhook(spec.name, url(spec.url), spec.url.secret, get(spec.secret, "secret"), headers, hidden)
    if spec.type == "slack":
        assert spec.url is not None
        return Slack(spec.name, url(spec.url), spec.url.secret)
    return CommitStatus(spec.name, spec.type, spec.api_url, spec.repository, get(spec.token, "token"), spec.context)


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    provider: Provider = field(compare=False)
    event: Event = field(compare=False)
    request: Request = field(compare=False)
    attempt: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (connection refused, timeout)
    error: str = ""
    retry_after: float | None = None


Send = Callable[[Request], Answer]


class Urllib3Send:
    """One pool for every provider; no retries of its own (the notifier schedules them)."""

    def __init__(self, connect_timeout: float = 3.0, read_timeout: float = 5.0) -> None:
        self.pool = urllib3.PoolManager(num_pools=8, maxsize=1, retries=False,
                                        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout))

    def __call__(self, request: Request) -> Answer:
        try:
            response = self.pool.request(request.method, request.url, body=request.body, headers=request.headers,
                                         redirect=False, preload_content=True)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            return Answer(0, f"{type(exc).__name__}: {exc}")
        retry_after = response.headers.get("Retry-After", "")
        return Answer(response.status, "" if response.status < 400 else f"HTTP {response.status}",
                      float(retry_after) if retry_after.isdigit() else None)

    def close(self) -> None:
        self.pool.clear()


class Notifier:
    """Subscriptions and a bounded queue of deliveries, sent by one thread."""

    def __init__(self, *, log: Log | None = None, metrics: Metrics | None = None, clock: Clock = SYSTEM,
                 secrets: Secrets | None = None, send: Send | None = None, capacity: int = 256,
                 attempts: int = 5, backoff_first: float = 1.0, backoff_max: float = 60.0,
                 grace: float = 5.0) -> None:
        self.log = log or Log()
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.secrets = secrets or Secrets()
        self.send: Send = send or Urllib3Send()
        self.capacity, self.attempts = capacity, attempts
        self.backoff_first, self.backoff_max, self.grace = backoff_first, backoff_max, grace
        self._lock = threading.Lock()
        self._signal = threading.Event()  # something was queued, or close() was called
        self._stopping = threading.Event()
        self._heap: list[_Delivery] = []
        self._seq = 0
        self._routes: dict[tuple[str, str], tuple[Provider, ...]] = {}  # (trigger, app or "*") -> providers
        self._link = ""
        self._thread: threading.Thread | None = None

    # -- configuration ----------------------------------------------------------------------

    def configure(self, settings: config.Notifications) -> list[str]:
        """Use this revision's notifications (replacing the last ones); returns the problems (a
        provider whose secret cannot be resolved is left out, and said so in the log)."""
        problems: list[str] = []
        built: dict[str, Provider] = {}
        for spec in settings.providers:
            try:
                built[spec.name] = build(spec, self.secrets)
            except GitopsError as exc:
                problems.append(str(exc))
        routes: dict[tuple[str, str], list[Provider]] = {}
        for sub in settings.subscriptions:
            provider = built.get(sub.provider)
            if provider is None:
                continue
            for trigger in sub.triggers:
                for app in sub.apps or ("*",):
                    chosen = routes.setdefault((trigger, app), [])
                    if provider not in chosen:
                        chosen.append(provider)
        with self._lock:
            self._routes = {key: tuple(value) for key, value in routes.items()}
            self._link = settings.page_url
        for problem in problems:
            self.log("notify-config-error", error=problem)
        if built:
            self.log("notify-config", providers=[f"{p.name}={p.shown}" for p in built.values()])
        return problems

    # -- the loop's side: never blocks --------------------------------------------------------

    def emit(self, event: Event) -> None:
        with self._lock:
            providers = list(dict.fromkeys([*self._routes.get((event.trigger, "*"), ()),
                                            *self._routes.get((event.trigger, event.app), ())]))
            link = f"{self._link}/apps/{quote(event.app)}" if self._link else ""
        for provider in providers:
            request = provider.request(event, link)
            if request is None:
                continue
            with self._lock:
                if self._stopping.is_set() or len(self._heap) >= self.capacity:
                    full = True
                else:
                    full = False
                    self._seq += 1
                    heapq.heappush(self._heap, _Delivery(self.clock.monotonic(), self._seq, provider, event, request))
                    self.metrics.notify_queue.set(len(self._heap))
                    self._signal.set()
            if full:
                self._drop(provider, event, "queue-full", "the delivery queue is full")

    # -- the delivery thread ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop: what is queued gets one more attempt within ``grace`` seconds; the rest is dropped."""
        self._stopping.set()
        self._signal.set()
        if self._thread is not None:
            self._thread.join(timeout=self.grace + 10)
        close = getattr(self.send, "close", None)
        if close is not None:
            close()

    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def _run(self) -> None:
        deadline: float | None = None
        left: list[_Delivery] = []
        while True:
            item: _Delivery | None = None
            wait: float | None = None
            with self._lock:
                self._signal.clear()
                now = self.clock.monotonic()
                if self._stopping.is_set() and deadline is None:
                    deadline = now + self.grace
                if deadline is not None and (not self._heap or now >= deadline):
                    left, self._heap = self._heap, []
                    self.metrics.notify_queue.set(0)
                    break
                if self._heap and (self._heap[0].due <= now or deadline is not None):
                    item = heapq.heappop(self._heap)
                    self.metrics.notify_queue.set(len(self._heap))
                elif self._heap:
                    wait = self._heap[0].due - now
            if item is not None:
                self._attempt(item, final=deadline is not None)
            elif wait is None:
                self._signal.wait()  # idle until something is queued or close() is called
            else:
                self.clock.wait(self._signal, wait)
        for dropped in left:
            self._drop(dropped.provider, dropped.event, "stopped", "the daemon stopped")

    def _attempt(self, item: _Delivery, *, final: bool) -> None:
        item.attempt += 1
        try:
            answer = self.send(item.request)
        except Exception as exc:  # a surprise of one delivery never stops the thread
            answer = Answer(0, f"{type(exc).__name__}: {exc}")
        provider, event = item.provider, item.event
        if 200 <= answer.status < 300:
            self.metrics.notify_delivered.labels(provider.name, event.trigger).inc()
            self.log("notify-sent", provider=provider.name, trigger=event.trigger, app=event.app,
                     status=answer.status, attempt=item.attempt)
            return
        self.metrics.notify_failures.labels(provider.name).inc()
        error = self._scrub(provider, answer.error or f"HTTP {answer.status}")
        retryable = answer.status == 0 or answer.status in RETRY_STATUSES
        if not retryable:
            self._drop(provider, event, "rejected", error)
            return
        if final or item.attempt >= self.attempts:
            self._drop(provider, event, "stopped" if final else "retries-exhausted", error, attempts=item.attempt)
            return
        delay = min(self.backoff_first * 2 ** (item.attempt - 1), self.backoff_max)
        if answer.retry_after is not None:
            delay = min(max(delay, answer.retry_after), self.backoff_max)
        self.log("notify-retry", provider=provider.name, to=provider.shown, trigger=event.trigger, app=event.app,
                 attempt=item.attempt, error=error, retry_in=round(delay, 1))
        with self._lock:
            item.due = self.clock.monotonic() + delay
            heapq.heappush(self._heap, item)
            self.metrics.notify_queue.set(len(self._heap))

    def _drop(self, provider: Provider, event: Event, reason: str, error: str, attempts: int | None = None) -> None:
        self.metrics.notify_dropped.labels(provider.name, reason).inc()
        self.log("notify-dropped", provider=provider.name, to=provider.shown, trigger=event.trigger, app=event.app,
                 reason=reason, attempts=attempts, error=self._scrub(provider, error))

    @staticmethod
    def _scrub(provider: Provider, text: str) -> str:
        for secret in sorted(provider.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
            parts = urlsplit(secret)
            if parts.scheme and parts.path not in ("", "/"):
                text = text.replace(parts.path, "/" + MASK)  # urllib3 names the path alone in some errors
        return text
