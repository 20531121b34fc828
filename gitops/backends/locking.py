"""The lock loop both backends share: wait for the lock with backoff, renew it from a background
thread while the block runs, release it at the end. Each backend supplies the atomic steps."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitops.errors import GitopsError, LockedError

log = logging.getLogger(__name__)


@contextmanager
def held(*, app: str, ttl: float, wait: float, acquire: Callable[[], tuple[bool, str]],
         renew: Callable[[], bool], release: Callable[[], None], where: str,
         on_lost: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold a lock for the block.

    ``acquire()`` makes one atomic attempt and returns (taken, current holder); ``renew()`` returns
    False when another runner has taken the lock (then ``on_lost`` is called and renewal stops);
    a renewal that fails with an error is retried, and the lock expires by itself after ``ttl``
    if it keeps failing (a crashed runner's lock does the same)."""
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        taken, owner = acquire()
        if taken:
            break
        if time.monotonic() >= deadline:
            raise LockedError(f"app {app} is locked by {owner} ({where}); "
                              f"it expires {ttl:.0f}s after its holder stops renewing it")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(max(ttl / 3, 0.5)):
            try:
                if not renew():
                    log.warning("app %s: lock lost to another runner", app)
                    if on_lost is not None:
                        on_lost()
                    return
            except GitopsError as err:
                log.debug("app %s: lock renewal failed: %s", app, err)

    renewer = threading.Thread(target=keep, name=f"gitops-lock-{app}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=10)
        release()
