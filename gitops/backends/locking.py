"""The lock loop every backend shares: wait for the lock with backoff, renew it from a background
thread while the block runs, release it at the end. Each backend supplies the atomic steps.

The block receives a :class:`gitops.backends.base.Lease`. When a renewal finds the lock taken by
another runner, or no renewal has succeeded for a whole TTL (so the lock may have expired and been
taken), the lease is marked lost; the flow calls ``lease.check()`` before each write, which raises
:class:`gitops.errors.LockLostError`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitops.backends.base import Lease
from gitops.errors import GitopsError, LockedError

log = logging.getLogger(__name__)


@contextmanager
def held(*, app: str, ttl: float, wait: float, acquire: Callable[[], tuple[bool, str]],
         renew: Callable[[], bool], release: Callable[[], None], where: str,
         clock: Callable[[], float] = time.monotonic) -> Iterator[Lease]:
    """Hold a lock for the block, which gets the :class:`Lease`.

    ``acquire()`` makes one atomic attempt and returns (taken, current holder); ``renew()`` returns
    False when another runner has taken the lock (the lease is lost and renewal stops); a renewal
    that fails with an error is retried, and when none has succeeded for ``ttl`` seconds the lease
    is lost too (the lock expires by itself after ``ttl``, as a crashed runner's does)."""
    deadline = clock() + wait
    delay = 0.2
    while True:
        taken, owner = acquire()
        if taken:
            break
        if clock() >= deadline:
            raise LockedError(f"app {app} is locked by {owner} ({where}); "
                              f"it expires {ttl:.0f}s after its holder stops renewing it")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
    lease = Lease(app)
    stop = threading.Event()
    renewed = clock()

    def keep() -> None:
        nonlocal renewed
        while not stop.wait(max(ttl / 3, 0.05)):
            try:
                if not renew():
                    log.warning("app %s: lock lost to another runner", app)
                    lease.lose("another runner took it over")
                    return
                renewed = clock()
            except GitopsError as err:
                log.debug("app %s: lock renewal failed: %s", app, err)
                if clock() - renewed >= ttl:
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
