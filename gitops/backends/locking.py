"""The lock loop every backend shares: wait for the lock with backoff, renew it from a background
thread while the block runs, release it at the end. Each backend supplies the atomic steps.

The block receives a :class:`gitops.backends.base.Lease`. When a renewal finds the lock taken by
another runner, or no renewal has succeeded for a whole TTL (so the lock may have expired and been
taken), the lease is marked lost; the flow calls ``lease.check()`` before each write, which raises
:class:`gitops.errors.LockLostError`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from gitops.backends.base import Lease
from gitops.clock import SYSTEM, Clock, Stopping
from gitops.errors import GitopsError, LockedError, StoppedError
from gitops.model.releases import AppState

log = logging.getLogger(__name__)

STOP_CHECK = 0.2  # seconds: how often a lock wait asks whether to stop


@contextmanager
def held(*, app: str, ttl: float, wait: float, acquire: Callable[[], tuple[bool, str]],
         renew: Callable[[], bool], release: Callable[[], None], where: str,
         stopping: Stopping | None = None, clock: Clock = SYSTEM) -> Iterator[Lease]:
    """Hold a lock for the block, which gets the :class:`Lease`.

    ``acquire()`` makes one atomic attempt and returns (taken, current holder); ``renew()`` returns
    False when another runner has taken the lock (the lease is lost and renewal stops); a renewal
    that fails with an error is retried, and when none has succeeded for ``ttl`` seconds the lease
    is lost too (the lock expires by itself after ``ttl``, as a crashed runner's does).

    The wait for a lock another runner holds is measured on ``clock`` and asks ``stopping()``
    between its attempts (at least every ``STOP_CHECK`` seconds): True raises StoppedError."""
    deadline = clock.monotonic() + wait
    delay = 0.2
    pause = threading.Event()  # never set: clock.wait is only cut short by the stopping() checks
    while True:
        if stopping is not None and stopping():
            raise StoppedError(f"app {app}: stopped while waiting for its lock ({where})")
        taken, owner = acquire()
        if taken:
            break
        left = deadline - clock.monotonic()
        if left <= 0:
            raise LockedError(f"app {app} is locked by {owner} ({where}); "
                              f"it expires {ttl:.0f}s after its holder stops renewing it")
        end = clock.monotonic() + min(delay, left)
        while (rest := end - clock.monotonic()) > 0:
            clock.wait(pause, min(rest, STOP_CHECK))
            if stopping is not None and stopping():
                raise StoppedError(f"app {app}: stopped while waiting for its lock ({where})")
        delay = min(delay * 1.5, 2.0)
    lease = Lease(app)
    stop = threading.Event()
    renewed = clock.monotonic()

    def keep() -> None:
        nonlocal renewed
        while not clock.wait(stop, max(ttl / 3, 0.05)):
            try:
                if not renew():
                    log.warning("app %s: lock lost to another runner", app)
                    lease.lose("another runner took it over")
                    return
                renewed = clock.monotonic()
            except GitopsError as err:
                log.debug("app %s: lock renewal failed: %s", app, err)
                if clock.monotonic() - renewed >= ttl:
                    lease.lose(f"not renewed for {ttl:.0f}s: {err}")
                    return

    renewer = threading.Thread(target=keep, name=f"gitops-lock-{app}", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join(timeout=10)
        release()  # a no-op when another runner holds it now


class StateStore(Protocol):
    """Where a backend keeps an app's state and lock on its target."""

    def load(self) -> AppState: ...

    def save(self, state: AppState) -> AppState: ...

    def lock(self, holder: str, ttl: int, wait: float, *, stopping: Stopping | None = None,
             clock: Clock = SYSTEM) -> AbstractContextManager[Lease]: ...


class StoreBacked:
    """The state and lock part of the Backend contract, for a backend with a :class:`StateStore`."""

    store: StateStore

    def load_state(self) -> AppState:
        return self.store.load()

    def save_state(self, state: AppState) -> AppState:
        return self.store.save(state)

    def lock(self, holder: str, ttl_seconds: int = 30, wait: float = 600, *, stopping: Stopping | None = None,
             clock: Clock = SYSTEM) -> AbstractContextManager[Lease]:
        return self.store.lock(holder, ttl_seconds, wait, stopping=stopping, clock=clock)
