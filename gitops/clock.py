"""Time, behind a small interface, so that every wait can be cut short by a stop signal and tests
can run a long-running process on a clock of their own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines and intervals)."""
        ...

    def now(self) -> datetime:
        """The wall-clock time, in UTC (for what is shown and recorded)."""
        ...

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait ``seconds`` or until ``stop`` is set, whichever comes first; True when stopped."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(max(0.0, seconds))


SYSTEM = SystemClock()


Stopping = Callable[[], bool]
"""Asked by a wait between its steps: True stops it (SIGTERM, a newer revision, leadership lost)."""
