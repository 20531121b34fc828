"""The server side of the status pages: sessions and CSRF for the write actions, the bounded
read of an app's live state, and the static files shipped in the package.

* Read-only by default. With an API token set, a viewer signs in with it (``POST /login``) and
  gets a session cookie (HttpOnly, SameSite=Strict, 12 h); the cookie is stateless (an expiry and
  a nonce signed with HMAC-SHA256 keyed by the token), so a new token ends every session and the
  daemon keeps nothing per viewer. Every form of a session carries a CSRF token derived from the
  cookie, and every write also needs an ``Origin`` (or ``Referer``) of the daemon's own host.
  A request with ``Authorization: Bearer <token>`` needs neither (a browser cannot forge it).
* The app page reads the release history and the objects' health on request, in a pool of
  :data:`LIVE_WORKERS` threads apart from the reconcile workers, waiting at most
  :data:`LIVE_TIMEOUT` seconds; a slow target, or a full pool, gives the last reconcile's figures
  and says so. The plan shown is the one the last reconcile made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from importlib import resources
from typing import TypeVar
from urllib.parse import urlsplit

from gitops.clock import Clock
from gitops.model import Health, ResourceKey
from gitops.model.plans import Action, AppPlan
from gitops.model.releases import AppState

SESSION_COOKIE = "gitops_session"
SESSION_SECONDS = 12 * 3600
LIVE_WORKERS = 2
LIVE_TIMEOUT = 3.0

T = TypeVar("T")


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's CSS and JS (package data under ``gitops/daemon/static``), read once at start."""
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    folder = resources.files("gitops.daemon") / "static"
    out = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in types:
            out[entry.name] = (entry.read_bytes(), types[suffix])
    return out


class Sessions:
    """Stateless sign-in sessions and their CSRF tokens, keyed by the daemon's API token."""

    def __init__(self, token: str, clock: Clock) -> None:
        self._key = token.encode()
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def check_token(self, given: str) -> bool:
        return self.enabled and hmac.compare_digest(given.encode(), self._key)

    def new(self) -> str:
        expires = str(int(self.clock.now().timestamp()) + SESSION_SECONDS)
        nonce = secrets.token_hex(16)
        return f"{expires}.{nonce}.{self._sign('session', expires, nonce)}"

    def valid(self, cookie: str) -> bool:
        if not self.enabled or cookie.count(".") != 2:
            return False
        expires, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign("session", expires, nonce).encode()):
            return False
        return expires.isdigit() and int(expires) > self.clock.now().timestamp()

    def csrf(self, cookie: str) -> str:
        return self._sign("csrf", cookie)[:40] if self.valid(cookie) else ""

    def check_csrf(self, cookie: str, given: str) -> bool:
        expected = self.csrf(cookie)
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def same_origin(host: str, origin: str | None, referer: str | None) -> bool:
    """A write must come from a page of this daemon: the Origin (or, without one, the Referer)
    names the host the request was sent to."""
    source = origin if origin and origin != "null" else referer
    if not source or not host:
        return False
    try:
        return urlsplit(source).netloc.lower() == host.lower()
    except ValueError:
        return False


@dataclass
class LiveView:
    """What the app page shows of the target: the history (None: not read) and each object's health."""

    history: AppState | None = None
    objects: dict[ResourceKey, Health] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def object_keys(plan: AppPlan | None) -> list[ResourceKey]:
    """The objects an app keeps on its target according to a plan (not those it deletes)."""
    return [] if plan is None else [c.key for c in plan.changes if c.action is not Action.DELETE]


class Live:
    """Reads from the target for a page, bounded in threads and in time."""

    def __init__(self, workers: int = LIVE_WORKERS, timeout: float = LIVE_TIMEOUT) -> None:
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="page")
        self._slots = threading.BoundedSemaphore(workers)

    def run(self, read: Callable[[], T]) -> tuple[T | None, str]:
        """``read()``'s result, or None and why (the pool is busy, it timed out, it failed)."""
        if not self._slots.acquire(blocking=False):
            return None, "the target is slow to answer (earlier page reads still wait)"
        try:
            future = self._pool.submit(read)
        except RuntimeError:  # shut down
            self._slots.release()
            return None, "the daemon is stopping"
        future.add_done_callback(lambda _f: self._slots.release())
        try:
            return future.result(timeout=self.timeout), ""
        except FutureTimeout:
            return None, f"the target did not answer within {self.timeout:.0f} s"
        except Exception as exc:  # the page says why; the loop never sees it
            return None, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
