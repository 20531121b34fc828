"""Applies a stack of N small services, slowly, printing a line per change (killed by a test).

Usage: swarm_apply_many.py DOCKER_HOST STACK ROOT COUNT
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from swarm_app import app_doc, backend, resources

from gitops import deploy
from gitops.backends.swarm.client import SwarmClient


def main() -> int:
    host, stack, root, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "change":
            print("change", event["object"], flush=True)
            time.sleep(0.05)

    sb = backend(SwarmClient(host), stack, root)
    result = deploy.apply_app(sb, resources(stack, app_doc(services=count)), "many",
                              deploy.Options(lock_ttl=3, lock_wait=60, timeout=90, poll=0.3), on_event=on_event)
    print("outcome", result.outcome, result.error, flush=True)
    return 0 if result.outcome == "applied" else 1


if __name__ == "__main__":
    sys.exit(main())
