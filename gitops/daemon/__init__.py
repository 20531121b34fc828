"""The sync daemon: the engine held open. It watches one repository (poll, and signed webhooks),
keeps every app of its gitops.yaml equal to it with the same flow as `gitops apply`, and serves
``/healthz``, ``/readyz``, Prometheus ``/metrics``, webhooks and a JSON API on one listener.

Parts: :mod:`.loop` (scheduler and per-app reconcile), :mod:`.webhook` (forge signatures),
:mod:`.http` (the listener), :mod:`.metrics`, :mod:`.log`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from gitops.clock import SYSTEM, Clock
from gitops.daemon.http import Server, serve
from gitops.daemon.log import Log
from gitops.daemon.loop import Daemon, Options
from gitops.daemon.metrics import Metrics

__all__ = ["Daemon", "Listener", "Options", "run"]

@dataclass(frozen=True)
class Listener:
    host: str = "127.0.0.1"
    port: int = 8080
    webhook_secret: bytes = b""
    api_token: str = ""


def interpolation_env(environ: Mapping[str, str], allow: tuple[str, ...]) -> dict[str, str]:
    """The part of the daemon's environment that compose ${VAR} interpolation may read: only the
    names allowed with ``--env-allow``, so the daemon's own secrets never reach a service."""
    return {name: environ[name] for name in allow if name in environ}


def run(options: Options, listener: Listener, *, log: Log, clock: Clock = SYSTEM,
        stop: threading.Event | None = None, install_signals: bool = True) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``): stop taking work, let running applies reach their
    next write or poll (the release is left in progress for the next start to complete), release
    the locks and return 0."""
    stop = stop or threading.Event()
    metrics = Metrics()
    daemon = Daemon(options, log=log, metrics=metrics, clock=clock, stop=stop)
    branch_ref = f"refs/heads/{options.ref}" if options.ref and not options.ref.startswith("refs/") else options.ref
    server = Server((listener.host, listener.port), daemon, branch_ref=branch_ref,
                    webhook_secret=listener.webhook_secret, api_token=listener.api_token, log=log, metrics=metrics,
                    repo=options.repo, clock=clock)
    metrics.leader.set(0)
    metrics.shard.labels(str(options.shard), str(options.shards)).set(1)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log("signal", signal=signal.Signals(signum).name)
        stop.set()
        daemon.wake.set()

    if install_signals:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    serve(server)
    log("listening", url=server.url, webhook=bool(listener.webhook_secret), api_writes=bool(listener.api_token))
    try:
        daemon.run()
    finally:
        server.shutdown()
        server.server_close()
    return 0
