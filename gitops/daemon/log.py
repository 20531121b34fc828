"""Structured logs: one event a line, as JSON (``--log-format json``) or as ``key=value`` text."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from gitops.source import redact

LEVELS = ("info", "debug")


class Log:
    """``level`` "debug" adds the :meth:`debug` events (each planned change with its field
    changes, as the plan's JSON holds them: secret values already masked by the one diff). Every
    line is written with the credentials of any URL in it hidden (``https://***@host``), whatever
    the event put there."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None, level: str = "info") -> None:
        if level not in LEVELS:
            raise ValueError(f"log level {level!r}: one of {', '.join(LEVELS)}")
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self.level = level
        self._lock = threading.Lock()

    def debug(self, event: str, **fields: Any) -> None:
        if self.level == "debug":
            self(event, level="debug", **fields)

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event,
                  **{k: v for k, v in fields.items() if v is not None}}
        if self.fmt == "json":
            line = json.dumps(record, sort_keys=False, default=str)
        else:
            rest = " ".join(f"{k}={_text(v)}" for k, v in record.items() if k not in ("time", "event"))
            line = f"{record['time']} {event} {rest}".rstrip()
        line = redact(line)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text or '"' in text) else text
